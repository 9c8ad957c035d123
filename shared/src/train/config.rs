//! The `[train]` table of a head config and `--set key=value` overrides on the TOML document.
//!
//! Every key is documented in `configs/train_defaults.toml`; unknown keys are an error so a typo
//! never silently falls back to a default.
use crate::train::adamw::AdamWConfig;
use crate::train::schedule::Schedule;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Optimisation, schedule, EMA and early-stopping settings (`[train]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub drop_last: bool,
    pub lr: f64,
    pub min_lr: f64,
    pub warmup_epochs: usize,
    pub warmup_start_lr: f64,
    pub weight_decay: f64,
    pub betas: [f64; 2],
    pub eps: f64,
    pub grad_clip: f64,
    pub ema: bool,
    pub ema_max_decay: f64,
    pub patience: usize,
    pub seed: u64,
}

impl TrainConfig {
    /// Reads the `[train]` table of a resolved config document.
    pub fn from_doc(doc: &toml::Value) -> Result<Self> {
        let t = doc
            .get("train")
            .ok_or_else(|| Error::Msg("config has no [train] table".into()))?;
        let cfg: TrainConfig = t
            .clone()
            .try_into()
            .map_err(|e| Error::Msg(format!("config [train]: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Msg(format!("config [train]: {m}")));
        if self.epochs == 0 || self.batch_size == 0 || self.eval_batch_size == 0 {
            return bad("epochs, batch_size and eval_batch_size must be > 0");
        }
        if self.warmup_epochs >= self.epochs && self.warmup_epochs > 0 {
            return bad("warmup_epochs must be < epochs");
        }
        if !(self.lr > 0.0 && self.min_lr >= 0.0 && self.grad_clip > 0.0) {
            return bad("lr and grad_clip must be > 0, min_lr >= 0");
        }
        Ok(())
    }

    pub fn adamw(&self) -> AdamWConfig {
        AdamWConfig {
            lr: self.lr,
            beta1: self.betas[0],
            beta2: self.betas[1],
            eps: self.eps,
            weight_decay: self.weight_decay,
        }
    }

    pub fn schedule(&self) -> Schedule {
        Schedule {
            lr: self.lr,
            min_lr: self.min_lr,
            warmup_epochs: self.warmup_epochs,
            warmup_start_lr: self.warmup_start_lr,
            epochs: self.epochs,
        }
    }
}

/// Reads a TOML config file and applies `key=value` overrides (dotted keys, e.g.
/// `train.lr=1e-4`). The value is parsed as TOML (`3`, `1e-4`, `true`, `[1, 2]`, `"x"`); a bare
/// word that is not valid TOML is taken as a string. Overriding a key the file lacks is an error.
pub fn load_config(path: &Path, sets: &[String]) -> Result<toml::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut doc: toml::Value = toml::from_str(&text)
        .map_err(|e| Error::Msg(format!("{}: invalid TOML: {e}", path.display())))?;
    for s in sets {
        apply_set(&mut doc, s).map_err(|e| Error::Msg(format!("{}: {e}", path.display())))?;
    }
    Ok(doc)
}

/// Applies one `dotted.key=value` override to a document.
pub fn apply_set(doc: &mut toml::Value, set: &str) -> Result<()> {
    let (key, raw) = set
        .split_once('=')
        .ok_or_else(|| Error::Msg(format!("--set `{set}`: expected key=value")))?;
    let key = key.trim();
    let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").expect("parsed key"),
        Err(_) => toml::Value::String(raw.trim().to_string()),
    };
    let mut node = doc;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let table = node
            .as_table_mut()
            .ok_or_else(|| Error::Msg(format!("--set `{key}`: `{part}` is not inside a table")))?;
        let slot = table
            .get_mut(*part)
            .ok_or_else(|| Error::Msg(format!("--set `{key}`: no key `{part}` in the config")))?;
        if i + 1 == parts.len() {
            let same_type = std::mem::discriminant(slot) == std::mem::discriminant(&value)
                || matches!(
                    (&*slot, &value),
                    (toml::Value::Float(_), toml::Value::Integer(_))
                );
            if !same_type {
                return Err(Error::Msg(format!(
                    "--set `{key}`: value `{raw}` is a {}, the config holds a {}",
                    value.type_str(),
                    slot.type_str()
                )));
            }
            *slot = match (&*slot, value) {
                (toml::Value::Float(_), toml::Value::Integer(i)) => toml::Value::Float(i as f64),
                (_, v) => v,
            };
            return Ok(());
        }
        node = slot;
    }
    Err(Error::Msg(format!("--set `{key}`: empty key")))
}
