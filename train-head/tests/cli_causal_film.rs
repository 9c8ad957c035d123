//! `train-head train` / `eval` with the Causal-FiLM head on a small synthetic feature store
//! (written with `FeatureStore` in the extractor's schema, planted defects): outputs, eval
//! reproducing metrics.json (memory-mapped and resident), determinism, stop + resume, the
//! head-scoped fingerprint (an unrelated new array keeps it, another store is refused), dims
//! mismatches, incomplete samples and a defective TRAIN sample.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use weld_cache::features::synth_store::{write_synth_store, SynthStoreSpec};
use weld_cache::store::{ArraySpec, FeatureStore, StoreDtype};

mod common;
use common::CAUSAL_FILM as CONFIG;

/// The default synthetic store with short sensor series (the Mamba scan dominates CPU time).
fn small() -> SynthStoreSpec {
    SynthStoreSpec {
        sensor_len: 32,
        ..SynthStoreSpec::default()
    }
}

/// One intra-op thread: the two tests run side by side on a 2-core machine.
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_train-head"));
    c.env("OMP_NUM_THREADS", "1");
    c
}

fn setup(dir: &Path, spec: &SynthStoreSpec) -> (PathBuf, PathBuf) {
    let store = dir.join("store");
    write_synth_store(&store, spec).unwrap();
    let cfg = dir.join("tiny.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    (store, cfg)
}

fn train(store: &Path, cfg: &Path, out: &Path, extra: &[&str]) -> Output {
    bin()
        .args(["train", "--store"])
        .arg(store)
        .arg("--config")
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn eval(store: &Path, run: &Path, split: &str, extra: &[&str]) -> Output {
    bin()
        .args(["eval", "--store"])
        .arg(store)
        .arg("--run")
        .arg(run)
        .args(["--split", split])
        .args(extra)
        .output()
        .unwrap()
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "train-head failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn failed(out: Output) -> String {
    assert!(
        !out.status.success(),
        "expected a failure:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// history.csv without its `seconds` column.
fn history(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("history.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn assert_eval_reproduces(store: &Path, run: &Path, extra: &[&str]) {
    let m = json(&run.join("metrics.json"));
    for (split, key) in [("VAL", "val"), ("TEST", "test")] {
        let out = ok(eval(store, run, split, extra));
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(got, m[key], "{split} {extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("identical to"), "{err}");
    }
}

#[test]
fn causal_film_train_eval_determinism_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, cfg) = setup(tmp.path(), &small());
    let a = tmp.path().join("a");
    let out = ok(train(&store, &cfg, &a, &[]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // per-module parameter table (stderr); the frozen CLIP head counts 0 trainable parameters
    for module in [
        "sensor",
        "video_proj",
        "audio_proj",
        "process",
        "result",
        "decoder",
    ] {
        let line = stderr.lines().find(|l| l.starts_with(module)).unwrap();
        let n: i64 = line
            .split_whitespace()
            .nth(1)
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap();
        assert!(n > 0, "{line}");
    }
    let clip_line = stderr.lines().find(|l| l.starts_with("clip_head")).unwrap();
    assert_eq!(clip_line.split_whitespace().nth(1), Some("0"), "{stderr}");
    assert!(
        stderr.contains("TRAIN: 48 samples (0 defective)"),
        "{stderr}"
    );
    assert_eq!(stdout.matches("z_result_spread").count(), 10, "{stdout}");
    let header = std::fs::read_to_string(a.join("history.csv")).unwrap();
    assert!(header.lines().next().unwrap().contains("z_result_spread"));
    assert_eq!(history(&a).lines().count(), 11);
    for p in [
        "config.toml",
        "best.safetensors",
        "last.safetensors",
        "metrics.json",
        "plots/roc.png",
        "plots/scores_by_class.png",
        "plots/loss.png",
    ] {
        assert!(a.join(p).is_file(), "{p}");
    }
    let m = json(&a.join("metrics.json"));
    // the planted defects are learnable: above chance after 10 epochs (24 samples per split)
    let val_auroc = m["val"]["auroc"].as_f64().unwrap();
    let test_auroc = m["test"]["auroc"].as_f64().unwrap();
    assert!(val_auroc > 0.75, "VAL I-AUROC {val_auroc}");
    assert!(test_auroc > 0.5, "TEST I-AUROC {test_auroc}");
    assert_eval_reproduces(&store, &a, &[]);
    assert_eval_reproduces(&store, &a, &["--resident"]);

    // determinism, --resident and resume in one run: the same seed and store, resident
    // batches, stopped after 4 epochs and resumed -> the history and metrics of run `a`
    let b = tmp.path().join("b");
    let out = ok(train(
        &store,
        &cfg,
        &b,
        &["--resident", "--stop-after-epochs", "4"],
    ));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--resume"));
    assert!(!b.join("metrics.json").exists());
    ok(train(&store, &cfg, &b, &["--resident", "--resume"]));
    assert_eq!(history(&a), history(&b));
    assert_eq!(json(&a.join("metrics.json")), json(&b.join("metrics.json")));

    // an array this head does not read (another DINOv3 token layer) keeps the fingerprint
    let s = FeatureStore::open(&store).unwrap();
    let spec = ArraySpec::new("image/tokens_L0", &[5, 6, 8], StoreDtype::F16);
    s.ensure_array(&spec).unwrap();
    for i in 0..s.n_samples() {
        s.write_sample("image/tokens_L0", i, &[0.5; 240]).unwrap();
        s.mark_done("image/tokens_L0", i).unwrap();
    }
    assert_eval_reproduces(&store, &a, &[]);
}

#[test]
fn causal_film_refuses_other_store_bad_dims_bad_train() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, cfg) = setup(tmp.path(), &small());
    let a = tmp.path().join("a");
    ok(train(&store, &cfg, &a, &["--set", "train.epochs=2"]));

    // another store (same schema, other data): eval and resume refuse it
    let other = tmp.path().join("other");
    let spec = SynthStoreSpec { seed: 8, ..small() };
    write_synth_store(&other, &spec).unwrap();
    let err = failed(eval(&other, &a, "TEST", &[]));
    assert!(err.contains("refusing store"), "{err}");
    let err = failed(train(
        &other,
        &cfg,
        &a,
        &["--set", "train.epochs=2", "--resume"],
    ));
    assert!(err.contains("refusing store"), "{err}");

    // model dims must match the store's: the message names the key and the store's shape
    let x = tmp.path().join("x");
    let err = failed(train(&store, &cfg, &x, &["--set", "model.video_dim=12"]));
    assert!(
        err.contains("model.video_dim") && err.contains("[4, 8]"),
        "{err}"
    );
    let err = failed(train(
        &store,
        &cfg,
        &x,
        &["--set", "model.clip_head.text_dim=32"],
    ));
    assert!(
        err.contains("model.clip_head.text_dim") && err.contains("dim 16"),
        "{err}"
    );
    let err = failed(train(&store, &cfg, &x, &["--set", "model.n_views=4"]));
    assert!(err.contains("model.n_views"), "{err}");

    // an incomplete VAL sample (its video marker gone) is excluded with a warning
    let marker = store.join("video/tokens/_markers/48.json");
    std::fs::remove_file(&marker).unwrap();
    let out = ok(train(
        &store,
        &cfg,
        &x,
        &["--set", "train.epochs=1", "--set", "train.warmup_epochs=0"],
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("VAL: 1 of 24 samples are incomplete"), "{err}");
    assert!(err.contains("VAL: 23 samples"), "{err}");

    // a defective TRAIN sample is refused, naming it
    let bad = tmp.path().join("bad");
    let spec = SynthStoreSpec {
        train_defects: 1,
        n_train: 8,
        n_val: 4,
        n_test: 4,
        ..small()
    };
    write_synth_store(&bad, &spec).unwrap();
    let err = failed(train(&bad, &cfg, &tmp.path().join("y"), &[]));
    assert!(
        err.contains("TRAIN sample 0") && err.contains("good"),
        "{err}"
    );
}
