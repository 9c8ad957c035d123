//! Parity of `backbones::clip::ClipText` with transformers 4.57.1 on tiny random CLIP text models
//! (a `CLIPModel` folder with vision keys to skip, a legacy `eos_token_id = 2` folder, an exact-gelu
//! folder), batches with padding after the end-of-text token; and the tiny folder written by
//! `clip::write_tiny`, loaded back by transformers. Fixtures: `tests/oracle/clip_parity.py` and
//! `tests/oracle/clip_tiny.py`, run at test time.
#![cfg(feature = "extract")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, Kind, Tensor};
use weld_cache::backbones::clip::{write_tiny, ClipText, ClipTextOutput};

fn run_oracle(script: &str, args: &[&Path]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let py = std::env::var("WELD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join(".venv/bin/python"));
    let status = Command::new(&py)
        .arg(root.join("tests/oracle").join(script))
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", py.display()));
    assert!(status.success(), "{script} failed");
}

fn read(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

/// max |a - b| / max |b|
fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    let a = a.to_kind(Kind::Double).to_device(Device::Cpu);
    let b = b.to_kind(Kind::Double);
    let diff = (&a - &b).abs().max().double_value(&[]);
    diff / b.abs().max().double_value(&[]).max(1e-12)
}

/// Compares every output; returns the worst relative error.
fn compare(name: &str, out: &ClipTextOutput, exp: &HashMap<String, Tensor>, tol: f64) -> f64 {
    let n = exp
        .keys()
        .filter(|k| k.starts_with("hidden_states."))
        .count();
    assert_eq!(
        out.hidden_states.len(),
        n,
        "{name}: number of hidden states"
    );
    let mut worst = 0.0f64;
    let mut check = |what: String, ours: &Tensor| {
        let e = rel_err(ours, &exp[&what]);
        assert!(
            e <= tol,
            "{name}: {what} relative error {e:.3e} > {tol:.0e}"
        );
        worst = worst.max(e);
    };
    for (i, h) in out.hidden_states.iter().enumerate() {
        check(format!("hidden_states.{i}"), h);
    }
    check("last_hidden_state".into(), &out.last_hidden_state);
    check("text_embeds".into(), &out.text_embeds);
    worst
}

#[test]
fn hf_folders_match_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    run_oracle("clip_parity.py", &[tmp.path()]);
    for name in ["clip_model_eos", "text_proj_legacy_eos2", "text_proj_gelu"] {
        let dir = tmp.path().join(name);
        let exp = read(&dir.join("expected.safetensors"));
        let ids = &exp["input_ids"];
        assert!(ids.size()[0] >= 2);
        let model = ClipText::load(&dir.join("model"), Device::Cpu, Kind::Float).unwrap();
        model.check_input_ids(ids).unwrap();
        let out = model.forward(ids);
        let worst = compare(name, &out, &exp, 1e-4);
        // the comparison can fail: neighbouring layers differ far beyond the tolerance
        assert!(rel_err(&out.hidden_states[1], &exp["hidden_states.2"]) > 1e-2);
        println!(
            "{name}: batch {:?}, {} hidden states, f32 worst relative error {worst:.2e}",
            ids.size(),
            out.hidden_states.len()
        );

        // reduced precision against the f32 reference, documented tolerances
        for (kind, tol) in [(Kind::BFloat16, 5e-2), (Kind::Half, 1e-2)] {
            let m = ClipText::load(&dir.join("model"), Device::Cpu, kind).unwrap();
            let out = m.forward(ids);
            assert_eq!(out.text_embeds.kind(), kind);
            let worst = compare(name, &out, &exp, tol);
            println!("{name}: {kind:?} worst relative error {worst:.2e} (tolerance {tol:.0e})");
        }
    }
}

