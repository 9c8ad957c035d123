//! Scoring and evaluating a run's chosen weights: scores (and score parts) of every split,
//! `metrics.json` (threshold chosen on VAL, applied to TEST), `scores.csv` and the plots.
//! Used by the end of training, by `train-head eval` and by fit-once heads alike.
use crate::heads::{Head, Named};
use crate::metrics::classification::{classification, ClassificationMetrics, PRED_CLASS_PART};
use crate::metrics::{self, SplitMetrics};
use crate::schema::Split;
use crate::train::checkpoint;
use crate::train::history::{write_atomic, HistoryRow};
use crate::train::trainer::{load_model, BatchSource};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{nn, Tensor};

/// Content of `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    pub best_epoch: usize,
    /// `"raw"` or `"ema"` (gradient heads), `"fit"` (fit-once heads): the weights kept
    pub chosen: String,
    pub val: SplitMetrics,
    pub test: SplitMetrics,
}

/// The scores of one split, in position order.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub split: Split,
    pub keys: Vec<String>,
    pub classes: Vec<u8>,
    /// `[N]`
    pub scores: Vec<f64>,
    /// the head's score parts, each `[N]`
    pub parts: Vec<(String, Vec<f64>)>,
}

/// The chosen weights' metrics and the scores of TRAIN, VAL and TEST they came from.
pub struct Evaluation {
    pub metrics: RunMetrics,
    pub train: Scored,
    pub val: Scored,
    pub test: Scored,
}

fn to_vec(t: &Tensor) -> Result<Vec<f64>> {
    Ok(Vec::<f64>::try_from(
        t.to_kind(tch::Kind::Double).to_device(tch::Device::Cpu),
    )?)
}

/// Scores every sample of `split` in fixed batches of `batch_size` (eval mode, no grad).
/// Returns the scores (and, with `with_parts`, the score parts), and the head's diagnostics
/// averaged over samples. A score that is not finite is an error naming the sample keys.
pub fn score_split<H, S>(
    head: &H,
    src: &mut S,
    split: Split,
    batch_size: usize,
    with_parts: bool,
) -> Result<(Scored, Named)>
where
    H: Head,
    S: BatchSource<Batch = H::Batch>,
{
    let n = src.len(split);
    let keys = src.keys(split);
    let mut scores = Vec::with_capacity(n);
    let mut parts: Vec<(String, Vec<f64>)> = Vec::new();
    let mut diag: Named = Vec::new();
    let all: Vec<usize> = (0..n).collect();
    for idx in all.chunks(batch_size.max(1)) {
        let batch = src.load(split, idx)?;
        let _guard = tch::no_grad_guard();
        let s = head.score(&batch);
        if s.size() != [idx.len() as i64] {
            return Err(Error::Msg(format!(
                "head scored a {split} batch of {} samples with shape {:?}",
                idx.len(),
                s.size()
            )));
        }
        let s = to_vec(&s)?;
        if let Some(j) = s.iter().position(|v| !v.is_finite()) {
            let bad: Vec<&str> = idx
                .iter()
                .zip(&s)
                .filter(|(_, v)| !v.is_finite())
                .map(|(&i, _)| keys[i].as_str())
                .collect();
            return Err(Error::Msg(format!(
                "{split} sample `{}` scored {} (not finite; {} of this batch: {}); check these \
                 samples' features (`extract verify`) or lower the learning rate",
                keys[idx[j]],
                s[j],
                bad.len(),
                bad.join(", ")
            )));
        }
        scores.extend(s);
        let batch_parts = if with_parts {
            head.score_parts(&batch)
        } else {
            vec![]
        };
        for (k, (name, t)) in batch_parts.into_iter().enumerate() {
            if parts.len() <= k {
                parts.push((name, Vec::with_capacity(n)));
            }
            parts[k].1.extend(to_vec(&t)?);
        }
        let d = head.diagnostics(&batch);
        if diag.is_empty() {
            diag = d.iter().map(|(k, _)| (k.clone(), 0.0)).collect();
        }
        for ((_, acc), (_, v)) in diag.iter_mut().zip(&d) {
            *acc += v * idx.len() as f64;
        }
    }
    for (_, acc) in diag.iter_mut() {
        *acc /= n.max(1) as f64;
    }
    let scored = Scored {
        split,
        classes: src.classes(split),
        keys,
        scores,
        parts,
    };
    Ok((scored, diag))
}

pub(crate) fn positives(classes: &[u8]) -> Vec<bool> {
    classes.iter().map(|&c| c != 0).collect()
}

