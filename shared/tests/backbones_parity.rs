//! Parity of the tch ViT backbones (DINOv3, V-JEPA 2, AST) with transformers 4.57.1: the oracle
//! `tests/oracle/backbones_make.py` writes tiny random HF folders (plain, sharded, task-model
//! prefixed), random inputs (batch >= 2) and every hidden state; we load each folder with
//! `Backbone::load` and compare every hidden state.
#![cfg(feature = "extract")]
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tch::{Device, Kind, Tensor};
use weld_cache::backbones::Backbone;

/// f32: max |ours - ref| / max |ref| per hidden state (the acceptance bound).
const F32_TOL: f64 = 1e-4;
/// bf16 weights and activations vs the f32 reference (8-bit mantissa through 3 blocks).
const BF16_TOL: f64 = 5e-2;
/// bf16 vs transformers loading the same folder with `dtype=torch.bfloat16` (same dtype rules:
/// DINOv3 RoPE in f32 then cast, V-JEPA 2 RoPE in bf16). Measured 0 on CPU (same kernels).
const BF16_SAME_TOL: f64 = 1e-3;
/// f16 weights and activations vs the f32 reference.
const F16_TOL: f64 = 1e-2;

fn python() -> String {
    std::env::var("WELD_PYTHON")
        .unwrap_or_else(|_| format!("{}/../.venv/bin/python", env!("CARGO_MANIFEST_DIR")))
}

struct Fixtures {
    _dir: tempfile::TempDir,
    cases: Vec<serde_json::Value>,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let script = format!(
            "{}/../tests/oracle/backbones_make.py",
            env!("CARGO_MANIFEST_DIR")
        );
        let out = std::process::Command::new(python())
            .arg(&script)
            .arg(dir.path())
            .output()
            .expect("spawn the oracle python (set WELD_PYTHON)");
        assert!(
            out.status.success(),
            "oracle failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(dir.path().join("cases.json")).unwrap();
        let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert!(cases.len() >= 9, "expected all oracle cases");
        for c in cases.iter().filter(|c| c["needs_conversion"] == true) {
            let model = c["model_dir"].as_str().unwrap();
            // Before conversion the loader refuses the pickle and names the converter.
            let err = Backbone::load(Path::new(model), Device::Cpu, Kind::Float).unwrap_err();
            assert!(err.to_string().contains("convert_bin.sh"), "{err}");
            let script = format!("{}/../scripts/convert_bin.sh", env!("CARGO_MANIFEST_DIR"));
            let out = std::process::Command::new("bash")
                .arg(&script)
                .arg(model)
                .output()
                .expect("run convert_bin.sh");
            assert!(
                out.status.success(),
                "convert_bin.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Fixtures { _dir: dir, cases }
    })
}

fn read(path: &str) -> Vec<(String, Tensor)> {
    Tensor::read_safetensors(path).unwrap()
}

fn get(ts: &[(String, Tensor)], name: &str) -> Tensor {
    ts.iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no tensor {name}"))
        .1
        .shallow_clone()
}

fn rel_err(ours: &Tensor, reference: &Tensor) -> f64 {
    assert_eq!(ours.size(), reference.size(), "shape mismatch");
    let ours = ours.to_device(Device::Cpu).to_kind(Kind::Float);
    let diff = (&ours - reference).abs().max().double_value(&[]);
    let scale = reference.abs().max().double_value(&[]).max(1e-12);
    diff / scale
}

/// Runs every case in `kind`; returns (case, worst relative error over all hidden states).
fn compare_all(kind: Kind, tol: f64) -> Vec<(String, f64)> {
    let mut report = Vec::new();
    for case in &fixtures().cases {
        let name = case["name"].as_str().unwrap().to_string();
        let dir = PathBuf::from(case["model_dir"].as_str().unwrap());
        let model = Backbone::load(Path::new(&dir), Device::Cpu, kind)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(model.input_name(), case["input_name"].as_str().unwrap());
        let input = get(&read(case["input"].as_str().unwrap()), model.input_name());
        assert!(input.size()[0] >= 2, "batch >= 2");
        let reference = read(case["ref"].as_str().unwrap());
        let hidden = model.forward_hidden(&input).unwrap();
        let n = case["num_hidden"].as_i64().unwrap() as usize;
        assert_eq!(hidden.len(), n, "{name}: number of hidden states");
        let mut worst: f64 = 0.0;
        let mut worst_same_dtype: f64 = 0.0;
        for (i, h) in hidden.iter().enumerate() {
            assert_eq!(h.kind(), kind);
            let e = rel_err(h, &get(&reference, &format!("hidden_states.{i}")));
            assert!(
                e < tol,
                "{name} {kind:?}: hidden_states.{i} rel err {e:.3e} >= {tol:e}"
            );
            worst = worst.max(e);
            if kind == Kind::BFloat16 {
                // transformers itself run in bf16: same dtype rules (RoPE tables, casts).
                let r = get(&reference, &format!("bf16.hidden_states.{i}"));
                let e = rel_err(h, &r);
                assert!(
                    e < BF16_SAME_TOL,
                    "{name}: vs transformers bf16, hidden_states.{i} {e:.3e}"
                );
                worst_same_dtype = worst_same_dtype.max(e);
            }
        }
        if kind == Kind::BFloat16 {
            eprintln!(
                "parity bf16-vs-transformers-bf16 {name}: worst rel err {worst_same_dtype:.3e}"
            );
        }
        let last = model.forward_last(&input).unwrap();
        let e = rel_err(&last, &get(&reference, "last_hidden_state"));
        assert!(
            e < tol,
            "{name} {kind:?}: last_hidden_state rel err {e:.3e}"
        );
        // forward_last and the last hidden state are the same computation.
        let same = rel_err(&last, &hidden[n - 1].to_kind(Kind::Float));
        assert!(
            same < 1e-6,
            "{name}: forward_last differs from hidden_states[-1]"
        );
        eprintln!("parity {kind:?} {name}: worst rel err {worst:.3e}");
        report.push((name, worst));
    }
    report
}

#[test]
fn f32_every_hidden_state_matches_transformers() {
    let r = compare_all(Kind::Float, F32_TOL);
    assert_eq!(r.len(), fixtures().cases.len());
}

#[test]
fn bf16_within_documented_tolerance() {
    compare_all(Kind::BFloat16, BF16_TOL);
}

#[test]
fn f16_within_documented_tolerance() {
    compare_all(Kind::Half, F16_TOL);
}

#[test]
fn oracle_covers_sharded_prefixed_and_special_shapes() {
    let cases = &fixtures().cases;
    let has = |pred: &dyn Fn(&serde_json::Value) -> bool| cases.iter().any(pred);
    let files = |c: &serde_json::Value| c["files"].to_string();
    assert!(has(&|c| files(c).contains("model.safetensors.index.json")));
    assert!(has(&|c| files(c).contains("pytorch_model.bin")));
    for want in [
        "dinov3_plain_r0",
        "dinov3_r2",
        "vjepa2_t5",
        "vjepa2_t1_videocls",
        "ast_audiocls",
    ] {
        assert!(
            has(&|c| c["name"].as_str().unwrap().starts_with(want)),
            "{want}"
        );
    }
}
