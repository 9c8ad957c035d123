//! `late-fusion` (the seed's "Plan E + Video AE"; DESIGN.md "The seed's other systems"): fuses
//! finished runs from their `scores.csv`, never re-running a head. Each run's score is z-scored
//! with the mean and standard deviation (ddof 0) of its own TRAIN scores, and the fused score is
//! the weighted sum `sum_r w_r * (s_r - mean_r) / std_r` (weights default to 1 each). The seed
//! fused Causal-FiLM with the video autoencoder; any runs of any heads fuse the same way.
//!
//! The fusion covers the samples every run scored (heads reading different arrays may leave out
//! different incomplete samples: the dropped count is printed). Its outputs are those of every
//! run: `metrics.json` (threshold chosen on VAL), `scores.csv` (parts: each run's z-score),
//! plots and `run.json`. No weights, no training: `train-head eval` recomputes it.
use crate::runs::{write_run_info, RunInfo, RunLock};
use crate::schema::Split;
use crate::train::driver::{NewScores, Outcome, Setup, Task};
use crate::train::eval::{write_outputs, Evaluation, RunMetrics, Scored};
use crate::train::history::write_atomic;
use crate::train::FitOutcome;
use crate::{metrics, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const NAME: &str = "late-fusion";

/// `[late_fusion]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LateFusionConfig {
    /// finished run folders (each with `scores.csv`); `train-head train --runs A B` sets them
    pub runs: Vec<PathBuf>,
    /// one weight per run; default 1 each
    #[serde(default)]
    pub weights: Vec<f64>,
}

impl LateFusionConfig {
    pub fn from_doc(doc: &toml::Value) -> Result<Self> {
        let cfg: LateFusionConfig = doc
            .get("late_fusion")
            .ok_or_else(|| {
                Error::Msg(
                    "config has no [late_fusion] table (give the runs with --runs A B)".into(),
                )
            })?
            .clone()
            .try_into()
            .map_err(|e| Error::Msg(format!("config [late_fusion]: {e}")))?;
        if cfg.runs.len() < 2 {
            return Err(Error::Msg(format!(
                "late-fusion needs at least two finished runs (got {}): --runs RUN_A RUN_B",
                cfg.runs.len()
            )));
        }
        if !cfg.weights.is_empty() && cfg.weights.len() != cfg.runs.len() {
            return Err(Error::Msg(format!(
                "config [late_fusion]: {} weights for {} runs",
                cfg.weights.len(),
                cfg.runs.len()
            )));
        }
        Ok(cfg)
    }

    pub fn weight(&self, i: usize) -> f64 {
        self.weights.get(i).copied().unwrap_or(1.0)
    }
}

/// One row of a run's `scores.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    pub key: String,
    pub split: Split,
    /// class code; `None` when unlabelled
    pub class: Option<u8>,
    pub score: f64,
}

/// Reads `run/scores.csv` (key, split, class, score, parts...).
pub fn read_scores(run: &Path) -> Result<Vec<ScoreRow>> {
    let path = run.join("scores.csv");
    let bad = |msg: String| Error::Msg(format!("{}: {msg}", path.display()));
    let mut rd = csv::Reader::from_path(&path)
        .map_err(|e| bad(format!("{e} (is {} a finished run?)", run.display())))?;
    let header = rd.headers().map_err(|e| bad(e.to_string()))?.clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad(format!("no `{name}` column")))
    };
    let (ck, cs, cc, cv) = (col("key")?, col("split")?, col("class")?, col("score")?);
    let mut rows = Vec::new();
    for (i, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| bad(e.to_string()))?;
        let line = i + 2;
        let class = match rec[cc].trim() {
            "" => None,
            c => Some(
                c.parse::<u8>()
                    .map_err(|e| bad(format!("line {line}: class {c:?}: {e}")))?,
            ),
        };
        let score: f64 = rec[cv]
            .parse()
            .map_err(|e| bad(format!("line {line}: score {:?}: {e}", &rec[cv])))?;
        if !score.is_finite() {
            return Err(bad(format!("line {line}: score {score} of `{}`", &rec[ck])));
        }
        rows.push(ScoreRow {
            key: rec[ck].to_string(),
            split: rec[cs].parse()?,
            class,
            score,
        });
    }
    Ok(rows)
}

