//! Post-weld image decoder (opencv `imgcodecs`): RGB u8 (gray images replicated to 3 channels).
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
