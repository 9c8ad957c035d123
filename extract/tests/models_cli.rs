//! `extract init-models`, `inspect` and `forward` end to end: our tiny folders load in
//! transformers 4.57.1 and give the same hidden states as `extract forward` (so the writer is
//! valid HF), and `extract forward` on folders written by transformers (never seen before: a
//! sharded one, a task-model-prefixed one) equals transformers.
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Kind, Tensor};

const EXE: &str = env!("CARGO_BIN_EXE_extract");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> String {
    std::env::var("WELD_PYTHON")
        .unwrap_or_else(|_| repo().join(".venv/bin/python").display().to_string())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(!out.status.success(), "{cmd:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn forward(model: &Path, input: &Path, output: &Path, dtype: &str) {
    run(Command::new(EXE)
        .args(["forward", "--model-dir"])
        .arg(model)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(["--dtype", dtype]));
}

/// Worst max|a-b| / max|b| over every tensor of `reference` (its f32 `hidden_states.*` and
/// `last_hidden_state`; the oracle's extra `bf16.*` keys are skipped); both must hold the same keys.
fn worst_rel_err(ours: &Path, reference: &Path) -> f64 {
    let mut a = Tensor::read_safetensors(ours).unwrap();
    let mut b = Tensor::read_safetensors(reference).unwrap();
    b.retain(|(k, _)| !k.starts_with("bf16."));
    a.sort_by(|x, y| x.0.cmp(&y.0));
    b.sort_by(|x, y| x.0.cmp(&y.0));
    let names = |v: &[(String, Tensor)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "same output tensors as transformers");
    assert!(b.len() >= 3);
    a.iter()
        .zip(&b)
        .map(|((_, x), (_, y))| {
            assert_eq!(x.size(), y.size());
            assert_eq!(x.kind(), Kind::Float);
            (x - y).abs().max().double_value(&[]) / y.abs().max().double_value(&[]).max(1e-12)
        })
        .fold(0.0, f64::max)
}

#[test]
fn init_models_are_valid_hf_and_forward_matches_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let listed = run(Command::new(EXE)
        .args(["init-models", "--size", "tiny", "--seed", "7", "--out"])
        .arg(&models));
    assert_eq!(listed.lines().count(), 4, "dinov3, vjepa2, ast, clip");
    tch::manual_seed(3);
    let inputs = [
        ("dinov3", "pixel_values", vec![2, 3, 224, 224]),
        ("vjepa2", "pixel_values_videos", vec![2, 5, 3, 64, 64]),
        ("ast", "input_values", vec![2, 128, 128]),
    ];
    let mut py = Command::new(python());
    py.arg(repo().join("tests/oracle/backbones_hf_forward.py"));
    for (name, input, shape) in &inputs {
        let x = Tensor::randn(shape.as_slice(), (Kind::Float, tch::Device::Cpu));
        let inp = tmp.path().join(format!("{name}_in.safetensors"));
        weld_cache::backbones::write_safetensors(&inp, &[(input.to_string(), x)]).unwrap();
        forward(
            &models.join(name),
            &inp,
            &tmp.path().join(format!("{name}_ours.safetensors")),
            "f32",
        );
        py.arg(models.join(name))
            .arg(&inp)
            .arg(tmp.path().join(format!("{name}_ref.safetensors")));
    }
    run(&mut py);
    for (name, _, _) in &inputs {
        let e = worst_rel_err(
            &tmp.path().join(format!("{name}_ours.safetensors")),
            &tmp.path().join(format!("{name}_ref.safetensors")),
        );
        eprintln!("init-models {name}: extract forward vs transformers, worst rel err {e:.3e}");
        assert!(e < 1e-4, "{name}: {e}");
    }
    // inspect names the type and hashes the weights.
    let text = run(Command::new(EXE)
        .args(["inspect", "--model-dir"])
        .arg(models.join("ast")));
    assert!(text.contains("audio-spectrogram-transformer"), "{text}");
    let sha =
        weld_cache::backbones::loader::sha256_file(&models.join("ast/model.safetensors")).unwrap();
    assert!(text.contains(&sha), "{text}");
    // A wrong input name is an error naming what is missing.
    let err = fails(
        Command::new(EXE)
            .args(["forward", "--model-dir"])
            .arg(models.join("ast"))
            .arg("--input")
            .arg(tmp.path().join("dinov3_in.safetensors"))
            .arg("--output")
            .arg(tmp.path().join("x.safetensors")),
    );
    assert!(err.contains("input_values"), "{err}");
    let err = fails(
        Command::new(EXE)
            .args(["init-models", "--size", "large", "--out"])
            .arg(tmp.path().join("big")),
    );
    assert!(err.contains("tiny"), "{err}");
}

#[test]
fn forward_on_unseen_transformers_folders_matches() {
    let tmp = tempfile::tempdir().unwrap();
    run(Command::new(python())
        .arg(repo().join("tests/oracle/backbones_make.py"))
        .arg(tmp.path())
        .args([
            "--only",
            "dinov3_r2_sharded,vjepa2_t1_videocls,ast_audiocls_sharded",
        ]));
    let text = std::fs::read_to_string(tmp.path().join("cases.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 3);
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let model = PathBuf::from(c["model_dir"].as_str().unwrap());
        let input = PathBuf::from(c["input"].as_str().unwrap());
        let reference = PathBuf::from(c["ref"].as_str().unwrap());
        // bf16 once (on the V-JEPA 2 folder) to keep the test short; the lib tests cover all.
        let dtypes: &[(&str, f64)] = if name.starts_with("vjepa2") {
            &[("f32", 1e-4), ("bf16", 5e-2)]
        } else {
            &[("f32", 1e-4)]
        };
        for &(dtype, tol) in dtypes {
            let out = tmp.path().join(format!("{name}_{dtype}.safetensors"));
            forward(&model, &input, &out, dtype);
            let e = worst_rel_err(&out, &reference);
            eprintln!("extract forward {name} {dtype}: worst rel err {e:.3e}");
            assert!(e < tol, "{name} {dtype}: {e}");
        }
    }
}
