//! Device-side preprocessing (`preprocess::device`, the default of `extract run`) against the
//! CPU functions and the HF processors (fixtures of `tests/oracle/preprocess_image.py`):
//! - on the CPU: bit-identical to `dinov3_pixels` / `vjepa2_pixels` (so within the processors'
//!   tolerance: 1/255 for images, no grey level off for video), grey clips as one channel
//!   bit-identical to three equal channels, batched views equal to one view at a time;
//! - on CUDA (when present): within the documented tolerance of the CPU path. Images: at most
//!   1e-4 in [0, 1] pixel units (float rounding of the antialiased kernel); video: at most one
//!   grey level (torchvision on CUDA interpolates in f32 and rounds, the CPU uses the native
//!   uint8 kernel).
#![cfg(feature = "extract")]

use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, Kind, Tensor};
use weld_cache::preprocess::device::{dinov3_pixels_bgr_u8, vjepa2_pixels_u8};
use weld_cache::preprocess::{dinov3_pixels, vjepa2_pixels, ImageNorm};

/// Tolerance of CUDA against the CPU path, images, in [0, 1] pixel units.
const CUDA_IMAGE_TOL: f64 = 1e-4;
/// Tolerance of CUDA against the CPU path, video, in grey levels.
const CUDA_VIDEO_LEVELS: f64 = 1.0;

fn fixtures() -> (tempfile::TempDir, Vec<(String, Tensor)>, serde_json::Value) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let py = std::env::var("WELD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join(".venv/bin/python"));
    let tmp = tempfile::tempdir().unwrap();
    let st = Command::new(&py)
        .arg(root.join("tests/oracle/preprocess_image.py"))
        .arg(tmp.path())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", py.display()));
    assert!(st.success(), "preprocess_image.py failed");
    let t = Tensor::read_safetensors(tmp.path().join("image.safetensors")).unwrap();
    let meta =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("meta.json")).unwrap())
            .unwrap();
    (tmp, t, meta)
}

fn get<'a>(t: &'a [(String, Tensor)], k: &str) -> &'a Tensor {
    &t.iter().find(|(n, _)| n == k).unwrap().1
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a.to_device(Device::Cpu) - b.to_device(Device::Cpu))
        .abs()
        .max()
        .double_value(&[])
}

/// Max |a - b| in pixel units ([0, 1] scale) of two normalised tensors.
fn pixel_err(a: &Tensor, b: &Tensor, norm: &ImageNorm) -> f64 {
    let std = Tensor::from_slice(&norm.std).view([3, 1, 1]);
    ((a.to_device(Device::Cpu) - b.to_device(Device::Cpu)).abs() * std)
        .max()
        .double_value(&[])
}

fn u8_vec(t: &Tensor) -> Vec<u8> {
    Vec::<u8>::try_from(t.flatten(0, -1)).unwrap()
}

#[test]
fn device_images_equal_the_cpu_path_and_the_processor() {
    let (_tmp, t, meta) = fixtures();
    let norm = ImageNorm::IMAGENET;
    let cuda = tch::Cuda::is_available();
    for case in meta["images"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let g = |k: &str| case[k].as_u64().unwrap() as usize;
        let (h, w, oh, ow) = (g("h"), g("w"), g("out_h"), g("out_w"));
        let rgb = get(&t, &format!("{name}.input"));
        let cpu = dinov3_pixels(&u8_vec(rgb), h, w, oh, ow, &norm).unwrap();
        let bgr = rgb.flip([2]).contiguous();
        let two = Tensor::stack(&[&bgr, &bgr], 0);
        let dev = dinov3_pixels_bgr_u8(&two, oh, ow, &norm).unwrap();
        assert_eq!(dev.size(), [2, 3, oh as i64, ow as i64]);
        assert_eq!(dev.kind(), Kind::Float);
        assert_eq!(
            max_abs(&dev.get(0), &cpu),
            0.0,
            "{name}: not bit-identical on CPU"
        );
        assert_eq!(
            max_abs(&dev.get(1), &cpu),
            0.0,
            "{name}: batched view differs"
        );
        let hf = pixel_err(&dev.get(0), get(&t, &format!("{name}.output")), &norm);
        assert!(hf <= 1.0 / 255.0 + 1e-6, "{name}: {hf} from the processor");
        if cuda {
            let d = dinov3_pixels_bgr_u8(&two.to_device(Device::Cuda(0)), oh, ow, &norm).unwrap();
            let e = pixel_err(&d.get(0), &cpu, &norm);
            println!("dinov3 {name}: CUDA vs CPU max {e:.3e} pixel units");
            assert!(e <= CUDA_IMAGE_TOL, "{name}: CUDA {e} > {CUDA_IMAGE_TOL}");
        }
    }
}

