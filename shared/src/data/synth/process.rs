//! The latent welding process of one synthetic sample and the defects that perturb it.
//!
//! A sample is a set of process parameters (current, voltage, travel speed, shielding gas) with
//! slow drifts over the weld. Every modality is rendered from this one process, so the modalities
//! agree for a good weld:
//! - video: arc brightness and size follow current x voltage, flicker follows voltage, the arc
//!   travels at the travel speed, the bead trail width follows the heat input;
//! - audio: hum fundamental follows voltage, harmonic level and hiss follow current, amplitude
//!   modulation at the droplet rate;
//! - sensors: current, voltage, wire feed (follows current), wire consumed (its integral), gas
//!   flow and pressure (follow gas);
//! - images: bead width along the weld follows the heat input at that point, ripple spacing
//!   follows travel speed, heat tint follows heat input.
//!
//! Each defect class breaks this agreement in its own subset of modalities ([`Defect`]).
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Reference current (A) and voltage (V) the renderers normalise by.
pub const I_REF: f64 = 170.0;
pub const V_REF: f64 = 23.0;
/// Reference travel speed (cm/min).
pub const S_REF: f64 = 30.0;

/// Points of the process grid over the weld (renderers interpolate between them).
const GRID: usize = 512;

/// Nominal settings of a recording session (the manifest's CURRENT_A, VOLTAGE_V, GAS_BAR,
/// ROBOT_SPEED_CPM).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nominal {
    pub current: f64,
    pub voltage: f64,
    pub gas_bar: f64,
    pub speed_cpm: f64,
}

/// Localised or global fault effects of a defect class (normalised weld time `u` in [0, 1];
/// the bead position along the plate equals `u`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Defect {
    /// Class code (0 = good).
    pub class_code: u8,
    /// 0.5..1 strength.
    pub severity: f64,
    /// Window [start, end] of a current spike (burnthrough): sensors, audio crackle, video flare.
    pub spike: Option<(f64, f64)>,
    /// Window of a gas-flow drop (porosity): sensors flow/pressure, audio hiss, image pits.
    pub gas_drop: Option<(f64, f64)>,
    /// Global voltage factor seen by sensors, audio and video (undercut > 1, convexity < 1).
    pub voltage_factor: f64,
    /// Global current factor seen by sensors, audio and video (excessive penetration > 1).
    pub current_factor: f64,
    /// Travel-speed factor seen by the video only (overlap < 1: the torch lingers).
    pub video_speed_factor: f64,
    /// Bead width factor in the images only (lack of fusion < 1, overlap > 1).
    pub bead_width_factor: f64,
    /// Spatter: droplets in images, specks in video, pops in audio, current ripple in sensors.
    pub spatter: bool,
    /// Undercut grooves along the bead toes (images).
    pub undercut: bool,
    /// Rolled-over cold lips beside the bead (images).
    pub overlap_lips: bool,
    /// Convex narrow bead with a strong crown highlight (images).
    pub convex: bool,
    /// Abrupt arc stop at this `u` (crater cracks: sensors, audio, video) plus cracks (images).
    pub abrupt_stop: Option<f64>,
    /// Sag / dark root under a too-hot bead (images).
    pub sag: bool,
    /// Bend of the plate and bead centre line (warping, images only).
    pub warp: f64,
    /// Weaker arc harmonics (cold arc, lack of fusion; audio only).
    pub cold_arc: bool,
}

