//! The fit-once heads trained through the registry on a synthetic store equal their references
//! on the same features: `gaussian` (Ledoit-Wolf mean and covariance of pooled features, squared
//! Mahalanobis score) equals scikit-learn's `LedoitWolf` (`tests/oracle/gaussian_sklearn.py`):
//! every sample's score and the fitted shrinkage; `knn` (greedy coreset of DINOv3 patch tokens,
//! max nearest-neighbour distance) equals NumPy (`tests/oracle/knn_numpy.py`): the coreset
//! indices and every sample's score.
mod heads_common;

use heads_common::run_oracle;
use std::collections::HashMap;
use std::path::Path;
use weld_cache::features::synth_store::{write_synth_store, SynthStoreSpec};
use weld_cache::heads::registry;
use weld_cache::train::{Evaluation, FitOutcome, Outcome, RunOptions, Setup, Task};

const CONFIG: &str = r#"
head = "gaussian"
[gaussian]
features = [{ pooled = 2, stat = "mean" }, { array = "video/tokens" }]
[train]
epochs = 1
batch_size = 16
eval_batch_size = 7
drop_last = false
lr = 1.0
min_lr = 0.0
warmup_epochs = 0
warmup_start_lr = 0.0
weight_decay = 0.0
betas = [0.9, 0.999]
eps = 1e-8
grad_clip = 1.0
ema = false
ema_max_decay = 0.9
patience = 1
seed = 1
"#;

/// Fits the head of `config` (a fit-once head) on `store` into `out` through the registry.
fn fit_once(store: &Path, out: &Path, config: &str) -> Box<Evaluation> {
    let doc: toml::Value = toml::from_str(config).unwrap();
    let setup = Setup {
        doc: &doc,
        store,
        device: tch::Device::Cpu,
        resident: false,
        verbose: false,
    };
    let opts = RunOptions {
        out: out.to_path_buf(),
        fingerprint: String::new(),
        config_text: config.into(),
        resume: false,
        max_epochs_this_run: None,
    };
    let task = Task::Train {
        opts,
        on_event: &mut |_| {},
    };
    match registry::run(&setup, task).unwrap() {
        Outcome::Trained(FitOutcome::Finished(ev)) => ev,
        _ => panic!("a fit-once head is fitted in one call"),
    }
}

fn reference_scores(r: &serde_json::Value) -> HashMap<String, f64> {
    r["keys"]
        .as_array()
        .unwrap()
        .iter()
        .zip(r["scores"].as_array().unwrap())
        .map(|(k, s)| (k.as_str().unwrap().to_string(), s.as_f64().unwrap()))
        .collect()
}

/// The largest relative difference between the run's scores and the reference's.
fn worst_relative(ev: &Evaluation, want: &HashMap<String, f64>) -> f64 {
    let mut worst = 0f64;
    for sc in [&ev.train, &ev.val, &ev.test] {
        for (k, s) in sc.keys.iter().zip(&sc.scores) {
            let w = want[k];
            worst = worst.max((s - w).abs() / w.abs().max(1e-12));
        }
    }
    worst
}

#[test]
fn knn_equals_numpy_coreset_and_distances() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    write_synth_store(&store, &SynthStoreSpec::default()).unwrap();
    let config = CONFIG.replace(
        "head = \"gaussian\"\n[gaussian]\nfeatures = [{ pooled = 2, stat = \"mean\" }, { array = \"video/tokens\" }]",
        "head = \"knn\"\n[knn]\nlayer = 2\nskip_tokens = 1\ncoreset_ratio = 0.1\nchunk = 7",
    );
    assert!(config.contains("[knn]"));
    let out = tmp.path().join("run");
    let ev = fit_once(&store, &out, &config);
    let refp = tmp.path().join("ref.json");
    run_oracle(
        "knn_numpy.py",
        &[
            store.to_str().unwrap(),
            "2",
            "1",
            "0.1",
            refp.to_str().unwrap(),
        ],
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&refp).unwrap()).unwrap();
    let (tensors, _) = weld_cache::train::checkpoint::load(&out.join("best.safetensors")).unwrap();
    let got: Vec<i64> = Vec::try_from(&tensors["model.coreset_index"]).unwrap();
    let want: Vec<i64> = r["coreset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    // 48 TRAIN samples x 5 views x 5 patches = 1200 bank rows -> 120 coreset rows
    assert_eq!(want.len(), 120);
    assert_eq!(got, want, "coreset indices differ from NumPy's");
    let worst = worst_relative(&ev, &reference_scores(&r));
    println!("knn vs numpy: max relative error {worst:.2e}");
    assert!(worst < 1e-4, "max relative error {worst}");
    assert!(
        ev.metrics.test.auroc > 0.8,
        "TEST AUROC {}",
        ev.metrics.test.auroc
    );
}

#[test]
fn gaussian_equals_sklearn_ledoit_wolf() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    write_synth_store(&store, &SynthStoreSpec::default()).unwrap();
    let out = tmp.path().join("run");
    let ev = fit_once(&store, &out, CONFIG);
    let refp = tmp.path().join("ref.json");
    run_oracle(
        "gaussian_sklearn.py",
        &[store.to_str().unwrap(), "2", refp.to_str().unwrap()],
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&refp).unwrap()).unwrap();
    let worst = worst_relative(&ev, &reference_scores(&r));
    println!("gaussian vs sklearn: max relative error {worst:.2e}");
    assert!(worst < 1e-6, "max relative error {worst}");
    // the shrinkage is stored in the checkpoint; eval from it reproduces metrics.json
    let (tensors, _) = weld_cache::train::checkpoint::load(&out.join("best.safetensors")).unwrap();
    let shrink = tensors["model.shrinkage"].double_value(&[0]);
    let want = r["shrinkage"].as_f64().unwrap();
    assert!(
        (shrink - want).abs() < 1e-9,
        "shrinkage {shrink} vs sklearn {want}"
    );
    assert!(
        ev.metrics.test.auroc > 0.8,
        "TEST AUROC {}",
        ev.metrics.test.auroc
    );
}