/// Accuracy and F1 of the classes a head predicts (its score part [`PRED_CLASS_PART`], class
/// codes as floats); `None` for a head without that part.
fn classification_of(s: &Scored) -> Option<ClassificationMetrics> {
    let (_, p) = s.parts.iter().find(|(n, _)| n == PRED_CLASS_PART)?;
    let pred: Vec<u8> = p
        .iter()
        .map(|&v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    classification(&s.classes, &pred)
}

/// Scores TRAIN, VAL and TEST with the weights now in the head, chooses the best-F1 threshold
/// on VAL and applies it to TEST (and, for a head predicting classes, adds their accuracy and
/// F1 per split).
pub fn evaluate_loaded<H, S>(
    head: &H,
    src: &mut S,
    best_epoch: usize,
    chosen: &str,
    eval_batch_size: usize,
) -> Result<Evaluation>
where
    H: Head,
    S: BatchSource<Batch = H::Batch>,
{
    let (val, _) = score_split(head, src, Split::Val, eval_batch_size, true)?;
    let mut val_m = metrics::evaluate(&val.scores, &val.classes, None)?;
    val_m.classification = classification_of(&val);
    let (test, _) = score_split(head, src, Split::Test, eval_batch_size, true)?;
    let mut test_m = metrics::evaluate(&test.scores, &test.classes, Some(val_m.threshold))?;
    test_m.classification = classification_of(&test);
    let (train, _) = score_split(head, src, Split::Train, eval_batch_size, true)?;
    Ok(Evaluation {
        metrics: RunMetrics {
            best_epoch,
            chosen: chosen.to_string(),
            val: val_m,
            test: test_m,
        },
        train,
        val,
        test,
    })
}

/// Loads `run/best.safetensors` into `vs` (refusing another store's fingerprint) and
/// evaluates it ([`evaluate_loaded`]). `train-head eval` and the end of training both call
/// this, so eval reproduces `metrics.json` exactly.
pub fn evaluate_best<H, S>(
    head: &H,
    vs: &nn::VarStore,
    src: &mut S,
    run: &Path,
    fingerprint: &str,
    eval_batch_size: usize,
) -> Result<Evaluation>
where
    H: Head,
    S: BatchSource<Batch = H::Batch>,
{
    let path = run.join("best.safetensors");
    let (tensors, state) = checkpoint::load(&path)?;
    checkpoint::check_fingerprint(&path, &state, fingerprint)?;
    load_model(vs, &tensors, &path)?;
    let best_epoch = state
        .best_epoch
        .ok_or_else(|| Error::Msg(format!("{}: no best epoch recorded", path.display())))?;
    evaluate_loaded(head, src, best_epoch, &state.best_chosen, eval_batch_size)
}

/// `s` as one CSV field: quoted (inner quotes doubled) when it holds a comma, quote or newline.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes `scores.csv`: `key, split, class, score, <parts...>` for TRAIN, VAL and TEST (class
/// empty when unlabelled), atomically.
pub fn write_scores_csv(path: &Path, ev: &Evaluation) -> Result<()> {
    let parts: Vec<&str> = ev.val.parts.iter().map(|(n, _)| n.as_str()).collect();
    let mut s = String::from("key,split,class,score");
    for p in &parts {
        s.push(',');
        s.push_str(p);
    }
    s.push('\n');
    for sc in [&ev.train, &ev.val, &ev.test] {
        for i in 0..sc.scores.len() {
            s.push_str(&csv_field(&sc.keys[i]));
            s.push_str(&format!(",{},{},{}", sc.split, sc.classes[i], sc.scores[i]));
            for (_, v) in &sc.parts {
                s.push_str(&format!(",{}", v[i]));
            }
            s.push('\n');
        }
    }
    write_atomic(path, s.as_bytes())
}

/// Writes `metrics.json`, `scores.csv` and `plots/{roc,scores_by_class,loss}.png` (`loss.png`
/// only with a history: fit-once heads have none).
pub fn write_outputs(out: &Path, ev: &Evaluation, hist: &[HistoryRow]) -> Result<()> {
    let json = serde_json::to_string_pretty(&ev.metrics)
        .map_err(|e| Error::Msg(format!("metrics json: {e}")))?;
    write_atomic(&out.join("metrics.json"), json.as_bytes())?;
    write_scores_csv(&out.join("scores.csv"), ev)?;
    let plots = out.join("plots");
    std::fs::create_dir_all(&plots).map_err(|e| Error::io(&plots, e))?;
    let val_curve = metrics::Curve::new(&ev.val.scores, &positives(&ev.val.classes))?;
    let test_curve = metrics::Curve::new(&ev.test.scores, &positives(&ev.test.classes))?;
    metrics::plots::plot_roc(
        &plots.join("roc.png"),
        &[("VAL", &val_curve), ("TEST", &test_curve)],
    )?;
    metrics::plots::plot_scores_by_class(
        &plots.join("scores_by_class.png"),
        "TEST scores by class (threshold from VAL)",
        &ev.test.scores,
        &ev.test.classes,
        ev.metrics.test.threshold,
    )?;
    if hist.is_empty() {
        return Ok(());
    }
    let epochs: Vec<f64> = hist.iter().map(|r| r.epoch as f64).collect();
    let mut losses = vec![("loss".to_string(), hist.iter().map(|r| r.loss).collect())];
    if let Some(first) = hist.first() {
        for (i, (name, _)) in first.terms.iter().enumerate() {
            losses.push((name.clone(), hist.iter().map(|r| r.terms[i].1).collect()));
        }
    }
    let mut aurocs = vec![(
        "raw".to_string(),
        hist.iter().map(|r| r.val_auroc_raw).collect(),
    )];
    if hist.iter().any(|r| r.val_auroc_ema.is_some()) {
        aurocs.push((
            "ema".to_string(),
            hist.iter()
                .map(|r| r.val_auroc_ema.unwrap_or(f64::NAN))
                .collect(),
        ));
    }
    metrics::plots::plot_training(&plots.join("loss.png"), &epochs, &losses, &aurocs)
}
