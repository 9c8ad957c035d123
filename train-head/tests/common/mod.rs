//! Helpers shared by the train-head CLI tests: a small synthetic store, an `mlp-ae` config that
//! trains in about a second, and process helpers.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use weld_cache::features::synth_store::{write_synth_store, SynthStoreSpec};

/// `mlp-ae` on two pooled inputs of the default synthetic store (image layer 2 mean, video).
pub const MLP_AE: &str = r#"
head = "mlp-ae"

[mlp_ae]
hidden = 16
bottleneck = 4
input_dropout = 0.1
features = [{ pooled = 2, stat = "mean" }, { array = "video/tokens" }]

[train]
epochs = 6
batch_size = 16
eval_batch_size = 32
drop_last = false
lr = 1e-2
min_lr = 1e-5
warmup_epochs = 1
warmup_start_lr = 1e-4
weight_decay = 1e-2
betas = [0.9, 0.999]
eps = 1e-8
grad_clip = 0.5
ema = true
ema_max_decay = 0.9999
patience = 20
seed = 42
schedule = "warmup_cosine"
"#;

/// One intra-op thread: tests run side by side on a 2-core machine.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_train-head"));
    c.env("OMP_NUM_THREADS", "1");
    c
}

/// Writes the default synthetic store (short sensor series) and `config` under `dir`.
pub fn setup(dir: &Path, config: &str) -> (PathBuf, PathBuf) {
    let store = dir.join("store");
    let spec = SynthStoreSpec {
        sensor_len: 32,
        ..SynthStoreSpec::default()
    };
    write_synth_store(&store, &spec).unwrap();
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, config).unwrap();
    (store, cfg)
}

pub fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "train-head failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn failed(out: Output) -> String {
    assert!(
        !out.status.success(),
        "expected a failure:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A tiny Causal-FiLM (every key required by the config parser) for the default synthetic
/// store: widths 8, 5 views, 6 tokens per view, hidden states 0..2 with tokens of 1 and 2.
pub const CAUSAL_FILM: &str = r#"
head = "causal-film"

[model]
d_model = 16
proj_hidden = 16
video_dim = 8
audio_dim = 8
image_dim = 8
n_views = 5
sensor_channels = 6
sensor_hidden = 8
sensor_norm = "train"
feature_dropout = 0.1
feature_mask = 0.1

[model.mamba]
layers = 1
d_state = 4
d_conv = 4
expand = 2
dt_rank = 1
dt_min = 0.001
dt_max = 0.1
dt_init_floor = 0.0001

[model.process]
layers = 1
heads = 2
ff = 32
dropout = 0.1

[model.result]
branches = [
  { layer = 1, pool = "mean" },
  { layer = 1, pool = "gem", p0 = 3.0 },
  { layer = 2, pool = "max" },
]
gate_reduction = 4
hidden = 16
gem_eps = 1e-6

[model.decoder]
act = "silu"
dropout = 0.1

[model.clip_head]
trainable = false
hidden = 8
text_dim = 16
dropout = 0.1

[loss]
cos_weight = 1.0
gram_weight = 1.0
clip_weight = 0.01
rec = { kind = "smooth_l1_topk", weight = 1.0, beta = 0.1, topk = 0.5 }
score = { topk = 0.5, weight = 10.0 }

[train]
epochs = 10
batch_size = 16
eval_batch_size = 16
drop_last = false
lr = 3e-3
min_lr = 1e-5
warmup_epochs = 1
warmup_start_lr = 1e-4
weight_decay = 1e-2
betas = [0.9, 0.999]
eps = 1e-8
grad_clip = 0.5
ema = true
ema_max_decay = 0.9999
patience = 20
seed = 42
"#;

/// `train-head eval --store STORE --run RUN` succeeds and reports metrics identical to the run's.
pub fn assert_eval_identical(store: &Path, run: &Path) {
    let out = ok(bin()
        .args(["eval", "--store"])
        .arg(store)
        .arg("--run")
        .arg(run)
        .output()
        .unwrap());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("identical to"), "{err}");
}
