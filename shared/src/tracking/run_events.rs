//! A training run's TensorBoard events (`RUN/tensorboard/`), kept in step with `history.csv`.
//!
//! Tags (step = the 0-based epoch of `history.csv`):
//!
//! | history.csv column            | tag                    |
//! |-------------------------------|------------------------|
//! | `loss`                        | `loss/total`           |
//! | each loss term (`cos`, ...)   | `loss/<term>`          |
//! | `lr`, `grad_norm`             | `train/lr`, `train/grad_norm` |
//! | `val_auroc_raw`, `val_auroc_ema` (EMA on) | `val/auroc_raw`, `val/auroc_ema` |
//! | `chosen`                      | `val/ema_chosen` (1 = EMA weights kept, 0 = raw) |
//! | each diagnostic (`z_result_spread`, ...) | `diag/<name>` |
//! | `seconds`                     | `time/epoch_seconds`   |
//!
//! At the end of a run (step = the last epoch): `final/best_epoch`, `final/best_is_ema`,
//! `final/{val,test}/{auroc,ap,f1,precision,recall,threshold,n}`,
//! `final/{val,test}/class/<NN_name>/{count,mean,auroc_vs_good}` from `metrics.json`, and each
//! `RUN/plots/<name>.png` as the image `plots/<name>`.
//!
//! [`sync_run_events`] reads back what the folder's event files hold and writes only what is
//! missing, so a resumed run continues the same TensorBoard run with no step written twice,
//! whatever point a kill interrupted (see [`super::tensorboard`] for the file rules). A value
//! already there that differs from `history.csv` means the folder holds another run's events:
//! that is an error, never silently mixed.
use super::tensorboard::{read_event_dir, Event, EventWriter, Image, Tagged, Value, What};
use crate::train::history::HistoryRow;
use crate::train::RunMetrics;
use crate::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The run's event folder: `RUN/tensorboard`.
pub const EVENTS_DIR: &str = "tensorboard";

/// The scalars of one `history.csv` row as `(tag, value)` (tags in the module doc).
pub fn history_scalars(row: &HistoryRow) -> Vec<(String, f64)> {
    let mut v = vec![("loss/total".to_string(), row.loss)];
    v.extend(row.terms.iter().map(|(n, x)| (format!("loss/{n}"), *x)));
    v.push(("train/lr".into(), row.lr));
    v.push(("train/grad_norm".into(), row.grad_norm));
    v.push(("val/auroc_raw".into(), row.val_auroc_raw));
    if let Some(a) = row.val_auroc_ema {
        v.push(("val/auroc_ema".into(), a));
    }
    v.push((
        "val/ema_chosen".into(),
        if row.chosen == "ema" { 1.0 } else { 0.0 },
    ));
    v.extend(
        row.diagnostics
            .iter()
            .map(|(n, x)| (format!("diag/{n}"), *x)),
    );
    v.push(("time/epoch_seconds".into(), row.seconds));
    v
}

/// The final metrics of `metrics.json` as `(tag, value)` (tags in the module doc).
pub fn final_scalars(m: &RunMetrics) -> Vec<(String, f64)> {
    let mut v = vec![
        ("final/best_epoch".to_string(), m.best_epoch as f64),
        (
            "final/best_is_ema".into(),
            if m.chosen == "ema" { 1.0 } else { 0.0 },
        ),
    ];
    for (split, s) in [("val", &m.val), ("test", &m.test)] {
        for (k, x) in [
            ("auroc", s.auroc),
            ("ap", s.ap),
            ("f1", s.f1),
            ("precision", s.precision),
            ("recall", s.recall),
            ("threshold", s.threshold),
            ("n", s.n as f64),
        ] {
            v.push((format!("final/{split}/{k}"), x));
        }
        for (class, c) in &s.per_class {
            let p = format!("final/{split}/class/{class}");
            v.push((format!("{p}/count"), c.count as f64));
            v.push((format!("{p}/mean"), c.mean));
            if let Some(a) = c.auroc_vs_good {
                v.push((format!("{p}/auroc_vs_good"), a));
            }
        }
    }
    v
}

/// What one [`sync_run_events`] call wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// epochs (steps) that got scalars
    pub steps: Vec<i64>,
    pub scalars: usize,
    pub images: usize,
}

/// The event file this process created in each run folder: later syncs append to it (a file
/// is never shared between processes; no file handle stays open between syncs).
static WRITERS: Mutex<Option<HashMap<PathBuf, PathBuf>>> = Mutex::new(None);

fn same_f32(a: f32, b: f64) -> bool {
    let b = b as f32;
    a == b || (a.is_nan() && b.is_nan())
}

