//! The two stages added for the seed's other systems and the dataset paper's baseline:
//!
//! | array | per-sample shape | dtype |
//! |---|---|---|
//! | `video/frame_dino` | [frame_dino.frames, Di] | store dtype |
//! | `audio/spectrogram` | [1 + clip_samples / hop, n_mels] | store dtype |
//! | `audio/spectrogram_clip` | [2] (source seconds, valid frames) | f32 |
//!
//! `frame_dino` decodes its own `frame_dino.frames` frames of the `.avi` (the `video` stage's
//! 32 frames do not contain the 16 uniform ones: both are `floor(i (total - 1) / (n - 1))`, and
//! `--only frame_dino` on a store whose video is done has no video decode to share), with the
//! same reader and grey handling as the `video` stage, and runs the DINOv3 model of the `image`
//! stage (loaded once per run) through its first `frame_dino.layer` blocks only.
//! `spectrogram` reads the audio as the `audio` stage does (16 kHz mono) and computes the
//! log-mel in the decode workers (no device step).
use super::config::{ExtractConfig, PreprocessAt};
use super::engine::SampleOutput;
use super::stages::{to_vec, SampleCtx};
use crate::backbones::dinov3::Dinov3;
use crate::data::pool::DECODE_POOL;
use crate::data::video::read_video_u8;
use crate::data::{Modality, SampleError};
use crate::preprocess::device::dinov3_pixels_frames_u8;
use crate::preprocess::{fit_clip, ImageNorm, LogMel};
use crate::schema::{AUDIO_SPECTROGRAM, AUDIO_SPECTROGRAM_CLIP, VIDEO_FRAME_DINO};
use crate::Result;
use tch::{Device, Kind, Tensor};

// ---------------------------------------------------------------- video/frame_dino

/// What a decode worker hands the device step for one clip's frames.
pub enum FramesIn {
    /// `[N, 3, size, size]` f32, preprocessed on the CPU (`run.preprocess = "cpu"`).
    Pixels(Tensor),
    /// `[N, H, W, C]` u8 frames (C = 1 grey, 3 RGB), preprocessed on the device.
    Raw(Tensor),
}

/// `frame_dino.frames` frames of the sample's `.avi` (always the video, whatever
/// `video.source`), sampled uniformly by index, decoded by `video.reader`.
pub fn prepare_frame_dino(
    ctx: &SampleCtx,
    cfg: &ExtractConfig,
    i: usize,
) -> std::result::Result<FramesIn, SampleError> {
    let files = ctx.files(i)?;
    let path = files.video()?;
    let raw = read_video_u8(&path, cfg.frame_dino.frames, ctx.key(i), cfg.video.reader)?.pixels;
    match cfg.run.preprocess {
        PreprocessAt::Device => Ok(FramesIn::Raw(raw)),
        PreprocessAt::Cpu => {
            let size = cfg.image.size;
            DECODE_POOL
                .use_then_give(raw, Device::Cpu, |x| {
                    dinov3_pixels_frames_u8(x, size, size, &ImageNorm::default())
                })
                .map(FramesIn::Pixels)
                .map_err(|e| SampleError::new(ctx.key(i), Modality::Video, &path, e.to_string()))
        }
    }
}

/// The device step's input of a group: `[B * N, 3, size, size]` f32 on `device`.
pub fn frame_dino_batch(size: usize, batch: Vec<FramesIn>, device: Device) -> Result<Tensor> {
    let norm = ImageNorm::default();
    let xs = batch
        .into_iter()
        .map(|f| match f {
            FramesIn::Pixels(x) => Ok(x.to_device(device)),
            FramesIn::Raw(u8s) => DECODE_POOL.use_then_give(u8s, device, |x| {
                dinov3_pixels_frames_u8(x, size, size, &norm)
            }),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&xs, 0))
}

/// `x`: [B * N, 3, size, size] ([`frame_dino_batch`]) -> per sample `video/frame_dino` [N, D]:
/// DINOv3 `hidden_states[layer]`, mean over all tokens (CLS, registers, patches) of each frame,
/// pooled in f32.
pub fn compute_frame_dino(
    model: &Dinov3,
    layer: usize,
    frames: i64,
    x: Tensor,
    kind: Kind,
) -> Result<Vec<SampleOutput>> {
    let b = x.size()[0] / frames;
    let h = model.forward_hidden_at(&x.to_kind(kind), layer)?;
    let d = h.size()[2];
    let mean = h
        .to_kind(Kind::Float)
        .mean_dim(1, false, Kind::Float)
        .view([b, frames, d]);
    (0..b)
        .map(|s| Ok(vec![(VIDEO_FRAME_DINO.to_string(), to_vec(&mean.get(s))?)]))
        .collect()
}

// ---------------------------------------------------------------- audio/spectrogram

/// `audio/spectrogram` [T, n_mels] and `audio/spectrogram_clip` [2] of one sample: the 16 kHz
/// clip fitted to `spectrogram.clip_seconds` ([`fit_clip`]: cropped, or padded with silence and
/// the valid frames recorded), then the log-mel. A clip shorter than `spectrogram.min_seconds`
/// is a fault of the sample.
pub fn prepare_spectrogram(
    ctx: &SampleCtx,
    cfg: &ExtractConfig,
    logmel: &LogMel,
    i: usize,
) -> std::result::Result<SampleOutput, SampleError> {
    let files = ctx.files(i)?;
    let path = files.audio()?;
    let wave = crate::data::audio::read_audio_16k(&path, ctx.key(i))?;
    let sp = &cfg.spectrogram;
    let seconds = wave.len() as f64 / sp.sample_rate as f64;
    let fault = |m: String| SampleError::new(ctx.key(i), Modality::Audio, &path, m);
    if seconds < sp.min_seconds {
        return Err(fault(format!(
            "clip is {seconds:.3} s, shorter than spectrogram.min_seconds = {} (it would be \
             mostly padding)",
            sp.min_seconds
        )));
    }
    let (x, fit) = fit_clip(&wave, sp.clip_samples(), sp.hop);
    let spec = logmel.compute(&x).map_err(|e| fault(e.to_string()))?;
    Ok(vec![
        (AUDIO_SPECTROGRAM.to_string(), spec),
        (
            AUDIO_SPECTROGRAM_CLIP.to_string(),
            vec![seconds as f32, fit.valid_frames as f32],
        ),
    ])
}
