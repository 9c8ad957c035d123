//! `DINOv3ViTImageProcessorFast` (transformers 4.57.1) in tch: rescale by 1/255, bilinear
//! antialiased resize to a fixed size (aspect ratio not kept), then `(x - mean) / std`.
//! Note the order: the DINOv3 processor rescales BEFORE resizing, so the resize runs on floats in
//! [0, 1] and is never rounded.
use crate::{Error, Result};
use tch::{Kind, Tensor};

/// Per-channel normalisation `(x - mean) / std` on values in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageNorm {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl ImageNorm {
    /// ImageNet statistics (`IMAGENET_DEFAULT_MEAN` / `IMAGENET_DEFAULT_STD`), used by DINOv3 and
    /// V-JEPA 2.
    pub const IMAGENET: ImageNorm = ImageNorm {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    /// `[3, 1, 1]` f32 tensors of mean and std multiplied by `scale`.
    pub(crate) fn tensors(&self, scale: f64) -> (Tensor, Tensor) {
        let m = Tensor::from_slice(&self.mean).view([3, 1, 1]) * scale;
        let s = Tensor::from_slice(&self.std).view([3, 1, 1]) * scale;
        (m, s)
    }
}

impl Default for ImageNorm {
    fn default() -> Self {
        Self::IMAGENET
    }
}

/// Checks an interleaved u8 buffer against its claimed shape.
pub(crate) fn check_u8_buffer(what: &str, len: usize, dims: &[usize]) -> Result<()> {
    let expected = dims.iter().product::<usize>();
    if dims.contains(&0) || len != expected {
        return Err(Error::Preprocess(format!(
            "{what}: buffer of {len} bytes does not hold shape {dims:?} ({expected} bytes, no zero \
             dimension allowed)"
        )));
    }
    Ok(())
}

/// Bilinear antialiased resize of `[N, C, H, W]` floats to `[N, C, out_h, out_w]`, as
/// torchvision's `resize(antialias=True)` does (`align_corners=False`, no explicit scales, and
/// identity when the size does not change).
pub(crate) fn resize_bilinear_aa(x: &Tensor, out_h: usize, out_w: usize) -> Tensor {
    let size = x.size();
    if size[2] == out_h as i64 && size[3] == out_w as i64 {
        return x.shallow_clone();
    }
    x.internal_upsample_bilinear2d_aa([out_h as i64, out_w as i64], false, None, None)
}

/// DINOv3 pixel values of one RGB image.
///
/// `rgb_hwc`: `[h, w, 3]` u8, interleaved RGB (replicate a gray frame to 3 channels first).
/// Returns `[3, out_h, out_w]` f32 on the CPU (stack them for a `[B, 3, out_h, out_w]` batch).
pub fn dinov3_pixels(
    rgb_hwc: &[u8],
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
    norm: &ImageNorm,
) -> Result<Tensor> {
    check_u8_buffer("dinov3_pixels", rgb_hwc.len(), &[h, w, 3])?;
    if out_h == 0 || out_w == 0 {
        return Err(Error::Preprocess(format!(
            "dinov3_pixels: output size {out_h}x{out_w} has a zero side"
        )));
    }
    tch::no_grad(|| {
        let x = Tensor::from_slice(rgb_hwc)
            .view([h as i64, w as i64, 3])
            .permute([2, 0, 1])
            .to_kind(Kind::Float)
            .unsqueeze(0);
        // rescale (uint8 * python float -> f32), then resize on floats, then normalise
        let x = x * (1.0 / 255.0);
        let x = resize_bilinear_aa(&x, out_h, out_w).squeeze_dim(0);
        let (mean, std) = norm.tensors(1.0);
        Ok(((x - mean) / std).contiguous())
    })
}
