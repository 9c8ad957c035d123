//! Every head of the registry trains and evaluates through `train-head train` on the synthetic
//! store (tiny sizes), writing metrics.json, scores.csv and run.json; `late-fusion` of two runs
//! equals the z-score sum computed here from their scores.csv (TRAIN mean and ddof-0 standard
//! deviation per run), and `eval` reproduces it; `compare` tabulates every run in one table.
mod common;

use common::{assert_eval_identical, bin, failed, json, ok, setup, CAUSAL_FILM, MLP_AE};
use std::collections::HashMap;
use std::path::Path;

fn train_table() -> &'static str {
    &MLP_AE[MLP_AE.find("[train]").unwrap()..]
}

fn train(dir: &Path, store: &Path, name: &str, config: &str, extra: &[&str]) -> std::path::PathBuf {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, config).unwrap();
    let out = dir.join(name);
    ok(bin()
        .args(["train", "--store"])
        .arg(store)
        .arg("--config")
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .args(extra)
        .output()
        .unwrap());
    for f in ["metrics.json", "scores.csv", "run.json", "plots/roc.png"] {
        assert!(out.join(f).exists(), "{name}: no {f}");
    }
    out
}

/// key -> (split, score) of a run's scores.csv
fn scores(run: &Path) -> HashMap<String, (String, f64)> {
    let text = std::fs::read_to_string(run.join("scores.csv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&head[..4], ["key", "split", "class", "score"]);
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), (f[1].to_string(), f[3].parse().unwrap()))
        })
        .collect()
}

