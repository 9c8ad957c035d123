//! The five extraction stages: what each decodes, which backbone it runs and which arrays it
//! writes. Array names (the store's schema, read by `train-head`):
//!
//! | array | per-sample shape | dtype |
//! |---|---|---|
//! | `video/tokens` | [T/2 * (crop/16)^2 / pool^2, 1024] | store dtype |
//! | `audio/tokens` | [windows, 2 + patches, 768] | store dtype |
//! | `audio/window_start_s` | [windows] | f32 |
//! | `image/pooled` | [layers+1, 5, 2 (mean, max), 1280] | store dtype |
//! | `image/tokens_L{i}` | [5, 1 + registers + patches, 1280] | store dtype |
//! | `sensor/raw` | [steps, 6] | f32 |
//!
//! The CLIP text embedding is not per sample: it is the store-level array `text/embed`.
use super::config::ExtractConfig;
use super::config::PreprocessAt;
use super::engine::SampleOutput;
use crate::backbones::{ast::Ast, dinov3::Dinov3, vjepa2::VJepa2};
use crate::data::images::read_image_u8;
use crate::data::pool::DECODE_POOL;
use crate::data::sample::SampleFiles;
use crate::data::video::read_video_u8;
use crate::data::{manifest::SampleRecord, Modality, SampleError};
use crate::preprocess::device::{dinov3_pixels_bgr_u8, vjepa2_pixels_u8};
use crate::preprocess::fbank::{ast_input_values, Fbank, FbankConfig, AST_MEAN, AST_STD};
use crate::preprocess::image::ImageNorm;
use crate::preprocess::video::vjepa2_pixels;
use crate::{Error, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub use crate::schema::{
    AUDIO_STARTS, AUDIO_TOKENS, IMAGE_POOLED, SENSOR_RAW, TEXT_FILE, VIDEO_TOKENS,
};

/// Name of the token array of DINOv3 hidden-state index `layer` (see [`crate::schema`]).
pub fn image_tokens_name(layer: usize) -> String {
    crate::schema::image_tokens_name(layer as i64)
}

/// The per-sample inputs every stage starts from.
pub struct SampleCtx<'a> {
    pub root: &'a Path,
    pub records: &'a [SampleRecord],
}

impl SampleCtx<'_> {
    pub fn files(&self, i: usize) -> std::result::Result<SampleFiles, SampleError> {
        SampleFiles::locate(self.root, &self.records[i])
    }
    pub fn key(&self, i: usize) -> &str {
        &self.records[i].key
    }
}

/// A preprocessing error of one sample's modality, as a per-sample fault.
fn fault(ctx: &SampleCtx, i: usize, modality: Modality, file: &Path, e: Error) -> SampleError {
    SampleError::new(ctx.key(i), modality, file, e.to_string())
}

/// Copies a CPU f32 tensor into a Vec.
pub fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    let t = t
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous()
        .view(-1);
    Ok(Vec::<f32>::try_from(&t)?)
}

// ---------------------------------------------------------------- video (V-JEPA 2)

/// What a decode worker hands the device step for one clip.
pub enum VideoIn {
    /// `[T, 3, crop, crop]` f32, preprocessed on the CPU (`run.preprocess = "cpu"`, or the
    /// seed's `images/` source).
    Pixels(Tensor),
    /// `[T, H, W, C]` u8 frames (C = 1 grey, 3 RGB), preprocessed on the device.
    Raw(Tensor),
}

