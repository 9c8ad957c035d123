//! The sweep leaderboard: one row per trial, mean +- std over its finished seeds of VAL and
//! TEST I-AUROC, AP and F1, best epoch and training seconds, read from each run's
//! `metrics.json` and `run.json`; sorted by VAL I-AUROC mean only (never by TEST). Written as
//! `leaderboard.csv`, `leaderboard.md` and `leaderboard.png` (VAL and TEST with error bars).
use crate::runs::read_run_info;
use crate::runs::sweep::{run_state, Plan, RunState};
use crate::train::eval::RunMetrics;
use crate::train::history::write_atomic;
use crate::{Error, Result};
use std::path::Path;

/// Mean and sample standard deviation (0 for one value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
}

impl MeanStd {
    pub fn of(v: &[f64]) -> MeanStd {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let std = if v.len() > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        MeanStd { mean, std }
    }
}

/// One leaderboard row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub trial: String,
    pub overrides: String,
    pub seeds_done: usize,
    pub seeds: usize,
    pub val_auroc: MeanStd,
    pub test_auroc: MeanStd,
    pub val_ap: MeanStd,
    pub test_ap: MeanStd,
    pub val_f1: MeanStd,
    pub test_f1: MeanStd,
    pub best_epoch: MeanStd,
    pub seconds: MeanStd,
}

/// Reads every finished run of the plan; trials without a finished seed are left out.
pub fn collect(sweep: &Path, plan: &Plan) -> Result<Vec<Row>> {
    let mut rows = vec![];
    for t in &plan.trials {
        let mut ms: Vec<RunMetrics> = vec![];
        let mut secs = vec![];
        for k in 0..plan.seeds {
            let dir = plan.run(sweep, t, k).dir;
            if run_state(&dir) != RunState::Finished {
                continue;
            }
            let p = dir.join("metrics.json");
            let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
            ms.push(
                serde_json::from_str(&text)
                    .map_err(|e| Error::Msg(format!("{}: {e}", p.display())))?,
            );
            secs.push(read_run_info(&dir)?.train_seconds);
        }
        if ms.is_empty() {
            continue;
        }
        let f = |g: &dyn Fn(&RunMetrics) -> f64| MeanStd::of(&ms.iter().map(g).collect::<Vec<_>>());
        rows.push(Row {
            trial: t.name.clone(),
            overrides: t
                .overrides
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            seeds_done: ms.len(),
            seeds: plan.seeds,
            val_auroc: f(&|m| m.val.auroc),
            test_auroc: f(&|m| m.test.auroc),
            val_ap: f(&|m| m.val.ap),
            test_ap: f(&|m| m.test.ap),
            val_f1: f(&|m| m.val.f1),
            test_f1: f(&|m| m.test.f1),
            best_epoch: f(&|m| m.best_epoch as f64),
            seconds: MeanStd::of(&secs),
        });
    }
    // VAL only decides the order (ties keep plan order)
    rows.sort_by(|a, b| b.val_auroc.mean.total_cmp(&a.val_auroc.mean));
    Ok(rows)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes `leaderboard.{csv,md,png}` into the sweep folder; returns the Markdown table.
pub fn write(sweep: &Path, rows: &[Row]) -> Result<String> {
    let mut csv = String::from(
        "rank,trial,seeds_done,seeds,val_auroc_mean,val_auroc_std,test_auroc_mean,test_auroc_std,\
         val_ap_mean,val_ap_std,test_ap_mean,test_ap_std,val_f1_mean,val_f1_std,test_f1_mean,\
         test_f1_std,best_epoch_mean,best_epoch_std,seconds_mean,seconds_std,overrides\n",
    );
    let mut md = String::from(
        "| rank | trial | seeds | VAL I-AUROC | TEST I-AUROC | VAL AP | TEST AP | VAL F1 | TEST F1 \
         | best epoch | seconds |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let pm = |m: &MeanStd| format!("{:.4} ± {:.4}", m.mean, m.std);
    for (i, r) in rows.iter().enumerate() {
        let mut f = vec![(i + 1).to_string(), csv_field(&r.trial)];
        f.push(r.seeds_done.to_string());
        f.push(r.seeds.to_string());
        for m in [
            &r.val_auroc,
            &r.test_auroc,
            &r.val_ap,
            &r.test_ap,
            &r.val_f1,
            &r.test_f1,
            &r.best_epoch,
            &r.seconds,
        ] {
            f.push(m.mean.to_string());
            f.push(m.std.to_string());
        }
        f.push(csv_field(&r.overrides));
        csv.push_str(&f.join(","));
        csv.push('\n');
        md.push_str(&format!(
            "| {} | `{}` | {}/{} | {} | {} | {} | {} | {} | {} | {:.1} ± {:.1} | {:.1} ± {:.1} |\n",
            i + 1,
            r.trial,
            r.seeds_done,
            r.seeds,
            pm(&r.val_auroc),
            pm(&r.test_auroc),
            pm(&r.val_ap),
            pm(&r.test_ap),
            pm(&r.val_f1),
            pm(&r.test_f1),
            r.best_epoch.mean,
            r.best_epoch.std,
            r.seconds.mean,
            r.seconds.std
        ));
    }
    md.push_str(
        "\nSorted by VAL I-AUROC mean (TEST never selects). mean ± sample std over seeds.\n",
    );
    write_atomic(&sweep.join("leaderboard.csv"), csv.as_bytes())?;
    write_atomic(&sweep.join("leaderboard.md"), md.as_bytes())?;
    let points: Vec<(String, [f64; 4])> = rows
        .iter()
        .map(|r| {
            let (v, t) = (r.val_auroc, r.test_auroc);
            (r.trial.clone(), [v.mean, v.std, t.mean, t.std])
        })
        .collect();
    let png = sweep.join("leaderboard.png");
    // the bitmap backend picks the format from the extension: keep `.png` last
    let tmp = sweep.join("leaderboard.tmp.png");
    crate::metrics::plots::plot_leaderboard(&tmp, "Sweep leaderboard (sorted by VAL)", &points)?;
    std::fs::rename(&tmp, &png).map_err(|e| Error::io(&png, e))?;
    Ok(md)
}