#[test]
fn every_head_trains_then_fuses_and_compares() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (store, _) = setup(dir, MLP_AE);
    let t = train_table();
    let ae = |table: &str, extra: &str| {
        format!(
            "head = \"{}\"\n[{table}]\nhidden = 16\nbottleneck = 4\n{extra}\n{t}",
            table.replace('_', "-")
        )
    };
    let mut runs = vec![
        train(dir, &store, "causal-film", CAUSAL_FILM, &[]),
        train(dir, &store, "mlp-ae", MLP_AE, &[]),
        train(dir, &store, "video-ae", &ae("video_ae", ""), &[]),
        train(dir, &store, "ae-audio", &ae("ae", ""), &["--modality", "audio"]),
        train(
            dir,
            &store,
            "ae-image",
            &ae("ae", "image_layer = 2"),
            &["--modality", "image"],
        ),
        train(dir, &store, "concat-mlp", &ae("concat_mlp", "image_layer = 2"), &[]),
        train(dir, &store, "paper-audio-ae", &format!("head = \"paper-audio-ae\"\n[paper_audio_ae]\nchannels = 8\nbottleneck = 4\n{t}"), &[]),
        train(dir, &store, "paper-video-ae", &format!("head = \"paper-video-ae\"\n[paper_video_ae]\nhidden = 16\nbottleneck = 4\ntime_steps = 2\nwindow_steps = 1\n{t}"), &[]),
        train(
            dir,
            &store,
            "gaussian",
            &format!("head = \"gaussian\"\n[gaussian]\nfeatures = [{{ pooled = 2, stat = \"mean\" }}]\n{t}"),
            &[],
        ),
        train(
            dir,
            &store,
            "knn",
            &format!("head = \"knn\"\n[knn]\nlayer = 2\nskip_tokens = 1\ncoreset_ratio = 0.2\n{t}"),
            &[],
        ),
    ];
    let heads: Vec<String> = runs
        .iter()
        .map(|r| {
            json(&r.join("run.json"))["head"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        heads,
        [
            "causal-film",
            "mlp-ae",
            "video-ae",
            "ae",
            "ae",
            "concat-mlp",
            "paper-audio-ae",
            "paper-video-ae",
            "gaussian",
            "knn"
        ]
    );
    // the image AE reads the pooled layer it was given, the audio AE the audio tokens
    let ae_image = std::fs::read_to_string(runs[4].join("config.toml")).unwrap();
    assert!(ae_image.contains("modality = \"image\""), "{ae_image}");

    // ae without a modality names the flag
    let cfg = dir.join("ae-none.toml");
    std::fs::write(&cfg, ae("ae", "")).unwrap();
    let err = failed(
        bin()
            .args(["train", "--store"])
            .arg(&store)
            .arg("--config")
            .arg(&cfg)
            .arg("--out")
            .arg(dir.join("ae-none"))
            .output()
            .unwrap(),
    );
    assert!(err.contains("`modality` is required"), "{err}");

    // late fusion of Causal-FiLM and the video AE (weights 1 and 0.5), no store
    let cfg = dir.join("fusion.toml");
    std::fs::write(
        &cfg,
        "head = \"late-fusion\"\n[late_fusion]\nweights = [1.0, 0.5]\n",
    )
    .unwrap();
    let fused = dir.join("fusion");
    ok(bin()
        .args(["train", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&fused)
        .arg("--runs")
        .arg(&runs[0])
        .arg(&runs[2])
        .output()
        .unwrap());
    let parts = [(scores(&runs[0]), 1.0), (scores(&runs[2]), 0.5)];
    let stats: Vec<(f64, f64)> = parts
        .iter()
        .map(|(s, _)| {
            let t: Vec<f64> = s
                .values()
                .filter(|(sp, _)| sp == "TRAIN")
                .map(|v| v.1)
                .collect();
            let m = t.iter().sum::<f64>() / t.len() as f64;
            let var = t.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / t.len() as f64;
            (m, var.sqrt())
        })
        .collect();
    let got = scores(&fused);
    assert_eq!(got.len(), parts[0].0.len(), "every sample is fused");
    for (key, (split, score)) in &got {
        let want: f64 = parts
            .iter()
            .zip(&stats)
            .map(|((s, w), (m, sd))| w * (s[key].1 - m) / sd)
            .sum();
        assert_eq!(split, &parts[0].0[key].0);
        assert!(
            (score - want).abs() < 1e-9,
            "{key}: fused {score}, by hand {want}"
        );
    }
    let out = ok(bin().args(["eval", "--run"]).arg(&fused).output().unwrap());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("identical to"), "{err}");
    runs.push(fused);

    // one table with every run
    let table = dir.join("table");
    let out = ok(bin()
        .arg("compare")
        .arg("--runs")
        .args(&runs)
        .arg("--out")
        .arg(&table)
        .output()
        .unwrap());
    let md = String::from_utf8_lossy(&out.stdout);
    for h in [
        "causal-film",
        "video-ae",
        "concat-mlp",
        "gaussian",
        "knn",
        "late-fusion",
    ] {
        assert!(md.contains(h), "compare table lacks {h}:\n{md}");
    }
    let csv = std::fs::read_to_string(table.with_extension("csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + runs.len(), "{csv}");
    assert!(table.with_extension("png").exists());
}

/// `resplit --by-session` writes a split that keeps each session on one side (the synthetic
/// store's sessions are blocks of 8 samples); training with `--split-file` uses it (scores.csv
/// holds its splits), `eval` reproduces the run from the recorded `split_file`, and a split file
/// naming keys of another store is refused.
#[test]
fn resplit_by_session_and_split_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (store, cfg) = setup(dir, MLP_AE);
    let split = dir.join("split.csv");
    let out = ok(bin()
        .args(["resplit", "--by-session", "--store"])
        .arg(&store)
        .arg("--out")
        .arg(&split)
        .output()
        .unwrap());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("0 of 12 sessions on more than one side"),
        "{text}"
    );
    let want: HashMap<String, String> = std::fs::read_to_string(&split)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (k, s) = l.split_once(',').unwrap();
            (k.to_string(), s.to_string())
        })
        .collect();
    assert_eq!(want.len(), 96);
    let run = dir.join("run");
    ok(bin()
        .args(["train", "--store"])
        .arg(&store)
        .arg("--config")
        .arg(&cfg)
        .arg("--out")
        .arg(&run)
        .arg("--split-file")
        .arg(&split)
        .output()
        .unwrap());
    let got = scores(&run);
    assert_eq!(got.len(), 96);
    for (k, (s, _)) in &got {
        assert_eq!(&want[k], s, "{k}");
    }
    assert_eval_identical(&store, &run);
    // a split file for another store
    let other = dir.join("other.csv");
    std::fs::write(
        &other,
        format!(
            "key,split\nnot/a/sample,TRAIN\n{}",
            std::fs::read_to_string(&split)
                .unwrap()
                .split_once('\n')
                .unwrap()
                .1
        ),
    )
    .unwrap();
    let err = failed(
        bin()
            .args(["train", "--store"])
            .arg(&store)
            .arg("--config")
            .arg(&cfg)
            .arg("--out")
            .arg(dir.join("bad"))
            .arg("--split-file")
            .arg(&other)
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("keys the store does not hold (first: `not/a/sample`)"),
        "{err}"
    );
}