impl Defect {
    /// The effects of class `code` at a random severity and position.
    pub fn of_class(code: u8, rng: &mut ChaCha8Rng) -> Defect {
        let sev = if code == 0 {
            0.0
        } else {
            rng.random_range(0.6..1.0)
        };
        let mut d = Defect {
            class_code: code,
            severity: sev,
            voltage_factor: 1.0,
            current_factor: 1.0,
            video_speed_factor: 1.0,
            bead_width_factor: 1.0,
            ..Default::default()
        };
        let window = |rng: &mut ChaCha8Rng, len: f64| {
            let s = rng.random_range(0.2..(0.85 - len));
            (s, s + len)
        };
        match code {
            1 => {
                d.current_factor = 1.0 + 0.18 * sev;
                d.sag = true;
            }
            2 => d.spike = Some(window(rng, 0.12)),
            3 => d.gas_drop = Some(window(rng, 0.3)),
            4 => {
                d.gas_drop = Some(window(rng, 0.3));
                d.current_factor = 1.0 + 0.12 * sev;
                d.sag = true;
            }
            5 => {
                d.voltage_factor = 1.0 + 0.12 * sev;
                d.undercut = true;
            }
            6 => {
                d.video_speed_factor = 1.0 - 0.3 * sev;
                d.bead_width_factor = 1.0 + 0.45 * sev;
                d.overlap_lips = true;
            }
            7 => {
                d.bead_width_factor = 1.0 - 0.45 * sev;
                d.cold_arc = true;
            }
            8 => {
                d.voltage_factor = 1.0 - 0.1 * sev;
                d.bead_width_factor = 1.0 - 0.25 * sev;
                d.convex = true;
            }
            9 => d.spatter = true,
            10 => d.warp = (0.08 + 0.1 * sev) * if rng.random::<bool>() { 1.0 } else { -1.0 },
            11 => d.abrupt_stop = Some(rng.random_range(0.82..0.9)),
            _ => {}
        }
        d
    }
}

/// The process of one sample, sampled on a grid over normalised time `u` in [0, 1].
#[derive(Debug, Clone)]
pub struct Process {
    /// Weld duration in seconds.
    pub seconds: f64,
    /// [GRID] current in A as the sensors see it (defect effects included).
    pub current: Vec<f64>,
    /// [GRID] voltage in V.
    pub voltage: Vec<f64>,
    /// [GRID] shielding-gas pressure in bar.
    pub gas: Vec<f64>,
    /// Travel speed, cm/min (constant per sample).
    pub speed: f64,
    /// [GRID] heat input relative to the reference weld (1 = 170 A x 23 V at 30 cm/min) as the
    /// bead was formed (drives the bead width in images).
    pub heat: Vec<f64>,
    /// Droplet-transfer rate in Hz (follows voltage): video flicker, audio modulation.
    pub droplet_hz: f64,
    pub defect: Defect,
}

/// One standard normal draw.
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// A smooth random drift: sum of 3 low-frequency sinusoids, amplitude about `amp`.
fn drift(rng: &mut ChaCha8Rng, amp: f64) -> impl Fn(f64) -> f64 {
    let parts: Vec<(f64, f64, f64)> = (0..3)
        .map(|k| {
            (
                rng.random_range(0.5..2.5) * (k + 1) as f64,
                rng.random_range(0.0..std::f64::consts::TAU),
                amp * normal(rng) / (k + 1) as f64,
            )
        })
        .collect();
    move |u: f64| {
        parts
            .iter()
            .map(|(f, ph, a)| a * (std::f64::consts::TAU * f * u + ph).sin())
            .sum()
    }
}

/// Arc start/stop envelope: 0 -> 1 over the first 4 % of the weld, 1 -> 0 over the last 4 %
/// (or an abrupt stop at `stop`).
pub fn envelope(u: f64, stop: Option<f64>) -> f64 {
    if let Some(s) = stop {
        if u >= s {
            return 0.0;
        }
    }
    let a = (u / 0.04).clamp(0.0, 1.0);
    let b = ((1.0 - u) / 0.04).clamp(0.0, 1.0);
    if stop.is_some() {
        a
    } else {
        a.min(b)
    }
}

fn in_window(u: f64, w: Option<(f64, f64)>) -> f64 {
    match w {
        Some((a, b)) if u >= a && u <= b => {
            // smooth bump inside the window
            (std::f64::consts::PI * (u - a) / (b - a)).sin()
        }
        _ => 0.0,
    }
}

