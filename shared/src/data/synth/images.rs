//! Post-weld images of a synthetic sample: 5 views of one plate with its bead. The bead width at
//! each point follows the heat input when that point was welded, ripple spacing follows travel
//! speed, heat tint follows heat input. Defects draw holes (burnthrough), pits (porosity), toe
//! grooves (undercut), rolled lips and a too-wide bead (overlap), a narrow bead (lack of fusion),
//! a high crown (convexity), droplets (spatter), a crater with cracks (crater cracks), a sunk
//! root (excessive penetration) or a bent plate (warping).
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::process::{envelope, normal, Process, S_REF};

/// A round surface feature in plate coordinates.
#[derive(Debug, Clone, Copy)]
struct Spot {
    x: f64,
    y: f64,
    r: f64,
}

/// Plate geometry of one sample: plate coordinates are x in [0, 1] along the bead (= weld time
/// u) and y across the plate (centre 0).
struct Plate<'a> {
    p: &'a Process,
    /// Benign soot / scale marks on the plate (every weld has 0-6).
    marks: Vec<Spot>,
    pits: Vec<Spot>,
    drops: Vec<Spot>,
    hole: Option<Spot>,
    crater: Option<Spot>,
    cracks: Vec<(f64, f64, f64, f64)>,
    streaks: Vec<f64>,
    ripple: f64,
}

impl Plate<'_> {
    fn centre(&self, x: f64) -> f64 {
        self.p.defect.warp * 4.0 * x * (1.0 - x)
    }

    /// Bead half width at x (0 where no bead was laid).
    fn half_width(&self, x: f64) -> f64 {
        let env = envelope(x.clamp(0.0, 1.0), self.p.defect.abrupt_stop);
        if env <= 0.0 || !(0.0..=1.0).contains(&x) {
            return 0.0;
        }
        let d = &self.p.defect;
        (0.03 + 0.045 * self.p.heat_at(x)) * d.bead_width_factor * env.sqrt()
    }

    /// RGB (0..255, unclamped) of plate point (x, y); `light` scales the lighting.
    fn shade(&self, x: f64, y: f64, light: f64) -> [f64; 3] {
        let d = &self.p.defect;
        let yc = self.centre(x);
        let dy = (y - yc).abs();
        let hw = self.half_width(x);
        let si = (((y + 1.0) * 97.0).floor() as usize) % self.streaks.len();
        let base = 128.0 + self.streaks[si] + 6.0 * d.warp.abs() * 10.0 * (y - 0.2 * x);
        let mut rgb = [base, base, base + 4.0];
        // heat tint beside the bead
        let heat = self.p.heat_at(x.clamp(0.0, 1.0));
        let tint_w = 0.06 + 0.08 * heat;
        if hw > 0.0 && dy >= hw && dy < hw + tint_w {
            let s = (dy - hw) / tint_w; // 0 at the toe, 1 outside
            let k = (1.0 - s) * heat.min(1.5);
            let straw = [200.0, 168.0, 92.0];
            let blue = [86.0, 96.0, 160.0];
            for c in 0..3 {
                let tint = if s < 0.5 { straw[c] } else { blue[c] };
                rgb[c] = rgb[c] * (1.0 - 0.6 * k) + tint * 0.6 * k;
            }
        }
        if hw > 0.0 && dy < hw {
            let prof = (1.0 - (dy / hw).powi(2)).sqrt();
            let chevron = x * 1.0 - 0.8 * dy;
            let rip = (std::f64::consts::TAU * chevron / self.ripple).sin();
            let crown = if d.convex {
                1.0 + 1.2 * d.severity
            } else {
                1.0
            };
            let mut s = 95.0 + 85.0 * prof.powf(crown) + 12.0 * rip;
            if d.sag {
                s *= 1.0 - 0.4 * d.severity * prof;
            }
            rgb = [s * 0.96, s * 0.98, s * (1.0 + 0.05 * heat)];
        }
        if d.undercut && hw > 0.0 && dy >= hw && dy < hw + 0.014 {
            rgb = [64.0, 64.0, 68.0];
        }
        if d.overlap_lips && hw > 0.0 {
            if dy >= 0.85 * hw && dy < hw {
                rgb = [205.0, 205.0, 210.0];
            } else if dy >= hw && dy < hw + 0.01 {
                rgb = [70.0, 70.0, 74.0];
            }
        }
        for s in &self.marks {
            let r2 = (x - s.x).powi(2) + (y - s.y).powi(2);
            if r2 < s.r * s.r {
                let k = 0.3 + 0.4 * (r2 / (s.r * s.r));
                rgb = [rgb[0] * k, rgb[1] * k, rgb[2] * k];
            }
        }
        for s in &self.drops {
            let r2 = (x - s.x).powi(2) + (y - s.y).powi(2);
            if r2 < s.r * s.r {
                rgb = [190.0, 186.0, 180.0];
            } else if (x - s.x + 0.004).powi(2) + (y - s.y - 0.004).powi(2) < s.r * s.r {
                rgb = [50.0, 48.0, 46.0];
            }
        }
        for s in &self.pits {
            let r = ((x - s.x).powi(2) + (y - s.y).powi(2)).sqrt();
            if r < s.r {
                rgb = [58.0, 56.0, 54.0];
            } else if r < s.r * 1.35 {
                rgb = [175.0, 170.0, 165.0];
            }
        }
        if let Some(c) = self.crater {
            let r = ((x - c.x).powi(2) + (y - c.y).powi(2)).sqrt();
            if r < c.r {
                let k = 0.6 + 0.4 * r / c.r;
                rgb = [rgb[0] * k, rgb[1] * k, rgb[2] * k];
            }
        }
        for &(x0, y0, x1, y1) in &self.cracks {
            if seg_dist(x, y, x0, y0, x1, y1) < 0.0035 {
                rgb = [48.0, 48.0, 52.0];
            }
        }
        if let Some(hole) = self.hole {
            let r = ((x - hole.x).powi(2) + (y - hole.y).powi(2)).sqrt();
            if r < hole.r {
                rgb = [8.0, 6.0, 5.0];
            } else if r < hole.r * 1.4 {
                rgb = [120.0, 70.0, 35.0];
            }
        }
        [rgb[0] * light, rgb[1] * light, rgb[2] * light]
    }
}

