//! Per-epoch training history and its `history.csv`.
//!
//! Columns: `epoch, lr, loss, <loss terms...>, grad_norm, val_auroc_raw, val_auroc_ema, chosen,
//! <diagnostics...>, seconds`. Term and diagnostic names come from the head (first row).
//! Every column but `seconds` is a function of seed, store and config.
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One epoch of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// 0-based epoch
    pub epoch: usize,
    pub lr: f64,
    /// mean over the epoch's steps of the total loss
    pub loss: f64,
    /// mean over steps of each named loss term
    pub terms: Vec<(String, f64)>,
    /// mean over steps of the global gradient norm before clipping
    pub grad_norm: f64,
    pub val_auroc_raw: f64,
    /// absent when EMA is off
    pub val_auroc_ema: Option<f64>,
    /// `"raw"` or `"ema"`: the weights kept for this epoch
    pub chosen: String,
    /// mean over VAL batches of the head's diagnostics, with the chosen weights
    pub diagnostics: Vec<(String, f64)>,
    pub seconds: f64,
}

impl HistoryRow {
    /// VAL I-AUROC of the chosen weights.
    pub fn val_auroc(&self) -> f64 {
        match (self.chosen.as_str(), self.val_auroc_ema) {
            ("ema", Some(a)) => a,
            _ => self.val_auroc_raw,
        }
    }
}

/// Writes all rows as CSV, atomically (tmp + rename).
pub fn write_csv(path: &Path, rows: &[HistoryRow]) -> Result<()> {
    let mut s = String::new();
    if let Some(first) = rows.first() {
        let mut head = vec!["epoch".to_string(), "lr".into(), "loss".into()];
        head.extend(first.terms.iter().map(|(n, _)| n.clone()));
        head.extend(["grad_norm", "val_auroc_raw", "val_auroc_ema", "chosen"].map(String::from));
        head.extend(first.diagnostics.iter().map(|(n, _)| n.clone()));
        head.push("seconds".into());
        s.push_str(&head.join(","));
        s.push('\n');
    }
    for r in rows {
        let mut f = vec![r.epoch.to_string(), r.lr.to_string(), r.loss.to_string()];
        f.extend(r.terms.iter().map(|(_, v)| v.to_string()));
        f.push(r.grad_norm.to_string());
        f.push(r.val_auroc_raw.to_string());
        f.push(r.val_auroc_ema.map(|v| v.to_string()).unwrap_or_default());
        f.push(r.chosen.clone());
        f.extend(r.diagnostics.iter().map(|(_, v)| v.to_string()));
        f.push(format!("{:.3}", r.seconds));
        s.push_str(&f.join(","));
        s.push('\n');
    }
    write_atomic(path, s.as_bytes())
}

/// Sum of the `seconds` column of a `history.csv` (0 for a missing or empty file).
pub fn total_seconds(path: &Path) -> Result<f64> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0.0),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut total = 0.0;
    for (i, line) in text.lines().enumerate().skip(1) {
        let last = line.rsplit(',').next().unwrap_or_default();
        total += last.parse::<f64>().map_err(|e| {
            Error::Msg(format!(
                "{} line {}: seconds `{last}`: {e}",
                path.display(),
                i + 1
            ))
        })?;
    }
    Ok(total)
}

/// Writes `bytes` to `path` through `path.tmp` + fsync + rename. On failure (a full disk) the
/// temporary file is removed, so nothing partial is left beside `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = tmp_path(path);
    let r = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// `<path>.tmp` beside `path`.
pub fn tmp_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}