/// TRAIN mean and standard deviation (ddof 0) of a run's scores.
pub fn train_stats(rows: &[ScoreRow], run: &Path) -> Result<(f64, f64)> {
    let t: Vec<f64> = rows
        .iter()
        .filter(|r| r.split == Split::Train)
        .map(|r| r.score)
        .collect();
    if t.len() < 2 {
        return Err(Error::Msg(format!(
            "{}: scores.csv holds {} TRAIN scores; z-scoring needs at least 2",
            run.display(),
            t.len()
        )));
    }
    let mean = t.iter().sum::<f64>() / t.len() as f64;
    let var = t.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / t.len() as f64;
    if var.sqrt() <= 0.0 {
        return Err(Error::Msg(format!(
            "{}: every TRAIN score equals {mean}: the run cannot be z-scored",
            run.display()
        )));
    }
    Ok((mean, var.sqrt()))
}

/// Fuses the runs of `cfg`: TRAIN, VAL and TEST scored, the VAL threshold applied to TEST.
pub fn fuse(cfg: &LateFusionConfig) -> Result<Evaluation> {
    let tables: Vec<Vec<ScoreRow>> = cfg
        .runs
        .iter()
        .map(|r| read_scores(r))
        .collect::<Result<_>>()?;
    let stats: Vec<(f64, f64)> = tables
        .iter()
        .zip(&cfg.runs)
        .map(|(t, r)| train_stats(t, r))
        .collect::<Result<_>>()?;
    // every other run's rows by key
    let by_key: Vec<HashMap<&str, &ScoreRow>> = tables
        .iter()
        .map(|t| t.iter().map(|r| (r.key.as_str(), r)).collect())
        .collect();
    let names: Vec<String> = cfg.runs.iter().map(|r| part_name(r)).collect();
    let mut out: Vec<Scored> = Vec::new();
    for split in Split::LABELLED {
        let mut sc = Scored {
            split,
            keys: vec![],
            classes: vec![],
            scores: vec![],
            parts: names.iter().map(|n| (n.clone(), vec![])).collect(),
        };
        let mut dropped = 0usize;
        for row in tables[0].iter().filter(|r| r.split == split) {
            let rows: Option<Vec<&ScoreRow>> = by_key
                .iter()
                .map(|m| m.get(row.key.as_str()).copied())
                .collect();
            let Some(rows) = rows else {
                dropped += 1;
                continue;
            };
            for (r, other) in rows.iter().enumerate() {
                if other.split != row.split || other.class != row.class {
                    return Err(Error::Msg(format!(
                        "sample `{}` is {} class {:?} in {} but {} class {:?} in {}: the runs \
                         were not trained on the same split",
                        row.key,
                        row.split,
                        row.class,
                        cfg.runs[0].display(),
                        other.split,
                        other.class,
                        cfg.runs[r].display()
                    )));
                }
            }
            let class = row.class.ok_or_else(|| {
                Error::Msg(format!("sample `{}` of {split} has no class", row.key))
            })?;
            let mut fused = 0.0;
            for (r, other) in rows.iter().enumerate() {
                let z = (other.score - stats[r].0) / stats[r].1;
                sc.parts[r].1.push(z);
                fused += cfg.weight(r) * z;
            }
            sc.keys.push(row.key.clone());
            sc.classes.push(class);
            sc.scores.push(fused);
        }
        if dropped > 0 {
            eprintln!(
                "warning: late-fusion: {dropped} {split} samples of {} are missing from another \
                 run and are left out",
                cfg.runs[0].display()
            );
        }
        if sc.scores.is_empty() {
            return Err(Error::Msg(format!(
                "late-fusion: no {split} sample is scored by every run"
            )));
        }
        out.push(sc);
    }
    let test = out.pop().expect("three splits");
    let val = out.pop().expect("three splits");
    let train = out.pop().expect("three splits");
    let val_m = metrics::evaluate(&val.scores, &val.classes, None)?;
    let test_m = metrics::evaluate(&test.scores, &test.classes, Some(val_m.threshold))?;
    Ok(Evaluation {
        metrics: RunMetrics {
            best_epoch: 0,
            chosen: "fused".into(),
            val: val_m,
            test: test_m,
        },
        train,
        val,
        test,
    })
}