/// A store of "new welds": the same process, other samples (another sample seed), no labels, one broken recording (sample 3's video).
fn new_welds(path: &Path, unlabelled: bool) {
    use weld_cache::features::synth_store::{write_synth_store, SynthStoreSpec};
    let spec = SynthStoreSpec {
        sensor_len: 32,
        sample_seed: Some(8),
        unlabelled,
        faulted: vec![3],
        ..SynthStoreSpec::default()
    };
    write_synth_store(path, &spec).unwrap();
}

/// `train-head score --run RUN --store STORE --out OUT`.
fn score_with(run: &Path, store: &Path, out: &Path) -> std::process::Output {
    bin()
        .args(["score", "--run"])
        .arg(run)
        .arg("--store")
        .arg(store)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// Rank AUROC (ties counted half).
fn auroc(scores: &[(f64, bool)]) -> f64 {
    let pos: Vec<f64> = scores.iter().filter(|s| s.1).map(|s| s.0).collect();
    let neg: Vec<f64> = scores.iter().filter(|s| !s.1).map(|s| s.0).collect();
    let mut wins = 0.0;
    for p in &pos {
        for n in &neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (pos.len() * neg.len()) as f64
}

/// `score` on a second synthetic dataset without labels: the scores rank its defects (labels
/// withheld, read from the labelled twin of the same seed) above its good welds, the broken
/// recording is `unreadable` with its reason, the decision follows the VAL threshold; a store
/// extracted differently (provenance) or with other shapes is refused, naming the difference.
#[test]
fn score_new_welds() {
    use weld_cache::store::FeatureStore;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (store, cfg) = setup(dir, MLP_AE);
    let run = train(dir, &store, "mlp-ae", MLP_AE, &[]);
    let new = dir.join("new");
    new_welds(&new, true);
    let twin = dir.join("twin");
    new_welds(&twin, false);
    let out = dir.join("scores.csv");
    let printed = ok(score_with(&run, &new, &out));
    let printed = String::from_utf8_lossy(&printed.stdout).to_string();
    assert!(printed.contains("1 unreadable"), "{printed}");
    let labels: HashMap<String, bool> =
        weld_cache::schema::sample_table(&weld_cache::store::StoreReader::open(&twin).unwrap())
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.class_code != Some(0)))
            .collect();
    let threshold = json(&run.join("metrics.json"))["val"]["threshold"]
        .as_f64()
        .unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), "key,score,decision,reason");
    let mut ranked = vec![];
    for l in lines {
        let f: Vec<&str> = l.splitn(4, ',').collect();
        let id = f[0].strip_prefix("new/").unwrap();
        if id == "00003" {
            assert_eq!(f[1], "");
            assert_eq!(f[2], "unreadable");
            assert!(
                f[3].contains("video") && f[3].contains("cannot be decoded"),
                "{l}"
            );
            continue;
        }
        let s: f64 = f[1].parse().unwrap();
        assert_eq!(f[2], if s > threshold { "defect" } else { "good" }, "{l}");
        ranked.push((s, labels[id]));
    }
    assert_eq!(ranked.len(), 95);
    let a = auroc(&ranked);
    println!("new welds: AUROC from the withheld labels {a:.4}");
    assert!(a > 0.8, "AUROC {a}");

    // another extraction: the image stage's provenance differs (weights of another model)
    let prov = |store: &Path, sha: &str| {
        let s = FeatureStore::open(store).unwrap();
        let mut m = serde_json::Map::new();
        m.insert(
            "provenance".into(),
            serde_json::json!({"weights": [{"file": "model.safetensors", "sha256": sha}],
                               "model_dir": store.display().to_string()}),
        );
        s.write_group_attrs("image", m).unwrap();
    };
    prov(&store, "aaaa");
    prov(&new, "bbbb");
    let err = failed(score_with(&run, &new, &dir.join("x.csv")));
    assert!(
        err.contains("image.weights[0].sha256: \"aaaa\" vs \"bbbb\""),
        "{err}"
    );
    assert!(!dir.join("x.csv").exists());
    // the same weights in another folder is the same extraction (model_dir is not compared)
    prov(&new, "aaaa");
    ok(score_with(&run, &new, &dir.join("y.csv")));
    // other shapes (another layer set / model width)
    let other = dir.join("other");
    weld_cache::features::synth_store::write_synth_store(
        &other,
        &weld_cache::features::synth_store::SynthStoreSpec {
            sensor_len: 32,
            layers: 3,
            ..Default::default()
        },
    )
    .unwrap();
    let err = failed(score_with(&run, &other, &dir.join("z.csv")));
    assert!(err.contains("`image/pooled` has sample shape"), "{err}");
    let _ = cfg;
}

