//! Video decoder (opencv `videoio`, FFMPEG backend only: no GStreamer or image-sequence
//! guessing on a bad file): N frames sampled uniformly by index over the clip, RGB u8.
use std::path::Path;

use opencv::core::{Mat, MatTraitConst, MatTraitConstManual};
use opencv::imgproc;
use opencv::prelude::{VideoCaptureTrait, VideoCaptureTraitConst};
use opencv::videoio::{self, VideoCapture};

use super::{Modality, SampleError};

/// Decoded frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Frames {
    /// [T, H, W, 3] RGB u8, row-major.
    pub data: Vec<u8>,
    pub t: usize,
    pub h: usize,
    pub w: usize,
}

/// Container facts of a video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoInfo {
    /// `CAP_PROP_FRAME_COUNT` as reported by the container.
    pub frames: usize,
    pub fps: f64,
    pub width: usize,
    pub height: usize,
}

/// Frame indices sampled uniformly over a clip of `total` frames (`total >= 1`):
/// `idx_i = floor(i * (total - 1) / (n - 1))` for `i in 0..n` (first and last frame included;
/// `np.linspace(0, total - 1, n).astype(int)`); `n == 1` gives `[0]`. When `total < n` indices
/// repeat.
pub fn uniform_indices(total: usize, n: usize) -> Vec<usize> {
    if n == 0 || total == 0 {
        return Vec::new();
    }
    if n == 1 {
        return vec![0];
    }
    (0..n)
        .map(|i| ((i as u128 * (total as u128 - 1)) / (n as u128 - 1)) as usize)
        .collect()
}

fn open(path: &Path, sample: &str) -> Result<VideoCapture, SampleError> {
    let err = |m: String| SampleError::new(sample, Modality::Video, path, m);
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot open: {e}")))?;
    if meta.len() == 0 {
        return Err(err("empty file (0 bytes)".into()));
    }
    let cap = VideoCapture::from_file(path, videoio::CAP_FFMPEG)
        .map_err(|e| err(format!("opencv cannot open: {e}")))?;
    if !cap.is_opened().unwrap_or(false) {
        return Err(err(
            "opencv cannot open the video (corrupt or unsupported)".into()
        ));
    }
    Ok(cap)
}

/// Frame count, fps and size of a video (errors name the file stem as the sample).
pub fn video_info(path: &Path) -> Result<VideoInfo, SampleError> {
    let sample = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cap = open(path, &sample)?;
    info_of(&cap, path, &sample)
}

fn info_of(cap: &VideoCapture, path: &Path, sample: &str) -> Result<VideoInfo, SampleError> {
    let err = |m: String| SampleError::new(sample, Modality::Video, path, m);
    let g = |p: i32| cap.get(p).map_err(|e| err(format!("opencv get: {e}")));
    let frames = g(videoio::CAP_PROP_FRAME_COUNT)?;
    let info = VideoInfo {
        frames: if frames.is_finite() && frames > 0.0 {
            frames as usize
        } else {
            0
        },
        fps: g(videoio::CAP_PROP_FPS)?,
        width: g(videoio::CAP_PROP_FRAME_WIDTH)?.max(0.0) as usize,
        height: g(videoio::CAP_PROP_FRAME_HEIGHT)?.max(0.0) as usize,
    };
    if info.frames == 0 {
        return Err(err("video has no frames".into()));
    }
    Ok(info)
}

/// Read `n_frames` frames at [`uniform_indices`]`(frame_count, n_frames)`, seeking with
/// `CAP_PROP_POS_FRAMES` (sequential reads when the next index follows), converted BGR -> RGB
/// (opencv already returns gray video as 3 equal channels; a 1-channel frame is replicated).
/// Errors (modality `video`): empty file, unopenable/corrupt file, zero frames, a frame that
/// cannot be read, frames of different sizes. Returns [T, H, W, 3] RGB u8.
pub fn read_video_frames(
    path: &Path,
    n_frames: usize,
    sample: &str,
) -> Result<Frames, SampleError> {
    let err = |m: String| SampleError::new(sample, Modality::Video, path, m);
    if n_frames == 0 {
        return Err(err("asked for 0 frames".into()));
    }
    let mut cap = open(path, sample)?;
    let info = info_of(&cap, path, sample)?;
    let idx = uniform_indices(info.frames, n_frames);
    let mut data = Vec::new();
    let (mut h, mut w) = (0usize, 0usize);
    let mut next_pos: Option<usize> = None; // index the next plain read() returns
    let mut last: Option<(usize, Vec<u8>)> = None;
    let mut bgr = Mat::default();
    let mut rgb = Mat::default();
    for (k, &i) in idx.iter().enumerate() {
        if let Some((li, ref buf)) = last {
            if li == i {
                data.extend_from_slice(buf);
                continue;
            }
        }
        if next_pos != Some(i) {
            let ok = cap
                .set(videoio::CAP_PROP_POS_FRAMES, i as f64)
                .map_err(|e| err(format!("seek to frame {i}: {e}")))?;
            if !ok {
                return Err(err(format!("cannot seek to frame {i}")));
            }
        }
        let ok = cap
            .read(&mut bgr)
            .map_err(|e| err(format!("read frame {i}: {e}")))?;
        if !ok || bgr.empty() {
            return Err(err(format!(
                "cannot read frame {i} of {} (truncated or corrupt)",
                info.frames
            )));
        }
        next_pos = Some(i + 1);
        let code = match bgr.channels() {
            3 => imgproc::COLOR_BGR2RGB,
            1 => imgproc::COLOR_GRAY2RGB,
            4 => imgproc::COLOR_BGRA2RGB,
            c => return Err(err(format!("frame {i} has {c} channels"))),
        };
        imgproc::cvt_color_def(&bgr, &mut rgb, code)
            .map_err(|e| err(format!("colour conversion of frame {i}: {e}")))?;
        let (fh, fw) = (rgb.rows() as usize, rgb.cols() as usize);
        if k == 0 {
            (h, w) = (fh, fw);
        } else if (fh, fw) != (h, w) {
            return Err(err(format!(
                "frame {i} is {fw}x{fh}, earlier frames {w}x{h}"
            )));
        }
        let bytes = mat_bytes(&rgb).map_err(|e| err(format!("frame {i}: {e}")))?;
        data.extend_from_slice(&bytes);
        last = Some((i, bytes));
    }
    Ok(Frames {
        data,
        t: idx.len(),
        h,
        w,
    })
}

/// The pixels of a 3-channel u8 Mat as a contiguous [H, W, 3] vector.
pub(crate) fn mat_bytes(m: &Mat) -> Result<Vec<u8>, String> {
    if m.depth() != opencv::core::CV_8U {
        return Err(format!("pixel depth {} is not 8-bit", m.depth()));
    }
    if m.is_continuous() {
        m.data_bytes()
            .map(|b| b.to_vec())
            .map_err(|e| e.to_string())
    } else {
        let c = m.try_clone().map_err(|e| e.to_string())?;
        c.data_bytes()
            .map(|b| b.to_vec())
            .map_err(|e| e.to_string())
    }
}
