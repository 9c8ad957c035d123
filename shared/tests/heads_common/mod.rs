//! Shared helpers of the `heads_*` integration tests: small configs covering every component,
//! random batches and the Python oracle runner.
#![allow(dead_code)]
use std::path::PathBuf;
use std::process::Command;
use tch::{Device, Kind, Tensor};
use weld_cache::heads::causal_film::{CausalFilmConfig, HeadBatch};

/// The `[model]` table shared by the small test profiles; `{BRANCHES}`, `{NORM}`, `{ACT}`,
/// `{DDROP}`, `{CLIP_TRAIN}` and the `[loss]` table differ.
const SMALL: &str = r#"
[model]
d_model = 32
proj_hidden = 24
video_dim = 20
audio_dim = 18
image_dim = 16
n_views = 3
sensor_channels = 6
sensor_hidden = 16
sensor_norm = "{NORM}"
feature_dropout = 0.2
feature_mask = 0.2
[model.mamba]
layers = 2
d_state = 8
d_conv = 4
expand = 2
dt_rank = 2
dt_min = 0.001
dt_max = 0.1
dt_init_floor = 0.0001
[model.process]
layers = 2
heads = 4
ff = 40
dropout = 0.1
[model.result]
branches = {BRANCHES}
gate_reduction = 4
hidden = 24
gem_eps = 1e-6
[model.decoder]
act = "{ACT}"
dropout = {DDROP}
[model.clip_head]
trainable = {CLIP_TRAIN}
hidden = 12
text_dim = 10
dropout = 0.1
"#;

/// Profile "code": the causal_film.toml structure (mean, GeM, max and a second GeM branch,
/// smooth-L1 top-k, SiLU decoder, trained CLIP head, per-sample sensor z-score).
/// Profile "text": the v5_text.toml structure (two GeM branches, L1 mean x10, ReLU decoder,
/// frozen CLIP head, TRAIN sensor statistics).
pub fn small_config(profile: &str) -> CausalFilmConfig {
    let text = match profile {
        "code" => SMALL
            .replace(
                "{BRANCHES}",
                r#"[{layer = 1, pool = "mean"}, {layer = 1, pool = "gem", p0 = 3.0}, {layer = 2, pool = "max"}, {layer = 3, pool = "gem", p0 = 2.5}]"#,
            )
            .replace("{NORM}", "sample")
            .replace("{ACT}", "silu")
            .replace("{DDROP}", "0.1")
            .replace("{CLIP_TRAIN}", "true")
            + r#"
[loss]
cos_weight = 1.0
gram_weight = 1.0
clip_weight = 0.01
rec = { kind = "smooth_l1_topk", weight = 1.0, beta = 0.1, topk = 0.5 }
score = { topk = 0.5, weight = 10.0 }
"#,
        "text" => SMALL
            .replace(
                "{BRANCHES}",
                r#"[{layer = 0, pool = "gem", p0 = 3.0}, {layer = 2, pool = "gem", p0 = 3.0}]"#,
            )
            .replace("{NORM}", "train")
            .replace("{ACT}", "relu")
            .replace("{DDROP}", "0.2")
            .replace("{CLIP_TRAIN}", "false")
            + r#"
[loss]
cos_weight = 1.0
gram_weight = 1.0
clip_weight = 0.1
rec = { kind = "l1_mean", weight = 10.0 }
score = { topk = 0.5, weight = 10.0 }
"#,
        _ => panic!("unknown profile {profile}"),
    };
    CausalFilmConfig::from_toml_str(&text, profile).expect("small config")
}

/// A random batch for `cfg` (B samples), torch RNG: sensors with an offset and scale per
/// channel and one constant channel in sample 0 (exercises the std floor); GeM tokens mostly
/// positive (some clamped).
pub fn random_batch(cfg: &CausalFilmConfig, b: i64) -> HeadBatch {
    let m = &cfg.model;
    let opts = (Kind::Float, Device::Cpu);
    let (tv, ta, l, n_tok) = (6, 10, 24, 5);
    let scale = Tensor::from_slice(&[1.0f32, 10.0, 0.1, 50.0, 2.0, 0.5]).view([1, 1, 6]);
    let offset = Tensor::from_slice(&[0.0f32, 100.0, 3.0, -20.0, 1.0, 7.0]).view([1, 1, 6]);
    let sensor = Tensor::randn([b, l, m.sensor_channels], opts) * scale + offset;
    let _ = sensor.get(0).select(1, 2).fill_(2.5);
    HeadBatch {
        video: Tensor::randn([b, tv, m.video_dim], opts),
        audio: Tensor::randn([b, ta, m.audio_dim], opts),
        sensor,
        image_pooled: Tensor::randn(
            [b, cfg.n_pooled_branches() as i64, m.n_views, m.image_dim],
            opts,
        ),
        image_tokens: (0..cfg.n_gem_branches())
            .map(|_| Tensor::randn([b, m.n_views, n_tok, m.image_dim], opts) * 0.5 + 0.6)
            .collect(),
    }
}

/// The repository root (parent of the `shared` crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `tests/oracle/<script>` with the venv Python (`WELD_PYTHON`, default
/// `<repo>/.venv/bin/python`) and the given arguments; panics with its output on failure.
pub fn run_oracle(script: &str, args: &[&str]) {
    let python = std::env::var_os("WELD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    let out = Command::new(&python)
        .arg(repo_root().join("tests/oracle").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed:\n{text}");
    print!("{text}");
}

/// Serialises the tests of one binary that seed and draw from torch's global RNG (cargo runs
/// tests on parallel threads; an interleaved draw would break seeded reproducibility).
pub fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