impl Process {
    /// Draw the process of one sample around the session's nominal settings.
    pub fn draw(nom: &Nominal, defect: Defect, seconds: f64, rng: &mut ChaCha8Rng) -> Process {
        let i0 = nom.current + 4.0 * normal(rng);
        let v0 = nom.voltage + 0.4 * normal(rng);
        let g0 = (nom.gas_bar + 0.08 * normal(rng)).max(0.5);
        let speed = nom.speed_cpm + 0.8 * normal(rng);
        let di = drift(rng, 0.02);
        let dv = drift(rng, 0.012);
        let dg = drift(rng, 0.01);
        // Benign arc surges of every weld (short, small, seen consistently by all modalities), so
        // a brightness or loudness peak alone is no defect.
        let n_surges = rng.random_range(0..4);
        let surges: Vec<((f64, f64), f64)> = (0..n_surges)
            .map(|_| {
                let s = rng.random_range(0.08..0.9);
                (
                    (s, s + rng.random_range(0.02..0.04)),
                    rng.random_range(0.03..0.08),
                )
            })
            .collect();
        let d = &defect;
        let mut current = Vec::with_capacity(GRID);
        let mut voltage = Vec::with_capacity(GRID);
        let mut gas = Vec::with_capacity(GRID);
        let mut heat = Vec::with_capacity(GRID);
        for k in 0..GRID {
            let u = k as f64 / (GRID - 1) as f64;
            let spike = in_window(u, d.spike) * 0.35 * d.severity;
            let surge: f64 = surges.iter().map(|&(w, a)| a * in_window(u, Some(w))).sum();
            let i = i0 * (1.0 + di(u)) * d.current_factor * (1.0 + spike) * (1.0 + surge);
            let v = v0 * (1.0 + dv(u)) * d.voltage_factor * (1.0 + 0.15 * spike);
            let g = g0 * (1.0 + dg(u)) * (1.0 - 0.6 * d.severity * in_window(u, d.gas_drop));
            // Bead heat input uses the true arc power (defects that fake the bead act in the
            // image renderer through bead_width_factor).
            let h = (i * v) / (I_REF * V_REF) * (S_REF / speed);
            current.push(i);
            voltage.push(v);
            gas.push(g);
            heat.push(h);
        }
        let droplet_hz = 40.0 + 6.0 * (v0 * d.voltage_factor - 18.0);
        Process {
            seconds,
            current,
            voltage,
            gas,
            speed,
            heat,
            droplet_hz,
            defect,
        }
    }

    fn at(v: &[f64], u: f64) -> f64 {
        let p = u.clamp(0.0, 1.0) * (v.len() - 1) as f64;
        let lo = p.floor() as usize;
        let hi = (lo + 1).min(v.len() - 1);
        let w = p - lo as f64;
        v[lo] * (1.0 - w) + v[hi] * w
    }

    /// Current (A) at normalised time `u` while the arc burns (envelope applied).
    pub fn current_at(&self, u: f64) -> f64 {
        Self::at(&self.current, u) * envelope(u, self.defect.abrupt_stop)
    }

    /// Voltage (V) at `u` (open-circuit-ish 0 V outside the arc).
    pub fn voltage_at(&self, u: f64) -> f64 {
        Self::at(&self.voltage, u) * envelope(u, self.defect.abrupt_stop).min(1.0)
    }

    /// Voltage of the burning arc at `u` (no envelope).
    pub fn arc_voltage_at(&self, u: f64) -> f64 {
        Self::at(&self.voltage, u)
    }

    /// Gas pressure (bar) at `u`.
    pub fn gas_at(&self, u: f64) -> f64 {
        Self::at(&self.gas, u)
    }

    /// Relative heat input at bead position `u`.
    pub fn heat_at(&self, u: f64) -> f64 {
        Self::at(&self.heat, u)
    }

    /// Arc power relative to the reference (0 when the arc is off).
    pub fn power_at(&self, u: f64) -> f64 {
        self.current_at(u) * self.arc_voltage_at(u) / (I_REF * V_REF)
    }

    /// Spike strength 0..1 at `u` (burnthrough window).
    pub fn spike_at(&self, u: f64) -> f64 {
        in_window(u, self.defect.spike) * self.defect.severity
    }

    /// Gas-drop strength 0..1 at `u` (porosity window).
    pub fn gas_drop_at(&self, u: f64) -> f64 {
        in_window(u, self.defect.gas_drop) * self.defect.severity
    }

    /// Wire feed speed (m/min) for current `i` (A): the constant-voltage power source sets the
    /// current from the feed, so the feed follows the current.
    pub fn feed_for(i: f64) -> f64 {
        if i <= 0.0 {
            0.0
        } else {
            1.5 + 0.048 * i
        }
    }
}
