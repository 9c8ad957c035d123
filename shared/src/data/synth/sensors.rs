//! Sensor CSV of a synthetic sample, in the dataset's column layout
//! (`Date, Time, Part No, Pressure, CO2 Weld Flow, Feed, Primary Weld Current, Wire Consumed,
//! Secondary Weld Voltage, Remarks`), sampled from the latent process at `sensor_hz`.
use rand_chacha::ChaCha8Rng;

use super::process::{normal, Process};
use crate::data::sensors::SENSOR_CSV_HEADER;

/// CSV text of the sensor log: `rows` rows at `hz`, starting at `start_s` seconds after
/// midnight on `date` (`YYYY-MM-DD`).
pub fn render_sensor_csv(
    p: &Process,
    rows: usize,
    hz: f64,
    date: &str,
    start_s: f64,
    part_no: u32,
    rng: &mut ChaCha8Rng,
) -> String {
    let mut s = String::new();
    s.push_str(&SENSOR_CSV_HEADER.join(","));
    s.push('\n');
    let mut wire = 0.0f64; // metres
    let dt = 1.0 / hz;
    let n = |sd: f64, rng: &mut ChaCha8Rng| -> f64 { sd * normal(rng) };
    for r in 0..rows {
        let u = if rows > 1 {
            r as f64 / (rows - 1) as f64
        } else {
            0.0
        };
        let mut i = p.current_at(u);
        if p.defect.spatter && i > 0.0 {
            // short-circuit bursts: strong current ripple
            i *= 1.0 + 0.08 * p.defect.severity * n(1.0, rng);
        }
        let on = i > 1.0;
        let i_meas = if on { (i + n(1.2, rng)).max(0.0) } else { 0.0 };
        let v_meas = if on {
            (p.voltage_at(u) + n(0.15, rng)).max(0.0)
        } else {
            0.0
        };
        let feed = if on {
            Process::feed_for(i) + n(0.04, rng)
        } else {
            0.0
        };
        wire += feed.max(0.0) * dt / 60.0;
        let gas = p.gas_at(u);
        let pressure = gas + n(0.02, rng);
        let flow = 3.75 * gas + n(0.1, rng); // L/min
        let t = start_s + r as f64 * dt;
        let (hh, mm, ss) = ((t / 3600.0) as u32, ((t % 3600.0) / 60.0) as u32, t % 60.0);
        let remark = if !on && r > 0 { "ARC OFF" } else { "" };
        s.push_str(&format!(
            "{date},{hh:02}:{mm:02}:{ss:06.3},{part_no},{pressure:.3},{flow:.2},{feed:.3},{i_meas:.1},{wire:.4},{v_meas:.2},{remark}\n"
        ));
    }
    s
}
