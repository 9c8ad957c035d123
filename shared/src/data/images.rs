//! Post-weld image decoder (opencv `imgcodecs`): RGB u8 (gray images replicated to 3 channels),
//! or BGR u8 with an optional reduced-size JPEG decode for the device-side preprocessing.
use std::path::{Path, PathBuf};

use opencv::core::{Mat, MatTraitConst};
use opencv::{imgcodecs, imgproc};

use super::video::mat_bytes;
use super::{Modality, SampleError};

/// One decoded image.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// [H, W, 3] RGB u8, row-major.
    pub data: Vec<u8>,
    pub h: usize,
    pub w: usize,
}

/// Decode one image file to RGB. Errors (modality `images`): empty, unreadable or corrupt file.
pub fn read_image(path: &Path, sample: &str) -> Result<Image, SampleError> {
    let err = |m: String| SampleError::new(sample, Modality::Images, path, m);
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot open: {e}")))?;
    if meta.len() == 0 {
        return Err(err("empty file (0 bytes)".into()));
    }
    let bgr = imgcodecs::imread(path, imgcodecs::IMREAD_COLOR)
        .map_err(|e| err(format!("opencv imread: {e}")))?;
    if bgr.empty() {
        return Err(err("cannot decode image (corrupt or unsupported)".into()));
    }
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
#[derive(Debug, Clone, PartialEq)]
pub struct ImageU8 {
    /// [H, W, 3] u8, row-major, **BGR** (the device flips it to RGB: no colour pass on the CPU).
    pub data: Vec<u8>,
    pub h: usize,
    pub w: usize,
    /// libjpeg DCT scaling used (1 = full size; 2, 4 or 8 with `reduce_for`).
    pub reduced: usize,
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
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot open: {e}")))?;
    if bytes.is_empty() {
        return Err(err("empty file (0 bytes)".into()));
    }
    let factor = match (reduce_for, super::avi::jpeg_size(&bytes)) {
        (Some((oh, ow)), Some((h, w))) => jpeg_reduce_factor(h, w, oh, ow),
        _ => 1,
    };
    let flags = match factor {
        8 => imgcodecs::IMREAD_REDUCED_COLOR_8,
        4 => imgcodecs::IMREAD_REDUCED_COLOR_4,
        2 => imgcodecs::IMREAD_REDUCED_COLOR_2,
        _ => imgcodecs::IMREAD_COLOR,
    };
    let bgr = super::video::decode_bytes(&bytes, flags)
        .map_err(|e| err(format!("cannot decode image: {e}")))?;
    let data = mat_bytes(&bgr).map_err(err)?;
    Ok(ImageU8 {
        data,
        h: bgr.rows() as usize,
        w: bgr.cols() as usize,
        reduced: factor,
    })
}
