//! Device-side preprocessing from uint8 uploads: the decode workers hand over raw u8 frames and
//! images, and the device stage resizes, crops and normalises them where the backbone runs
//! (what the HF fast processors do with `device="cuda"`). Same operations as [`super::image`] and
//! [`super::video`]:
//! - on the CPU the results are bit-identical to those functions (same kernels, same layouts);
//! - on CUDA the resize follows torchvision on CUDA: V-JEPA 2 frames are interpolated in f32 and
//!   rounded to uint8 (torchvision's native uint8 kernel exists on the CPU only), DINOv3 images
//!   are resized in f32; CUDA's antialiased kernel differs from the CPU one by float rounding
//!   (tested within a documented tolerance, see `shared/tests/preprocess_device.rs`).
//!
//! Needs only libtorch (no decoder), so the decoder-free build can run it.
use super::image::{resize_bilinear_aa, ImageNorm};
use super::video::{center_crop, native_uint8_resize, resize_u8, shortest_edge_size};
use crate::{Error, Result};
use tch::{Kind, Tensor};

fn norm_on(norm: &ImageNorm, scale: f64, like: &Tensor) -> (Tensor, Tensor) {
    let (m, s) = norm.tensors(scale);
    (m.to_device(like.device()), s.to_device(like.device()))
}

/// V-JEPA 2 pixel values of one clip from uint8 frames on any device.
///
/// `frames`: `[T, H, W, C]` u8 with C = 1 (grey: replicated to RGB by the normalisation's
/// broadcast, bit-identical to resizing three equal channels) or 3 (RGB).
/// Returns `[T, 3, crop, crop]` f32 on the device of `frames`.
pub fn vjepa2_pixels_u8(
    frames: &Tensor,
    short: usize,
    crop: usize,
    norm: &ImageNorm,
) -> Result<Tensor> {
    let s = frames.size();
    if s.len() != 4 || !(s[3] == 1 || s[3] == 3) || frames.kind() != Kind::Uint8 {
        return Err(Error::Preprocess(format!(
            "vjepa2_pixels_u8: expected [T, H, W, 1 or 3] u8 frames, got {s:?} {:?}",
            frames.kind()
        )));
    }
    if short == 0 || crop == 0 || s.contains(&0) {
        return Err(Error::Preprocess(format!(
            "vjepa2_pixels_u8: frames {s:?}, short side {short}, crop {crop}: no zero allowed"
        )));
    }
    let (h, w) = (s[1] as usize, s[2] as usize);
    let (new_h, new_w) = shortest_edge_size(h, w, short);
    if new_h == 0 || new_w == 0 {
        return Err(Error::Preprocess(format!(
            "vjepa2_pixels_u8: {h}x{w} frames resize to {new_h}x{new_w}"
        )));
    }
    let native = frames.device() == tch::Device::Cpu && native_uint8_resize();
    tch::no_grad(|| {
        let x = frames.permute([0, 3, 1, 2]);
        let x = resize_u8(&x, new_h, new_w, native).to_kind(Kind::Float);
        let x = center_crop(&x, crop);
        let (mean, std) = norm_on(norm, 255.0, &x);
        let y = (x - mean) / std;
        Ok(y.expand([s[0], 3, crop as i64, crop as i64], false)
            .contiguous())
    })
}

/// DINOv3 pixel values of same-sized views from uint8 **BGR** images on any device.
///
/// `bgr`: `[V, H, W, 3]` u8 (opencv's channel order; flipped to RGB here).
/// Returns `[V, 3, out_h, out_w]` f32 on the device of `bgr`.
pub fn dinov3_pixels_bgr_u8(
    bgr: &Tensor,
    out_h: usize,
    out_w: usize,
    norm: &ImageNorm,
) -> Result<Tensor> {
    let s = bgr.size();
    if s.len() != 4 || s[3] != 3 || bgr.kind() != Kind::Uint8 || s.contains(&0) {
        return Err(Error::Preprocess(format!(
            "dinov3_pixels_bgr_u8: expected [V, H, W, 3] u8 images, got {s:?} {:?}",
            bgr.kind()
        )));
    }
    if out_h == 0 || out_w == 0 {
        return Err(Error::Preprocess(format!(
            "dinov3_pixels_bgr_u8: output size {out_h}x{out_w} has a zero side"
        )));
    }
    tch::no_grad(|| {
        // Planar u8 first (the cheapest full-size pass), then f32 and the rescale in place; the
        // BGR -> RGB flip runs on the resized output (the resize is per channel). Same values
        // as flipping, permuting and converting the interleaved input (2x less time on the CPU).
        let mut x = bgr.permute([0, 3, 1, 2]).contiguous().to_kind(Kind::Float);
        let _ = x.g_mul_scalar_(1.0 / 255.0);
        let x = resize_bilinear_aa(&x, out_h, out_w).flip([1]);
        let (mean, std) = norm_on(norm, 1.0, &x);
        Ok(((x - mean) / std).contiguous())
    })
}

/// DINOv3 pixel values of video frames from uint8 frames on any device: the image views'
/// preprocessing (rescale, bilinear antialiased resize to `out_h` x `out_w`, ImageNet
/// normalisation) applied to each frame.
///
/// `frames`: `[T, H, W, C]` u8 with C = 1 (grey: resized on one channel and replicated to RGB
/// by the normalisation's broadcast, as for V-JEPA 2; the resize is per channel, so this equals
/// resizing three equal channels) or 3 (RGB).
/// Returns `[T, 3, out_h, out_w]` f32 on the device of `frames`.
pub fn dinov3_pixels_frames_u8(
    frames: &Tensor,
    out_h: usize,
    out_w: usize,
    norm: &ImageNorm,
) -> Result<Tensor> {
    let s = frames.size();
    if s.len() != 4 || !(s[3] == 1 || s[3] == 3) || frames.kind() != Kind::Uint8 || s.contains(&0) {
        return Err(Error::Preprocess(format!(
            "dinov3_pixels_frames_u8: expected [T, H, W, 1 or 3] u8 frames, got {s:?} {:?}",
            frames.kind()
        )));
    }
    if out_h == 0 || out_w == 0 {
        return Err(Error::Preprocess(format!(
            "dinov3_pixels_frames_u8: output size {out_h}x{out_w} has a zero side"
        )));
    }
    tch::no_grad(|| {
        let x = frames.permute([0, 3, 1, 2]).to_kind(Kind::Float);
        let x = x * (1.0 / 255.0);
        let x = resize_bilinear_aa(&x, out_h, out_w);
        let (mean, std) = norm_on(norm, 1.0, &x);
        let y = (x - mean) / std;
        Ok(y.expand([s[0], 3, out_h as i64, out_w as i64], false)
            .contiguous())
    })
}
