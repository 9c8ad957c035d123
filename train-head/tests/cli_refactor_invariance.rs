//! The head platform changed no result: `configs/demo.toml` on a small synthetic store, with the
//! profile-fidelity knobs set to the behaviour before them (`identical_layers = false`,
//! `own_grad_clip = false`; demo.toml's schedule is the warm-up cosine it always had), gives a
//! metrics.json equal to the copy recorded with the pre-platform code (commit a786f5c,
//! `train/store_source.rs`), and the same history.csv apart from wall-clock seconds. Equal means
//! the same keys, counts, labels and choices, and every number within 1e-5 relative: the copy
//! was recorded on one CPU, and libtorch's kernels round differently in the last bits on others
//! (an AMD EPYC differs from the recording by ~1e-7 relative); on the recording machine the
//! files are byte-identical. With the new defaults the run differs (the knobs act).
mod common;

use common::{bin, ok};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn without_seconds(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

/// Two numbers equal within 1e-5 relative (1e-9 absolute near zero).
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()) + 1e-9
}

/// The first place where two JSON values differ (numbers compared with [`close`]).
fn json_difference(got: &serde_json::Value, want: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            (!close(a, b)).then(|| format!("{at}: {a} vs {b}"))
        }
        (Value::Object(a), Value::Object(b)) => {
            if a.keys().ne(b.keys()) {
                return Some(format!("{at}: keys {:?} vs {:?}", a.keys(), b.keys()));
            }
            a.iter()
                .find_map(|(k, v)| json_difference(v, &b[k], &format!("{at}.{k}")))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| json_difference(x, y, &format!("{at}[{i}]"))),
        _ => (got != want).then(|| format!("{at}: {got} vs {want}")),
    }
}

/// The first place where two history.csv texts differ, wall-clock seconds left out (fields that
/// parse as numbers compared with [`close`], the others exactly).
fn history_difference(got: &str, want: &str) -> Option<String> {
    let (got, want) = (without_seconds(got), without_seconds(want));
    if got.len() != want.len() {
        return Some(format!("{} rows vs {}", got.len(), want.len()));
    }
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let (gf, wf): (Vec<&str>, Vec<&str>) = (g.split(',').collect(), w.split(',').collect());
        if gf.len() != wf.len() {
            return Some(format!("line {}: {g} vs {w}", i + 1));
        }
        for (a, b) in gf.iter().zip(&wf) {
            let same = match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => close(x, y),
                _ => a == b,
            };
            if !same {
                return Some(format!("line {}: {a} vs {b}", i + 1));
            }
        }
    }
    None
}

fn train(store: &Path, out: &Path, legacy: bool) {
    let mut c = bin();
    c.args(["train", "--store"])
        .arg(store)
        .arg("--config")
        .arg(repo().join("configs/demo.toml"))
        .arg("--out")
        .arg(out)
        .args(["--set", "train.epochs=4"]);
    if legacy {
        c.args(["--set", "model.process.identical_layers=false"])
            .args(["--set", "model.clip_head.own_grad_clip=false"]);
    }
    ok(c.output().unwrap());
}

#[test]
fn demo_config_metrics_equal_the_recorded_pre_platform_run() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    ok(bin()
        .args(["synth-store", "--out"])
        .arg(&store)
        .args(["--n-train", "48", "--n-val", "24", "--n-test", "24"])
        .args([
            "--video-tokens",
            "16",
            "--audio-tokens",
            "10",
            "--image-tokens",
            "20",
        ])
        .args(["--seed", "3"])
        .output()
        .unwrap());
    let data = repo().join("train-head/tests/data");
    let legacy = tmp.path().join("legacy");
    train(&store, &legacy, true);
    let want = std::fs::read_to_string(data.join("demo_legacy_metrics.json")).unwrap();
    let got = std::fs::read_to_string(legacy.join("metrics.json")).unwrap();
    let diff = json_difference(
        &serde_json::from_str(&got).unwrap(),
        &serde_json::from_str(&want).unwrap(),
        "metrics",
    );
    assert!(
        diff.is_none(),
        "metrics.json differs from the recorded pre-platform run: {diff:?}\n{got}"
    );
    let want = std::fs::read_to_string(data.join("demo_legacy_history.csv")).unwrap();
    let got = std::fs::read_to_string(legacy.join("history.csv")).unwrap();
    let diff = history_difference(&got, &want);
    assert!(diff.is_none(), "history.csv differs: {diff:?}");

    let new = tmp.path().join("new");
    train(&store, &new, false);
    let got = std::fs::read_to_string(new.join("history.csv")).unwrap();
    assert!(
        history_difference(&got, &want).is_some(),
        "the new defaults must act"
    );
}
