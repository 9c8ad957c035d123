//! `VJEPA2VideoProcessor` (transformers 4.57.1, `BaseVideoProcessor._preprocess`) in tch:
//! resize so the short side is `short` (long side `int(short * long / short_in)`, aspect kept),
//! bilinear antialiased on uint8, centre crop `crop x crop` (zero padding when the frame is
//! smaller), then the fused rescale + normalise `(x - 255 mean) / (255 std)`.
//!
//! The uint8 resize follows torchvision 0.26 (`_do_native_uint8_resize_on_cpu`): on a CPU where
//! libtorch runs its AVX2/AVX512 kernels it calls libtorch's native uint8 antialiased kernel
//! (fixed-point weights), elsewhere it interpolates in f32 and rounds. We make the same choice
//! with the same libtorch, so the result is bit-identical to the processor on both kinds of CPU.
//! The two paths differ by one grey level on about 20% of the pixels.
use super::image::{check_u8_buffer, resize_bilinear_aa, ImageNorm};
use crate::{Error, Result};
use tch::{Kind, Tensor};

/// `get_resize_output_image_size(default_to_square=False)`: `(new_h, new_w)` with the short side
/// set to `short` and the long side `int(short * long / short_in)`.
pub fn shortest_edge_size(h: usize, w: usize, short: usize) -> (usize, usize) {
    let (s, l) = if w <= h { (w, h) } else { (h, w) };
    let new_long = (short as f64 * l as f64 / s as f64) as usize;
    if w <= h {
        (new_long, short)
    } else {
        (short, new_long)
    }
}

/// The processor's `center_crop`: zero-pad (left/top get the floor half) when smaller, then crop
/// at `int((H - crop) / 2)`. `x`: `[N, C, H, W]`.
pub(crate) fn center_crop(x: &Tensor, crop: usize) -> Tensor {
    let size = x.size();
    let (mut h, mut w) = (size[2], size[3]);
    let c = crop as i64;
    let mut x = x.shallow_clone();
    if c > w || c > h {
        let pl = if c > w { (c - w) / 2 } else { 0 };
        let pt = if c > h { (c - h) / 2 } else { 0 };
        let pr = if c > w { (c - w + 1) / 2 } else { 0 };
        let pb = if c > h { (c - h + 1) / 2 } else { 0 };
        x = x.constant_pad_nd([pl, pr, pt, pb]);
        h = x.size()[2];
        w = x.size()[3];
        if h == c && w == c {
            return x;
        }
    }
    let top = ((h - c) as f64 / 2.0) as i64;
    let left = ((w - c) as f64 / 2.0) as i64;
    x.narrow(2, top, c).narrow(3, left, c)
}

/// Whether torchvision would resize uint8 natively here: libtorch's CPU capability is AVX2 or
/// AVX512 (it honours `ATEN_CPU_CAPABILITY` to lower it).
pub fn native_uint8_resize() -> bool {
    match std::env::var("ATEN_CPU_CAPABILITY").as_deref() {
        Ok("default") | Ok("zvector") | Ok("vsx") | Ok("sve256") => return false,
        _ => {}
    }
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// torchvision's bilinear antialiased resize of uint8 `[N, C, H, W]` to `[N, C, out_h, out_w]`
/// uint8: natively, or (`native == false`) in f32 then `round()` (identity at the same size).
pub(crate) fn resize_u8(x: &Tensor, out_h: usize, out_w: usize, native: bool) -> Tensor {
    let size = x.size();
    if size[2] == out_h as i64 && size[3] == out_w as i64 {
        return x.shallow_clone();
    }
    if native {
        resize_bilinear_aa(x, out_h, out_w)
    } else if x.device() != tch::Device::Cpu {
        // on an accelerator the whole clip at once (memory is not the constraint there)
        resize_bilinear_aa(&x.to_kind(Kind::Float), out_h, out_w)
            .round()
            .clamp(0.0, 255.0)
            .to_kind(Kind::Uint8)
    } else {
        // frame by frame, so a long full-resolution clip is never held in f32 at once
        let frames: Vec<Tensor> = x
            .split(1, 0)
            .iter()
            .map(|f| {
                resize_bilinear_aa(&f.to_kind(Kind::Float), out_h, out_w)
                    .round()
                    .clamp(0.0, 255.0)
                    .to_kind(Kind::Uint8)
            })
            .collect();
        Tensor::cat(&frames, 0)
    }
}

/// V-JEPA 2 pixel values of one clip.
///
/// `frames_thwc`: `[t, h, w, 3]` u8, interleaved RGB (replicate gray to 3 channels first).
/// `short`: target short side (292 for crop 256, i.e. `int(crop * 256 / 224)`); `crop`: output side.
/// Returns `[t, 3, crop, crop]` f32 on the CPU (`pixel_values_videos` of one clip).
pub fn vjepa2_pixels(
    frames_thwc: &[u8],
    t: usize,
    h: usize,
    w: usize,
    short: usize,
    crop: usize,
    norm: &ImageNorm,
) -> Result<Tensor> {
    check_u8_buffer("vjepa2_pixels", frames_thwc.len(), &[t, h, w, 3])?;
    if short == 0 || crop == 0 {
        return Err(Error::Preprocess(format!(
            "vjepa2_pixels: short side {short} and crop {crop} must be positive"
        )));
    }
    let (new_h, new_w) = shortest_edge_size(h, w, short);
    if new_h == 0 || new_w == 0 {
        return Err(Error::Preprocess(format!(
            "vjepa2_pixels: {h}x{w} frames resize to {new_h}x{new_w}"
        )));
    }
    tch::no_grad(|| {
        let x = Tensor::from_slice(frames_thwc)
            .view([t as i64, h as i64, w as i64, 3])
            .permute([0, 3, 1, 2]);
        let x = resize_u8(&x, new_h, new_w, native_uint8_resize()).to_kind(Kind::Float);
        let x = center_crop(&x, crop);
        let (mean, std) = norm.tensors(255.0);
        Ok(((x - mean) / std).contiguous())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_and_native_uint8_resize_differ_by_at_most_one_level() {
        let data: Vec<u8> = (0..2 * 3 * 40 * 50)
            .map(|i| ((i * 7919) % 251) as u8)
            .collect();
        let x = Tensor::from_slice(&data).view([2, 3, 40, 50]);
        for (oh, ow) in [(73, 91), (17, 23)] {
            let a = resize_u8(&x, oh, ow, true).to_kind(Kind::Int);
            let b = resize_u8(&x, oh, ow, false).to_kind(Kind::Int);
            assert_eq!(a.size(), [2, 3, oh as i64, ow as i64]);
            assert!((a - b).abs().max().int64_value(&[]) <= 1);
        }
    }

    #[test]
    fn centre_crop_pads_then_crops() {
        let x = Tensor::ones([1, 3, 5, 8], (Kind::Float, tch::Device::Cpu));
        let y = center_crop(&x, 6);
        assert_eq!(y.size(), [1, 3, 6, 6]);
        // height 5 -> padded 0 rows on top, 1 at the bottom; width 8 -> crop from column 1
        assert_eq!(y.sum(Kind::Float).double_value(&[]), 3.0 * 5.0 * 6.0);
        assert_eq!(
            y.get(0).get(0).get(5).sum(Kind::Float).double_value(&[]),
            0.0
        );
    }
}
