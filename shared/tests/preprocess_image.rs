//! Parity of `preprocess::image::dinov3_pixels` and `preprocess::video::vjepa2_pixels` with
//! `DINOv3ViTImageProcessorFast` / `VJEPA2VideoProcessor` (transformers 4.57.1): fixtures come
//! from `tests/oracle/preprocess_image.py`, run at test time.
#![cfg(feature = "extract")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Kind, Tensor};
use weld_cache::preprocess::{dinov3_pixels, video::shortest_edge_size, vjepa2_pixels, ImageNorm};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run_oracle(script: &str, out: &Path) {
    let root = repo_root();
    let py = std::env::var("WELD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join(".venv/bin/python"));
    let status = Command::new(&py)
        .arg(root.join("tests/oracle").join(script))
        .arg(out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", py.display()));
    assert!(status.success(), "{script} failed");
}

fn load(dir: &Path) -> (HashMap<String, Tensor>, serde_json::Value) {
    let tensors = Tensor::read_safetensors(dir.join("image.safetensors"))
        .unwrap()
        .into_iter()
        .collect();
    let meta =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    (tensors, meta)
}

fn u8_vec(t: &Tensor) -> Vec<u8> {
    Vec::<u8>::try_from(t.flatten(0, -1)).unwrap()
}

/// Max |ours - theirs| measured in rescaled pixel units ([0, 1] scale): the normalised
/// difference times the channel std.
fn max_pixel_err(ours: &Tensor, theirs: &Tensor, norm: &ImageNorm) -> f64 {
    assert_eq!(ours.size(), theirs.size());
    let std = Tensor::from_slice(&norm.std).view([3, 1, 1]);
    ((ours - theirs).abs() * std).max().double_value(&[])
}

#[test]
fn image_and_video_match_hf_processors() {
    let tmp = tempfile::tempdir().unwrap();
    run_oracle("preprocess_image.py", tmp.path());
    let (t, meta) = load(tmp.path());
    let norm = ImageNorm::IMAGENET;
    let tol = 1.0 / 255.0 + 1e-6;

    for case in meta["images"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let g = |k: &str| case[k].as_u64().unwrap() as usize;
        let (h, w, oh, ow) = (g("h"), g("w"), g("out_h"), g("out_w"));
        let input = u8_vec(&t[&format!("{name}.input")]);
        let ours = dinov3_pixels(&input, h, w, oh, ow, &norm).unwrap();
        assert_eq!(ours.size(), [3, oh as i64, ow as i64]);
        assert_eq!(ours.kind(), Kind::Float);
        let err = max_pixel_err(&ours, &t[&format!("{name}.output")], &norm);
        println!("dinov3 {name} {h}x{w} -> {oh}x{ow}: max err {err:.3e} (pixel units)");
        assert!(err <= tol, "{name}: max error {err} > 1/255");
    }

    for case in meta["videos"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let g = |k: &str| case[k].as_u64().unwrap() as usize;
        let (nt, h, w, short, crop) = (g("t"), g("h"), g("w"), g("short"), g("crop"));
        let input = u8_vec(&t[&format!("{name}.input")]);
        let ours = vjepa2_pixels(&input, nt, h, w, short, crop, &norm).unwrap();
        assert_eq!(ours.size(), [nt as i64, 3, crop as i64, crop as i64]);
        let theirs = &t[&format!("{name}.output")];
        let err = max_pixel_err(&ours, theirs, &norm);
        // fraction of values off by one grey level
        let std = Tensor::from_slice(&norm.std).view([3, 1, 1]);
        let off = ((&ours - theirs).abs() * std)
            .gt(0.5 / 255.0)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]);
        let (rh, rw) = shortest_edge_size(h, w, short);
        println!(
            "vjepa2 {name} {nt}x{h}x{w} -> {rh}x{rw} -> crop {crop}: max err {err:.3e}, \
             {:.4}% values off by one level",
            off * 100.0
        );
        assert!(err <= tol, "{name}: max error {err} > 1/255");
        // same libtorch kernel choice as torchvision: no value may differ by a grey level
        assert!(
            off == 0.0,
            "{name}: {off} of the values differ by a grey level"
        );
    }
}

#[test]
fn resize_output_size_follows_transformers() {
    // get_resize_output_image_size(default_to_square=False): int(short * long / short_in)
    assert_eq!(shortest_edge_size(240, 320, 292), (292, 389));
    assert_eq!(shortest_edge_size(320, 240, 292), (389, 292));
    assert_eq!(shortest_edge_size(256, 256, 292), (292, 292));
    assert_eq!(shortest_edge_size(1080, 1920, 292), (292, 519));
}

#[test]
fn bad_buffers_are_errors() {
    let norm = ImageNorm::IMAGENET;
    assert!(dinov3_pixels(&[0u8; 10], 2, 2, 4, 4, &norm).is_err());
    assert!(dinov3_pixels(&[0u8; 12], 2, 2, 0, 4, &norm).is_err());
    assert!(vjepa2_pixels(&[0u8; 12], 1, 2, 2, 4, 4, &norm).is_ok());
    assert!(vjepa2_pixels(&[0u8; 12], 2, 2, 2, 4, 4, &norm).is_err());
    assert!(vjepa2_pixels(&[], 0, 2, 2, 4, 4, &norm).is_err());
}