/// Brings `run_dir/tensorboard/` up to date with `history` (every row's scalars at step =
/// epoch) and, when given, the final `metrics` and the PNGs of `run_dir/plots/` (at the last
/// epoch's step). Writes only tags/steps the folder does not hold yet; call it after every
/// `history.csv` write and after the run's outputs. Errors name the file and the fix.
pub fn sync_run_events(
    run_dir: &Path,
    history: &[HistoryRow],
    metrics: Option<&RunMetrics>,
) -> Result<SyncReport> {
    let dir = run_dir.join(EVENTS_DIR);
    // what the folder holds: (tag, step) -> scalar (None for images and other kinds)
    let mut held: HashMap<(String, i64), Option<f32>> = HashMap::new();
    let mut held_tags: HashSet<String> = HashSet::new();
    for f in read_event_dir(&dir)? {
        for e in f.events {
            if let What::Summary(values) = e.what {
                for t in values {
                    let x = match t.value {
                        Value::Scalar(x) => Some(x),
                        _ => None,
                    };
                    held_tags.insert(t.tag.clone());
                    held.insert((t.tag, e.step), x);
                }
            }
        }
    }
    let mut events = Vec::new();
    let mut report = SyncReport::default();
    for row in history {
        let step = row.epoch as i64;
        let mut new = Vec::new();
        let mut seen = HashSet::new();
        for (tag, x) in history_scalars(row) {
            if !seen.insert(tag.clone()) {
                return Err(Error::Msg(format!(
                    "history row of epoch {} maps two columns to the TensorBoard tag `{tag}` \
                     (rename the loss term or diagnostic)",
                    row.epoch
                )));
            }
            match held.get(&(tag.clone(), step)) {
                Some(Some(h)) if same_f32(*h, x) => {}
                Some(h) => {
                    return Err(Error::Msg(format!(
                        "{}: `{tag}` at step {step} is {h:?} there but {x} in {}/history.csv; \
                         the folder holds another run's events: move it away and rerun",
                        dir.display(),
                        run_dir.display()
                    )))
                }
                None => new.push(Tagged::scalar(tag, x)),
            }
        }
        if !new.is_empty() {
            report.steps.push(step);
            report.scalars += new.len();
            events.push(Event::summary(step, new));
        }
    }
    if let Some(m) = metrics {
        let step = history.last().map_or(0, |r| r.epoch as i64);
        let new: Vec<Tagged> = final_scalars(m)
            .into_iter()
            .filter(|(tag, _)| !held_tags.contains(tag))
            .map(|(tag, x)| Tagged::scalar(tag, x))
            .collect();
        if !new.is_empty() {
            report.scalars += new.len();
            events.push(Event::summary(step, new));
        }
        for (tag, path) in plots(run_dir)? {
            if held_tags.contains(&tag) {
                continue;
            }
            let png = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let img = Image::from_png(png, &path.display().to_string())?;
            report.images += 1;
            events.push(Event::summary(
                step,
                vec![Tagged {
                    tag,
                    value: Value::Image(img),
                }],
            ));
        }
    }
    if events.is_empty() {
        return Ok(report);
    }
    let mut guard = WRITERS.lock().unwrap_or_else(|p| p.into_inner());
    let files = guard.get_or_insert_with(HashMap::new);
    let key = std::fs::canonicalize(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
    let mut w = match files.get(&key) {
        Some(path) if path.is_file() => EventWriter::reopen(path)?,
        _ => EventWriter::create(&dir)?,
    };
    match w.write(&events) {
        Ok(()) => {
            files.insert(key, w.path().to_path_buf());
            Ok(report)
        }
        Err(e) => {
            // a failed write may have left a partial record: never append after it
            files.remove(&key);
            Err(e)
        }
    }
}

/// `(plots/<stem>, path)` of every `run_dir/plots/*.png`, sorted; none is an error.
fn plots(run_dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let dir = run_dir.join("plots");
    let rd = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let p = entry.map_err(|e| Error::io(&dir, e))?.path();
        if p.extension().is_some_and(|e| e == "png") {
            let stem = p.file_stem().unwrap_or_default().to_string_lossy();
            out.push((format!("plots/{stem}"), p));
        }
    }
    if out.is_empty() {
        return Err(Error::Msg(format!(
            "{}: no PNG plot to log to TensorBoard (write the run's outputs first)",
            dir.display()
        )));
    }
    out.sort();
    Ok(out)
}