fn seg_dist(x: f64, y: f64, x0: f64, y0: f64, x1: f64, y1: f64) -> f64 {
    let (dx, dy) = (x1 - x0, y1 - y0);
    let l2 = dx * dx + dy * dy;
    let t = if l2 > 0.0 {
        (((x - x0) * dx + (y - y0) * dy) / l2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((x - x0 - t * dx).powi(2) + (y - y0 - t * dy).powi(2)).sqrt()
}

/// View transforms: pixel (a, b) in [0, 1]^2 -> plate (x, y), plus a lighting gain.
fn view_to_plate(view: usize, a: f64, b: f64) -> (f64, f64, f64) {
    match view {
        0 => (a, b - 0.5, 1.0),                            // top view, whole bead
        1 => (0.02 + 0.5 * a, 0.5 * (b - 0.5), 1.05),      // close-up, first half
        2 => (0.48 + 0.5 * a, 0.5 * (b - 0.5), 0.95),      // close-up, second half
        3 => (b, a - 0.5, 0.9),                            // rotated 90 degrees
        _ => (a, 1.6 * (b - 0.5), 0.8 + 0.35 * (1.0 - b)), // oblique, light from the top
    }
}

/// The 5 views, each [h, w, 3] RGB u8.
pub fn render_images(p: &Process, w: usize, h: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<u8>> {
    let d = &p.defect;
    let tau = std::f64::consts::TAU;
    let streaks: Vec<f64> = (0..211).map(|_| 5.0 * normal(rng)).collect();
    let marks = (0..rng.random_range(0..7))
        .map(|_| Spot {
            x: rng.random_range(0.0..1.0),
            y: rng.random_range(0.1..0.5) * if rng.random::<bool>() { 1.0 } else { -1.0 },
            r: rng.random_range(0.008..0.03),
        })
        .collect();
    let mut plate = Plate {
        p,
        marks,
        pits: Vec::new(),
        drops: Vec::new(),
        hole: None,
        crater: None,
        cracks: Vec::new(),
        streaks,
        ripple: 0.022 * p.speed / S_REF,
    };
    if let Some((a, b)) = d.gas_drop {
        let n = (10.0 + 14.0 * d.severity) as usize;
        for _ in 0..n {
            let x = rng.random_range(a..b);
            let hw = plate.half_width(x);
            let y = plate.centre(x) + rng.random_range(-0.7..0.7) * hw;
            plate.pits.push(Spot {
                x,
                y,
                r: rng.random_range(0.006..0.013),
            });
        }
    }
    if let Some((a, b)) = d.spike {
        let x = 0.5 * (a + b);
        plate.hole = Some(Spot {
            x,
            y: plate.centre(x),
            r: (0.025 + 0.02 * d.severity) * rng.random_range(0.9..1.1),
        });
    }
    if d.spatter {
        let n = (25.0 + 35.0 * d.severity) as usize;
        for _ in 0..n {
            let x = rng.random_range(0.03..0.97);
            let side = if rng.random::<bool>() { 1.0 } else { -1.0 };
            let off = plate.half_width(x) + rng.random_range(0.01..0.2);
            plate.drops.push(Spot {
                x,
                y: plate.centre(x) + side * off,
                r: rng.random_range(0.003..0.008),
            });
        }
    }
    if let Some(stop) = d.abrupt_stop {
        let x = stop - 0.01;
        let hw0 = 0.03 + 0.045 * p.heat_at(x);
        let c = Spot {
            x,
            y: plate.centre(x),
            r: hw0 * 1.1,
        };
        let n = 3 + (3.0 * d.severity) as usize;
        for _ in 0..n {
            let ang = rng.random_range(0.0..tau);
            let len = rng.random_range(0.03..0.07);
            plate
                .cracks
                .push((c.x, c.y, c.x + len * ang.cos(), c.y + len * ang.sin()));
        }
        plate.crater = Some(c);
    }
    let mut views = Vec::with_capacity(5);
    for v in 0..5 {
        let exposure = 1.0 + 0.06 * normal(rng);
        let mut img = vec![0u8; w * h * 3];
        for py in 0..h {
            for px in 0..w {
                let a = (px as f64 + 0.5) / w as f64;
                let b = (py as f64 + 0.5) / h as f64;
                let (x, y, light) = view_to_plate(v, a, b);
                let rgb = plate.shade(x, y, light * exposure);
                let o = (py * w + px) * 3;
                for c in 0..3 {
                    let n: f64 = 2.0 * normal(rng);
                    img[o + c] = (rgb[c] + n).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        views.push(img);
    }
    views
}
