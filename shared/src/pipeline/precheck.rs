//! Checks of `extract run` made before any work: before the store is created or opened and
//! before the first stage runs, so a wrong flag costs seconds and leaves nothing behind.
//!
//! What is checked: the config's own values (including `--threads` and `--workers` against the
//! machine), the device (`--device cuda` on a machine where libtorch sees no GPU), the compute
//! dtype, the manifest (readable, at least one sample), and for every stage that will run its
//! model folder: present, `config.json` readable with the `model_type` that stage needs (the AST
//! folder given as `--dinov3` is named as such), weight files present with a readable safetensors
//! header of the file's size, CLIP's `tokenizer.json`, and the DINOv3 token layers (and the
//! `frame_dino` layer) within the model's hidden states.
use super::config::{ExtractConfig, StageKind};
use crate::backbones::{loader, model_type, parse_kind};
use crate::data::manifest::Manifest;
use crate::{Error, Result};
use std::io::Read;
use std::path::Path;
use tch::{Device, Kind};

/// What the checks resolved, for the run.
pub struct Checked {
    pub manifest: Manifest,
    pub device: Device,
    pub kind: Kind,
}

/// Runs every check; the first failure is the error.
pub fn precheck(cfg: &ExtractConfig) -> Result<Checked> {
    cfg.validate()?;
    let device = crate::device::parse_device(&cfg.run.device)?;
    let kind =
        parse_kind(&cfg.run.dtype).map_err(|e| Error::Msg(format!("--dtype / run.dtype: {e}")))?;
    let manifest = cfg.data.read_samples()?;
    if manifest.samples.is_empty() {
        return Err(Error::Msg(format!(
            "{}: the manifest lists no sample (a header without rows); nothing to extract",
            manifest.path.display()
        )));
    }
    for stage in StageKind::ALL {
        if !cfg.run.only.contains(&stage) {
            continue;
        }
        match stage {
            StageKind::Sensor => {}
            StageKind::Text => {
                check_model(
                    &cfg.models.clip,
                    "--clip",
                    &["clip", "clip_text_model"],
                    "CLIP",
                )?;
                let tok = cfg.models.clip.join("tokenizer.json");
                if !tok.is_file() {
                    return Err(Error::Msg(format!(
                        "--clip {}: no tokenizer.json (the CLIP folder needs its tokenizer)",
                        cfg.models.clip.display()
                    )));
                }
            }
            StageKind::Image => {
                check_model(&cfg.models.dinov3, "--dinov3", &["dinov3_vit"], "DINOv3")?;
                let c: crate::backbones::dinov3::Config = loader::read_config(&cfg.models.dinov3)?;
                let last = c.num_hidden_layers as usize;
                if let Some(&l) = cfg.image.layers.iter().find(|&&l| l > last) {
                    return Err(Error::Msg(format!(
                        "--dino-layers / image.layers: layer {l} out of range: the DINOv3 model \
                         in {} has hidden states 0..={last} (0 = embeddings, {last} = last block)",
                        cfg.models.dinov3.display()
                    )));
                }
            }
            StageKind::FrameDino => {
                check_model(&cfg.models.dinov3, "--dinov3", &["dinov3_vit"], "DINOv3")?;
                let c: crate::backbones::dinov3::Config = loader::read_config(&cfg.models.dinov3)?;
                let last = c.num_hidden_layers as usize;
                if cfg.frame_dino.layer > last {
                    return Err(Error::Msg(format!(
                        "--frame-dino-layer / frame_dino.layer {} out of range: the DINOv3 model \
                         in {} has hidden states 0..={last} (0 = embeddings, {last} = last block)",
                        cfg.frame_dino.layer,
                        cfg.models.dinov3.display()
                    )));
                }
            }
            StageKind::Spectrogram => {}
            StageKind::Audio => check_model(
                &cfg.models.ast,
                "--ast",
                &["audio-spectrogram-transformer"],
                "AST",
            )?,
            StageKind::Video => check_model(&cfg.models.vjepa, "--vjepa", &["vjepa2"], "V-JEPA 2")?,
        }
    }
    Ok(Checked {
        manifest,
        device,
        kind,
    })
}

/// The folder `dir` given by `flag` holds a model of one of `types` with readable weights.
fn check_model(dir: &Path, flag: &str, types: &[&str], family: &str) -> Result<()> {
    if !dir.is_dir() {
        return Err(Error::Msg(format!(
            "{flag} {}: no such model folder (a Hugging Face folder with config.json and \
             model.safetensors; `extract init-models` writes tiny test ones)",
            dir.display()
        )));
    }
    let found = model_type(dir).map_err(|e| Error::Msg(format!("{flag}: {e}")))?;
    if !types.contains(&found.as_str()) {
        return Err(Error::Msg(format!(
            "{flag} {}: this is a `{found}` model folder, but {flag} needs a {family} folder \
             (model_type {})",
            dir.display(),
            types
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    let files = loader::weight_files(dir).map_err(|e| Error::Msg(format!("{flag}: {e}")))?;
    for f in &files {
        check_safetensors(f).map_err(|e| Error::Msg(format!("{flag}: {e}")))?;
    }
    Ok(())
}

/// A safetensors file is present, its header parses and the file is as long as the header's
/// largest data offset says (a truncated download is caught here, not mid-run).
fn check_safetensors(path: &Path) -> Result<()> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let size = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let bad = |m: String| Error::Msg(format!("{}: {m}", path.display()));
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| bad(format!("{size} bytes: not a safetensors file (truncated?)")))?;
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 || 8 + n > size {
        return Err(bad(format!(
            "safetensors header of {n} bytes in a file of {size} bytes: truncated or not a \
             safetensors file"
        )));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(|e| Error::io(path, e))?;
    let v: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("invalid safetensors header: {e}")))?;
    let end = v
        .as_object()
        .ok_or_else(|| bad("safetensors header is not an object".into()))?
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter_map(|(_, t)| t.pointer("/data_offsets/1").and_then(|e| e.as_u64()))
        .max()
        .unwrap_or(0);
    if 8 + n + end > size {
        return Err(bad(format!(
            "{size} bytes, but its header places tensor data up to byte {}: the file is \
             truncated (download or copy it again)",
            8 + n + end
        )));
    }
    Ok(())
}
