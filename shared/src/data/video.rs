//! Video decoder (opencv `videoio`, FFMPEG backend only: no GStreamer or image-sequence
//! guessing on a bad file): N frames sampled uniformly by index over the clip, RGB u8.
use std::path::Path;

use opencv::core::{Mat, MatTraitConst, MatTraitConstManual};
use opencv::imgproc;
use opencv::prelude::{VideoCaptureTrait, VideoCaptureTraitConst};
use opencv::videoio::{self, VideoCapture};
use tch::Tensor;

use super::jpeg::JpegOut;
use super::pool::DECODE_POOL;
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

/// Seeks `cap` so that the next read returns frame `i` (`CAP_PROP_POS_FRAMES`).
fn seek(cap: &mut VideoCapture, i: usize) -> Result<(), String> {
    let ok = cap
        .set(videoio::CAP_PROP_POS_FRAMES, i as f64)
        .map_err(|e| format!("seek to frame {i}: {e}"))?;
    if !ok {
        return Err(format!("cannot seek to frame {i}"));
    }
    Ok(())
}

/// Reads the next frame (index `i` of `frames`) into `bgr`; an empty frame is an error.
fn read_frame(
    cap: &mut VideoCapture,
    bgr: &mut Mat,
    i: usize,
    frames: usize,
) -> Result<(), String> {
    let ok = cap.read(bgr).map_err(|e| format!("read frame {i}: {e}"))?;
    if !ok || bgr.empty() {
        return Err(format!(
            "cannot read frame {i} of {frames} (truncated or corrupt)"
        ));
    }
    Ok(())
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
            seek(&mut cap, i).map_err(err)?;
        }
        read_frame(&mut cap, &mut bgr, i, info.frames).map_err(err)?;
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

/// How [`read_video_u8`] gets the frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoReader {
    /// `mjpeg` when the file is a grey Motion-JPEG AVI that qualifies
    /// ([`super::avi::mjpeg_index`]; grey: decoded frames have equal channels), otherwise
    /// `opencv`.
    #[default]
    Auto,
    /// opencv `VideoCapture` (FFMPEG): seeks with `CAP_PROP_POS_FRAMES`, or decodes forward when
    /// the next frame is at most [`GRAB_AHEAD`] frames ahead. Any codec; what the Python
    /// pipeline does.
    Opencv,
    /// Read each needed frame's JPEG from the AVI and decode only it (libjpeg, straight into the
    /// clip's tensor), grey frames as one channel. MJPEG AVI only (other files are an error).
    Mjpeg,
}

impl VideoReader {
    pub fn as_str(self) -> &'static str {
        match self {
            VideoReader::Auto => "auto",
            VideoReader::Opencv => "opencv",
            VideoReader::Mjpeg => "mjpeg",
        }
    }
}

/// opencv's seek decodes from about 16 frames before the target; decoding forward is cheaper
/// when the next needed frame is at most this many frames ahead.
pub const GRAB_AHEAD: usize = 16;

/// Decoded frames in the layout the device-side preprocessing takes.
#[derive(Debug)]
pub struct VideoU8 {
    /// [T, H, W, C] u8 on the CPU, contiguous: C = 1 for a grey clip (all channels equal), else
    /// 3 (RGB). From [`DECODE_POOL`] when the `mjpeg` reader decoded straight into it.
    pub pixels: Tensor,
    pub t: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    /// The reader that produced the frames (`opencv` or `mjpeg`).
    pub reader: VideoReader,
}

impl VideoU8 {
    /// A copy of the frames' bytes ([T, H, W, C], row-major).
    pub fn bytes(&self) -> Vec<u8> {
        let n = self.pixels.numel();
        let mut out = vec![0u8; n];
        self.pixels.copy_data_u8(&mut out, n);
        out
    }
}

/// Whether an interleaved 3-channel buffer has equal channels everywhere.
fn channels_equal(bgr: &[u8]) -> bool {
    bgr.chunks_exact(3).all(|p| p[0] == p[1] && p[1] == p[2])
}

