//! The `[train]` table of a head config and `--set key=value` overrides on the TOML document.
//!
//! Every key is documented in `configs/train_defaults.toml`; unknown keys are an error so a typo
//! never silently falls back to a default.
use crate::train::adamw::AdamWConfig;
use crate::train::schedule::{Schedule, ScheduleKind};
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
    /// `warmup_cosine` (default) or `cosine_annealing` (see [`crate::train::schedule`])
    #[serde(default)]
    pub schedule: ScheduleKind,
    /// `off` (default) or `bf16`: the training forward passes in CUDA bf16 autocast (see
    /// [`Autocast`])
    #[serde(default, skip_serializing_if = "Autocast::is_off")]
    pub autocast: Autocast,
}

/// Mixed precision of the training step (`train.autocast`). `bf16`: each TRAIN step's forward
/// runs under CUDA autocast with bf16 (matmuls and attention in bf16, reductions and the loss in
/// f32, weights, gradients and AdamW state in f32); the backward follows the forward's dtypes.
/// Every scoring (VAL each epoch, the final metrics, `eval`, `score`) stays in f32, so scores
/// do not depend on the setting's rounding beyond the weights it trained. CUDA only: a CPU run
/// with `bf16` is refused rather than silently run in f32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Autocast {
    #[default]
    Off,
    Bf16,
}

impl Autocast {
    pub fn is_off(&self) -> bool {
        *self == Autocast::Off
    }
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
        if self.schedule == ScheduleKind::CosineAnnealing && self.warmup_epochs > 0 {
            return bad("schedule = \"cosine_annealing\" has no warm-up: set warmup_epochs = 0");
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
            kind: self.schedule,
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
    let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").expect("parsed key"),
        Err(_) => toml::Value::String(raw.trim().to_string()),
    };
    set_value(doc, key.trim(), value)
}

/// Sets the existing dotted `key` of a document to `value` (same TOML type; an integer may
/// replace a float). Setting a key the document lacks is an error.
pub fn set_value(doc: &mut toml::Value, key: &str, value: toml::Value) -> Result<()> {
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
                    "--set `{key}`: value `{value}` is a {}, the config holds a {}",
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

/// The dotted keys whose values differ between two TOML documents (added, removed or changed),
/// sorted; e.g. `["train.lr = 0.001 -> 0.0003"]`. Unparsable text compares as a whole.
pub fn config_diff(old: &str, new: &str) -> Vec<String> {
    fn walk(prefix: &str, a: Option<&toml::Value>, b: Option<&toml::Value>, out: &mut Vec<String>) {
        match (a, b) {
            (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, x.get(k), y.get(k), out);
                }
            }
            (x, y) if x != y => {
                let show = |v: Option<&toml::Value>| v.map_or("(absent)".into(), |v| v.to_string());
                out.push(format!("{prefix} = {} -> {}", show(x), show(y)));
            }
            _ => {}
        }
    }
    match (old.parse::<toml::Table>(), new.parse::<toml::Table>()) {
        (Ok(a), Ok(b)) => {
            let mut out = vec![];
            walk(
                "",
                Some(&toml::Value::Table(a)),
                Some(&toml::Value::Table(b)),
                &mut out,
            );
            out
        }
        _ if old != new => vec!["(config text)".into()],
        _ => vec![],
    }
}
