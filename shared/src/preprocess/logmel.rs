//! Log-mel spectrogram of a whole clip at a fixed frame rate, exactly as
//! `torchaudio.transforms.MelSpectrogram(sample_rate, n_fft, win_length=n_fft, hop_length,
//! f_min, f_max, n_mels, power=2.0, center=True, pad_mode="reflect", norm=None,
//! mel_scale="htk")` followed by `ln(mel + log_offset)`: the input of the dataset paper's audio
//! autoencoder (`audio/spectrogram`).
//!
//! Per frame `t` (centred at sample `t * hop`; the clip is reflect-padded by `n_fft / 2` on both
//! sides, so there are `1 + n / hop` frames): multiply `n_fft` samples by the periodic Hann
//! window `0.5 - 0.5 cos(2 pi k / n_fft)`, `|rfft|^2` over the `n_fft / 2 + 1` bins, then the
//! triangular HTK mel filters (`2595 log10(1 + f / 700)`, no area normalisation) over the FFT
//! bin frequencies `linspace(0, sample_rate // 2, n_fft / 2 + 1)`. Everything runs in f64
//! (torchaudio's own f32 rounding is the larger error, see `shared/tests/preprocess_fbank.rs`).
//!
//! [`fit_clip`] makes every sample the same length: a longer clip is cropped to its first
//! `clip_samples` samples, a shorter one is padded at the end with silence (zeros) and the number
//! of frames centred in the real audio is returned with it, so a reader can mask the padding
//! (`audio/spectrogram_clip`). Nothing here is silent: the caller stores both.
use crate::{Error, Result};
use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// Parameters of the log-mel spectrogram (config section `[spectrogram]`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogMelConfig {
    /// Hz of the waveform.
    pub sample_rate: usize,
    /// FFT size = window length (samples, even).
    pub n_fft: usize,
    /// Frame shift (samples): the frame rate is `sample_rate / hop` frames per second.
    pub hop: usize,
    pub n_mels: usize,
    /// Lowest and highest mel-filter edges (Hz); `f_max <= sample_rate / 2`.
    pub f_min: f64,
    pub f_max: f64,
    /// `ln(mel_power + log_offset)`; > 0.
    pub log_offset: f64,
}

/// A planned log-mel transform (window, filters and FFT built once). `Send + Sync`.
pub struct LogMel {
    cfg: LogMelConfig,
    window: Vec<f64>,
    /// Per mel filter: its first nonzero FFT bin and the weights from there to its last nonzero
    /// bin (the zeros outside add exactly nothing).
    filters: Vec<(usize, Vec<f64>)>,
    fft: Arc<dyn RealToComplex<f64>>,
}

fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

/// `torchaudio.functional.melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate,
/// norm=None, mel_scale="htk")`, transposed: `[n_mels][n_freqs]`.
fn melscale_fbanks(cfg: &LogMelConfig) -> Vec<Vec<f64>> {
    let n_freqs = cfg.n_fft / 2 + 1;
    let top = (cfg.sample_rate / 2) as f64;
    let all_freqs: Vec<f64> = (0..n_freqs)
        .map(|k| top * k as f64 / (n_freqs - 1) as f64)
        .collect();
    let (m_min, m_max) = (hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max));
    let f_pts: Vec<f64> = (0..cfg.n_mels + 2)
        .map(|i| mel_to_hz(m_min + (m_max - m_min) * i as f64 / (cfg.n_mels + 1) as f64))
        .collect();
    (0..cfg.n_mels)
        .map(|m| {
            all_freqs
                .iter()
                .map(|&f| {
                    let down = (f - f_pts[m]) / (f_pts[m + 1] - f_pts[m]);
                    let up = (f_pts[m + 2] - f) / (f_pts[m + 2] - f_pts[m + 1]);
                    down.min(up).max(0.0)
                })
                .collect()
        })
        .collect()
}

