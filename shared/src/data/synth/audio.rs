//! Audio of a synthetic sample: arc hum (fundamental follows voltage, harmonics follow
//! current), hiss (follows current), droplet-rate modulation, plus defect sounds (burnthrough
//! crackle, spatter pops, porosity sputter, cold-arc harmonics, abrupt stop). 16-bit mono FLAC.
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::process::{normal, Process, I_REF};
use crate::{Error, Result};

/// [N] 16-bit samples of the clip at `rate` Hz.
pub fn render_audio(p: &Process, rate: u32, rng: &mut ChaCha8Rng) -> Vec<i32> {
    let n = (p.seconds * rate as f64).round() as usize;
    let sr = rate as f64;
    let tau = std::f64::consts::TAU;
    let d = &p.defect;
    let mut phase = 0.0f64;
    let mut lp = 0.0f64; // one-pole low-passed noise (arc roar)
    let mut burst = 0.0f64; // decaying impulse energy (pops, crackle)
    let harm_phase: Vec<f64> = (0..5).map(|_| rng.random_range(0.0..tau)).collect();
    let am_phase = rng.random_range(0.0..tau);
    let pop_rate = 14.0 * d.severity; // spatter pops per second
    let crackle_rate = 400.0; // burnthrough crackle events per second at full spike
    let decay = (-1.0 / (0.002 * sr)).exp(); // 2 ms bursts
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let t = k as f64 / sr;
        let u = t / p.seconds;
        let i = p.current_at(u);
        let on = i > 1.0;
        let mut x = 0.0;
        let wn: f64 = normal(rng);
        if on {
            let v = p.arc_voltage_at(u);
            let f0 = 60.0 + 6.0 * v;
            phase = (phase + tau * f0 / sr) % tau;
            let level = i / I_REF;
            let tilt = 1.3 - 0.03 * (v - 23.0);
            let cold = if d.cold_arc {
                1.0 - 0.5 * d.severity
            } else {
                1.0
            };
            let mut hum = 0.0;
            for (h, ph) in harm_phase.iter().enumerate() {
                let hn = (h + 1) as f64;
                let amp = 0.12 * level / hn.powf(tilt) * if h > 0 { cold } else { 1.0 };
                hum += amp * (hn * phase + ph).sin();
            }
            let am = 1.0 + 0.25 * (tau * p.droplet_hz * t + am_phase).sin();
            lp += 0.25 * (wn - lp);
            let hiss_gain = 0.05 * level * (1.0 + 2.0 * p.gas_drop_at(u));
            x = hum * am + hiss_gain * lp + 0.01 * level * wn;
            // defect events
            let spike = p.spike_at(u);
            if spike > 0.0 && rng.random::<f64>() < crackle_rate * spike / sr {
                burst += 0.5 * rng.random_range(0.3..1.0);
            }
            if d.spatter && rng.random::<f64>() < pop_rate / sr {
                burst += rng.random_range(0.3..0.7);
            }
            if p.gas_drop_at(u) > 0.0 && rng.random::<f64>() < 30.0 * p.gas_drop_at(u) / sr {
                burst += rng.random_range(0.1..0.25);
            }
        }
        x += burst * wn.signum() * rng.random_range(0.5..1.0);
        burst *= decay;
        let q = (x.clamp(-1.0, 1.0) * 32767.0).round() as i32;
        out.push(q);
    }
    out
}

/// Encode 16-bit mono samples as FLAC bytes.
pub fn encode_flac(samples: &[i32], rate: u32) -> Result<Vec<u8>> {
    use flacenc::component::BitRepr;
    use flacenc::error::Verify;
    let config = flacenc::config::Encoder::default()
        .into_verified()
        .map_err(|e| Error::Msg(format!("flac encoder config: {e:?}")))?;
    let source = flacenc::source::MemSource::from_samples(samples, 1, 16, rate as usize);
    let stream = flacenc::encode_with_fixed_block_size(&config, source, config.block_size)
        .map_err(|e| Error::Msg(format!("flac encoding: {e:?}")))?;
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream
        .write(&mut sink)
        .map_err(|e| Error::Msg(format!("flac writing: {e:?}")))?;
    let mut bytes = sink.as_slice().to_vec();
    fix_min_block_size(&mut bytes)?;
    Ok(bytes)
}

/// flacenc 0.5 writes the short last block's length as STREAMINFO's minimum block size; the FLAC
/// format defines that field as the minimum *excluding* the last block, and symphonia 0.6 reads
/// min != max as a variable-block-size stream and then fails to find the first frame. Set the
/// minimum to the (fixed) maximum block size, as the format prescribes.
fn fix_min_block_size(bytes: &mut [u8]) -> Result<()> {
    // "fLaC", then the first metadata block header (type 0 = STREAMINFO), then min/max block size
    if bytes.len() < 12 || &bytes[0..4] != b"fLaC" || bytes[4] & 0x7f != 0 {
        return Err(Error::Msg(
            "flac encoder output does not start with a STREAMINFO block".into(),
        ));
    }
    let (min, max) = bytes[8..12].split_at_mut(2);
    min.copy_from_slice(max);
    Ok(())
}
