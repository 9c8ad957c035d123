//! Loss and gradient parity of the tch Causal-FiLM against the PyTorch reference
//! (`tests/oracle/heads_ref.py`), f32 on CPU, eval mode (dropout off), for both loss profiles.
//! Rust builds a small model with every component, perturbs all initial weights (so the
//! zero-initialised FiLM head does not hide the sensor branch), saves weights and a random
//! batch as safetensors, runs forward + loss + backward; Python does the same from the files;
//! every loss term, output and gradient must agree within 1e-5.
mod heads_common;

use heads_common::{random_batch, run_oracle, small_config};
use std::collections::HashMap;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};
use weld_cache::heads::causal_film::{anomaly_score, loss, CausalFilm, ClipHead};

const TOL: f64 = 1e-5;

/// Builds, perturbs and saves a model, runs it and returns the Rust-side named results.
fn run_rust(dir: &Path, name: &str) -> HashMap<String, Tensor> {
    let cfg = small_config(name);
    tch::manual_seed(7);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = CausalFilm::new(&(vs.root() / "model"), &cfg);
    let clip = ClipHead::new(&(vs.root() / "clip_head"), &cfg);
    if cfg.model.sensor_norm == weld_cache::heads::causal_film::SensorNorm::Train {
        let mean = Tensor::from_slice(&[0.5f32, 95.0, 3.0, -21.0, 1.5, 6.0]);
        let std = Tensor::from_slice(&[1.2f32, 9.0, 0.0, 45.0, 2.5, 0.4]); // 0 -> 1
        model.set_sensor_stats(&mean, &std).unwrap();
    }
    // Perturb every variable (trainable or not) so all paths carry signal.
    tch::no_grad(|| {
        let mut names: Vec<_> = vs.variables().into_iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (n, mut t) in names {
            if n.contains("stat_") {
                continue;
            }
            let noise = t.randn_like() * 0.1;
            let _ = t.g_add_(&noise);
        }
    });
    let batch = random_batch(&cfg, 4);
    batch.validate(&cfg).unwrap();
    let text = Tensor::randn([cfg.model.clip_head.text_dim], (Kind::Float, Device::Cpu));

    vs.save(dir.join(format!("weights_{name}.safetensors")))
        .unwrap();
    let mut named: Vec<(String, Tensor)> = vec![
        ("video".into(), batch.video.shallow_clone()),
        ("audio".into(), batch.audio.shallow_clone()),
        ("sensor".into(), batch.sensor.shallow_clone()),
        ("image_pooled".into(), batch.image_pooled.shallow_clone()),
        ("text_embed".into(), text.shallow_clone()),
    ];
    for (i, t) in batch.image_tokens.iter().enumerate() {
        named.push((format!("image_tokens.{i}"), t.shallow_clone()));
    }
    Tensor::write_safetensors(&named, dir.join(format!("batch_{name}.safetensors"))).unwrap();
    let json = serde_json::to_string_pretty(&cfg).unwrap();
    std::fs::write(dir.join(format!("config_{name}.json")), json).unwrap();

    let (z_result, z_pred) = model.forward_t(&batch, false);
    let terms = loss(&cfg, &z_result, &z_pred, &clip, &text, false);
    terms.total.backward();
    let mut out = HashMap::new();
    out.insert("z_result".into(), z_result.detach());
    out.insert("z_pred".into(), z_pred.detach());
    out.insert(
        "score".into(),
        anomaly_score(&cfg, &z_result, &z_pred).detach(),
    );
    let scalar = |v: f64| Tensor::from_slice(&[v as f32]);
    out.insert("loss.total".into(), terms.total.detach().reshape([1]));
    out.insert("loss.cos".into(), scalar(terms.cos));
    out.insert("loss.rec".into(), scalar(terms.rec));
    out.insert("loss.gram".into(), scalar(terms.gram));
    out.insert("loss.clip".into(), scalar(terms.clip));
    for (n, t) in vs.variables() {
        if t.requires_grad() {
            let g = t.grad();
            assert!(g.defined(), "{name}: no gradient reached {n}");
            out.insert(format!("grad.{n}"), g);
        }
    }
    out
}

/// Compares every tensor; returns (max abs error, max error relative to max(1, |ref|)).
fn compare(name: &str, rust: &HashMap<String, Tensor>, py: &HashMap<String, Tensor>) -> (f64, f64) {
    let mut rk: Vec<_> = rust.keys().cloned().collect();
    let mut pk: Vec<_> = py.keys().cloned().collect();
    rk.sort();
    pk.sort();
    assert_eq!(
        rk, pk,
        "{name}: Rust and PyTorch produce different tensor sets"
    );
    let (mut worst_abs, mut worst_rel) = (0.0f64, 0.0f64);
    let mut worst_name = String::new();
    for k in &rk {
        let (a, b) = (&rust[k], &py[k]);
        assert_eq!(a.size(), b.size(), "{name}: {k} shape");
        let diff = (a - b).abs();
        let abs = diff.max().double_value(&[]);
        let rel = (diff / b.abs().clamp_min(1.0)).max().double_value(&[]);
        let mag = b.abs().max().double_value(&[]);
        if k.starts_with("grad.") {
            assert!(
                mag > 0.0,
                "{name}: {k} is identically zero, the test would prove nothing"
            );
        }
        if rel > worst_rel {
            worst_name = k.clone();
        }
        worst_abs = worst_abs.max(abs);
        worst_rel = worst_rel.max(rel);
        assert!(
            rel <= TOL,
            "{name}: {k} differs: max abs {abs:e}, rel {rel:e} (|ref| max {mag:e})"
        );
    }
    println!(
        "{name}: {} tensors ({} grads), max abs err {worst_abs:.3e}, max rel err {worst_rel:.3e} ({worst_name})",
        rk.len(),
        rk.iter().filter(|k| k.starts_with("grad.")).count()
    );
    (worst_abs, worst_rel)
}

#[test]
fn loss_and_gradients_match_pytorch() {
    tch::set_num_threads(1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let profiles = ["code", "text"];
    let rust: Vec<_> = profiles.iter().map(|p| run_rust(dir, p)).collect();
    let mut args = vec![dir.to_str().unwrap()];
    args.extend(profiles);
    run_oracle("heads_ref.py", &args);
    for (p, r) in profiles.iter().zip(&rust) {
        let py: HashMap<String, Tensor> =
            Tensor::read_safetensors(dir.join(format!("ref_{p}.safetensors")))
                .unwrap()
                .into_iter()
                .collect();
        compare(p, r, &py);
    }
}
