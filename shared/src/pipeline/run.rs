//! Orchestration of `extract run`: manifest -> store -> stages (cheap ones first) -> report.
use super::config::{ExtractConfig, Shard, StageKind};
use super::engine::{batch_groups, Fault, Progress, StageRun, StageSummary};
use super::precheck::{precheck, Checked};
use super::provenance::{model_provenance, record_or_check};
use super::stages::*;
use super::stages_extra::*;
use crate::backbones::{ast::Ast, clip::ClipText, dinov3::Dinov3, vjepa2::VJepa2};
use crate::data::manifest::Manifest;
use crate::preprocess::fbank::{Fbank, FbankConfig};
use crate::preprocess::LogMel;
use crate::schema::{
    SampleRow, AUDIO_SPECTROGRAM, AUDIO_SPECTROGRAM_CLIP, SAMPLES_ATTR, VIDEO_FRAME_DINO,
};
use crate::store::{ArraySpec, Coord, FeatureStore, StoreDtype};
use crate::{Error, Result};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tch::Kind;

/// Options of one process of a (possibly sharded) run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub shard: Shard,
    /// Stop at the first fault with an error instead of reporting it and going on.
    pub strict: bool,
}

/// The attributes (`report`) of the zarr group `STORE/reports/extract` (one group per shard:
/// `reports/shard-i-of-n`).
#[derive(Debug, Clone, Serialize)]
pub struct ExtractReport {
    pub tool_version: String,
    pub shard: String,
    pub samples: usize,
    pub stages: Vec<StageSummary>,
    pub faults: Vec<Fault>,
    pub seconds: f64,
}

/// The store's group attributes: the sample table ([`crate::schema::SampleRow`] per sample).
/// Every process of a run must agree on it.
fn store_attrs(manifest: &Manifest) -> Result<serde_json::Map<String, Value>> {
    let samples: Vec<SampleRow> = manifest.samples.iter().map(|r| r.sample_row()).collect();
    let mut m = serde_json::Map::new();
    m.insert("kind".into(), json!("weld-cache feature store"));
    m.insert(
        SAMPLES_ATTR.into(),
        serde_json::to_value(samples).map_err(|e| Error::Msg(format!("sample table: {e}")))?,
    );
    Ok(m)
}

/// The 1-D coordinate arrays of the sample axis (`sample` = key, `class_code`, `split`).
fn store_coords(manifest: &Manifest) -> Vec<Coord> {
    let s = &manifest.samples;
    crate::store::dims::sample_coords(
        s.iter().map(|r| r.key.clone()).collect(),
        s.iter().map(|r| r.class_code).collect(),
        s.iter().map(|r| r.split.as_str().to_string()).collect(),
    )
}

