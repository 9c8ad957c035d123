//! `RUN/tensorboard/` read back by Python `tensorboard`'s own readers (tests/oracle/tb_events.py):
//! for an uninterrupted run, a run stopped and resumed, and a run killed (SIGKILL) and resumed,
//! side by side in one sweep folder, every history.csv scalar has exactly one point per epoch,
//! equal to history.csv (float32, as TensorBoard stores scalars), the final metrics equal
//! metrics.json, the plots are there as images with the PNG bytes of RUN/plots, no (tag, step)
//! is written twice, and TensorBoard lists each trial as its own run.
mod common;

use common::{setup, MLP_AE};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const EPOCHS: usize = 5;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_train-head"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    std::env::var_os("WELD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"))
}

fn train_cmd(store: &Path, cfg: &Path, out: &Path) -> Command {
    let mut c = bin();
    c.args(["train", "--store"])
        .arg(store)
        .arg("--config")
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .args(["--set", &format!("train.epochs={EPOCHS}")]);
    c
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "command failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// history.csv as (header, rows of fields).
fn history(run: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(run.join("history.csv")).unwrap();
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(String::from).collect());
    let header: Vec<String> = lines.next().unwrap();
    (header, lines.collect())
}

/// The TensorBoard tag of each history.csv column (the table of `weld_cache::tracking`), and
/// how the cell compares: `None` for the epoch column.
fn tag_of(col: &str, header: &[String]) -> Option<String> {
    let pos = |c: &str| header.iter().position(|h| h == c).unwrap();
    let i = pos(col);
    Some(match col {
        "epoch" => return None,
        "loss" => "loss/total".into(),
        "lr" | "grad_norm" => format!("train/{col}"),
        "val_auroc_raw" => "val/auroc_raw".into(),
        "val_auroc_ema" => "val/auroc_ema".into(),
        "chosen" => "val/ema_chosen".into(),
        "seconds" => "time/epoch_seconds".into(),
        _ if i > pos("loss") && i < pos("grad_norm") => format!("loss/{col}"),
        _ if i > pos("chosen") && i < pos("seconds") => format!("diag/{col}"),
        _ => panic!("history.csv column `{col}` has no TensorBoard tag"),
    })
}

fn expected(col: &str, cell: &str) -> f64 {
    match col {
        "chosen" => f64::from(u8::from(cell == "ema")),
        _ => cell.parse().unwrap(),
    }
}

/// float32 equality, as TensorBoard stores scalars; `seconds` is rounded to ms in the CSV.
fn same(col: &str, got: f64, want: f64) -> bool {
    if col == "seconds" {
        (got - want).abs() <= 5e-4 + want.abs() * 1e-6
    } else {
        got as f32 == want as f32
    }
}

/// (tag, step) -> values of every scalar record.
fn raw_scalars(raw: &Value) -> HashMap<(String, i64), Vec<f64>> {
    let mut m: HashMap<(String, i64), Vec<f64>> = HashMap::new();
    for s in raw["scalars"].as_array().unwrap() {
        let key = (
            s["tag"].as_str().unwrap().to_string(),
            s["step"].as_i64().unwrap(),
        );
        m.entry(key).or_default().push(s["value"].as_f64().unwrap());
    }
    m
}

