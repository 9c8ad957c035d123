//! Training checkpoints (`best.safetensors`, `last.safetensors`), written atomically.
//!
//! One safetensors file holds the weights as `model.<var>`, the EMA shadow as `ema.<var>`, the
//! AdamW moments as `adam_m.<var>` / `adam_v.<var>`, and the scalar state ([`TrainState`]:
//! epoch, optimiser step, EMA count, seed, early stopping, history, store fingerprint, resolved
//! config) as JSON bytes in the u8 tensor `__state__`. Shuffling and dropout randomness are
//! derived from `(seed, epoch, step)`, so the seed is the whole RNG state.
use crate::train::history::{tmp_path, HistoryRow};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

const STATE_KEY: &str = "__state__";
/// Version of the checkpoint layout.
pub const FORMAT: u32 = 1;

/// Everything but the tensors needed to resume or evaluate a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub format: u32,
    /// number of completed epochs
    pub epochs_done: usize,
    pub adam_step: i64,
    pub ema_updates: i64,
    pub seed: u64,
    /// best VAL I-AUROC so far and its (0-based) epoch
    pub best_auroc: Option<f64>,
    pub best_epoch: Option<usize>,
    /// `"raw"` or `"ema"`: the weights saved as `model.*` in `best.safetensors`
    pub best_chosen: String,
    /// epochs since the last improvement
    pub bad_epochs: usize,
    /// early stopping fired
    pub stopped: bool,
    pub history: Vec<HistoryRow>,
    /// identifies the feature store the run was trained on
    pub fingerprint: String,
    /// resolved config (TOML text)
    pub config: String,
}

/// Writes `tensors` + `state` to `path` via `path.tmp` + rename. Tensors are saved from CPU.
pub fn save(path: &Path, tensors: &[(String, Tensor)], state: &TrainState) -> Result<()> {
    let json = serde_json::to_vec(state).map_err(|e| Error::Msg(format!("state json: {e}")))?;
    let mut all: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.detach().to_device(Device::Cpu).contiguous()))
        .collect();
    all.push((STATE_KEY.to_string(), Tensor::from_slice(&json)));
    let tmp = tmp_path(path);
    let r = Tensor::write_safetensors(&all, &tmp)
        .map_err(|e| Error::Msg(format!("{}: cannot write checkpoint: {e}", tmp.display())))
        .and_then(|_| {
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&tmp, e))
        })
        .and_then(|_| std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if r.is_err() {
        // a full disk leaves a partial temporary file: remove it so nothing blocks --resume
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Reads a checkpoint: its tensors (on CPU) and its state.
pub fn load(path: &Path) -> Result<(HashMap<String, Tensor>, TrainState)> {
    if !path.is_file() {
        return Err(Error::Msg(format!(
            "checkpoint {} not found",
            path.display()
        )));
    }
    let mut tensors: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| {
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            let hint = match expected_len(path) {
                Some(want) if want > size => {
                    format!("the file is truncated ({size} bytes of {want}; a write was cut short)")
                }
                _ => format!("not a readable safetensors file ({e})"),
            };
            Error::Msg(format!(
                "{}: cannot read checkpoint: {hint}. Delete it and train again, or resume from \
                 the other checkpoint of the run (last.safetensors / best.safetensors)",
                path.display()
            ))
        })?
        .into_iter()
        .collect();
    let raw = tensors
        .remove(STATE_KEY)
        .ok_or_else(|| Error::Msg(format!("{}: no `{STATE_KEY}` tensor", path.display())))?;
    let bytes = Vec::<u8>::try_from(raw.to_kind(Kind::Uint8).flatten(0, -1))
        .map_err(|e| Error::Msg(format!("{}: state bytes: {e}", path.display())))?;
    let state: TrainState = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Msg(format!("{}: state json: {e}", path.display())))?;
    if state.format != FORMAT {
        return Err(Error::Msg(format!(
            "{}: checkpoint format {} (this build reads {FORMAT})",
            path.display(),
            state.format
        )));
    }
    Ok((tensors, state))
}

/// Refuses a store whose fingerprint differs from the one the checkpoint was trained on.
pub fn check_fingerprint(path: &Path, state: &TrainState, store_fingerprint: &str) -> Result<()> {
    if state.fingerprint != store_fingerprint {
        return Err(Error::StoreMismatch {
            path: path.to_path_buf(),
            trained: state.fingerprint.clone(),
            given: store_fingerprint.to_string(),
        });
    }
    Ok(())
}

/// The length a safetensors file declares: 8 + header length + the end of its last tensor;
/// the header length alone (+ 8) when the header itself is cut off.
fn expected_len(path: &Path) -> Option<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut n = [0u8; 8];
    f.read_exact(&mut n).ok()?;
    let n = u64::from_le_bytes(n);
    let mut header = vec![0u8; n.min(1 << 30) as usize];
    if f.read_exact(&mut header).is_err() {
        return Some(8 + n);
    }
    let v: serde_json::Value = serde_json::from_slice(&header).ok()?;
    let end = v
        .as_object()?
        .values()
        .filter_map(|t| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    Some(8 + n + end)
}