/// Channel 0 of an interleaved 3-channel buffer.
fn first_channel(bgr: &[u8]) -> Vec<u8> {
    bgr.chunks_exact(3).map(|p| p[0]).collect()
}

/// Read `n_frames` frames at [`uniform_indices`] for the device-side preprocessing: the same
/// frames as [`read_video_frames`], kept as one grey channel when every frame has three equal
/// channels (bit-identical after the preprocessing, a third of the bytes and of the resize
/// work), else RGB. `reader` picks the decoder (see [`VideoReader`]).
/// Returns [T, H, W, C] u8 with C in {1, 3}.
pub fn read_video_u8(
    path: &Path,
    n_frames: usize,
    sample: &str,
    reader: VideoReader,
) -> Result<VideoU8, SampleError> {
    let err = |m: String| SampleError::new(sample, Modality::Video, path, m);
    if n_frames == 0 {
        return Err(err("asked for 0 frames".into()));
    }
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot open: {e}")))?;
    if meta.len() == 0 {
        return Err(err("empty file (0 bytes)".into()));
    }
    if reader != VideoReader::Opencv {
        match super::avi::mjpeg_index(path).map_err(err)? {
            super::avi::AviProbe::Mjpeg(index) => {
                let colour_ok = reader == VideoReader::Mjpeg;
                if let Some(v) = read_mjpeg(path, &index, n_frames, sample, colour_ok)? {
                    return Ok(v);
                }
            }
            super::avi::AviProbe::Other(why) if reader == VideoReader::Mjpeg => {
                return Err(err(format!(
                    "video.reader = \"mjpeg\" needs a Motion-JPEG AVI: {why} (use \"auto\" or \
                     \"opencv\")"
                )));
            }
            super::avi::AviProbe::Other(_) => {}
        }
    }
    read_opencv_u8(path, n_frames, sample)
}

fn read_opencv_u8(path: &Path, n_frames: usize, sample: &str) -> Result<VideoU8, SampleError> {
    let err = |m: String| SampleError::new(sample, Modality::Video, path, m);
    let mut cap = open(path, sample)?;
    let info = info_of(&cap, path, sample)?;
    let idx = uniform_indices(info.frames, n_frames);
    let mut frames: Vec<Vec<u8>> = Vec::with_capacity(idx.len()); // BGR, one per index
    let (mut h, mut w) = (0usize, 0usize);
    let mut next_pos: Option<usize> = None;
    let mut bgr = Mat::default();
    let mut bgr3 = Mat::default();
    for (k, &i) in idx.iter().enumerate() {
        if k > 0 && idx[k - 1] == i {
            let prev = frames[k - 1].clone();
            frames.push(prev);
            continue;
        }
        match next_pos {
            Some(p) if p <= i && i - p <= GRAB_AHEAD => {
                for skip in p..i {
                    let ok = cap
                        .grab()
                        .map_err(|e| err(format!("decode frame {skip}: {e}")))?;
                    if !ok {
                        return Err(err(format!(
                            "cannot decode frame {skip} of {} (truncated or corrupt)",
                            info.frames
                        )));
                    }
                }
            }
            _ => {
                seek(&mut cap, i).map_err(err)?;
            }
        }
        read_frame(&mut cap, &mut bgr, i, info.frames).map_err(err)?;
        next_pos = Some(i + 1);
        let m = match bgr.channels() {
            3 => &bgr,
            1 | 4 => {
                let code = if bgr.channels() == 1 {
                    imgproc::COLOR_GRAY2BGR
                } else {
                    imgproc::COLOR_BGRA2BGR
                };
                imgproc::cvt_color_def(&bgr, &mut bgr3, code)
                    .map_err(|e| err(format!("colour conversion of frame {i}: {e}")))?;
                &bgr3
            }
            c => return Err(err(format!("frame {i} has {c} channels"))),
        };
        let (fh, fw) = (m.rows() as usize, m.cols() as usize);
        if k == 0 {
            (h, w) = (fh, fw);
        } else if (fh, fw) != (h, w) {
            return Err(err(format!(
                "frame {i} is {fw}x{fh}, earlier frames {w}x{h}"
            )));
        }
        frames.push(mat_bytes(m).map_err(|e| err(format!("frame {i}: {e}")))?);
    }
    let gray = frames.iter().all(|f| channels_equal(f));
    let c = if gray { 1 } else { 3 };
    let mut data = Vec::with_capacity(frames.len() * h * w * c);
    for f in &frames {
        if gray {
            data.extend(first_channel(f));
        } else {
            data.extend(f.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]));
        }
    }
    let t = idx.len();
    Ok(VideoU8 {
        pixels: Tensor::from_slice(&data).view([t as i64, h as i64, w as i64, c as i64]),
        t,
        h,
        w,
        c,
        reader: VideoReader::Opencv,
    })
}