fn check_run(run: &Path, raw: &Value, shown: &Value) {
    let name = run.display();
    let (header, rows) = history(run);
    assert_eq!(rows.len(), EPOCHS, "{name}");
    assert!(
        header.iter().any(|h| h == "z_spread") && header.iter().any(|h| h == "mse"),
        "{header:?}"
    );
    let scalars = raw_scalars(raw);
    // no (tag, step) written twice, in the files or in what the dashboards hold
    for (k, v) in &scalars {
        assert_eq!(v.len(), 1, "{name}: {k:?} written {} times", v.len());
    }
    let last = (EPOCHS - 1) as i64;
    let mut n_history = 0;
    for (c, col) in header.iter().enumerate() {
        let Some(tag) = tag_of(col, &header) else {
            continue;
        };
        // exactly one point per epoch, equal to history.csv (raw files and dashboards)
        let points = shown["scalars"][&tag]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: TensorBoard shows no `{tag}`"));
        assert_eq!(points.len(), EPOCHS, "{name} {tag}: {points:?}");
        for (e, row) in rows.iter().enumerate() {
            let want = expected(col, &row[c]);
            let got = scalars[&(tag.clone(), e as i64)][0];
            assert!(
                same(col, got, want),
                "{name} {tag} epoch {e}: {got} vs {want}"
            );
            let p = &points[e];
            assert_eq!(p[0].as_i64(), Some(e as i64), "{name} {tag}");
            assert!(same(col, p[1].as_f64().unwrap(), want), "{name} {tag} {p}");
            n_history += 1;
        }
    }
    // final metrics at the last epoch's step, equal to metrics.json
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    let best = m["best_epoch"].as_f64().unwrap();
    assert_eq!(scalars[&("final/best_epoch".into(), last)], vec![best]);
    for split in ["val", "test"] {
        for k in ["auroc", "ap", "f1", "precision", "recall", "threshold", "n"] {
            let want = m[split][k].as_f64().unwrap();
            let got = scalars[&(format!("final/{split}/{k}"), last)][0];
            assert_eq!(got as f32, want as f32, "{name} final/{split}/{k}");
        }
        let classes = m[split]["per_class"].as_object().unwrap();
        assert!(classes.len() >= 2, "{classes:?}");
        for (class, st) in classes {
            let got = scalars[&(format!("final/{split}/class/{class}/mean"), last)][0];
            assert_eq!(got as f32, st["mean"].as_f64().unwrap() as f32, "{class}");
        }
    }
    // every scalar tag is a history column or a final metric: nothing else, nothing extra
    let final_tags = scalars
        .keys()
        .filter(|(t, _)| t.starts_with("final/"))
        .count();
    assert_eq!(scalars.len(), n_history + final_tags, "{name}");
    // the plots, as images with RUN/plots' bytes
    let images = raw["images"].as_array().unwrap();
    let mut plot_names: Vec<String> = std::fs::read_dir(run.join("plots"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            format!("plots/{}", p.file_stem().unwrap().to_string_lossy())
        })
        .collect();
    plot_names.sort();
    let mut tags: Vec<String> = images
        .iter()
        .map(|i| i["tag"].as_str().unwrap().to_string())
        .collect();
    tags.sort();
    assert_eq!(tags, plot_names, "{name}");
    assert!(plot_names.contains(&"plots/roc".to_string()));
    for i in images {
        assert_eq!(i["step"].as_i64(), Some(last), "{i}");
        assert_eq!(i["png_matches"], Value::Bool(true), "{i}");
        assert!(i["width"].as_i64().unwrap() > 100 && i["height"].as_i64().unwrap() > 100);
        let shown_img = &shown["images"][i["tag"].as_str().unwrap()];
        assert_eq!(shown_img.as_array().map(|a| a.len()), Some(1), "{i}");
    }
    for v in raw["file_versions"].as_array().unwrap() {
        assert_eq!(v, "brain.Event:2");
    }
}

#[test]
fn tensorboard_events_equal_history_across_resume_and_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, cfg) = setup(tmp.path(), MLP_AE);
    let sweep = tmp.path().join("sweep");
    let (a, r, k) = (sweep.join("a"), sweep.join("r"), sweep.join("k"));
    ok(train_cmd(&store, &cfg, &a).output().unwrap());

    // stopped after 2 epochs, then resumed
    ok(train_cmd(&store, &cfg, &r)
        .args(["--stop-after-epochs", "2"])
        .output()
        .unwrap());
    assert!(r.join("tensorboard").is_dir());
    ok(train_cmd(&store, &cfg, &r)
        .arg("--resume")
        .output()
        .unwrap());
    // resuming a finished run adds nothing
    ok(train_cmd(&store, &cfg, &r)
        .arg("--resume")
        .output()
        .unwrap());

    // killed during epoch 2, then resumed
    let mut child = train_cmd(&store, &cfg, &k)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if line.unwrap().starts_with("epoch   2/") {
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
    assert!(!k.join("metrics.json").exists());
    ok(train_cmd(&store, &cfg, &k)
        .arg("--resume")
        .output()
        .unwrap());

    let json = tmp.path().join("tb.json");
    let out = Command::new(python())
        .arg(repo().join("tests/oracle/tb_events.py"))
        .arg(&sweep)
        .arg(&json)
        .output()
        .unwrap();
    ok(out);
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // `tensorboard --logdir SWEEP` lists each trial as its own run
    assert_eq!(
        got["runs"],
        serde_json::json!(["a/tensorboard", "k/tensorboard", "r/tensorboard"])
    );
    let mut per_run = BTreeMap::new();
    for (name, run) in [("a", &a), ("r", &r), ("k", &k)] {
        let key = format!("{name}/tensorboard");
        check_run(run, &got["raw"][&key], &got["shown"][&key]);
        per_run.insert(name, raw_scalars(&got["raw"][&key]));
    }
    // the resumed runs hold the uninterrupted run's values (time aside)
    for name in ["r", "k"] {
        for (key, v) in &per_run["a"] {
            if key.0 != "time/epoch_seconds" {
                assert_eq!(&per_run[name][key], v, "{name} {key:?}");
            }
        }
    }
}