/// Scores a new store with every fused run (each against its own training store, recorded in its
/// `run.json`), z-scores each with its TRAIN statistics and sums them with the weights. A weld
/// any run cannot score is unreadable, with that run's reason.
pub fn score_new(cfg: &LateFusionConfig, store: &Path, device: tch::Device) -> Result<NewScores> {
    let mut fused: Option<NewScores> = None;
    for (i, r) in cfg.runs.iter().enumerate() {
        let (mean, std) = train_stats(&read_scores(r)?, r)?;
        let info = crate::runs::read_run_info(r)?;
        let train_store = info.store.ok_or_else(|| {
            Error::Msg(format!(
                "{}: run.json records no training store, so its head cannot be rebuilt to \
                 score new welds (retrain it with this version)",
                r.display()
            ))
        })?;
        let cfg_path = r.join("config.toml");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
        let doc: toml::Value = toml::from_str(&text)
            .map_err(|e| Error::Msg(format!("{}: {e}", cfg_path.display())))?;
        let setup = Setup {
            doc: &doc,
            store: &train_store,
            device,
            resident: false,
            verbose: false,
        };
        let task = Task::Score {
            run: r.clone(),
            store: store.to_path_buf(),
        };
        let s = match crate::heads::registry::run(&setup, task)
            .map_err(|e| Error::Msg(format!("scoring with the fused run {}: {e}", r.display())))?
        {
            Outcome::Scored(s) => *s,
            _ => unreachable!("a score task scores"),
        };
        let w = cfg.weight(i);
        let z: Vec<f64> = s
            .rows
            .iter()
            .map(|row| row.1.map_or(f64::NAN, |v| (v - mean) / std))
            .collect();
        let f = fused.get_or_insert_with(|| NewScores {
            rows: s
                .rows
                .iter()
                .map(|(k, _, _)| (k.clone(), Some(0.0), None))
                .collect(),
            part_names: vec![],
            parts: vec![],
            classes: s.classes.clone(),
        });
        if f.rows.len() != s.rows.len() {
            return Err(Error::Msg(format!(
                "{}: the fused runs served {} and {} samples",
                store.display(),
                f.rows.len(),
                s.rows.len()
            )));
        }
        for (j, (key, score, reason)) in s.rows.iter().enumerate() {
            let out = &mut f.rows[j];
            debug_assert_eq!(&out.0, key);
            match (score, &out.2) {
                (_, Some(_)) => {}
                (None, None) => {
                    out.1 = None;
                    out.2 = Some(format!(
                        "{} ({})",
                        reason.as_deref().unwrap_or("not scored"),
                        part_name(r)
                    ));
                }
                (Some(_), None) => out.1 = out.1.map(|acc| acc + w * z[j]),
            }
        }
        f.part_names.push(part_name(r));
        f.parts.push(z);
    }
    fused.ok_or_else(|| Error::Msg("late-fusion names no run".into()))
}

/// The score-part column of a run: `z_<folder name>`.
fn part_name(run: &Path) -> String {
    let name = run
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| run.display().to_string());
    format!("z_{}", name.replace([',', '"', '\n'], "_"))
}

/// The registry's runner. The store is not read: the runs' scores are the inputs.
pub fn run(setup: &Setup, task: Task) -> Result<Outcome> {
    let cfg = LateFusionConfig::from_doc(setup.doc)?;
    match task {
        Task::Check => {
            for r in &cfg.runs {
                train_stats(&read_scores(r)?, r)?;
            }
            Ok(Outcome::Checked {
                trainable_params: 0,
            })
        }
        Task::Eval { .. } => Ok(Outcome::Evaluated(Box::new(fuse(&cfg)?))),
        Task::Score { store, .. } => Ok(Outcome::Scored(Box::new(score_new(
            &cfg,
            &store,
            setup.device,
        )?))),
        Task::Train { opts, .. } => {
            let out = &opts.out;
            let _lock = RunLock::acquire(out)?;
            if out.join("metrics.json").exists() && !opts.resume {
                return Err(Error::Msg(format!(
                    "{} already holds a run; pass --resume to redo it or choose another --out",
                    out.display()
                )));
            }
            let t0 = std::time::Instant::now();
            let ev = fuse(&cfg)?;
            if setup.verbose {
                for (i, r) in cfg.runs.iter().enumerate() {
                    eprintln!("late-fusion: {} x {}", cfg.weight(i), r.display());
                }
            }
            write_atomic(&out.join("config.toml"), opts.config_text.as_bytes())?;
            write_outputs(out, &ev, &[])?;
            crate::tracking::sync_run_events(out, &[], Some(&ev.metrics))?;
            write_run_info(
                out,
                &RunInfo {
                    head: NAME.into(),
                    learner: "score-fusion".into(),
                    trainable_params: 0,
                    train_seconds: t0.elapsed().as_secs_f64(),
                    store: None,
                },
            )?;
            Ok(Outcome::Trained(FitOutcome::Finished(Box::new(ev))))
        }
    }
}
