//! Each loss term and the anomaly score against values computed by hand on a 2 x 4 case, and
//! config validation errors.
mod heads_common;

use heads_common::small_config;
use tch::{nn, Device, Tensor};
use weld_cache::heads::causal_film::{anomaly_score, loss, CausalFilmConfig, ClipHead};

const EPS: f64 = 1e-6;

fn z() -> (Tensor, Tensor) {
    let zr = Tensor::from_slice(&[1.0f32, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0, 4.0]).view([2, 4]);
    let zp = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0, 3.0]).view([2, 4]);
    (zr, zp)
}

/// A CLIP head on 4-d inputs whose output is the constant vector `b`: every weight zero but the
/// last bias (LN of a constant vector is its bias, 0; GELU(0) = 0).
fn constant_clip_head(cfg: &mut CausalFilmConfig, vs: &nn::VarStore) -> ClipHead {
    cfg.model.d_model = 4;
    let head = ClipHead::new(&(vs.root() / "clip"), cfg);
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            let _ = t.zero_();
            if name == "clip.4.bias" {
                let _ = t.get(0).fill_(1.0);
            }
        }
    });
    head
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < EPS, "{what}: got {got}, want {want}");
}

// By hand: cos(row0) = 1/sqrt(5), cos(row1) = 24/25 -> cos term 1 - (0.4472136 + 0.96) / 2.
const COS: f64 = 0.296_393_202_250_021;
// diff row0 [0, 2, 0, 0], row1 [0, 0, -1, 1]; smooth L1 (beta 0.1): |d| - 0.05 -> top 2 per row:
// [1.95, 0] and [0.95, 0.95] -> mean 3.85 / 4.
const SMOOTH_TOPK: f64 = 0.9625;
// mean |diff| = 4 / 8.
const L1_MEAN: f64 = 0.5;
// Gram z z^T / 4: sum of squared differences 24/16 + 98/16 over 2 * 16 entries.
const GRAM: f64 = 7.625 / 32.0;
// Projection (1, 0, ...) vs text (1, 1, 0, ...): 1 - 1/sqrt(2).
const CLIP: f64 = 1.0 - std::f64::consts::FRAC_1_SQRT_2;

fn text(cfg: &CausalFilmConfig) -> Tensor {
    let mut t = vec![0.0f32; cfg.model.clip_head.text_dim as usize];
    t[0] = 3.0;
    t[1] = 3.0;
    Tensor::from_slice(&t)
}

#[test]
fn code_profile_terms_by_hand() {
    let mut cfg = small_config("code");
    let vs = nn::VarStore::new(Device::Cpu);
    let head = constant_clip_head(&mut cfg, &vs);
    let (zr, zp) = z();
    let t = loss(&cfg, &zr, &zp, &head, &text(&cfg), false);
    close(t.cos, COS, "cos");
    close(t.rec, SMOOTH_TOPK, "smooth L1 top-k");
    close(t.gram, GRAM, "gram");
    close(t.clip, CLIP, "clip");
    let total = COS + SMOOTH_TOPK + GRAM + 0.01 * CLIP;
    close(t.total.double_value(&[]), total, "total");
}

#[test]
fn text_profile_terms_by_hand() {
    let mut cfg = small_config("text");
    let vs = nn::VarStore::new(Device::Cpu);
    let head = constant_clip_head(&mut cfg, &vs);
    let (zr, zp) = z();
    let t = loss(&cfg, &zr, &zp, &head, &text(&cfg), false);
    close(t.rec, L1_MEAN, "L1 mean");
    let total = COS + 10.0 * L1_MEAN + GRAM + 0.1 * CLIP;
    close(t.total.double_value(&[]), total, "total");
}

#[test]
fn anomaly_score_by_hand() {
    let cfg = small_config("code");
    let (zr, zp) = z();
    let s = anomaly_score(&cfg, &zr, &zp);
    assert_eq!(s.size(), vec![2]);
    // row0: 1 - 1/sqrt(5) + 10 * mean(2, 0); row1: 1 - 0.96 + 10 * mean(1, 1).
    close(
        s.double_value(&[0]),
        1.0 - 0.2f64.sqrt() + 10.0,
        "score row 0",
    );
    close(s.double_value(&[1]), 0.04 + 10.0, "score row 1");
    // Identical vectors score 0.
    let s0 = anomaly_score(&cfg, &zr, &zr);
    close(
        s0.abs().max().double_value(&[]),
        0.0,
        "score of a perfect prediction",
    );
}

#[test]
fn config_errors_name_the_problem() {
    let good = std::fs::read_to_string(heads_common::repo_root().join("configs/causal_film.toml"))
        .unwrap();
    let cases = [
        ("d_model = 512", "d_model = 510", "divisible"),
        ("d_model = 512", "d_modle = 512", "d_modle"),
        ("act = \"silu\"", "act = \"tanh\"", "tanh"),
        (
            "{ layer = 31, pool = \"mean\" }",
            "{ layer = 31, pool = \"gem\" }",
            "p0",
        ),
        (
            "topk = 0.5 }\nscore",
            "topk = 1.5 }\nscore",
            "loss.rec.topk",
        ),
        ("feature_mask = 0.2", "feature_mask = 1.0", "feature_mask"),
    ];
    for (from, to, needle) in cases {
        assert!(
            good.contains(from),
            "fixture text `{from}` not in causal_film.toml"
        );
        let bad = good.replacen(from, to, 1);
        let err = CausalFilmConfig::from_toml_str(&bad, "configs/x.toml")
            .expect_err(&format!("`{to}` must be rejected"))
            .to_string();
        assert!(
            err.contains("configs/x.toml") && err.contains(needle),
            "{to}: {err}"
        );
    }
    let no_loss = good.split("[loss]").next().unwrap();
    let err = CausalFilmConfig::from_toml_str(no_loss, "c.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("[loss]"), "{err}");
    // Extra keys and tables (`head`, the trainer's [train]) are fine.
    assert!(good.contains("\n[train]\n") && good.contains("head = \"causal-film\""));
    CausalFilmConfig::from_toml_str(&good, "c.toml").unwrap();
}
