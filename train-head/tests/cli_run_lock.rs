//! Two `train-head train` processes into one `--out`: the second is refused while the first
//! holds the run folder's lock, and the first finishes untouched.
mod common;

use common::{bin, failed, ok, setup, MLP_AE};
use std::time::{Duration, Instant};

#[test]
fn second_training_into_one_run_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, cfg) = setup(tmp.path(), MLP_AE);
    let run = tmp.path().join("run");
    let train = || {
        let mut c = bin();
        c.args(["train", "--store"])
            .arg(&store)
            .arg("--config")
            .arg(&cfg)
            .arg("--out")
            .arg(&run)
            // every epoch runs (no early stop), so the first process is still training when
            // the second starts (with the default patience it stopped within a second and
            // released the lock first: the second then met its checkpoint, not its lock)
            .args(["--set", "train.epochs=200", "--set", "train.patience=1000"]);
        c
    };
    let first = train().stdout(std::process::Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    // config.toml is written after the lock is taken
    while !run.join("config.toml").exists() && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = failed(train().output().unwrap());
    assert!(
        err.contains("another train-head process is writing this run"),
        "{err}"
    );
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(run.join("metrics.json").is_file() && run.join("scores.csv").is_file());
    // once the first is done, the folder is free again: a resume of the finished run works
    ok(train().arg("--resume").output().unwrap());
}
