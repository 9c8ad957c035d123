//! Strict loading of model folders: missing, unexpected and mis-shaped keys are errors naming the
//! key; task-model prefixes and ignored heads/predictors load; `Backbone::load` dispatches on
//! `model_type`; tiny folders have the documented shapes. No Python needed.
#![cfg(feature = "extract")]
use std::path::Path;
use tch::{Device, Kind, Tensor};
use weld_cache::backbones::{self, ast, dinov3, vjepa2, write_safetensors, Backbone};

fn edit_checkpoint(dir: &Path, f: impl FnOnce(&mut Vec<(String, Tensor)>)) {
    let file = dir.join("model.safetensors");
    let mut ts = Tensor::read_safetensors(&file).unwrap();
    f(&mut ts);
    write_safetensors(&file, &ts).unwrap();
}

fn load_err(dir: &Path) -> String {
    Backbone::load(dir, Device::Cpu, Kind::Float)
        .unwrap_err()
        .to_string()
}

#[test]
fn tiny_folders_load_with_the_documented_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = backbones::write_tiny_all(tmp.path(), 1).unwrap();
    let d = Backbone::load(&dirs[0], Device::Cpu, Kind::Float).unwrap();
    let hs = d
        .forward_hidden(&Tensor::randn([2, 3, 224, 224], (Kind::Float, Device::Cpu)))
        .unwrap();
    assert_eq!(hs.len(), 5);
    assert_eq!(hs[2].size(), [2, 1 + 4 + 196, 64]);
    let v = Backbone::load(&dirs[1], Device::Cpu, Kind::BFloat16).unwrap();
    // T = 5: the odd frame is dropped -> 2 tubelets x 4 x 4 patches.
    let x = Tensor::randn([2, 5, 3, 64, 64], (Kind::Float, Device::Cpu));
    let last = v.forward_last(&x).unwrap();
    assert_eq!(
        (last.size(), last.kind()),
        (vec![2, 32, 64], Kind::BFloat16)
    );
    // ...and equals the T = 4 clip.
    let four = v.forward_last(&x.narrow(1, 0, 4)).unwrap();
    assert!(last.equal(&four));
    // T = 1 is duplicated: equals a clip of the frame twice.
    let one = v.forward_last(&x.narrow(1, 0, 1)).unwrap();
    let twice = v
        .forward_last(&x.narrow(1, 0, 1).repeat([1, 2, 1, 1, 1]))
        .unwrap();
    assert_eq!(one.size(), [2, 16, 64]);
    assert!(one.equal(&twice));
    let a = Backbone::load(&dirs[2], Device::Cpu, Kind::Float).unwrap();
    let hs = a
        .forward_hidden(&Tensor::randn([3, 128, 128], (Kind::Float, Device::Cpu)))
        .unwrap();
    assert_eq!(hs[4].size(), [3, 2 + 9 * 9, 64]);
    // Wrong input shapes are errors, not panics.
    assert!(a
        .forward_last(&Tensor::zeros([1, 100, 128], (Kind::Float, Device::Cpu)))
        .is_err());
    assert!(d
        .forward_last(&Tensor::zeros([1, 3, 220, 224], (Kind::Float, Device::Cpu)))
        .is_err());
}

#[test]
fn missing_unexpected_and_misshaped_keys_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    dinov3::write_tiny(&dir, 2).unwrap();
    edit_checkpoint(&dir, |ts| {
        ts.retain(|(k, _)| k != "layer.1.attention.q_proj.bias")
    });
    let e = load_err(&dir);
    assert!(
        e.contains("missing") && e.contains("layer.1.attention.q_proj.bias"),
        "{e}"
    );

    dinov3::write_tiny(&dir, 2).unwrap();
    edit_checkpoint(&dir, |ts| {
        ts.push((
            "layer.0.attention.k_proj.bias".into(),
            Tensor::zeros([64], (Kind::Float, Device::Cpu)),
        ))
    });
    let e = load_err(&dir);
    assert!(
        e.contains("unexpected") && e.contains("layer.0.attention.k_proj.bias"),
        "{e}"
    );

    dinov3::write_tiny(&dir, 2).unwrap();
    edit_checkpoint(&dir, |ts| {
        for (k, t) in ts.iter_mut() {
            if k == "norm.weight" {
                *t = Tensor::ones([65], (Kind::Float, Device::Cpu));
            }
        }
    });
    let e = load_err(&dir);
    assert!(e.contains("mis-shaped") && e.contains("norm.weight"), "{e}");

    // A classifier head is skipped by rule; an unknown extra key is not.
    let adir = tmp.path().join("a");
    ast::write_tiny(&adir, 3).unwrap();
    ast::Ast::load(&adir, Device::Cpu, Kind::Float).unwrap();
    edit_checkpoint(&adir, |ts| {
        ts.push((
            "audio_spectrogram_transformer.pooler.dense.weight".into(),
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
        ))
    });
    let e = load_err(&adir);
    assert!(e.contains("pooler.dense.weight"), "{e}");

    // The predictor is skipped by rule; losing an encoder key is still an error.
    let vdir = tmp.path().join("v");
    vjepa2::write_tiny(&vdir, 4).unwrap();
    edit_checkpoint(&vdir, |ts| {
        ts.retain(|(k, _)| k != "encoder.layernorm.bias")
    });
    let e = load_err(&vdir);
    assert!(e.contains("encoder.layernorm.bias"), "{e}");
    // The same key with and without the task prefix is ambiguous: an error, not a silent pick.
    vjepa2::write_tiny(&vdir, 4).unwrap();
    edit_checkpoint(&vdir, |ts| {
        let t = ts
            .iter()
            .find(|(k, _)| k == "encoder.layernorm.weight")
            .unwrap()
            .1
            .copy();
        ts.push(("vjepa2.encoder.layernorm.weight".into(), t));
    });
    let e = load_err(&vdir);
    assert!(
        e.contains("appears twice") && e.contains("encoder.layernorm.weight"),
        "{e}"
    );
    // A shard listed in the index but absent is named.
    let sdir = tmp.path().join("s");
    dinov3::write_tiny(&sdir, 6).unwrap();
    std::fs::rename(
        sdir.join("model.safetensors"),
        sdir.join("model-00001-of-00002.safetensors"),
    )
    .unwrap();
    let index = serde_json::json!({"metadata": {}, "weight_map": {
        "norm.weight": "model-00001-of-00002.safetensors",
        "norm.bias": "model-00002-of-00002.safetensors"}});
    std::fs::write(sdir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let e = load_err(&sdir);
    assert!(e.contains("model-00002-of-00002.safetensors"), "{e}");
}

#[test]
fn folder_errors_are_explicit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    dinov3::write_tiny(&dir, 5).unwrap();
    // Unknown model_type.
    let cfg = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("\"dinov3_vit\"", "\"bert\"")).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("bert"), "{e}");
    std::fs::write(&cfg, &text).unwrap();
    // Only a pickled pytorch_model.bin: points at the converter script.
    std::fs::rename(dir.join("model.safetensors"), dir.join("pytorch_model.bin")).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("convert_bin.sh"), "{e}");
    // Unsupported activation in config.json.
    std::fs::rename(dir.join("pytorch_model.bin"), dir.join("model.safetensors")).unwrap();
    std::fs::write(&cfg, text.replace("\"silu\"", "\"mish\"")).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("mish"), "{e}");
    assert!(backbones::parse_kind("f64").is_err());
    assert_eq!(backbones::parse_kind("bf16").unwrap(), Kind::BFloat16);
}
