//! Scoring new welds end to end (DESIGN.md "Scoring new welds"): a head trained on one synthetic
//! dataset scores a second one generated with another seed, its labels removed (a bare data root:
//! the sample folders are discovered), through `scripts/score.sh` (`extract run --like` the
//! training store, then `train-head score`). The scores rank the withheld defects above the good
//! welds, a planted broken recording is `unreadable` with its reason, and stores made with
//! another model folder or another layer set are refused naming the difference.
//!
//! Needs the `train-head` binary beside this package's `extract` (built by `scripts/build.sh`,
//! which `scripts/test.sh` runs first).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_extract");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn train_head() -> PathBuf {
    let p = Path::new(BIN).with_file_name("train-head");
    assert!(
        p.is_file(),
        "{} not built: run `bash scripts/build.sh` first (this test drives both binaries)",
        p.display()
    );
    p
}

fn show(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(what: &str, out: Output) -> Output {
    assert!(out.status.success(), "{}", show(what, &out));
    out
}

fn extract(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// `train-head train --store STORE --config CONFIG --out OUT`, which must succeed.
fn train_on(store: &Path, config: &str, out: &Path) {
    ok(
        &format!("train-head train {config}"),
        Command::new(train_head())
            .args(["train", "--store", s(store), "--config", config])
            .args(["--out", s(out)])
            .output()
            .unwrap(),
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `extract run` of the demo config with every model flag pointing into `models`.
fn run_args<'a>(models: &'a [String; 4], data: &'a Path, out: &'a Path) -> Vec<&'a str> {
    let mut a = vec!["run", "--config", "configs/extract_demo.toml"];
    a.extend(["--data-root", s(data), "--out", s(out), "--batch-size", "4"]);
    a.extend(["--vjepa", &models[0], "--ast", &models[1]]);
    a.extend(["--dinov3", &models[2], "--clip", &models[3]]);
    a
}

/// Rank AUROC (ties counted half).
fn auroc(scores: &[(f64, bool)]) -> f64 {
    let pos: Vec<f64> = scores.iter().filter(|x| x.1).map(|x| x.0).collect();
    let neg: Vec<f64> = scores.iter().filter(|x| !x.1).map(|x| x.0).collect();
    let mut sum = 0.0;
    for p in &pos {
        for n in &neg {
            sum += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    sum / (pos.len() * neg.len()) as f64
}

#[test]
fn fresh_recordings_get_a_decision_per_weld() {
    std::env::set_current_dir(repo()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (models, other) = (t.join("models"), t.join("other-models"));
    ok(
        "init-models",
        extract(&["init-models", "--out", s(&models), "--size", "tiny"]),
    );
    ok(
        "init-models --seed 1",
        extract(&[
            "init-models",
            "--out",
            s(&other),
            "--size",
            "tiny",
            "--seed",
            "1",
        ]),
    );
    let m = |d: &Path, n: &str| d.join(n).display().to_string();
    let mine = ["vjepa2", "ast", "dinov3", "clip"].map(|n| m(&models, n));

    // Training data and store: the DINOv3 image tokens the knn head reads.
    let (a, store_a) = (t.join("a"), t.join("a.zarr"));
    let synth = |out: &Path, n: &str, seed: &str| {
        ok(
            "synth",
            extract(&[
                "synth",
                "--out",
                s(out),
                "--samples",
                n,
                "--seed",
                seed,
                "--seconds",
                "3",
            ]),
        );
    };
    synth(&a, "48", "0");
    let mut args = run_args(&mine, &a, &store_a);
    args.extend(["--only", "image"]);
    ok("extract run (training store)", extract(&args));
    let run = t.join("run");
    train_on(&store_a, "configs/knn.toml", &run);

    // New recordings: another seed, labels withheld (no manifest), one broken recording.
    let (labelled, new) = (t.join("b-labelled"), t.join("b"));
    synth(&labelled, "24", "9");
    ok(
        "cp",
        Command::new("cp")
            .args(["-a", s(&labelled), s(&new)])
            .output()
            .unwrap(),
    );
    std::fs::remove_file(new.join("manifest.csv")).unwrap();
    let text = std::fs::read_to_string(labelled.join("manifest.csv")).unwrap();
    let truth: HashMap<String, bool> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[10].to_string(), !f[0].eq_ignore_ascii_case("good"))
        })
        .collect();
    let mut keys: Vec<&String> = truth.keys().collect();
    keys.sort();
    let broken = keys[5].clone();
    let imgs = new.join(&broken).join("images");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&imgs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    std::fs::write(&files[2], b"\xff\xd8 not a jpeg").unwrap();

    let out_dir = t.join("scored");
    let out = ok(
        "score.sh",
        Command::new("bash")
            .arg(repo().join("scripts/score.sh"))
            .args([s(&new), s(&run), "--out-dir", s(&out_dir)])
            .args(["--config", "configs/extract_demo.toml", "--batch-size", "4"])
            .output()
            .unwrap(),
    );
    let log = show("score.sh", &out);
    assert!(
        log.contains("sample folders discovered, UNLABELLED"),
        "{log}"
    );
    assert!(log.contains("image: copied from"), "{log}");
    let csv = std::fs::read_to_string(out_dir.join("scores.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("key,score,decision,reason"));
    let mut ranked = vec![];
    let mut rows = 0;
    for l in lines {
        rows += 1;
        let f: Vec<&str> = l.splitn(5, ',').collect();
        if f[0] == broken {
            assert_eq!(f[2], "unreadable", "{l}");
            assert!(f[1].is_empty(), "an unreadable weld has no score: {l}");
            assert!(l.contains("images"), "the reason names the modality: {l}");
        } else {
            assert!(["defect", "good"].contains(&f[2]), "{l}");
            let v: f64 = f[1].parse().unwrap();
            ranked.push((v, truth[f[0]]));
        }
    }
    assert_eq!(rows, truth.len(), "one row per discovered weld");
    let auc = auroc(&ranked);
    println!(
        "new welds: {} scored, AUROC from the withheld labels {auc:.4}",
        ranked.len()
    );
    assert!(auc > 0.75, "AUROC {auc} on the new welds");
    let r = weld_cache::store::StoreReader::open(&out_dir.join("store.zarr")).unwrap();
    let table = weld_cache::schema::sample_table(&r).unwrap();
    assert!(table
        .iter()
        .all(|r| r.split == weld_cache::schema::Split::Unlabelled && r.class_code.is_none()));

    // A late fusion of two runs scores the new store through its runs: each run's score
    // z-scored with its TRAIN statistics (from its scores.csv), summed with the weights.
    let gauss = t.join("gauss");
    train_on(&store_a, "configs/gaussian.toml", &gauss);
    let fusion = t.join("fusion");
    ok(
        "train-head train late-fusion",
        Command::new(train_head())
            .args(["train", "--config", "configs/late_fusion.toml", "--runs"])
            .args([s(&run), s(&gauss), "--out", s(&fusion)])
            .output()
            .unwrap(),
    );
    let printed = ok(
        "train-store",
        Command::new(train_head())
            .args(["train-store", "--run", s(&fusion)])
            .output()
            .unwrap(),
    );
    assert_eq!(
        PathBuf::from(String::from_utf8_lossy(&printed.stdout).trim()),
        store_a.canonicalize().unwrap()
    );
    let new_store = out_dir.join("store.zarr");
    let scored = |r: &Path, name: &str| -> HashMap<String, Option<f64>> {
        let out = t.join(name);
        ok(
            "train-head score",
            Command::new(train_head())
                .args(["score", "--run", s(r), "--store", s(&new_store)])
                .args(["--out", s(&out)])
                .output()
                .unwrap(),
        );
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.splitn(3, ',').collect();
                (f[0].to_string(), f[1].parse().ok())
            })
            .collect()
    };
    let train_stats = |r: &Path| {
        let text = std::fs::read_to_string(r.join("scores.csv")).unwrap();
        let mut rows = text.lines();
        let head: Vec<&str> = rows.next().unwrap().split(',').collect();
        let (cs, cv) = (
            head.iter().position(|h| *h == "split").unwrap(),
            head.iter().position(|h| *h == "score").unwrap(),
        );
        let v: Vec<f64> = rows
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f[cs] == "TRAIN")
            .map(|f| f[cv].parse().unwrap())
            .collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        (mean, var.sqrt())
    };
    let (fk, fg, ff) = (
        scored(&run, "knn.csv"),
        scored(&gauss, "gauss.csv"),
        scored(&fusion, "fusion.csv"),
    );
    let ((mk, sk), (mg, sg)) = (train_stats(&run), train_stats(&gauss));
    assert_eq!(ff.len(), truth.len());
    for (key, fused) in &ff {
        match (fk[key], fg[key], fused) {
            (Some(a), Some(b), Some(f)) => {
                let want = (a - mk) / sk + (b - mg) / sg;
                assert!(
                    (f - want).abs() < 1e-9 * want.abs().max(1.0),
                    "{key}: {f} vs {want}"
                );
            }
            (None, _, None) | (_, None, None) => assert_eq!(key, &broken),
            other => panic!("{key}: {other:?}"),
        }
    }

    // Another model folder under --like: refused before anything is written.
    let refused = t.join("refused.zarr");
    let theirs = [0, 1, 2, 3].map(|i| match i {
        2 => m(&other, "dinov3"),
        i => mine[i].clone(),
    });
    let mut args = run_args(&theirs, &new, &refused);
    args.extend(["--like", s(&store_a)]);
    let out = extract(&args);
    let log = show("extract --like with other weights", &out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("--dinov3") && log.contains("sha256"), "{log}");
    assert!(!refused.exists(), "nothing written: {log}");
    // A flag that contradicts the copied choices is refused.
    let mut args = run_args(&mine, &new, &refused);
    args.extend(["--like", s(&store_a), "--dino-layers", "2"]);
    let log = show("--like with --dino-layers", &extract(&args));
    assert!(log.contains("drop --dino-layers"), "{log}");

    // Stores extracted without --like: another model folder, another layer set.
    let score = |store: &Path| {
        Command::new(train_head())
            .args(["score", "--run", s(&run), "--store", s(store)])
            .args(["--out", s(&t.join("x.csv"))])
            .output()
            .unwrap()
    };
    let other_model = t.join("other-model.zarr");
    let mut args = run_args(&theirs, &new, &other_model);
    args.extend(["--only", "image"]);
    ok("extract with other weights", extract(&args));
    let out = score(&other_model);
    let log = show("score other weights", &out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("image.weights[0].sha256"), "{log}");
    let other_layers = t.join("other-layers.zarr");
    let mut args = run_args(&mine, &new, &other_layers);
    args.extend(["--only", "image", "--dino-layers", "2"]);
    ok("extract with other layers", extract(&args));
    let out = score(&other_layers);
    let log = show("score other layers", &out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("image/tokens_L3"), "{log}");
}
