//! The fit-once `gaussian` head (Ledoit-Wolf mean and covariance of pooled features, squared
//! Mahalanobis score) trained through the registry on a synthetic store equals scikit-learn's
//! `LedoitWolf` on the same features (`tests/oracle/gaussian_sklearn.py`): every sample's score
//! and the fitted shrinkage.
mod heads_common;

use heads_common::run_oracle;
use std::collections::HashMap;
use weld_cache::features::synth_store::{write_synth_store, SynthStoreSpec};
use weld_cache::heads::registry;
use weld_cache::train::{FitOutcome, Outcome, RunOptions, Setup, Task};

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

#[test]
fn gaussian_equals_sklearn_ledoit_wolf() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    write_synth_store(&store, &SynthStoreSpec::default()).unwrap();
    let doc: toml::Value = toml::from_str(CONFIG).unwrap();
    let setup = Setup {
        doc: &doc,
        store: &store,
        device: tch::Device::Cpu,
        resident: false,
        verbose: false,
    };
    let out = tmp.path().join("run");
    let opts = RunOptions {
        out: out.clone(),
        fingerprint: String::new(),
        config_text: CONFIG.into(),
        resume: false,
        max_epochs_this_run: None,
    };
    let task = Task::Train {
        opts,
        on_event: &mut |_| {},
    };
    let ev = match registry::run(&setup, task).unwrap() {
        Outcome::Trained(FitOutcome::Finished(ev)) => ev,
        _ => panic!("gaussian is fitted in one call"),
    };
    let refp = tmp.path().join("ref.json");
    run_oracle(
        "gaussian_sklearn.py",
        &[store.to_str().unwrap(), "2", refp.to_str().unwrap()],
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&refp).unwrap()).unwrap();
    let want: HashMap<String, f64> = r["keys"]
        .as_array()
        .unwrap()
        .iter()
        .zip(r["scores"].as_array().unwrap())
        .map(|(k, s)| (k.as_str().unwrap().to_string(), s.as_f64().unwrap()))
        .collect();
    let mut worst = 0f64;
    for sc in [&ev.train, &ev.val, &ev.test] {
        for (k, s) in sc.keys.iter().zip(&sc.scores) {
            let w = want[k];
            worst = worst.max((s - w).abs() / w.abs().max(1e-12));
        }
    }
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