/// Decodes an encoded image (JPEG, PNG, ...) with opencv `imdecode` (`flags`: IMREAD_COLOR gives BGR, IMREAD_GRAYSCALE
/// the luma plane).
pub(crate) fn decode_bytes(bytes: &[u8], flags: i32) -> Result<Mat, String> {
    // the encoded bytes are borrowed by a 1 x N Mat, not copied
    let buf = Mat::from_slice(bytes).map_err(|e| e.to_string())?;
    let m = opencv::imgcodecs::imdecode(&buf, flags).map_err(|e| e.to_string())?;
    if m.empty() {
        return Err("opencv cannot decode it (corrupt, truncated or unsupported)".into());
    }
    Ok(m)
}

/// One MJPEG frame decoded by opencv `imdecode` (the JPEGs the direct path declines), in
/// `layout`, with its height and width.
fn opencv_frame(bytes: &[u8], layout: JpegOut) -> Result<(Vec<u8>, usize, usize), String> {
    let flags = match layout {
        JpegOut::Luma => opencv::imgcodecs::IMREAD_GRAYSCALE,
        _ => opencv::imgcodecs::IMREAD_COLOR,
    };
    let m = decode_bytes(bytes, flags)?;
    let (h, w) = (m.rows() as usize, m.cols() as usize);
    let mut b = mat_bytes(&m)?;
    if layout == JpegOut::Rgb {
        b.chunks_exact_mut(3).for_each(|p| p.swap(0, 2));
    }
    Ok((b, h, w))
}

/// One MJPEG frame in `layout` with its height and width: libjpeg directly ([`super::jpeg`])
/// when it can, else opencv (the same libjpeg underneath).
fn decode_frame(bytes: &[u8], layout: JpegOut) -> Result<(Vec<u8>, usize, usize), String> {
    let Some(info) = super::jpeg::direct_jpeg(bytes) else {
        return opencv_frame(bytes, layout);
    };
    let mut out = vec![0u8; info.h * info.w * layout.channels()];
    super::jpeg::decode_into(bytes, 1, layout, &mut out, info.h, info.w)
        .map_err(|e| e.to_string())?;
    Ok((out, info.h, info.w))
}

/// Decodes one MJPEG frame of `h` x `w` into `out` (`h * w * channels` bytes) in `layout`:
/// libjpeg straight into `out` when it can, else opencv and one copy.
fn decode_frame_into(
    bytes: &[u8],
    layout: JpegOut,
    out: &mut [u8],
    h: usize,
    w: usize,
) -> Result<(), String> {
    let size_err = |fh: usize, fw: usize| format!("frame is {fw}x{fh}, earlier frames {w}x{h}");
    if let Some(info) = super::jpeg::direct_jpeg(bytes) {
        if (info.h, info.w) != (h, w) {
            return Err(size_err(info.h, info.w));
        }
        return super::jpeg::decode_into(bytes, 1, layout, out, h, w).map_err(|e| e.to_string());
    }
    let (b, fh, fw) = opencv_frame(bytes, layout)?;
    if (fh, fw) != (h, w) {
        return Err(size_err(fh, fw));
    }
    out.copy_from_slice(&b);
    Ok(())
}

