//! `extract run --like STORE` (DESIGN.md "Scoring new welds"): new recordings extracted exactly
//! as a training store was. Every choice that shapes the features is read back from the training
//! store's per-stage provenance and array list and copied into the run's config: the stages, the
//! DINOv3 token layers, every preprocessing parameter, the compute and storage dtypes, and the
//! model folders (where the training run found them, unless a `--vjepa`/`--ast`/`--dinov3`/
//! `--clip` flag names another). Each model folder's config and weight hashes must equal the
//! recorded ones: a difference is refused before the store is touched, naming the folder and the
//! first differing key. What stays the user's: data, output store, device, batch and threads.
use super::config::{ExtractConfig, PreprocessAt, StageKind};
use super::provenance::model_provenance;
use crate::schema::{first_difference, strip_volatile, PROVENANCE_ATTR};
use crate::store::{StoreDtype, StoreReader};
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Which model folders the user named on the command line (kept; the others are taken from the
/// training store's provenance).
#[derive(Debug, Clone, Copy, Default)]
pub struct GivenModels {
    pub vjepa: bool,
    pub ast: bool,
    pub dinov3: bool,
    pub clip: bool,
}

/// Copies into `cfg` every feature-shaping choice of the store at `like` (see the module doc)
/// and checks the model folders against it. `only_given`: the user's `--only`, which must name
/// stages of the training store. Returns one line per copied stage, for the log.
pub fn apply_like(
    cfg: &mut ExtractConfig,
    like: &Path,
    only_given: bool,
    given: GivenModels,
    device: tch::Device,
) -> Result<Vec<String>> {
    let reader = StoreReader::open(like)?;
    let mut recorded: Vec<(StageKind, Value)> = vec![];
    for stage in StageKind::ALL {
        if let Some(p) = reader
            .group_attrs(stage.as_str())?
            .and_then(|a| a.get(PROVENANCE_ATTR).cloned())
        {
            recorded.push((stage, p));
        }
    }
    if recorded.is_empty() {
        return Err(Error::Msg(format!(
            "--like {}: the store records no stage provenance (not a store written by `extract \
             run`?)",
            like.display()
        )));
    }
    let have: Vec<StageKind> = recorded.iter().map(|(s, _)| *s).collect();
    if only_given {
        if let Some(s) = cfg.run.only.iter().find(|s| !have.contains(s)) {
            return Err(Error::Msg(format!(
                "--only {}: the --like store {} has no `{}` stage to copy (it has {})",
                s.as_str(),
                like.display(),
                s.as_str(),
                names(&have)
            )));
        }
        recorded.retain(|(s, _)| cfg.run.only.contains(s));
    } else {
        cfg.run.only = have;
    }
    let at = |stage: StageKind, key: &str| {
        format!("--like {}: {stage:?} provenance `{key}`", like.display())
    };
    let mut compute: Option<String> = None;
    let mut lines = vec![];
    for (stage, p) in &recorded {
        let stage = *stage;
        let pre = &p["preprocess"];
        let get = |v: &Value, key: &str| -> Result<Value> {
            v.get(key)
                .cloned()
                .ok_or_else(|| Error::Msg(format!("{}: absent", at(stage, key))))
        };
        if let Some(d) = p.get("compute_dtype").and_then(Value::as_str) {
            match &compute {
                Some(c) if c != d => {
                    return Err(Error::Msg(format!(
                        "--like {}: its stages were computed in {c} and {d}; one run has one \
                         compute dtype (extract the stages one by one with --only and --dtype)",
                        like.display()
                    )))
                }
                _ => compute = Some(d.to_string()),
            }
        }
        match stage {
            StageKind::Video => {
                let v = &mut cfg.video;
                v.frames = field(&get(pre, "frames")?, &at(stage, "frames"))?;
                v.short_side = field(&get(pre, "short_side")?, &at(stage, "short_side"))?;
                v.crop = field(&get(pre, "crop")?, &at(stage, "crop"))?;
                v.pool = field(&get(pre, "pool")?, &at(stage, "pool"))?;
                v.source = field(&get(pre, "source")?, &at(stage, "source"))?;
                v.reader = field(&get(pre, "reader")?, &at(stage, "reader"))?;
                set_place(cfg, stage, pre, device, like)?;
            }
            StageKind::Audio => {
                cfg.audio.windows = field(&get(pre, "windows")?, &at(stage, "windows"))?;
            }
            StageKind::Image => {
                cfg.image.size = field(&get(pre, "size")?, &at(stage, "size"))?;
                cfg.image.jpeg_reduce =
                    field(&get(pre, "jpeg_reduce")?, &at(stage, "jpeg_reduce"))?;
                let mut layers: Vec<usize> = reader
                    .specs()
                    .iter()
                    .filter_map(|s| s.name.strip_prefix("image/tokens_L")?.parse().ok())
                    .collect();
                layers.sort_unstable();
                cfg.image.layers = layers;
                set_place(cfg, stage, pre, device, like)?;
            }
            StageKind::FrameDino => {
                cfg.frame_dino.frames = field(&get(pre, "frames")?, &at(stage, "frames"))?;
                cfg.frame_dino.layer = field(&get(p, "layer")?, &at(stage, "layer"))?;
                let size: usize = field(&get(pre, "size")?, &at(stage, "size"))?;
                let reader_kind = field(&get(pre, "reader")?, &at(stage, "reader"))?;
                if have_stage(&recorded, StageKind::Image) && size != cfg.image.size {
                    return Err(Error::Msg(format!(
                        "--like {}: frame_dino frames were resized to {size} px, the images to \
                         {} px; one run resizes both to image.size (extract them separately)",
                        like.display(),
                        cfg.image.size
                    )));
                }
                cfg.image.size = size;
                cfg.video.reader = reader_kind;
                set_place(cfg, stage, pre, device, like)?;
            }
            StageKind::Spectrogram => {
                let s = &mut cfg.spectrogram;
                s.sample_rate = field(&get(p, "sample_rate")?, &at(stage, "sample_rate"))?;
                s.n_fft = field(&get(p, "n_fft")?, &at(stage, "n_fft"))?;
                s.hop = field(&get(p, "hop")?, &at(stage, "hop"))?;
                s.n_mels = field(&get(p, "n_mels")?, &at(stage, "n_mels"))?;
                s.f_min = field(&get(p, "f_min")?, &at(stage, "f_min"))?;
                s.f_max = field(&get(p, "f_max")?, &at(stage, "f_max"))?;
                s.log_offset = field(&get(p, "log_offset")?, &at(stage, "log_offset"))?;
                s.clip_seconds = field(&get(p, "clip_seconds")?, &at(stage, "clip_seconds"))?;
                s.min_seconds = field(&get(p, "min_seconds")?, &at(stage, "min_seconds"))?;
            }
            StageKind::Sensor => {
                cfg.sensor.steps = field(&get(p, "steps")?, &at(stage, "steps"))?;
            }
            StageKind::Text => {
                cfg.text.prompt = field(&get(p, "prompt")?, &at(stage, "prompt"))?;
            }
        }
        if let Some((flag, given, dir)) = model_slot(cfg, stage, given) {
            if !given {
                let rec = p
                    .get("model_dir")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::Msg(format!("{}: absent", at(stage, "model_dir"))))?;
                *dir = PathBuf::from(rec);
                if !dir.is_dir() {
                    return Err(Error::Msg(format!(
                        "--like {}: its {} features were extracted with the model folder {rec}, \
                         which is not here (relative to this directory); pass {flag} DIR with \
                         the same checkpoint",
                        like.display(),
                        stage.as_str()
                    )));
                }
            }
            check_model(dir, flag, stage, p, like)?;
        }
        lines.push(format!(
            "{}: copied from {}",
            stage.as_str(),
            like.display()
        ));
    }
    if let Some(c) = compute {
        cfg.run.dtype = c;
    }
    cfg.store.dtype = store_dtype(&reader)?.unwrap_or(cfg.store.dtype);
    cfg.validate()?;
    Ok(lines)
}

