//! In-process video of a synthetic sample: a dark plate, a glowing bead trail and the arc moving
//! along it. Arc brightness and size follow arc power (current x voltage), frame-to-frame flicker
//! follows voltage and the droplet rate, the trail width follows the heat input; burnthrough adds
//! a flare, spatter adds flying specks, porosity an irregular flicker, overlap a slower torch,
//! crater cracks an early arc stop. Written through opencv's FFMPEG backend.
use std::path::Path;

use opencv::core::{Mat, MatTraitManual, Scalar, Size, CV_8UC1, CV_8UC3};
use opencv::prelude::{VideoWriterTrait, VideoWriterTraitConst};
use opencv::videoio::{self, VideoWriter};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::process::{normal, Process, I_REF, S_REF, V_REF};
use crate::{Error, Result};

/// [frames, h, w, 3] RGB u8 frames of the clip.
pub fn render_video(
    p: &Process,
    frames: usize,
    fps: f64,
    w: usize,
    h: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<u8> {
    let tau = std::f64::consts::TAU;
    let d = &p.defect;
    // static plate texture
    let tex: Vec<f64> = (0..w * h).map(|_| 6.0 * normal(rng)).collect::<Vec<f64>>();
    let flick_phase = rng.random_range(0.0..tau);
    let travel = p.speed / S_REF * d.video_speed_factor;
    let x_of = |u: f64| 0.12 + 0.76 * (u * travel).min(1.15);
    let yc = 0.55 * h as f64;
    let mut out = vec![0u8; frames * h * w * 3];
    for f in 0..frames {
        let t = f as f64 / fps;
        let u = (t / p.seconds).min(1.0);
        let i = p.current_at(u);
        let v = p.arc_voltage_at(u);
        let spike = p.spike_at(u);
        let gasd = p.gas_drop_at(u);
        let z: f64 = normal(rng);
        let flick_amp = (0.05 + 0.03 * (v - V_REF)).max(0.01) * (1.0 + 2.5 * gasd);
        let flicker = 1.0 + flick_amp * z + 0.08 * (tau * p.droplet_hz * t + flick_phase).sin();
        // scaled so a normal arc stays below saturation: brightness carries the arc power
        let bright = 0.65 * p.power_at(u) * flicker * (1.0 + 0.8 * spike);
        let r_arc = w as f64 * (0.05 + 0.03 * (i / I_REF).max(0.0).sqrt()) * (1.0 + 0.3 * spike);
        let ax = x_of(u) * w as f64;
        // spatter specks of this frame
        let specks: Vec<(f64, f64)> = if d.spatter && i > 1.0 {
            let n = (8.0 * d.severity * rng.random_range(0.5..1.5)) as usize;
            (0..n)
                .map(|_| {
                    let ang = rng.random_range(0.0..tau);
                    let rad = rng.random_range(0.08..0.35) * w as f64;
                    (ax + rad * ang.cos(), yc - 2.0 + rad * ang.sin() * 0.7)
                })
                .collect()
        } else {
            Vec::new()
        };
        let frame = &mut out[f * h * w * 3..(f + 1) * h * w * 3];
        for y in 0..h {
            for x in 0..w {
                let xf = x as f64 + 0.5;
                let yf = y as f64 + 0.5;
                let n_px: f64 = 1.5 * normal(rng);
                let mut rgb = [38.0 + tex[y * w + x] + n_px; 3];
                // bead trail behind the arc
                let xn = xf / w as f64;
                let x0 = x_of(0.0);
                if xn >= x0 && xf <= ax {
                    let ub = ((xn - 0.12) / 0.76 / travel).clamp(0.0, 1.0);
                    let hw = h as f64 * (0.035 + 0.04 * p.heat_at(ub));
                    let dy = (yf - yc).abs();
                    if dy < hw {
                        let age = (t - ub * p.seconds).max(0.0);
                        let glow = (-age / 0.8).exp();
                        let prof = (1.0 - (dy / hw).powi(2)).sqrt();
                        rgb[0] = 62.0 + 30.0 * prof + 110.0 * glow;
                        rgb[1] = 64.0 + 30.0 * prof + 45.0 * glow;
                        rgb[2] = 68.0 + 30.0 * prof + 8.0 * glow;
                    }
                }
                // arc: white core + blue-violet halo
                if bright > 0.0 {
                    let r2 = (xf - ax).powi(2) + (yf - (yc - 2.0)).powi(2);
                    let core = bright * (-r2 / (2.0 * r_arc * r_arc)).exp();
                    let halo = bright * (-r2 / (2.0 * (2.5 * r_arc).powi(2))).exp();
                    rgb[0] += 200.0 * core + 60.0 * halo;
                    rgb[1] += 190.0 * core + 55.0 * halo;
                    rgb[2] += 170.0 * core + 110.0 * halo;
                }
                for &(sx, sy) in &specks {
                    let r2 = (xf - sx).powi(2) + (yf - sy).powi(2);
                    if r2 < 1.2 {
                        rgb[0] += 230.0;
                        rgb[1] += 200.0;
                        rgb[2] += 120.0;
                    }
                }
                let o = (y * w + x) * 3;
                for c in 0..3 {
                    frame[o + c] = rgb[c].round().clamp(0.0, 255.0) as u8;
                }
            }
        }
    }
    out
}

/// Write [frames, h, w, 3] RGB frames to `path` with the FFMPEG backend and `fourcc`
/// (e.g. "MJPG", "FFV1"); colour frames (the built-in MJPEG writer corrupts gray ones).
pub fn write_avi(
    path: &Path,
    rgb: &[u8],
    frames: usize,
    h: usize,
    w: usize,
    fps: f64,
    fourcc: &str,
) -> Result<()> {
    let fsz = h * w * 3;
    write_avi_with(path, frames, h, w, fps, fourcc, true, &mut |f| {
        Ok(rgb[f * fsz..(f + 1) * fsz].to_vec())
    })
}

/// [`write_avi`] with frames made on the fly by `next(f)` ([h, w, 3] RGB, or [h, w] grey when
/// `color` is false: a grey stream through the FFMPEG backend, so MJPEG chroma is flat and
/// decoders return equal channels), so a long clip is never held in memory.
#[allow(clippy::too_many_arguments)]
pub fn write_avi_with(
    path: &Path,
    frames: usize,
    h: usize,
    w: usize,
    fps: f64,
    fourcc: &str,
    color: bool,
    next: &mut dyn FnMut(usize) -> Result<Vec<u8>>,
) -> Result<()> {
    let err = |m: String| Error::Msg(format!("writing video {}: {m}", path.display()));
    let cc: Vec<char> = fourcc.chars().collect();
    if cc.len() != 4 {
        return Err(err(format!("fourcc {fourcc:?} is not 4 characters")));
    }
    let code = VideoWriter::fourcc(cc[0], cc[1], cc[2], cc[3]).map_err(|e| err(e.to_string()))?;
    let mut wr = VideoWriter::new_with_backend(
        path,
        videoio::CAP_FFMPEG,
        code,
        fps,
        Size::new(w as i32, h as i32),
        color,
    )
    .map_err(|e| err(e.to_string()))?;
    if !wr.is_opened().map_err(|e| err(e.to_string()))? {
        return Err(err(format!(
            "opencv FFMPEG backend cannot open a {fourcc} writer"
        )));
    }
    let typ = if color { CV_8UC3 } else { CV_8UC1 };
    let mut mat = Mat::new_rows_cols_with_default(h as i32, w as i32, typ, Scalar::all(0.0))
        .map_err(|e| err(e.to_string()))?;
    for f in 0..frames {
        let src = next(f)?;
        let dst = mat.data_bytes_mut().map_err(|e| err(e.to_string()))?;
        if src.len() != dst.len() {
            return Err(err(format!(
                "frame {f} has {} bytes, expected {}",
                src.len(),
                dst.len()
            )));
        }
        if color {
            for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(3)) {
                d[0] = s[2];
                d[1] = s[1];
                d[2] = s[0];
            }
        } else {
            dst.copy_from_slice(&src);
        }
        wr.write(&mat).map_err(|e| err(e.to_string()))?;
    }
    wr.release().map_err(|e| err(e.to_string()))?;
    Ok(())
}
