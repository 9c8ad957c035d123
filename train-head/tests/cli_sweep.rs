//! `train-head sweep`: a 2-trial x 2-seed sweep run with `--jobs 2`, killed with SIGKILL and
//! resumed; the same plan run as two concurrent `--trial` processes plus `--report`; both
//! leaderboards equal the runs' metrics.json (and each other); a rerun skips every run; a grid
//! naming a DINOv3 token layer the store lacks fails before any training with the command that
//! adds it.
mod common;

use common::{bin, failed, json, ok, setup, CAUSAL_FILM, MLP_AE};
use std::path::Path;
use std::time::{Duration, Instant};

const GRID: &str = r#"
seeds = 2
[grid]
"train.lr" = [1e-2, 3e-3]
"#;

fn sweep(
    store: &Path,
    cfg: &Path,
    grid: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Command {
    let mut c = bin();
    c.args(["sweep", "--store"])
        .arg(store)
        .arg("--config")
        .arg(cfg)
        .arg("--grid")
        .arg(grid)
        .arg("--out")
        .arg(out)
        .args(["--set", "train.epochs=40"])
        .args(extra);
    c
}

/// Leaderboard rows as (trial -> the CSV's numeric columns), checked against metrics.json.
fn check_leaderboard(out: &Path) -> Vec<(String, Vec<f64>)> {
    let text = std::fs::read_to_string(out.join("leaderboard.csv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let mut rows = vec![];
    let mut last_val = f64::INFINITY;
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let trial = f[col("trial")].to_string();
        let mut val = vec![];
        let mut test = vec![];
        let mut epochs = vec![];
        for k in 0..2 {
            let m = json(
                &out.join(&trial)
                    .join(format!("seed-{k}"))
                    .join("metrics.json"),
            );
            val.push(m["val"]["auroc"].as_f64().unwrap());
            test.push(m["test"]["auroc"].as_f64().unwrap());
            epochs.push(m["best_epoch"].as_f64().unwrap());
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let std = |v: &[f64]| {
            let m = mean(v);
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
        };
        let num = |c: &str| f[col(c)].parse::<f64>().unwrap();
        assert_eq!(num("val_auroc_mean"), mean(&val), "{trial}");
        assert!((num("val_auroc_std") - std(&val)).abs() < 1e-12, "{trial}");
        assert_eq!(num("test_auroc_mean"), mean(&test), "{trial}");
        assert_eq!(num("best_epoch_mean"), mean(&epochs), "{trial}");
        assert_eq!(num("seeds_done"), 2.0);
        assert!(num("val_auroc_mean") <= last_val, "sorted by VAL mean");
        last_val = num("val_auroc_mean");
        let numbers = [
            "val_auroc_mean",
            "val_auroc_std",
            "test_auroc_mean",
            "test_auroc_std",
            "val_ap_mean",
            "test_f1_mean",
            "best_epoch_mean",
        ];
        rows.push((trial, numbers.iter().map(|c| num(c)).collect()));
    }
    assert_eq!(rows.len(), 2);
    assert!(out.join("leaderboard.md").is_file() && out.join("leaderboard.png").is_file());
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[test]
fn sweep_kill_resume_trials_report() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, cfg) = setup(tmp.path(), MLP_AE);
    let grid = tmp.path().join("grid.toml");
    std::fs::write(&grid, GRID).unwrap();

    // 1. --jobs 2, killed once a run has a checkpoint, then resumed
    let a = tmp.path().join("a");
    let mut child = sweep(&store, &cfg, &grid, &a, &["--jobs", "2"])
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let started = |d: &Path| {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .any(|t| {
                t.path().join("seed-0/last.safetensors").exists()
                    || t.path().join("seed-1/last.safetensors").exists()
            })
    };
    while !started(&a) && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500)); // the runs die with the sweep
    let finished_before: usize = std::fs::read_dir(&a)
        .unwrap()
        .flatten()
        .map(|t| {
            (0..2)
                .filter(|k| t.path().join(format!("seed-{k}/metrics.json")).exists())
                .count()
        })
        .sum();
    assert!(
        finished_before < 4,
        "the kill came too late to test a resume"
    );
    let out = ok(sweep(&store, &cfg, &grid, &a, &["--jobs", "2"])
        .output()
        .unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| rank |"), "{stdout}");
    let board_a = check_leaderboard(&a);

    // a rerun skips everything and changes no run
    let m0 = a.join(&board_a[0].0).join("seed-0/metrics.json");
    let before = std::fs::metadata(&m0).unwrap().modified().unwrap();
    let out = ok(sweep(&store, &cfg, &grid, &a, &["--jobs", "2"])
        .output()
        .unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("4 runs, 4 already finished (skipped), 0 to run"),
        "{stdout}"
    );
    assert_eq!(std::fs::metadata(&m0).unwrap().modified().unwrap(), before);

    // 2. the same plan as two concurrent --trial processes, then --report
    let b = tmp.path().join("b");
    ok(sweep(&store, &cfg, &grid, &b, &["--plan"])
        .output()
        .unwrap());
    let procs: Vec<_> = (0..2)
        .map(|i| {
            sweep(&store, &cfg, &grid, &b, &["--trial", &i.to_string()])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut p in procs {
        assert!(p.wait().unwrap().success());
    }
    ok(sweep(&store, &cfg, &grid, &b, &["--report"])
        .output()
        .unwrap());
    let board_b = check_leaderboard(&b);
    assert_eq!(
        board_a, board_b,
        "killed+resumed and per-trial sweeps must agree exactly"
    );

    // another grid into the same folder is refused
    let other = tmp.path().join("other.toml");
    std::fs::write(&other, GRID.replace("3e-3", "1e-3")).unwrap();
    let err = failed(sweep(&store, &cfg, &other, &a, &[]).output().unwrap());
    assert!(err.contains("another plan"), "{err}");
}

#[test]
fn missing_token_layer_fails_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, cfg) = setup(tmp.path(), CAUSAL_FILM);
    let grid = tmp.path().join("grid.toml");
    // the synthetic store keeps tokens of hidden states 1 and 2 only; pooled layers 0..2
    std::fs::write(
        &grid,
        r#"
[[trial]]
name = "pooled-only"
set = { "model.result.branches" = [{ layer = 0, pool = "mean" }] }
[[trial]]
name = "needs-tokens"
set = { "model.result.branches" = [{ layer = 0, pool = "gem", p0 = 3.0 }] }
"#,
    )
    .unwrap();
    let out = tmp.path().join("s");
    let err = failed(sweep(&store, &cfg, &grid, &out, &[]).output().unwrap());
    assert!(err.contains("needs-tokens"), "{err}");
    assert!(err.contains("image/tokens_L0"), "{err}");
    assert!(
        err.contains("extract run") && err.contains("--only image --dino-layers 0,1,2"),
        "{err}"
    );
    assert!(
        !out.join("t00-pooled-only").exists(),
        "nothing may train before the check"
    );
}