/// Runs every configured stage over this shard's samples and writes the shard's report.
pub fn run_extract(
    cfg: &ExtractConfig,
    opts: &RunOptions,
    progress: &dyn Progress,
) -> Result<ExtractReport> {
    // Everything that can be checked is checked before the store is touched.
    let Checked {
        manifest,
        device,
        kind,
    } = precheck(cfg)?;
    tch::set_num_threads(cfg.run.intra_op_threads() as i32);
    // The decode workers run in parallel over samples: opencv's own thread pool would only
    // oversubscribe the cores (and hide its CPU time from the per-stage accounting).
    opencv::core::set_num_threads(1)
        .map_err(|e| Error::Msg(format!("opencv set_num_threads: {e}")))?;
    let t0 = Instant::now();
    let n = manifest.samples.len();
    let store = FeatureStore::open_or_create_with(
        &cfg.store.path,
        n,
        store_attrs(&manifest)?,
        &store_coords(&manifest),
    )?;
    let shard_part = (opts.shard.count > 1)
        .then(|| format!("shard-{}-of-{}", opts.shard.index, opts.shard.count));
    let _lock = store.lock_run(shard_part.as_deref())?;
    let keys: Vec<String> = manifest.samples.iter().map(|r| r.key.clone()).collect();
    let ctx = SampleCtx {
        root: &cfg.data.root,
        records: &manifest.samples,
    };
    let groups = batch_groups(n, cfg.run.batch_size, opts.shard, |_| true);
    let sdt = cfg.store.dtype;
    let tool = env!("CARGO_PKG_VERSION");
    let mut faults = Vec::new();
    let mut stages = Vec::new();
    let stage_run = |name: &'static str, arrays: Vec<(String, StoreDtype)>| StageRun {
        name,
        modality: name,
        store: &store,
        arrays,
        groups: groups.clone(),
        sample_keys: &keys,
        workers: cfg.run.workers,
        queue: cfg.run.queue,
        strict: opts.strict,
        device_prep_ns: None,
    };
    let ensure =
        |arrays: &[(String, Vec<usize>, StoreDtype)]| -> Result<Vec<(String, StoreDtype)>> {
            for (name, shape, dtype) in arrays {
                store.ensure_array(&ArraySpec {
                    name: name.clone(),
                    sample_shape: shape.clone(),
                    dtype: *dtype,
                })?;
            }
            Ok(arrays.iter().map(|(n, _, d)| (n.clone(), *d)).collect())
        };

    // DINOv3 is loaded once for the `image` and `frame_dino` stages (run one after the other)
    // and dropped after the last of them.
    let mut dino: Option<Dinov3> = None;
    let last_dino = StageKind::ALL.into_iter().rfind(|s| {
        matches!(s, StageKind::Image | StageKind::FrameDino) && cfg.run.only.contains(s)
    });
    for stage in StageKind::ALL {
        if !cfg.run.only.contains(&stage) {
            continue;
        }
        if matches!(stage, StageKind::Image | StageKind::FrameDino) && dino.is_none() {
            dino = Some(Dinov3::load(&cfg.models.dinov3, device, kind)?);
        }
        let summary = match stage {
            StageKind::Sensor => {
                let prov = json!({ "steps": cfg.sensor.steps, "channels": crate::data::sensors::SENSOR_CHANNELS, "tool_version": tool });
                record_or_check(&store, &cfg.store.path, "sensor", &prov)?;
                let arrays = ensure(&[(
                    SENSOR_RAW.into(),
                    vec![cfg.sensor.steps, 6],
                    StoreDtype::F32,
                )])?;
                stage_run("sensor", arrays).run(
                    |i| prepare_sensor(&ctx, cfg.sensor.steps, i),
                    |batch| {
                        Ok(batch
                            .into_iter()
                            .map(|(_, v)| vec![(SENSOR_RAW.to_string(), v)])
                            .collect())
                    },
                    progress,
                    &mut faults,
                )?
            }
            StageKind::Text => run_text(cfg, &store, device, kind, progress)?,
            StageKind::Image => {
                let model = dino.as_ref().expect("loaded above");
                let mut prov = model_provenance(&cfg.models.dinov3)?;
                prov["preprocess"] = json!({ "size": cfg.image.size, "norm": "imagenet", "order": "rescale,resize(bilinear,antialias),normalize", "at": preprocess_at(cfg, device), "jpeg_reduce": cfg.image.jpeg_reduce });
                prov["compute_dtype"] = json!(cfg.run.dtype);
                record_or_check(&store, &cfg.store.path, "image", &prov)?;
                let c = model.config();
                let layers = c.num_hidden_layers as usize + 1; // checked by precheck
                let p = cfg.image.size / c.patch_size as usize;
                let ntok = 1 + c.num_register_tokens as usize + p * p;
                let d = c.hidden_size as usize;
                let mut specs = vec![(IMAGE_POOLED.to_string(), vec![layers, 5, 2, d], sdt)];
                for &l in &cfg.image.layers {
                    specs.push((image_tokens_name(l), vec![5, ntok, d], sdt));
                }
                let arrays = ensure(&specs)?;
                let prep = AtomicU64::new(0);
                stage_run("image", arrays).with_device_prep(&prep).run(
                    |i| prepare_images(&ctx, cfg, i),
                    |batch| {
                        let t = Instant::now();
                        let (x, views) = images_batch(
                            cfg.image.size,
                            batch.into_iter().map(|x| x.1).collect(),
                            device,
                        )?;
                        prep.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                        compute_images(model, &cfg.image.layers, x, views, kind)
                    },
                    progress,
                    &mut faults,
                )?
            }
            StageKind::FrameDino => {
                let model = dino.as_ref().expect("loaded above");
                let fd = &cfg.frame_dino;
                let mut prov = model_provenance(&cfg.models.dinov3)?;
                prov["preprocess"] = json!({ "frames": fd.frames, "sampling": "uniform by index (first and last frame included)", "source": "video", "reader": cfg.video.reader.as_str(), "gray": "replicated to RGB", "size": cfg.image.size, "norm": "imagenet", "order": "rescale,resize(bilinear,antialias),normalize", "at": preprocess_at(cfg, device) });
                prov["layer"] = json!(fd.layer);
                prov["pooling"] =
                    json!("mean over all tokens (CLS, registers, patches) of each frame, f32");
                prov["compute_dtype"] = json!(cfg.run.dtype);
                record_or_check(&store, &cfg.store.path, "frame_dino", &prov)?;
                let d = model.config().hidden_size as usize;
                let arrays = ensure(&[(VIDEO_FRAME_DINO.into(), vec![fd.frames, d], sdt)])?;
                let prep = AtomicU64::new(0);
                stage_run("frame_dino", arrays)
                    .with_device_prep(&prep)
                    .run(
                        |i| prepare_frame_dino(&ctx, cfg, i),
                        |batch| {
                            let t = Instant::now();
                            let x = frame_dino_batch(
                                cfg.image.size,
                                batch.into_iter().map(|x| x.1).collect(),
                                device,
                            )?;
                            prep.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                            compute_frame_dino(model, fd.layer, fd.frames as i64, x, kind)
                        },
                        progress,
                        &mut faults,
                    )?
            }
            StageKind::Spectrogram => {
                let sp = &cfg.spectrogram;
                let logmel = LogMel::new(sp.logmel())?;
                let prov = json!({
                    "transform": "torchaudio.transforms.MelSpectrogram(win_length=n_fft, window=hann(periodic), power=2, center=True, pad_mode=reflect, norm=None, mel_scale=htk), then ln(mel + log_offset)",
                    "sample_rate": sp.sample_rate, "n_fft": sp.n_fft, "hop": sp.hop, "n_mels": sp.n_mels,
                    "f_min": sp.f_min, "f_max": sp.f_max, "log_offset": sp.log_offset,
                    "clip_seconds": sp.clip_seconds, "clip_samples": sp.clip_samples(), "min_seconds": sp.min_seconds,
                    "fit": "longer clips cropped to their first clip_samples; shorter ones padded at the end with silence (zeros); per sample in audio/spectrogram_clip: [source seconds, frames centred in real audio]; shorter than min_seconds: a fault",
                    "tool_version": tool,
                });
                record_or_check(&store, &cfg.store.path, "spectrogram", &prov)?;
                let frames = logmel.num_frames(sp.clip_samples());
                let arrays = ensure(&[
                    (AUDIO_SPECTROGRAM.into(), vec![frames, sp.n_mels], sdt),
                    (AUDIO_SPECTROGRAM_CLIP.into(), vec![2], StoreDtype::F32),
                ])?;
                stage_run("spectrogram", arrays).run(
                    |i| prepare_spectrogram(&ctx, cfg, &logmel, i),
                    |batch| Ok(batch.into_iter().map(|(_, v)| v).collect()),
                    progress,
                    &mut faults,
                )?
            }
            StageKind::Audio => {
                let model = Ast::load(&cfg.models.ast, device, kind)?;
                let c = model.config().clone();
                let fb = Fbank::new(FbankConfig {
                    num_mel_bins: c.num_mel_bins as usize,
                    ..FbankConfig::default()
                })?;
                let mut prov = model_provenance(&cfg.models.ast)?;
                prov["preprocess"] = json!({ "windows": cfg.audio.windows, "sample_rate": 16000, "max_length": c.max_length, "num_mel_bins": c.num_mel_bins, "window_type": "hanning", "mean": -4.267_739_3, "std": 4.568_997_4 });
                prov["compute_dtype"] = json!(cfg.run.dtype);
                record_or_check(&store, &cfg.store.path, "audio", &prov)?;
                let f_out = (c.num_mel_bins - c.patch_size) / c.frequency_stride + 1;
                let t_out = (c.max_length - c.patch_size) / c.time_stride + 1;
                let ntok = (2 + f_out * t_out) as usize;
                let w = cfg.audio.windows;
                let arrays = ensure(&[
                    (
                        AUDIO_TOKENS.into(),
                        vec![w, ntok, c.hidden_size as usize],
                        sdt,
                    ),
                    (AUDIO_STARTS.into(), vec![w], StoreDtype::F32),
                ])?;
                stage_run("audio", arrays).run(
                    |i| prepare_audio(&ctx, &fb, c.max_length as usize, w, i),
                    |batch| {
                        compute_audio(
                            &model,
                            batch.into_iter().map(|x| x.1).collect(),
                            device,
                            kind,
                        )
                    },
                    progress,
                    &mut faults,
                )?
            }
            StageKind::Video => {
                let model = VJepa2::load(&cfg.models.vjepa, device, kind)?;
                let mut prov = model_provenance(&cfg.models.vjepa)?;
                prov["preprocess"] = json!({ "frames": cfg.video.frames, "sampling": "uniform by index", "short_side": cfg.video.short_side, "crop": cfg.video.crop, "pool": cfg.video.pool, "source": cfg.video.source, "gray": "replicated to RGB", "reader": cfg.video.reader.as_str(), "at": preprocess_at(cfg, device) });
                prov["compute_dtype"] = json!(cfg.run.dtype);
                record_or_check(&store, &cfg.store.path, "video", &prov)?;
                let shape = video_token_shape(&model, cfg)?;
                let arrays = ensure(&[(VIDEO_TOKENS.into(), shape, sdt)])?;
                let prep = AtomicU64::new(0);
                stage_run("video", arrays).with_device_prep(&prep).run(
                    |i| prepare_video(&ctx, cfg, i),
                    |batch| {
                        let t = Instant::now();
                        let x = video_batch(cfg, batch.into_iter().map(|x| x.1).collect(), device)?;
                        prep.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                        compute_video(&model, cfg, x, kind)
                    },
                    progress,
                    &mut faults,
                )?
            }
        };
        stages.push(summary);
        // the decoded tensors kept for reuse have this stage's shapes
        crate::data::pool::DECODE_POOL.clear();
        if Some(stage) == last_dino {
            dino = None;
        }
    }
    let report = ExtractReport {
        tool_version: tool.to_string(),
        shard: format!("{}/{}", opts.shard.index, opts.shard.count),
        samples: groups.iter().map(Vec::len).sum(),
        stages,
        faults,
        seconds: t0.elapsed().as_secs_f64(),
    };
    let v = serde_json::to_value(&report).map_err(|e| Error::Msg(format!("report: {e}")))?;
    let mut attrs = serde_json::Map::new();
    attrs.insert("report".into(), v);
    store.write_group_attrs(&opts.shard.report_name(), attrs)?;
    Ok(report)
}

