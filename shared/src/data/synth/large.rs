//! Real-size media at an affordable cost (`extract synth --geometry real`): frames and images
//! are rendered at a quarter of their side by the ordinary renderers, upscaled bilinearly by
//! opencv, and given full-resolution sensor noise, so the files have the real byte size and
//! decode cost (37 s of 640x480 video at 30 fps, five 1920x1080 JPEGs) without rendering
//! 300M pixels per sample.
use opencv::core::{Mat, MatTraitConst, MatTraitConstManual, Size};
use opencv::imgproc;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::{Error, Result};

/// The render downscale factor of a `w` x `h` medium: 1 up to 240 pixels on the short side
/// (every demo and test geometry), then up to 4.
pub fn render_factor(w: usize, h: usize) -> usize {
    (w.min(h) / 120).clamp(1, 4)
}

/// Bilinear upscale of `[sh, sw, c]` u8 to `[h, w, c]` (opencv `resize`, INTER_LINEAR).
pub fn upscale(src: &[u8], sh: usize, sw: usize, c: usize, h: usize, w: usize) -> Result<Vec<u8>> {
    let err = |e: opencv::Error| Error::Msg(format!("synthetic media upscale: {e}"));
    if src.len() != sh * sw * c {
        return Err(Error::Msg(format!(
            "synthetic media upscale: {} bytes do not hold {sh}x{sw}x{c}",
            src.len()
        )));
    }
    let m = Mat::from_slice(src).map_err(err)?;
    let m = m.reshape(c as i32, sh as i32).map_err(err)?;
    let mut out = Mat::default();
    imgproc::resize(
        &m,
        &mut out,
        Size::new(w as i32, h as i32),
        0.0,
        0.0,
        imgproc::INTER_LINEAR,
    )
    .map_err(err)?;
    let out = if out.is_continuous() {
        out
    } else {
        out.try_clone().map_err(err)?
    };
    Ok(out.data_bytes().map_err(err)?.to_vec())
}

/// A reusable noise table: values in -amp..=amp, drawn once per sample.
pub fn noise_table(len: usize, amp: i16, rng: &mut ChaCha8Rng) -> Vec<i16> {
    (0..len).map(|_| rng.random_range(-amp..=amp)).collect()
}

/// Adds `noise[offset..]` (wrapping) to `buf`, saturating.
pub fn add_noise(buf: &mut [u8], noise: &[i16], offset: usize) {
    let n = noise.len();
    for (k, v) in buf.iter_mut().enumerate() {
        let x = i16::from(*v) + noise[(offset + k) % n];
        *v = x.clamp(0, 255) as u8;
    }
}

/// RGB -> grey (Rec. 601 luma) replicated to 3 channels, in place.
pub fn to_gray(rgb: &mut [u8]) {
    for p in rgb.chunks_exact_mut(3) {
        let y = (0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
            .round()
            .clamp(0.0, 255.0) as u8;
        p.fill(y);
    }
}