/// `supcon` (labelled defects in TRAIN): refused on the shipped all-good TRAIN with the command
/// that fixes it; trained on `resplit --by-session --supervised` with `--split-file`, it writes
/// the k-NN classification metrics beside the detection metrics, ranks TEST defects well above
/// chance, `eval` reproduces it from the checkpoint (which carries the TRAIN bank), and `score`
/// scores new welds from the checkpoint alone.
#[test]
fn supcon_on_a_supervised_split() {
    use weld_cache::features::synth_store::{write_synth_store, SynthStoreSpec};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // VAL and TEST of 48: enough defective sessions for a supervised split with defects on
    // every side (the default 24 leave VAL without one)
    let store = dir.join("store");
    let spec = SynthStoreSpec {
        n_val: 48,
        n_test: 48,
        sensor_len: 32,
        ..SynthStoreSpec::default()
    };
    write_synth_store(&store, &spec).unwrap();
    let cfg = dir.join("supcon.toml");
    std::fs::write(&cfg, SUPCON).unwrap();
    let train = |out: &Path, extra: &[&std::ffi::OsStr]| {
        bin()
            .args(["train", "--store"])
            .arg(&store)
            .arg("--config")
            .arg(&cfg)
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .unwrap()
    };
    let err = failed(train(&dir.join("refused"), &[]));
    assert!(
        err.contains("train-head resplit --store")
            && err.contains("--by-session --supervised")
            && err.contains("--split-file"),
        "{err}"
    );
    let split = dir.join("split.csv");
    let out = ok(bin()
        .args(["resplit", "--by-session", "--supervised", "--store"])
        .arg(&store)
        .arg("--out")
        .arg(&split)
        .output()
        .unwrap());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("TRAIN 80 (24 defective), VAL 24 (8 defective), TEST 40 (16 defective)"),
        "{text}"
    );
    let run = dir.join("supcon");
    ok(train(&run, &["--split-file".as_ref(), split.as_os_str()]));
    let m = json(&run.join("metrics.json"));
    for s in ["val", "test"] {
        let c = &m[s]["classification"];
        for k in ["accuracy", "macro_f1"] {
            let v = c[k].as_f64().unwrap_or(-1.0);
            assert!((0.0..=1.0).contains(&v), "{s}.classification.{k} = {v}");
        }
        assert!(
            c["per_class_f1"].as_object().is_some_and(|o| o.len() >= 2),
            "{s}: {c}"
        );
    }
    let (a, acc) = (
        m["test"]["auroc"].as_f64().unwrap(),
        m["test"]["classification"]["accuracy"].as_f64().unwrap(),
    );
    println!("supcon: TEST AUROC {a:.4}, k-NN accuracy {acc:.4}");
    assert!(a > 0.9, "TEST AUROC {a}");
    let head: Vec<String> = std::fs::read_to_string(run.join("scores.csv"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    assert_eq!(
        head,
        ["key", "split", "class", "score", "pred_class", "p_defect"]
    );
    assert_eval_identical(&store, &run);
    // new welds (shapes of the training store), scored from the checkpoint's bank
    let new = dir.join("new");
    new_welds(&new, true);
    let printed = ok(score_with(&run, &new, &dir.join("new.csv")));
    let printed = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.contains("1 unreadable"), "{printed}");
}

const SUPCON: &str = r#"
head = "supcon"

[supcon]
image_layer = 2
d_model = 32
fusion_tokens = 4
heads = 4
ff = 64
proj_hidden = 32
embed_dim = 16
temperature = 0.07

[train]
epochs = 6
batch_size = 16
eval_batch_size = 64
drop_last = false
lr = 1e-3
min_lr = 1e-5
warmup_epochs = 1
warmup_start_lr = 1e-4
weight_decay = 1e-2
betas = [0.9, 0.999]
eps = 1e-8
grad_clip = 1.0
ema = true
ema_max_decay = 0.9999
patience = 20
seed = 42
schedule = "warmup_cosine"
"#;
