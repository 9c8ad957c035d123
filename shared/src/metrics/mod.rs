//! Detection metrics on anomaly scores: ROC / I-AUROC, average precision, the best-F1
//! threshold with its precision and recall, and per-class score statistics.
//!
//! Conventions follow scikit-learn 1.9 (`roc_auc_score`, `average_precision_score`,
//! `precision_recall_curve`) so the parity test can demand 1e-12: scores are sorted descending,
//! tied scores form one operating point, a sample is predicted anomalous when
//! `score >= threshold`. Labels are binary: class code 0 is good (negative), every other class is
//! a defect (positive).
pub mod classification;
pub mod plots;

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Class names of the Intel welding dataset, indexed by class code (one table: the manifest's).
pub use crate::data::manifest::CLASS_NAMES;

/// `"CC_name"` for a class code (`"00_good"`), `"CC_unknown"` outside the table.
pub fn class_key(code: u8) -> String {
    let name = CLASS_NAMES.get(code as usize).copied().unwrap_or("unknown");
    format!("{code:02}_{name}")
}

/// One operating point per distinct score, scores descending: cumulative true and false
/// positives when every sample with `score >= threshold` is called anomalous.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub thresholds: Vec<f64>,
    pub tps: Vec<f64>,
    pub fps: Vec<f64>,
}

impl Curve {
    /// Builds the curve (as scikit-learn's `_binary_clf_curve`). Errors on NaN / infinite scores,
    /// on a length mismatch, and when one of the two classes is absent.
    pub fn new(scores: &[f64], positive: &[bool]) -> Result<Self> {
        if scores.len() != positive.len() {
            return Err(Error::Msg(format!(
                "metrics: {} scores but {} labels",
                scores.len(),
                positive.len()
            )));
        }
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            return Err(Error::Msg(format!(
                "metrics: score of sample {i} is {} (not finite)",
                scores[i]
            )));
        }
        let n_pos = positive.iter().filter(|&&p| p).count();
        if n_pos == 0 || n_pos == positive.len() {
            return Err(Error::Msg(format!(
                "metrics: need both good and defective samples (got {n_pos} defective of {})",
                positive.len()
            )));
        }
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let (mut thresholds, mut tps, mut fps) = (Vec::new(), Vec::new(), Vec::new());
        let (mut tp, mut fp) = (0.0f64, 0.0f64);
        for (k, &i) in order.iter().enumerate() {
            if positive[i] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            let last_of_tie = k + 1 == order.len() || scores[order[k + 1]] != scores[i];
            if last_of_tie {
                thresholds.push(scores[i]);
                tps.push(tp);
                fps.push(fp);
            }
        }
        Ok(Curve {
            thresholds,
            tps,
            fps,
        })
    }

    fn n_pos(&self) -> f64 {
        *self.tps.last().expect("non-empty curve")
    }

    fn n_neg(&self) -> f64 {
        *self.fps.last().expect("non-empty curve")
    }

    /// ROC points `(fpr, tpr)`, starting at (0, 0).
    pub fn roc(&self) -> Vec<(f64, f64)> {
        let (p, n) = (self.n_pos(), self.n_neg());
        std::iter::once((0.0, 0.0))
            .chain(self.fps.iter().zip(&self.tps).map(|(f, t)| (f / n, t / p)))
            .collect()
    }

    /// Area under the ROC curve (trapezoids over the distinct operating points).
    pub fn auroc(&self) -> f64 {
        let pts = self.roc();
        pts.windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum()
    }

    /// Precision and recall at each operating point (same order as `thresholds`).
    pub fn precision_recall(&self) -> Vec<(f64, f64)> {
        let p = self.n_pos();
        self.tps
            .iter()
            .zip(&self.fps)
            .map(|(t, f)| {
                let ps = t + f;
                (if ps != 0.0 { t / ps } else { 0.0 }, t / p)
            })
            .collect()
    }

    /// Average precision: sum over operating points of (R_k - R_{k-1}) * P_k.
    pub fn average_precision(&self) -> f64 {
        let mut prev_r = 0.0;
        let mut ap = 0.0;
        for (p, r) in self.precision_recall() {
            ap += (r - prev_r) * p;
            prev_r = r;
        }
        ap
    }

    /// The operating point of maximum F1 = 2PR/(P+R); among equal F1 the lowest threshold
    /// (scikit-learn's `argmax` over its increasing thresholds). Returns
    /// `(threshold, f1, precision, recall)`.
    pub fn best_f1(&self) -> (f64, f64, f64, f64) {
        let mut best = (f64::NAN, -1.0, 0.0, 0.0);
        for (k, (p, r)) in self.precision_recall().into_iter().enumerate() {
            let f1 = f1_of(p, r);
            if f1 >= best.1 {
                best = (self.thresholds[k], f1, p, r);
            }
        }
        best
    }
}

