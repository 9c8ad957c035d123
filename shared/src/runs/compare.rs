//! `train-head compare`: one table of finished runs (any heads): VAL and TEST I-AUROC, AP and F1,
//! per-class TEST AUROC (each defect class against good), trainable parameters and training
//! seconds, read from each run's `metrics.json` and `run.json`. Written as `TABLE.md`,
//! `TABLE.csv` and `TABLE.png` (VAL and TEST I-AUROC per run), in the order given.
use crate::metrics::SplitMetrics;
use crate::runs::read_run_info;
use crate::train::eval::RunMetrics;
use crate::train::history::write_atomic;
use crate::{Error, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One compared run.
pub struct Compared {
    pub run: PathBuf,
    pub head: String,
    pub metrics: RunMetrics,
    pub params: i64,
    pub seconds: f64,
}

/// Reads the runs (each must be finished: metrics.json and run.json).
pub fn read(runs: &[PathBuf]) -> Result<Vec<Compared>> {
    runs.iter()
        .map(|r| {
            let p = r.join("metrics.json");
            let text = std::fs::read_to_string(&p).map_err(|e| {
                Error::Msg(format!(
                    "{}: {e} (is {} a finished run?)",
                    p.display(),
                    r.display()
                ))
            })?;
            let metrics: RunMetrics = serde_json::from_str(&text)
                .map_err(|e| Error::Msg(format!("{}: {e}", p.display())))?;
            let info = read_run_info(r)?;
            Ok(Compared {
                run: r.clone(),
                head: info.head,
                metrics,
                params: info.trainable_params,
                seconds: info.train_seconds,
            })
        })
        .collect()
}

fn class_auroc(m: &SplitMetrics, class: &str) -> String {
    m.per_class
        .get(class)
        .and_then(|c| c.auroc_vs_good)
        .map_or("-".into(), |a| format!("{a:.4}"))
}

/// Writes `out.md`, `out.csv` and `out.png` (`out` without extension); returns the Markdown.
pub fn write(out: &Path, runs: &[Compared]) -> Result<String> {
    let classes: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| r.metrics.test.per_class.keys().cloned())
        .filter(|c| !c.starts_with("00"))
        .collect();
    let mut head = vec![
        "run",
        "head",
        "val_auroc",
        "test_auroc",
        "val_ap",
        "test_ap",
        "val_f1",
        "test_f1",
        "trainable_params",
        "train_seconds",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    head.extend(classes.iter().map(|c| format!("test_auroc_{c}")));
    let mut csv = head.join(",") + "\n";
    let mut md = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    for r in runs {
        let (v, t) = (&r.metrics.val, &r.metrics.test);
        let mut f = vec![
            r.run.display().to_string(),
            r.head.clone(),
            format!("{:.4}", v.auroc),
            format!("{:.4}", t.auroc),
            format!("{:.4}", v.ap),
            format!("{:.4}", t.ap),
            format!("{:.4}", v.f1),
            format!("{:.4}", t.f1),
            r.params.to_string(),
            format!("{:.1}", r.seconds),
        ];
        f.extend(classes.iter().map(|c| class_auroc(t, c)));
        csv.push_str(
            &f.iter()
                .map(|x| x.replace(',', ";"))
                .collect::<Vec<_>>()
                .join(","),
        );
        csv.push('\n');
        md.push_str(&format!("| {} |\n", f.join(" | ")));
    }
    let with_ext = |e: &str| {
        let mut p = out.as_os_str().to_os_string();
        p.push(e);
        PathBuf::from(p)
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    write_atomic(&with_ext(".md"), md.as_bytes())?;
    write_atomic(&with_ext(".csv"), csv.as_bytes())?;
    let points: Vec<(String, [f64; 4])> = runs
        .iter()
        .map(|r| {
            (
                r.head.clone(),
                [r.metrics.val.auroc, 0.0, r.metrics.test.auroc, 0.0],
            )
        })
        .collect();
    crate::metrics::plots::plot_leaderboard(&with_ext(".png"), "Run comparison", &points)?;
    Ok(md)
}