/// Frames for V-JEPA 2 from the `.avi` (or the seed's `images/` quirk): decoded by
/// `video.reader`, then preprocessed here or left as u8 for the device (`run.preprocess`).
pub fn prepare_video(
    ctx: &SampleCtx,
    cfg: &ExtractConfig,
    i: usize,
) -> std::result::Result<VideoIn, SampleError> {
    let files = ctx.files(i)?;
    let norm = ImageNorm::default();
    match cfg.video.source {
        super::config::VideoSource::Video => {
            let path = files.video()?;
            let raw = read_video_u8(&path, cfg.video.frames, ctx.key(i), cfg.video.reader)?.pixels;
            match cfg.run.preprocess {
                PreprocessAt::Device => Ok(VideoIn::Raw(raw)),
                PreprocessAt::Cpu => DECODE_POOL
                    .use_then_give(raw, Device::Cpu, |x| {
                        vjepa2_pixels_u8(x, cfg.video.short_side, cfg.video.crop, &norm)
                    })
                    .map(VideoIn::Pixels)
                    .map_err(|e| fault(ctx, i, Modality::Video, &path, e)),
            }
        }
        super::config::VideoSource::Images => {
            let paths = files.images()?;
            let imgs = crate::data::images::read_images(&paths, ctx.key(i))?;
            // The seed's reader: the five stills repeated in order to fill the frame count.
            let mut views = Vec::with_capacity(cfg.video.frames);
            for k in 0..cfg.video.frames {
                let j = k * imgs.len() / cfg.video.frames;
                let im = &imgs[j];
                views.push(
                    vjepa2_pixels(
                        &im.data,
                        1,
                        im.h,
                        im.w,
                        cfg.video.short_side,
                        cfg.video.crop,
                        &norm,
                    )
                    .map_err(|e| fault(ctx, i, Modality::Images, &paths[j], e))?,
                );
            }
            Ok(VideoIn::Pixels(Tensor::cat(&views, 0)))
        }
    }
}