#[test]
fn device_video_equals_the_cpu_path_and_the_processor() {
    let (_tmp, t, meta) = fixtures();
    let norm = ImageNorm::IMAGENET;
    let cuda = tch::Cuda::is_available();
    let level = Tensor::from_slice(&norm.std).view([3, 1, 1]) * 255.0;
    for case in meta["videos"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let g = |k: &str| case[k].as_u64().unwrap() as usize;
        let (nt, h, w, short, crop) = (g("t"), g("h"), g("w"), g("short"), g("crop"));
        let clip = get(&t, &format!("{name}.input")); // [T, H, W, 3]
        let cpu = vjepa2_pixels(&u8_vec(clip), nt, h, w, short, crop, &norm).unwrap();
        let dev = vjepa2_pixels_u8(clip, short, crop, &norm).unwrap();
        assert_eq!(dev.size(), [nt as i64, 3, crop as i64, crop as i64]);
        assert_eq!(max_abs(&dev, &cpu), 0.0, "{name}: not bit-identical on CPU");
        let theirs = get(&t, &format!("{name}.output"));
        let levels = ((&dev - theirs).abs() * &level).max().double_value(&[]);
        assert!(
            levels < 0.5,
            "{name}: {levels} grey levels from the processor"
        );
        if case["gray"].as_bool().unwrap() {
            let one = clip.narrow(3, 0, 1).contiguous();
            let g1 = vjepa2_pixels_u8(&one, short, crop, &norm).unwrap();
            assert_eq!(max_abs(&g1, &cpu), 0.0, "{name}: grey channel differs");
        }
        if cuda {
            let d = vjepa2_pixels_u8(&clip.to_device(Device::Cuda(0)), short, crop, &norm).unwrap();
            let l = ((d.to_device(Device::Cpu) - &cpu).abs() * &level)
                .max()
                .double_value(&[]);
            println!("vjepa2 {name}: CUDA vs CPU max {l:.3} grey levels");
            assert!(l <= CUDA_VIDEO_LEVELS + 1e-3, "{name}: CUDA {l} levels");
        }
    }
}

#[test]
fn bad_device_inputs_are_errors() {
    let norm = ImageNorm::IMAGENET;
    let u = |s: &[i64]| Tensor::zeros(s, (Kind::Uint8, Device::Cpu));
    assert!(vjepa2_pixels_u8(&u(&[2, 8, 8, 2]), 8, 8, &norm).is_err());
    assert!(vjepa2_pixels_u8(&u(&[2, 8, 8, 1]).to_kind(Kind::Float), 8, 8, &norm).is_err());
    assert!(vjepa2_pixels_u8(&u(&[2, 8, 8, 1]), 0, 8, &norm).is_err());
    assert!(dinov3_pixels_bgr_u8(&u(&[1, 8, 8, 1]), 4, 4, &norm).is_err());
    assert!(dinov3_pixels_bgr_u8(&u(&[1, 8, 8, 3]), 0, 4, &norm).is_err());
    assert!(dinov3_pixels_bgr_u8(&u(&[1, 8, 8, 3]), 4, 4, &norm).is_ok());
}