fn names(stages: &[StageKind]) -> String {
    stages
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn have_stage(recorded: &[(StageKind, Value)], s: StageKind) -> bool {
    recorded.iter().any(|(k, _)| *k == s)
}

fn field<T: DeserializeOwned>(v: &Value, what: &str) -> Result<T> {
    serde_json::from_value(v.clone()).map_err(|e| Error::Msg(format!("{what} = {v}: {e}")))
}

/// The model folder of `stage` in `cfg`, its flag and whether the user gave it.
fn model_slot(
    cfg: &mut ExtractConfig,
    stage: StageKind,
    given: GivenModels,
) -> Option<(&'static str, bool, &mut PathBuf)> {
    let m = &mut cfg.models;
    match stage {
        StageKind::Video => Some(("--vjepa", given.vjepa, &mut m.vjepa)),
        StageKind::Audio => Some(("--ast", given.ast, &mut m.ast)),
        StageKind::Image | StageKind::FrameDino => Some(("--dinov3", given.dinov3, &mut m.dinov3)),
        StageKind::Text => Some(("--clip", given.clip, &mut m.clip)),
        StageKind::Sensor | StageKind::Spectrogram => None,
    }
}

/// The folder's model type, config and weight hashes equal the recorded ones.
fn check_model(dir: &Path, flag: &str, stage: StageKind, rec: &Value, like: &Path) -> Result<()> {
    let here = model_provenance(dir)?;
    let pick = |v: &Value| {
        strip_volatile(&serde_json::json!({
            "model_type": v["model_type"],
            "config": v["config"],
            "weights": v["weights"],
        }))
    };
    if let Some(d) = first_difference(&pick(rec), &pick(&here), stage.as_str()) {
        return Err(Error::Msg(format!(
            "{flag} {}: not the checkpoint the --like store {} was extracted with for its {} \
             features: {d} (recorded value first). Pass {flag} with the training checkpoint",
            dir.display(),
            like.display(),
            stage.as_str()
        )));
    }
    Ok(())
}

/// Where the frames/images are resized: copied as far as the device allows. A training store
/// preprocessed on the CPU makes a CUDA run preprocess on the CPU too; one preprocessed on CUDA
/// (float rounding apart from the CPU) needs a CUDA run.
fn set_place(
    cfg: &mut ExtractConfig,
    stage: StageKind,
    pre: &Value,
    device: tch::Device,
    like: &Path,
) -> Result<()> {
    match (pre.get("at").and_then(Value::as_str), device) {
        (Some("cpu"), tch::Device::Cuda(_)) => cfg.run.preprocess = PreprocessAt::Cpu,
        (Some("cuda"), tch::Device::Cuda(_)) => cfg.run.preprocess = PreprocessAt::Device,
        (Some("cuda"), _) => {
            return Err(Error::Msg(format!(
                "--like {}: its {} inputs were preprocessed on CUDA (within float rounding of \
                 the CPU, but not equal); run this extraction with --device cuda",
                like.display(),
                stage.as_str()
            )))
        }
        _ => {}
    }
    Ok(())
}

/// The storage dtype of the store's feature arrays (f16, bf16 or f32), if it has any.
fn store_dtype(reader: &StoreReader) -> Result<Option<StoreDtype>> {
    use crate::schema::{
        AUDIO_SPECTROGRAM, AUDIO_TOKENS, IMAGE_POOLED, VIDEO_FRAME_DINO, VIDEO_TOKENS,
    };
    let feature = |n: &str| {
        n == VIDEO_TOKENS
            || n == AUDIO_TOKENS
            || n == IMAGE_POOLED
            || n.starts_with("image/tokens_L")
            || n == VIDEO_FRAME_DINO
            || n == AUDIO_SPECTROGRAM
    };
    let specs = reader.specs();
    let mut dtypes: Vec<StoreDtype> = vec![];
    for s in specs.iter().filter(|s| feature(&s.name)) {
        if !dtypes.contains(&s.dtype) {
            dtypes.push(s.dtype);
        }
    }
    match dtypes.as_slice() {
        [] => Ok(None),
        [d] => Ok(Some(*d)),
        _ => Err(Error::Msg(format!(
            "{}: its feature arrays are stored in several dtypes; --like copies one \
             (--store-dtype)",
            reader.path().display()
        ))),
    }
}