impl LogMel {
    /// Checks `cfg` and plans the transform.
    pub fn new(cfg: LogMelConfig) -> Result<Self> {
        let nyquist = cfg.sample_rate as f64 / 2.0;
        if cfg.n_fft < 4 || !cfg.n_fft.is_multiple_of(2) || cfg.hop == 0 || cfg.n_mels == 0 {
            return Err(Error::Preprocess(format!(
                "spectrogram: n_fft {} (even, >= 4), hop {} (>= 1), n_mels {} (>= 1)",
                cfg.n_fft, cfg.hop, cfg.n_mels
            )));
        }
        if !(0.0 <= cfg.f_min && cfg.f_min < cfg.f_max && cfg.f_max <= nyquist) {
            return Err(Error::Preprocess(format!(
                "spectrogram: need 0 <= f_min ({}) < f_max ({}) <= sample_rate / 2 ({nyquist})",
                cfg.f_min, cfg.f_max
            )));
        }
        if !(cfg.log_offset > 0.0 && cfg.log_offset.is_finite()) {
            return Err(Error::Preprocess(format!(
                "spectrogram: log_offset {} must be > 0",
                cfg.log_offset
            )));
        }
        let n = cfg.n_fft;
        let window = (0..n)
            .map(|k| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * k as f64 / n as f64).cos())
            .collect();
        let filters = melscale_fbanks(&cfg)
            .into_iter()
            .map(|w| {
                let start = w.iter().position(|&x| x > 0.0).unwrap_or(0);
                let end = w.iter().rposition(|&x| x > 0.0).map_or(start, |e| e + 1);
                (start, w[start..end].to_vec())
            })
            .collect();
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
        Ok(Self {
            cfg,
            window,
            filters,
            fft,
        })
    }

    pub fn config(&self) -> &LogMelConfig {
        &self.cfg
    }

    /// Frames of a clip of `n` samples: `1 + n / hop`.
    pub fn num_frames(&self, n: usize) -> usize {
        1 + n / self.cfg.hop
    }

    /// Log-mel spectrogram of a mono waveform. Returns `[1 + n / hop, n_mels]` row-major.
    /// The reflect padding needs more than `n_fft / 2` samples (as in torch); shorter is an error.
    pub fn compute(&self, wave: &[f32]) -> Result<Vec<f32>> {
        let half = self.cfg.n_fft / 2;
        let n = wave.len();
        if n <= half {
            return Err(Error::AudioTooShort {
                samples: n,
                needed: half + 1,
            });
        }
        // reflect padding (the edge sample is not repeated), as torch.stft(center=True)
        let at = |j: isize| -> f64 {
            let n = n as isize;
            let k = if j < 0 {
                -j
            } else if j >= n {
                2 * (n - 1) - j
            } else {
                j
            };
            wave[k as usize] as f64
        };
        let frames = self.num_frames(n);
        let mut out = Vec::with_capacity(frames * self.cfg.n_mels);
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f64; half + 1];
        for t in 0..frames {
            let start = (t * self.cfg.hop) as isize - half as isize;
            if start >= 0 && start as usize + self.cfg.n_fft <= n {
                let frame = &wave[start as usize..start as usize + self.cfg.n_fft];
                for ((v, &x), &w) in input.iter_mut().zip(frame).zip(&self.window) {
                    *v = x as f64 * w;
                }
            } else {
                for (k, v) in input.iter_mut().enumerate() {
                    *v = at(start + k as isize) * self.window[k];
                }
            }
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .map_err(|e| Error::Preprocess(format!("spectrogram: FFT failed: {e}")))?;
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.re * c.re + c.im * c.im;
            }
            for (start, w) in &self.filters {
                let e: f64 = w.iter().zip(&power[*start..]).map(|(w, p)| w * p).sum();
                out.push((e + self.cfg.log_offset).ln() as f32);
            }
        }
        Ok(out)
    }
}

/// How [`fit_clip`] changed a clip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipFit {
    /// Samples of the clip before fitting.
    pub source_samples: usize,
    /// Frames (of `1 + clip_samples / hop`) centred inside the real audio; the rest are padding.
    pub valid_frames: usize,
}

/// The first `clip_samples` samples of `wave`, padded at the end with zeros (silence) when the
/// clip is shorter, and what was done ([`ClipFit`]) for `hop`-sample frames.
pub fn fit_clip(wave: &[f32], clip_samples: usize, hop: usize) -> (Vec<f32>, ClipFit) {
    let frames = 1 + clip_samples / hop;
    let n = wave.len();
    let mut x = wave[..n.min(clip_samples)].to_vec();
    x.resize(clip_samples, 0.0);
    // frame t is centred at t * hop: real audio while t * hop < n
    let valid = n.div_ceil(hop).min(frames);
    (
        x,
        ClipFit {
            source_samples: n,
            valid_frames: valid,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LogMelConfig {
        LogMelConfig {
            sample_rate: 16000,
            n_fft: 64,
            hop: 16,
            n_mels: 8,
            f_min: 0.0,
            f_max: 8000.0,
            log_offset: 1e-6,
        }
    }

    #[test]
    fn frame_count_and_silence() {
        let m = LogMel::new(cfg()).unwrap();
        let v = m.compute(&[0.0; 100]).unwrap();
        assert_eq!(v.len(), (1 + 100 / 16) * 8);
        let floor = (1e-6f64).ln() as f32;
        assert!(v.iter().all(|&x| x == floor));
        assert!(m.compute(&[0.0; 32]).is_err());
    }

    #[test]
    fn fit_pads_and_crops_and_says_so() {
        let (x, f) = fit_clip(&[1.0; 40], 64, 16);
        assert_eq!(x.len(), 64);
        assert_eq!(&x[..40], &[1.0; 40]);
        assert!(x[40..].iter().all(|&v| v == 0.0));
        assert_eq!(f.source_samples, 40);
        assert_eq!(f.valid_frames, 3); // centres 0, 16, 32 < 40
        let (x, f) = fit_clip(&[1.0; 100], 64, 16);
        assert_eq!(x.len(), 64);
        assert_eq!(f.valid_frames, 5);
    }
}