fn f1_of(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

/// I-AUROC of `scores` against binary labels (`true` = defective).
pub fn auroc(scores: &[f64], positive: &[bool]) -> Result<f64> {
    Ok(Curve::new(scores, positive)?.auroc())
}

/// Precision, recall and F1 when `score >= threshold` is called defective.
/// Returns `(f1, precision, recall)`; an empty prediction has precision 0.
pub fn prf_at(scores: &[f64], positive: &[bool], threshold: f64) -> (f64, f64, f64) {
    let (mut tp, mut fp, mut fnn) = (0.0f64, 0.0f64, 0.0f64);
    for (&s, &y) in scores.iter().zip(positive) {
        match (s >= threshold, y) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fnn += 1.0,
            (false, false) => {}
        }
    }
    let p = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let r = if tp + fnn > 0.0 { tp / (tp + fnn) } else { 0.0 };
    (f1_of(p, r), p, r)
}

/// Score statistics of one class (population standard deviation), and its AUROC against the
/// good class of the same split (`None` for the good class itself or when no good sample exists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassStats {
    pub count: usize,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    pub auroc_vs_good: Option<f64>,
}

/// Every metric of one split, as written under `"val"` / `"test"` in `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitMetrics {
    pub n: usize,
    pub auroc: f64,
    pub ap: f64,
    pub f1: f64,
    pub precision: f64,
    pub recall: f64,
    pub threshold: f64,
    /// keyed by [`class_key`]
    pub per_class: BTreeMap<String, ClassStats>,
    /// accuracy and F1 of a head's predicted classes (its score part
    /// [`classification::PRED_CLASS_PART`]); absent for heads that predict no class
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<classification::ClassificationMetrics>,
}

/// Metrics of one split. `scores` [N] (higher = more anomalous), `classes` [N] class codes
/// (0 = good). With `threshold = None` the best-F1 threshold of this split is chosen (VAL);
/// otherwise the given one is applied (TEST, with VAL's threshold).
pub fn evaluate(scores: &[f64], classes: &[u8], threshold: Option<f64>) -> Result<SplitMetrics> {
    let positive: Vec<bool> = classes.iter().map(|&c| c != 0).collect();
    let curve = Curve::new(scores, &positive)?;
    let (threshold, f1, precision, recall) = match threshold {
        None => curve.best_f1(),
        Some(t) => {
            let (f1, p, r) = prf_at(scores, &positive, t);
            (t, f1, p, r)
        }
    };
    Ok(SplitMetrics {
        n: scores.len(),
        auroc: curve.auroc(),
        ap: curve.average_precision(),
        f1,
        precision,
        recall,
        threshold,
        per_class: per_class(scores, classes)?,
        classification: None,
    })
}

/// Per-class statistics, keyed by [`class_key`]. `scores` [N], `classes` [N].
pub fn per_class(scores: &[f64], classes: &[u8]) -> Result<BTreeMap<String, ClassStats>> {
    let mut by: BTreeMap<u8, Vec<f64>> = BTreeMap::new();
    for (&s, &c) in scores.iter().zip(classes) {
        by.entry(c).or_default().push(s);
    }
    let good = by.get(&0).cloned().unwrap_or_default();
    let mut out = BTreeMap::new();
    for (&c, v) in &by {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        let auroc_vs_good = if c == 0 || good.is_empty() {
            None
        } else {
            let s: Vec<f64> = good.iter().chain(v.iter()).copied().collect();
            let y: Vec<bool> = (0..s.len()).map(|i| i >= good.len()).collect();
            Some(auroc(&s, &y)?)
        };
        out.insert(
            class_key(c),
            ClassStats {
                count: v.len(),
                mean,
                std: var.sqrt(),
                min: v.iter().copied().fold(f64::INFINITY, f64::min),
                max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                auroc_vs_good,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_inverted_and_tied() {
        let y = [false, false, true, true];
        assert_eq!(auroc(&[0.1, 0.2, 0.8, 0.9], &y).unwrap(), 1.0);
        assert_eq!(auroc(&[0.9, 0.8, 0.2, 0.1], &y).unwrap(), 0.0);
        assert_eq!(auroc(&[0.5; 4], &y).unwrap(), 0.5);
        assert!(auroc(&[0.5; 2], &[true, true]).is_err());
        assert!(auroc(&[f64::NAN, 0.1], &[true, false]).is_err());
    }
}
