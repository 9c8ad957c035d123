//! Post-weld image decoder: RGB u8 (gray images replicated to 3 channels), or BGR u8 with an
//! optional reduced-size JPEG decode for the device-side preprocessing. JPEGs go straight through
//! libjpeg ([`super::jpeg`]: opencv's decoder without its copies, same pixels); other formats, and
//! the JPEGs that path declines (EXIF rotation, CMYK), through opencv `imgcodecs`.
use std::path::{Path, PathBuf};

use opencv::core::{Mat, MatTraitConst, CV_8UC3};
use opencv::{imgcodecs, imgproc};
use tch::Tensor;

use super::jpeg::{self, JpegOut};
use super::pool::DECODE_POOL;
use super::video::{decode_bytes, mat_bytes};
use super::{Modality, SampleError};

/// One decoded image.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// [H, W, 3] RGB u8, row-major.
    pub data: Vec<u8>,
    pub h: usize,
    pub w: usize,
}

/// The bytes of an image file; an empty file is an error.
fn read_bytes(path: &Path, sample: &str) -> Result<Vec<u8>, SampleError> {
    let err = |m: String| SampleError::new(sample, Modality::Images, path, m);
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot open: {e}")))?;
    if bytes.is_empty() {
        return Err(err("empty file (0 bytes)".into()));
    }
    Ok(bytes)
}

/// Decode one image file to RGB. Errors (modality `images`): empty, unreadable or corrupt file.
pub fn read_image(path: &Path, sample: &str) -> Result<Image, SampleError> {
    let err = |m: String| SampleError::new(sample, Modality::Images, path, m);
    let bytes = read_bytes(path, sample)?;
    if let Some(info) = jpeg::direct_jpeg(&bytes) {
        let mut data = vec![0u8; info.h * info.w * 3];
        jpeg::decode_into(&bytes, 1, JpegOut::Rgb, &mut data, info.h, info.w)
            .map_err(|e| err(format!("cannot decode image: {e}")))?;
        return Ok(Image {
            data,
            h: info.h,
            w: info.w,
        });
    }
    let bgr = decode_bytes(&bytes, imgcodecs::IMREAD_COLOR)
        .map_err(|e| err(format!("cannot decode image: {e}")))?;
    let mut rgb = Mat::default();
    imgproc::cvt_color_def(&bgr, &mut rgb, imgproc::COLOR_BGR2RGB)
        .map_err(|e| err(format!("colour conversion: {e}")))?;
    let data = mat_bytes(&rgb).map_err(err)?;
    Ok(Image {
        data,
        h: rgb.rows() as usize,
        w: rgb.cols() as usize,
    })
}

/// Decode every image of `paths` in order (sizes may differ between views).
pub fn read_images(paths: &[PathBuf], sample: &str) -> Result<Vec<Image>, SampleError> {
    paths.iter().map(|p| read_image(p, sample)).collect()
}

/// One decoded image for the device-side preprocessing.
#[derive(Debug)]
pub struct ImageU8 {
    /// [H, W, 3] u8 on the CPU, row-major, **BGR** (the device flips it to RGB: no colour pass on
    /// the CPU). JPEGs are decoded straight into the tensor's storage (no copy).
    pub pixels: Tensor,
    pub h: usize,
    pub w: usize,
    /// libjpeg DCT scaling used (1 = full size; 2, 4 or 8 with `reduce_for`).
    pub reduced: usize,
    /// Whether the decoder wrote straight into `pixels` (libjpeg directly; false: opencv decoded
    /// it and one copy was made).
    pub in_place: bool,
}

/// The DCT scale factor for an image of `h` x `w` whose target is `out_h` x `out_w`: the largest
/// of 8, 4, 2 that keeps both scaled sides (libjpeg rounds them up) at or above the target, else 1.
pub fn jpeg_reduce_factor(h: usize, w: usize, out_h: usize, out_w: usize) -> usize {
    [8, 4, 2]
        .into_iter()
        .find(|&f| h.div_ceil(f) >= out_h && w.div_ceil(f) >= out_w)
        .unwrap_or(1)
}

/// Decode one image file to BGR. With `reduce_for = Some((out_h, out_w))`, a JPEG at least twice
/// the target is decoded at 1/2, 1/4 or 1/8 size by libjpeg's DCT scaling
/// ([`jpeg_reduce_factor`]): much cheaper, not bit-identical to a full decode and resize (see
/// README "Extraction speed"). Other formats are always decoded at full size.
/// Errors (modality `images`): empty, unreadable or corrupt file.
pub fn read_image_u8(
    path: &Path,
    sample: &str,
    reduce_for: Option<(usize, usize)>,
) -> Result<ImageU8, SampleError> {
    let err = |m: String| SampleError::new(sample, Modality::Images, path, m);
    let bytes = read_bytes(path, sample)?;
    // one header read: the reduction factor (any other format: none) and the decoder to use
    let header = jpeg::info(&bytes).ok();
    let factor = match (reduce_for, header) {
        (Some((oh, ow)), Some(full)) => jpeg_reduce_factor(full.h, full.w, oh, ow),
        _ => 1,
    };
    if let Some(full) = header.filter(|i| i.decodes_like_opencv(&bytes)) {
        let (h, w) = full.scaled(factor);
        let pixels = DECODE_POOL.take(&[h as i64, w as i64, 3]);
        // SAFETY: `pixels` is a contiguous CPU u8 tensor of exactly h * w * 3 bytes, owned here
        // (new, or handed back to the pool with no other tensor sharing its storage) and not
        // aliased while the slice lives.
        let out =
            unsafe { std::slice::from_raw_parts_mut(pixels.data_ptr() as *mut u8, h * w * 3) };
        jpeg::decode_into(&bytes, factor, JpegOut::Bgr, out, h, w)
            .map_err(|e| err(format!("cannot decode image: {e}")))?;
        return Ok(ImageU8 {
            pixels,
            h,
            w,
            reduced: factor,
            in_place: true,
        });
    }
    let flags = match factor {
        8 => imgcodecs::IMREAD_REDUCED_COLOR_8,
        4 => imgcodecs::IMREAD_REDUCED_COLOR_4,
        2 => imgcodecs::IMREAD_REDUCED_COLOR_2,
        _ => imgcodecs::IMREAD_COLOR,
    };
    let decoded =
        decode_bytes(&bytes, flags).map_err(|e| err(format!("cannot decode image: {e}")))?;
    if decoded.typ() != CV_8UC3 {
        return Err(err(format!(
            "cannot decode image: decoded type {} is not 8-bit BGR",
            decoded.typ()
        )));
    }
    let (h, w) = (decoded.rows() as usize, decoded.cols() as usize);
    let data = mat_bytes(&decoded).map_err(|e| err(format!("cannot decode image: {e}")))?;
    Ok(ImageU8 {
        pixels: Tensor::from_slice(&data).view([h as i64, w as i64, 3]),
        h,
        w,
        reduced: factor,
        in_place: false,
    })
}
