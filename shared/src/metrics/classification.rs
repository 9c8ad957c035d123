//! Multi-class metrics of a head that predicts a class per sample (a score part named
//! [`PRED_CLASS_PART`], e.g. `supcon`'s k-NN vote): accuracy, macro-F1 and per-class F1, as
//! scikit-learn's `accuracy_score` and `f1_score(average=None | "macro")` compute them (labels:
//! the union of the true and the predicted classes; a class never predicted has precision 0).
use super::class_key;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The score part holding a predicted class code per sample (as a float).
pub const PRED_CLASS_PART: &str = "pred_class";

/// Classification metrics of one split (`"classification"` under `"val"` / `"test"` in
/// `metrics.json`, written only for heads that predict a class).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    pub accuracy: f64,
    pub macro_f1: f64,
    /// keyed by [`class_key`], every class that is true or predicted in the split
    pub per_class_f1: BTreeMap<String, f64>,
}

/// Metrics of predictions `pred` `[N]` against `truth` `[N]` (class codes); `None` when empty.
pub fn classification(truth: &[u8], pred: &[u8]) -> Option<ClassificationMetrics> {
    if truth.is_empty() || truth.len() != pred.len() {
        return None;
    }
    let labels: BTreeSet<u8> = truth.iter().chain(pred).copied().collect();
    let mut per_class_f1 = BTreeMap::new();
    let mut sum = 0.0;
    for &c in &labels {
        let (mut tp, mut fp, mut fnn) = (0usize, 0usize, 0usize);
        for (&t, &p) in truth.iter().zip(pred) {
            match (t == c, p == c) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fnn += 1,
                (false, false) => {}
            }
        }
        // F1 = 2 tp / (2 tp + fp + fn): equal to 2PR/(P+R), and 0 where P or R is undefined
        let f1 = 2.0 * tp as f64 / (2 * tp + fp + fnn) as f64;
        sum += f1;
        per_class_f1.insert(class_key(c), f1);
    }
    let correct = truth.iter().zip(pred).filter(|(t, p)| t == p).count();
    Some(ClassificationMetrics {
        accuracy: correct as f64 / truth.len() as f64,
        macro_f1: sum / labels.len() as f64,
        per_class_f1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        // class 0: tp 2, fp 1, fn 0 -> 4/5; class 1: tp 1, fp 0, fn 1 -> 2/3; class 2: only
        // predicted... none here
        let m = classification(&[0, 0, 1, 1], &[0, 0, 1, 0]).unwrap();
        assert_eq!(m.accuracy, 0.75);
        assert!((m.per_class_f1["00_good"] - 0.8).abs() < 1e-12);
        assert!((m.macro_f1 - (0.8 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        // a class predicted but never true counts with F1 0
        let m = classification(&[0, 0], &[0, 3]).unwrap();
        assert_eq!(m.per_class_f1.len(), 2);
        assert!((m.macro_f1 - (2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!(classification(&[], &[]).is_none());
    }
}
