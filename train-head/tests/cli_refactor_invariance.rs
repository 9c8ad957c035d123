//! The head platform changed no result: `configs/demo.toml` on a small synthetic store, with the
//! profile-fidelity knobs set to the behaviour before them (`identical_layers = false`,
//! `own_grad_clip = false`; demo.toml's schedule is the warm-up cosine it always had), gives a
//! metrics.json byte-identical to the copy recorded with the pre-platform code (commit a786f5c,
//! `train/store_source.rs`), and the same history.csv apart from wall-clock seconds. With the
//! new defaults the run differs (the knobs act).
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
    assert_eq!(
        got, want,
        "metrics.json differs from the recorded pre-platform run"
    );
    let want = std::fs::read_to_string(data.join("demo_legacy_history.csv")).unwrap();
    let got = std::fs::read_to_string(legacy.join("history.csv")).unwrap();
    assert_eq!(without_seconds(&got), without_seconds(&want));

    let new = tmp.path().join("new");
    train(&store, &new, false);
    let got = std::fs::read_to_string(new.join("history.csv")).unwrap();
    assert_ne!(
        without_seconds(&got),
        without_seconds(&want),
        "the new defaults must act"
    );
}