#[test]
fn tiny_folder_round_trips_through_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    let mdir = tmp.path().join("clip");
    write_tiny(&mdir, 7).unwrap();
    // deterministic: the same seed writes the same weights
    let again = tmp.path().join("clip2");
    write_tiny(&again, 7).unwrap();
    assert_eq!(
        std::fs::read(mdir.join("model.safetensors")).unwrap(),
        std::fs::read(again.join("model.safetensors")).unwrap()
    );
    let out_dir = tmp.path().join("oracle");
    run_oracle("clip_tiny.py", &[&mdir, &out_dir]);
    let tokens: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("tokens.json")).unwrap())
            .unwrap();
    let model = ClipText::load(&mdir, Device::Cpu, Kind::Float).unwrap();
    let texts = tokens["texts"].as_array().unwrap();
    for (i, text) in texts.iter().enumerate() {
        let text = text.as_str().unwrap();
        let ours = model.tokenize(text).unwrap();
        let fast: Vec<i64> = serde_json::from_value(tokens["fast"][i].clone()).unwrap();
        let slow: Vec<i64> = serde_json::from_value(tokens["slow"][i].clone()).unwrap();
        assert_eq!(ours, fast, "{text:?}: ours vs CLIPTokenizerFast");
        assert_eq!(ours, slow, "{text:?}: ours vs CLIPTokenizer (slow)");
        println!("{text:?} -> {ours:?}");
    }
    let exp = read(&out_dir.join("expected.safetensors"));
    let out = model.forward(&exp["input_ids"]);
    let worst = compare("tiny", &out, &exp, 1e-4);
    println!("tiny write_tiny folder: worst relative error {worst:.2e}");
    // embed_text = text_embeds of the unpadded text
    let e = model.embed_text(texts[0].as_str().unwrap()).unwrap();
    assert_eq!(e.size(), [16]);
    assert!(rel_err(&e, &exp["text_embeds"].get(0)) <= 1e-4);
}

#[test]
fn strict_loading_and_input_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clip");
    write_tiny(&dir, 1).unwrap();
    let st = dir.join("model.safetensors");
    let good = Tensor::read_safetensors(&st).unwrap();

    // an unexpected key is an error naming it
    let mut extra = good
        .iter()
        .map(|(k, t)| (k.clone(), t.shallow_clone()))
        .collect::<Vec<_>>();
    extra.push((
        "text_model.extra.weight".into(),
        Tensor::zeros([2], (Kind::Float, Device::Cpu)),
    ));
    Tensor::write_safetensors(&extra, &st).unwrap();
    let err = ClipText::load(&dir, Device::Cpu, Kind::Float)
        .unwrap_err()
        .to_string();
    assert!(err.contains("text_model.extra.weight"), "{err}");

    // a missing key too
    let missing: Vec<_> = good
        .iter()
        .filter(|(k, _)| k != "text_projection.weight")
        .map(|(k, t)| (k.clone(), t.shallow_clone()))
        .collect();
    Tensor::write_safetensors(&missing, &st).unwrap();
    let err = ClipText::load(&dir, Device::Cpu, Kind::Float)
        .unwrap_err()
        .to_string();
    assert!(err.contains("text_projection.weight"), "{err}");

    // ignored by rule: vision tower, logit_scale, position_ids
    let mut ignored = good
        .iter()
        .map(|(k, t)| (k.clone(), t.shallow_clone()))
        .collect::<Vec<_>>();
    for k in [
        "vision_model.post_layernorm.weight",
        "logit_scale",
        "visual_projection.weight",
    ] {
        ignored.push((k.into(), Tensor::zeros([3], (Kind::Float, Device::Cpu))));
    }
    Tensor::write_safetensors(&ignored, &st).unwrap();
    let model = ClipText::load(&dir, Device::Cpu, Kind::Float).unwrap();

    let ok = Tensor::from_slice(&[1i64, 2, 3]).unsqueeze(0);
    assert!(model.check_input_ids(&ok).is_ok());
    let too_long = Tensor::zeros([1, 78], (Kind::Int64, Device::Cpu));
    assert!(model.check_input_ids(&too_long).is_err());
    let out_of_vocab = Tensor::from_slice(&[1i64, 100_000]).unsqueeze(0);
    assert!(model.check_input_ids(&out_of_vocab).is_err());
    assert!(model
        .check_input_ids(&Tensor::from_slice(&[1i64, 2]))
        .is_err());
}
