//! `train-head train` / `eval` end to end with the `mlp-ae` head on a synthetic store: outputs
//! (metrics.json, scores.csv, run.json, plots), `--set`, stop + `--resume` equal to an
//! uninterrupted run, `eval` reproducing metrics.json, a run killed mid-way resuming to the same
//! result, and a refused resume naming the changed key.
mod common;

use common::{bin, json, ok, setup, MLP_AE};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};

fn train(store: &Path, cfg: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut c = bin();
    c.args(["train", "--store"])
        .arg(store)
        .arg("--config")
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .args(["--set", "train.epochs=5"])
        .args(extra);
    c.output().unwrap()
}

fn history(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("history.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn train_resume_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, cfg_path) = setup(tmp.path(), MLP_AE);
    let train = |out: &Path, extra: &[&str]| train(&store, &cfg_path, out, extra);
    let (a, r) = (tmp.path().join("a"), tmp.path().join("r"));
    let out = ok(train(&a, &[]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("val auroc raw").count(), 5, "{stdout}");
    assert!(stdout.contains("TEST"), "{stdout}");
    let cfg = std::fs::read_to_string(a.join("config.toml")).unwrap();
    assert!(cfg.contains("epochs = 5"), "{cfg}");
    assert_eq!(history(&a).lines().count(), 6);
    for p in [
        "plots/roc.png",
        "plots/scores_by_class.png",
        "plots/loss.png",
    ] {
        assert!(a.join(p).is_file(), "{p}");
    }
    let m = json(&a.join("metrics.json"));
    for k in [
        "auroc",
        "ap",
        "f1",
        "precision",
        "recall",
        "threshold",
        "per_class",
    ] {
        assert!(!m["val"][k].is_null() && !m["test"][k].is_null(), "{k}");
    }
    assert_eq!(m["val"]["threshold"], m["test"]["threshold"]);
    // scores.csv: TRAIN, VAL and TEST of the default synthetic store (48 / 24 / 24)
    let scores = std::fs::read_to_string(a.join("scores.csv")).unwrap();
    assert_eq!(scores.lines().next().unwrap(), "key,split,class,score");
    assert_eq!(scores.lines().count(), 1 + 48 + 24 + 24);
    assert_eq!(scores.lines().filter(|l| l.contains(",VAL,")).count(), 24);
    let info = json(&a.join("run.json"));
    assert_eq!(info["head"], "mlp-ae");
    assert_eq!(info["learner"], "gradient");

    // stop after 2 epochs, then resume: identical to the uninterrupted run
    let out = ok(train(&r, &["--stop-after-epochs", "2"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--resume"));
    assert!(!r.join("metrics.json").exists());
    ok(train(&r, &["--resume"]));
    assert_eq!(history(&a), history(&r));
    assert_eq!(json(&a.join("metrics.json")), json(&r.join("metrics.json")));

    // killed (SIGKILL) during the run, then resumed: identical as well
    let k = tmp.path().join("k");
    let mut child = bin()
        .args(["train", "--store"])
        .arg(&store)
        .arg("--config")
        .arg(&cfg_path)
        .arg("--out")
        .arg(&k)
        .args(["--set", "train.epochs=5"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        if line.unwrap().starts_with("epoch   2/") {
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
    assert!(k.join("last.safetensors").is_file());
    ok(train(&k, &["--resume"]));
    assert_eq!(history(&a), history(&k));
    assert_eq!(json(&a.join("metrics.json")), json(&k.join("metrics.json")));

    // eval reproduces metrics.json for both splits
    for (split, key) in [("VAL", "val"), ("TEST", "test")] {
        let out = ok(bin()
            .args(["eval", "--store"])
            .arg(&store)
            .arg("--run")
            .arg(&a)
            .args(["--split", split])
            .output()
            .unwrap());
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(got, m[key], "{split}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("identical to"));
    }

    // a fresh run over an existing one, an unknown --set key, and a store path are refused
    let out = train(&a, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
    // a resume with another config names the changed key
    let out = train(&r, &["--resume", "--set", "train.lr=0.5"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("train.lr = 0.01 -> 0.5"), "{err}");
    let out = train(&tmp.path().join("x"), &["--set", "train.lr_typo=1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lr_typo"));
    let out = bin()
        .args(["eval", "--store", "/nonexistent/store", "--run"])
        .arg(&a)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn a_cuda_device_without_gpu_is_a_clear_error_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, cfg_path) = setup(tmp.path(), MLP_AE);
    let out = tmp.path().join("r");
    // `cuda` where no GPU is visible; past the visible devices where one is.
    let dev = if tch::Cuda::is_available() {
        "cuda:64"
    } else {
        "cuda"
    };
    let o = train(&store, &cfg_path, &out, &["--device", dev]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "an error, not a panic:\n{err}");
    assert!(err.contains(&format!("--device {dev}")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "nothing written before the device check");
}

/// A store named by a bare relative path (`--out st`, parent folder "") is written in the current
/// folder (the directory fsync after the final rename used to open "" and fail, leaving `st`).
#[test]
fn store_at_a_bare_relative_name() {
    let dir = tempfile::tempdir().unwrap();
    ok(bin()
        .current_dir(dir.path())
        .args(["synth-store", "--out", "st"])
        .args(["--n-train", "8", "--n-val", "4", "--n-test", "4"])
        .output()
        .unwrap());
    assert!(dir.path().join("st/zarr.json").is_file());
}
