//! Post-weld image decoder (opencv `imgcodecs`): RGB u8 (gray images replicated to 3 channels),
//! or BGR u8 with an optional reduced-size JPEG decode for the device-side preprocessing.
use std::path::{Path, PathBuf};

use opencv::core::{Mat, MatTraitConst, CV_8UC3};
use opencv::{imgcodecs, imgproc};
use tch::{Device, Kind, Tensor};

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
#[derive(Debug)]
pub struct ImageU8 {
    /// [H, W, 3] u8 on the CPU, row-major, **BGR** (the device flips it to RGB: no colour pass on
    /// the CPU). Decoded straight into the tensor's storage (no copy) when the JPEG header gives
    /// the size.
    pub pixels: Tensor,
    pub h: usize,
    pub w: usize,
    /// libjpeg DCT scaling used (1 = full size; 2, 4 or 8 with `reduce_for`).
    pub reduced: usize,
    /// Whether opencv decoded straight into `pixels` (false: one copy was made).
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
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot open: {e}")))?;
    if bytes.is_empty() {
        return Err(err("empty file (0 bytes)".into()));
    }
    let jpeg_size = super::avi::jpeg_size(&bytes);
    let factor = match (reduce_for, jpeg_size) {
        (Some((oh, ow)), Some((h, w))) => jpeg_reduce_factor(h, w, oh, ow),
        _ => 1,
    };
    let flags = match factor {
        8 => imgcodecs::IMREAD_REDUCED_COLOR_8,
        4 => imgcodecs::IMREAD_REDUCED_COLOR_4,
        2 => imgcodecs::IMREAD_REDUCED_COLOR_2,
        _ => imgcodecs::IMREAD_COLOR,
    };
    let expect = jpeg_size.map(|(h, w)| (h.div_ceil(factor), w.div_ceil(factor)));
    let (pixels, in_place) = decode_bgr_tensor(&bytes, flags, expect)
        .map_err(|e| err(format!("cannot decode image: {e}")))?;
    let (h, w) = (pixels.size()[0] as usize, pixels.size()[1] as usize);
    Ok(ImageU8 {
        pixels,
        h,
        w,
        reduced: factor,
        in_place,
    })
}

/// Decodes an encoded image with opencv `imdecode` (`flags` give 3-channel BGR) into a new
/// `[h, w, 3]` u8 tensor. With `expect = Some((h, w))` (the size the JPEG header announces, DCT
/// scaling included) opencv writes straight into the tensor's storage; when it allocates its own
/// buffer anyway (another size, an EXIF rotation) or the size is unknown, the pixels are copied
/// once (the flag says which). The input bytes are borrowed, not copied.
fn decode_bgr_tensor(
    bytes: &[u8],
    flags: i32,
    expect: Option<(usize, usize)>,
) -> Result<(Tensor, bool), String> {
    let input = Mat::from_slice(bytes).map_err(|e| e.to_string())?;
    let decoded = match expect {
        Some((h, w)) if h > 0 && w > 0 && h <= i32::MAX as usize && w <= i32::MAX as usize => {
            let t = Tensor::empty([h as i64, w as i64, 3], (Kind::Uint8, Device::Cpu));
            // SAFETY: `t` is a new contiguous CPU tensor of exactly h * w * 3 bytes, alive for
            // the whole lifetime of `dst`; opencv writes into it only while `dst` keeps that
            // size and type (`Mat::create` reallocates otherwise, checked below).
            let mut dst = unsafe {
                Mat::new_rows_cols_with_data_unsafe_def(h as i32, w as i32, CV_8UC3, t.data_ptr())
            }
            .map_err(|e| e.to_string())?;
            let m = imgcodecs::imdecode_to(&input, flags, &mut dst).map_err(|e| e.to_string())?;
            if m.empty() {
                return Err("opencv cannot decode it (corrupt, truncated or unsupported)".into());
            }
            let in_place = m.data() == t.data_ptr() as *const u8
                && (m.rows() as usize, m.cols() as usize, m.typ()) == (h, w, CV_8UC3);
            if in_place {
                return Ok((t, true));
            }
            m
        }
        _ => super::video::decode_bytes(bytes, flags)?,
    };
    if decoded.typ() != CV_8UC3 {
        return Err(format!("decoded type {} is not 8-bit BGR", decoded.typ()));
    }
    let t = Tensor::from_slice(&mat_bytes(&decoded)?);
    Ok((
        t.view([decoded.rows() as i64, decoded.cols() as i64, 3]),
        false,
    ))
}