/// Drops this process's open writers (tests: simulates a new process).
#[cfg(test)]
fn forget_writers() {
    *WRITERS.lock().unwrap() = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ClassStats, SplitMetrics};
    use crate::tracking::tensorboard::event_files;

    fn row(epoch: usize) -> HistoryRow {
        let e = epoch as f64;
        HistoryRow {
            epoch,
            lr: 1e-3 / (1.0 + e),
            loss: 2.0 - 0.1 * e,
            terms: vec![("cos".into(), 0.5 + e), ("rec".into(), 0.25)],
            grad_norm: 1.5,
            val_auroc_raw: 0.6 + 0.01 * e,
            val_auroc_ema: Some(0.7),
            chosen: if epoch.is_multiple_of(2) {
                "ema"
            } else {
                "raw"
            }
            .into(),
            diagnostics: vec![("z_spread".into(), 0.1 * e)],
            seconds: 3.25,
        }
    }

    fn metrics() -> RunMetrics {
        let split = |auroc: f64| SplitMetrics {
            n: 24,
            auroc,
            ap: 0.5,
            f1: 0.4,
            precision: 0.3,
            recall: 0.2,
            threshold: 1.25,
            per_class: [(
                "01_crater".to_string(),
                ClassStats {
                    count: 3,
                    mean: 2.0,
                    std: 0.1,
                    min: 1.0,
                    max: 3.0,
                    auroc_vs_good: Some(0.9),
                },
            )]
            .into(),
            classification: None,
        };
        RunMetrics {
            best_epoch: 2,
            chosen: "ema".into(),
            val: split(0.8),
            test: split(0.75),
        }
    }

    type ByTagStep<T> = HashMap<(String, i64), T>;

    /// (tag, step) -> how often, and the scalar values, of every event file of `run`.
    fn contents(run: &Path) -> (ByTagStep<usize>, ByTagStep<f32>) {
        let (mut n, mut v) = (HashMap::new(), HashMap::new());
        for f in read_event_dir(&run.join(EVENTS_DIR)).unwrap() {
            for e in f.events {
                if let What::Summary(vals) = e.what {
                    for t in vals {
                        *n.entry((t.tag.clone(), e.step)).or_insert(0) += 1;
                        if let Value::Scalar(x) = t.value {
                            v.insert((t.tag, e.step), x);
                        }
                    }
                }
            }
        }
        (n, v)
    }

    #[test]
    fn resume_after_kill_writes_each_step_once() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        std::fs::create_dir_all(run.join("plots")).unwrap();
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 7, 8, 2, 0, 0, 0]);
        std::fs::write(run.join("plots/roc.png"), &png).unwrap();
        std::fs::write(run.join("plots/notes.txt"), "not a plot").unwrap();
        let rows: Vec<HistoryRow> = (0..5).map(row).collect();

        let r = sync_run_events(&run, &rows[..1], None).unwrap();
        assert_eq!(r.steps, vec![0]);
        assert_eq!(r.scalars, 10);
        let r = sync_run_events(&run, &rows[..3], None).unwrap();
        assert_eq!(r.steps, vec![1, 2]);
        assert_eq!(event_files(&run.join(EVENTS_DIR)).unwrap().len(), 1);
        assert_eq!(
            sync_run_events(&run, &rows[..3], None).unwrap(),
            SyncReport::default()
        );

        // killed while writing epoch 2: its record is cut short; a new process resumes
        forget_writers();
        let file = event_files(&run.join(EVENTS_DIR)).unwrap().remove(0);
        let len = std::fs::metadata(&file).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.set_len(len - 7).unwrap();
        let r = sync_run_events(&run, &rows, None).unwrap();
        assert_eq!(r.steps, vec![2, 3, 4]);
        let r = sync_run_events(&run, &rows, Some(&metrics())).unwrap();
        assert_eq!((r.steps.len(), r.images), (0, 1));
        assert_eq!(event_files(&run.join(EVENTS_DIR)).unwrap().len(), 2);
        // a resumed finished run (same outputs) adds nothing
        forget_writers();
        assert_eq!(
            sync_run_events(&run, &rows, Some(&metrics())).unwrap(),
            SyncReport::default()
        );

        let (counts, values) = contents(&run);
        assert!(counts.values().all(|&c| c == 1), "{counts:?}");
        for r in &rows {
            for (tag, x) in history_scalars(r) {
                assert_eq!(values[&(tag.clone(), r.epoch as i64)], x as f32, "{tag}");
            }
        }
        assert_eq!(values[&("val/ema_chosen".into(), 2)], 1.0);
        assert_eq!(values[&("diag/z_spread".into(), 4)], 0.4);
        assert_eq!(values[&("final/test/auroc".into(), 4)], 0.75);
        assert_eq!(
            values[&("final/val/class/01_crater/auroc_vs_good".into(), 4)],
            0.9
        );
        assert_eq!(counts[&("plots/roc".into(), 4)], 1);
        assert!(!counts.contains_key(&("plots/notes".into(), 4)));

        // another run's history against these events is refused, naming the tag
        let mut other = rows.clone();
        other[1].loss = 9.0;
        let err = sync_run_events(&run, &other, None).unwrap_err().to_string();
        assert!(
            err.contains("loss/total") && err.contains("another run"),
            "{err}"
        );
    }

    #[test]
    fn final_metrics_need_plots() {
        let tmp = tempfile::tempdir().unwrap();
        let err = sync_run_events(tmp.path(), &[row(0)], Some(&metrics()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("plots"), "{err}");
    }
}