/// The device step's input of a group: `[B, T, 3, crop, crop]` f32 on `device` (raw clips are
/// uploaded as u8 and preprocessed there).
pub fn video_batch(cfg: &ExtractConfig, batch: Vec<VideoIn>, device: Device) -> Result<Tensor> {
    let norm = ImageNorm::default();
    let xs = batch
        .into_iter()
        .map(|v| match v {
            VideoIn::Pixels(x) => Ok(x.to_device(device)),
            VideoIn::Raw(u8s) => DECODE_POOL.use_then_give(u8s, device, |x| {
                vjepa2_pixels_u8(x, cfg.video.short_side, cfg.video.crop, &norm)
            }),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::stack(&xs, 0))
}

/// Tokens per sample after the spatial pooling: [N, D].
pub fn video_token_shape(model: &VJepa2, cfg: &ExtractConfig) -> Result<Vec<usize>> {
    let c = model.config();
    let grid = cfg.video.crop / c.patch_size as usize;
    if !grid.is_multiple_of(cfg.video.pool) {
        return Err(Error::Msg(format!(
            "video.pool {} does not divide the {grid}x{grid} token grid",
            cfg.video.pool
        )));
    }
    let t = if cfg.video.frames < 2 {
        1
    } else {
        cfg.video.frames / c.tubelet_size as usize
    };
    let g = grid / cfg.video.pool;
    Ok(vec![t * g * g, c.hidden_size as usize])
}

/// `x`: [B, T, 3, C, C] on the model's device ([`video_batch`]) -> per-sample `video/tokens`.
pub fn compute_video(
    model: &VJepa2,
    cfg: &ExtractConfig,
    x: Tensor,
    kind: Kind,
) -> Result<Vec<SampleOutput>> {
    let x = x.to_kind(kind);
    let h = tch::no_grad(|| model.forward_last(&x))?.to_kind(Kind::Float); // [B, N, D]
    let h = if cfg.video.pool > 1 {
        let (b, n, d) = h.size3()?;
        let grid = (cfg.video.crop / model.config().patch_size as usize) as i64;
        let t = n / (grid * grid);
        let k = cfg.video.pool as i64;
        // [B, T, G, G, D] -> [B*T, D, G, G] -> avg pool k -> [B, T*(G/k)^2, D]
        let x = h.view([b * t, grid, grid, d]).permute([0, 3, 1, 2]);
        let p = x.avg_pool2d([k, k], [k, k], [0, 0], false, true, None::<i64>);
        p.permute([0, 2, 3, 1]).reshape([b, -1, d])
    } else {
        h
    };
    (0..h.size()[0])
        .map(|b| Ok(vec![(VIDEO_TOKENS.to_string(), to_vec(&h.get(b))?)]))
        .collect()
}

// ---------------------------------------------------------------- audio (AST)

/// Start sample of each of `windows` windows of `win` samples spread evenly over `len` samples
/// (overlapping when the clip is shorter than windows * win; all at 0 when shorter than one).
pub fn window_starts(len: usize, win: usize, windows: usize) -> Vec<usize> {
    if len <= win || windows == 1 {
        return vec![0; windows];
    }
    let span = (len - win) as f64;
    (0..windows)
        .map(|k| (span * k as f64 / (windows - 1) as f64).round() as usize)
        .collect()
}

/// Samples one AST window covers: `max_length` fbank frames.
pub fn audio_window_samples(cfg: &FbankConfig, max_length: usize) -> usize {
    let shift = (cfg.sample_rate * cfg.frame_shift_ms / 1000.0).round() as usize;
    let flen = (cfg.sample_rate * cfg.frame_length_ms / 1000.0).round() as usize;
    (max_length - 1) * shift + flen
}

pub struct AudioPrep {
    pub input_values: Tensor, // [W, max_length, bins]
    pub starts_s: Vec<f32>,
}

pub fn prepare_audio(
    ctx: &SampleCtx,
    fbank: &Fbank,
    max_length: usize,
    windows: usize,
    i: usize,
) -> std::result::Result<AudioPrep, SampleError> {
    let files = ctx.files(i)?;
    let path = files.audio()?;
    let wave = crate::data::audio::read_audio_16k(&path, ctx.key(i))?;
    let cfg = fbank.config();
    let win = audio_window_samples(cfg, max_length);
    let starts = window_starts(wave.len(), win, windows);
    let bins = cfg.num_mel_bins;
    let mut vals = Vec::with_capacity(windows * max_length * bins);
    for &s in &starts {
        let end = (s + win).min(wave.len());
        let v = ast_input_values(fbank, &wave[s..end], max_length, AST_MEAN, AST_STD)
            .map_err(|e| fault(ctx, i, Modality::Audio, &path, e))?;
        vals.extend(v);
    }
    Ok(AudioPrep {
        input_values: Tensor::from_slice(&vals).view([
            windows as i64,
            max_length as i64,
            bins as i64,
        ]),
        starts_s: starts.iter().map(|&s| s as f32 / cfg.sample_rate).collect(),
    })
}

pub fn compute_audio(
    model: &Ast,
    batch: Vec<AudioPrep>,
    device: Device,
    kind: Kind,
) -> Result<Vec<SampleOutput>> {
    let w = batch[0].input_values.size()[0];
    let x = Tensor::cat(
        &batch
            .iter()
            .map(|p| p.input_values.shallow_clone())
            .collect::<Vec<_>>(),
        0,
    );
    let h = tch::no_grad(|| model.forward_last(&x.to_device(device).to_kind(kind)))?
        .to_kind(Kind::Float);
    let (_, n, d) = h.size3()?;
    let h = h.view([-1, w, n, d]);
    batch
        .iter()
        .enumerate()
        .map(|(b, p)| {
            Ok(vec![
                (AUDIO_TOKENS.to_string(), to_vec(&h.get(b as i64))?),
                (AUDIO_STARTS.to_string(), p.starts_s.clone()),
            ])
        })
        .collect()
}

// ---------------------------------------------------------------- images (DINOv3)

/// What a decode worker hands the device step for one sample's views.
pub enum ImagesIn {
    /// `[V, 3, size, size]` f32, preprocessed on the CPU (`run.preprocess = "cpu"`).
    Pixels(Tensor),
    /// One `[H, W, 3]` u8 BGR tensor per view (sizes may differ), preprocessed on the device.
    Raw(Vec<Tensor>),
}

/// The five views, decoded (at reduced size with `image.jpeg_reduce`) and preprocessed here or
/// left as u8 for the device (`run.preprocess`).
pub fn prepare_images(
    ctx: &SampleCtx,
    cfg: &ExtractConfig,
    i: usize,
) -> std::result::Result<ImagesIn, SampleError> {
    let files = ctx.files(i)?;
    let paths = files.images()?;
    let size = cfg.image.size;
    let reduce = cfg.image.jpeg_reduce.then_some((size, size));
    let norm = ImageNorm::default();
    let mut raw = Vec::with_capacity(paths.len());
    for p in &paths {
        let im = read_image_u8(p, ctx.key(i), reduce)?;
        raw.push(im.pixels);
    }
    match cfg.run.preprocess {
        PreprocessAt::Device => Ok(ImagesIn::Raw(raw)),
        PreprocessAt::Cpu => {
            let mut views = Vec::with_capacity(raw.len());
            for (v, p) in raw.into_iter().zip(&paths) {
                views.push(
                    DECODE_POOL
                        .use_then_give(v, Device::Cpu, |x| {
                            dinov3_pixels_bgr_u8(&x.unsqueeze(0), size, size, &norm)
                        })
                        .map_err(|e| fault(ctx, i, Modality::Images, p, e))?,
                );
            }
            Ok(ImagesIn::Pixels(Tensor::cat(&views, 0)))
        }
    }
}

/// The device step's input of a group: (`[B * V, 3, size, size]` f32 on `device`, V); raw
/// views are uploaded as u8 and preprocessed there, one view per call.
pub fn images_batch(size: usize, batch: Vec<ImagesIn>, device: Device) -> Result<(Tensor, i64)> {
    let norm = ImageNorm::default();
    let mut out = Vec::new();
    let counts: Vec<i64> = batch
        .iter()
        .map(|b| match b {
            ImagesIn::Pixels(x) => x.size()[0],
            ImagesIn::Raw(v) => v.len() as i64,
        })
        .collect();
    if counts.iter().any(|&c| c != counts[0]) {
        return Err(Error::Msg(format!(
            "image views per sample differ within a batch: {counts:?}"
        )));
    }
    for item in batch {
        match item {
            ImagesIn::Pixels(x) => out.push(x.to_device(device)),
            ImagesIn::Raw(views) => {
                // one view at a time: no stacking copy of the full-size images
                for v in views {
                    out.push(DECODE_POOL.use_then_give(v, device, |x| {
                        dinov3_pixels_bgr_u8(&x.unsqueeze(0), size, size, &norm)
                    })?);
                }
            }
        }
    }
    Ok((Tensor::cat(&out, 0), counts[0]))
}

/// Per sample: `image/pooled` [L+1, V, 2, D] for every hidden state, and the tokens of `layers`.
/// `x`: [B * V, 3, size, size] on the model's device ([`images_batch`]), `views` = V.
pub fn compute_images(
    model: &Dinov3,
    layers: &[usize],
    x: Tensor,
    views: i64,
    kind: Kind,
) -> Result<Vec<SampleOutput>> {
    let v = views;
    let b = x.size()[0] / v;
    let x = x.to_kind(kind);
    let hidden = tch::no_grad(|| model.forward_hidden(&x))?;
    let mut pooled = Vec::with_capacity(hidden.len());
    for h in &hidden {
        let h = h.to_kind(Kind::Float); // pooling in f32
        let mean = h.mean_dim(1, false, Kind::Float);
        let (max, _) = h.max_dim(1, false);
        pooled.push(Tensor::stack(&[mean, max], 1)); // [B*V, 2, D]
    }
    let d = hidden[0].size()[2];
    let pooled = Tensor::stack(&pooled, 0)
        .view([hidden.len() as i64, b, v, 2, d])
        .permute([1, 0, 2, 3, 4]);
    let mut out = Vec::with_capacity(b as usize);
    for s in 0..b {
        let mut o = vec![(IMAGE_POOLED.to_string(), to_vec(&pooled.get(s))?)];
        for &l in layers {
            let h = hidden.get(l).ok_or_else(|| {
                Error::Msg(format!(
                    "DINOv3 has {} hidden states; layer {l} requested",
                    hidden.len()
                ))
            })?;
            let n = h.size()[1];
            let t = h.to_kind(Kind::Float).view([b, v, n, d]).get(s);
            o.push((image_tokens_name(l), to_vec(&t)?));
        }
        out.push(o);
    }
    Ok(out)
}

// ---------------------------------------------------------------- sensors

/// `sensor/raw`: the 6 channels linearly interpolated to `steps`, [steps, 6].
pub fn prepare_sensor(
    ctx: &SampleCtx,
    steps: usize,
    i: usize,
) -> std::result::Result<Vec<f32>, SampleError> {
    let files = ctx.files(i)?;
    let path = files.sensors()?;
    let table = crate::data::sensors::read_sensor_csv(&path, ctx.key(i))?;
    Ok(crate::data::sensors::resample_linear(&table, steps))
}