/// Where the image/video resize ran, for the provenance: `cpu` (bit-identical whether in the
/// workers or in the device step) or `cuda`.
pub(crate) fn preprocess_at(cfg: &ExtractConfig, device: tch::Device) -> &'static str {
    match (cfg.run.preprocess, device) {
        (super::config::PreprocessAt::Device, tch::Device::Cuda(_)) => "cuda",
        _ => "cpu",
    }
}

/// The CLIP text embedding of the prompt, once per store (the array `text/embed`).
fn run_text(
    cfg: &ExtractConfig,
    store: &FeatureStore,
    device: tch::Device,
    kind: Kind,
    progress: &dyn Progress,
) -> Result<StageSummary> {
    let t0 = Instant::now();
    progress.start("text", 1);
    let mut prov = model_provenance(&cfg.models.clip)?;
    prov["prompt"] = json!(cfg.text.prompt);
    prov["compute_dtype"] = json!(cfg.run.dtype);
    record_or_check(store, &cfg.store.path, "text", &prov)?;
    let mut summary = StageSummary {
        stage: "text".into(),
        ..Default::default()
    };
    if crate::store::text_embed_exists(store.path()) {
        summary.already_done = 1;
    } else {
        let model = ClipText::load(&cfg.models.clip, device, kind)?;
        let emb = to_vec(&model.embed_text(&cfg.text.prompt)?)?;
        if let Err(m) = super::engine::check_values(&emb, StoreDtype::F32) {
            return Err(Error::Msg(format!("CLIP text embedding: {m}")));
        }
        crate::store::write_text_embed(store, &cfg.text.prompt, &emb)?;
        summary.written = 1;
        progress.inc(1);
    }
    summary.seconds = t0.elapsed().as_secs_f64();
    progress.finish("text", &summary);
    Ok(summary)
}