/// The `mjpeg` reader. Grey detection: the first, middle and last needed frames are decoded in
/// colour; when all three have equal channels the clip is grey and every other frame is decoded
/// as luma only (for a JPEG whose chroma is flat, luma equals each decoded colour channel).
/// A colour clip returns `None` unless `colour_ok`: libjpeg's chroma upsampling differs from
/// FFmpeg's (measured up to 47 levels on high-frequency chroma), so `auto` reads colour MJPEG
/// through opencv, as the Python pipeline does.
fn read_mjpeg(
    path: &Path,
    index: &super::avi::MjpegIndex,
    n_frames: usize,
    sample: &str,
    colour_ok: bool,
) -> Result<Option<VideoU8>, SampleError> {
    let err = |m: String| SampleError::new(sample, Modality::Video, path, m);
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
    let total = index.frames.len();
    let idx = uniform_indices(total, n_frames);
    let probe_at = [0, idx.len() / 2, idx.len() - 1];
    let mut colour: Vec<Option<Vec<u8>>> = vec![None; idx.len()]; // RGB
    let (mut h, mut w) = (0usize, 0usize);
    let mut gray = true;
    for &k in &probe_at {
        if colour[k].is_some() {
            continue;
        }
        let i = idx[k];
        let bytes = super::avi::read_frame(&file, index, i)
            .map_err(|e| err(format!("reading frame {i}: {e}")))?;
        let (b, fh, fw) = decode_frame(&bytes, JpegOut::Rgb)
            .map_err(|e| err(format!("frame {i} of {total}: {e}")))?;
        if h == 0 {
            (h, w) = (fh, fw);
        } else if (fh, fw) != (h, w) {
            return Err(err(format!(
                "frame {i} is {fw}x{fh}, earlier frames {w}x{h}"
            )));
        }
        gray &= channels_equal(&b);
        colour[k] = Some(b);
    }
    if !gray && !colour_ok {
        return Ok(None);
    }
    let c = if gray { 1 } else { 3 };
    let (t, fs) = (idx.len(), h * w * c);
    let pixels = DECODE_POOL.take(&[t as i64, h as i64, w as i64, c as i64]);
    // SAFETY: `pixels` is a contiguous CPU u8 tensor of exactly t * fs bytes, owned here (new,
    // or handed back to the pool with no other tensor sharing its storage) and not aliased while
    // the slice lives; every byte is written below.
    let data = unsafe { std::slice::from_raw_parts_mut(pixels.data_ptr() as *mut u8, t * fs) };
    for (k, &i) in idx.iter().enumerate() {
        let (done, rest) = data.split_at_mut(k * fs);
        let slot = &mut rest[..fs];
        if k > 0 && idx[k - 1] == i {
            slot.copy_from_slice(&done[(k - 1) * fs..]);
            continue;
        }
        match colour[k].take() {
            Some(rgb) if gray => {
                for (o, p) in slot.iter_mut().zip(rgb.chunks_exact(3)) {
                    *o = p[0];
                }
            }
            Some(rgb) => slot.copy_from_slice(&rgb),
            None => {
                let bytes = super::avi::read_frame(&file, index, i)
                    .map_err(|e| err(format!("reading frame {i}: {e}")))?;
                let layout = if gray { JpegOut::Luma } else { JpegOut::Rgb };
                decode_frame_into(&bytes, layout, slot, h, w)
                    .map_err(|e| err(format!("frame {i} of {total}: {e}")))?;
            }
        }
    }
    Ok(Some(VideoU8 {
        pixels,
        t,
        h,
        w,
        c,
        reader: VideoReader::Mjpeg,
    }))
}

impl std::str::FromStr for VideoReader {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s.trim() {
            "auto" => Ok(VideoReader::Auto),
            "opencv" => Ok(VideoReader::Opencv),
            "mjpeg" => Ok(VideoReader::Mjpeg),
            o => Err(crate::Error::Msg(format!(
                "unknown video reader `{o}` (expected auto, opencv, mjpeg)"
            ))),
        }
    }
}
