//! Kaldi log-mel filterbank exactly as `torchaudio.compliance.kaldi.fbank` computes it when
//! `ASTFeatureExtractor` calls it (`window_type="hanning"`, everything else torchaudio's default),
//! and AST's `input_values` (pad/truncate to `max_length` frames, then `(x - mean) / (2 std)`).
//!
//! Per frame (`snip_edges=True`: `1 + (n - len) / shift` frames, none partial): remove the DC
//! offset, pre-emphasise `y[j] = x[j] - p x[max(0, j - 1)]`, multiply by the symmetric Hann
//! window, zero-pad to the next power of two, `|rfft|^2`, apply the triangular mel banks (linear
//! in Kaldi mel, `1127 ln(1 + f / 700)`), then `ln(max(e, f32::EPSILON))`.
//!
//! The mel banks are computed once, with libtorch's f32 operations in torchaudio's order, so the
//! weights are bit-identical (with 128 bins and a 512-point FFT, bin 3 receives no FFT bin at all
//! and is the constant `ln(eps) = -15.942`, as in torchaudio). The frames, the FFT (`realfft`,
//! planned once) and the mel products run in f64: closer to the exact values than torchaudio's own
//! f32 computation, whose rounding moves bins near the floor by up to a few 1e-3.
use crate::{Error, Result};
use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;
use tch::{Kind, Tensor};

/// Parameters of the filterbank. `Default` is what `ASTFeatureExtractor` uses.
#[derive(Debug, Clone, PartialEq)]
pub struct FbankConfig {
    /// Hz; 16000 for AST.
    pub sample_rate: f32,
    /// Frame length in milliseconds (25 -> 400 samples at 16 kHz).
    pub frame_length_ms: f32,
    /// Frame shift in milliseconds (10 -> 160 samples at 16 kHz).
    pub frame_shift_ms: f32,
    /// Number of triangular mel bins (128 for AST; torchaudio needs more than 3).
    pub num_mel_bins: usize,
    /// Lowest mel-bank edge in Hz (20).
    pub low_freq: f32,
    /// Highest mel-bank edge in Hz; `<= 0` means an offset from Nyquist (0 -> Nyquist).
    pub high_freq: f32,
    /// Pre-emphasis coefficient in [0, 1] (0.97).
    pub preemphasis: f32,
    /// Subtract each frame's mean before pre-emphasis (true).
    pub remove_dc_offset: bool,
}

impl Default for FbankConfig {
    fn default() -> Self {
        Self {
            sample_rate: 16000.0,
            frame_length_ms: 25.0,
            frame_shift_ms: 10.0,
            num_mel_bins: 128,
            low_freq: 20.0,
            high_freq: 0.0,
            preemphasis: 0.97,
            remove_dc_offset: true,
        }
    }
}

/// One triangular filter: weights for FFT bins `start .. start + weights.len()`.
#[derive(Debug, Clone)]
struct MelFilter {
    start: usize,
    weights: Vec<f64>,
}

/// A planned filterbank: window, mel banks and FFT are built once in [`Fbank::new`] and reused.
/// `Fbank` is `Send + Sync`; [`Fbank::compute`] allocates its own scratch per call.
pub struct Fbank {
    cfg: FbankConfig,
    window_size: usize,
    window_shift: usize,
    padded: usize,
    window: Vec<f64>,
    filters: Vec<MelFilter>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl std::fmt::Debug for Fbank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fbank")
            .field("cfg", &self.cfg)
            .field("window_size", &self.window_size)
            .field("window_shift", &self.window_shift)
            .field("padded", &self.padded)
            .finish()
    }
}

fn mel_scale_f64(f: f64) -> f64 {
    1127.0 * (1.0 + f / 700.0).ln()
}

/// torchaudio's `get_mel_banks` (vtln_warp = 1), run with the same libtorch f32 operations in
/// the same order, so every weight is bit-identical (an f32 `ln` that differs by one ulp moves a
/// weight near a triangle edge by up to 1e-4 relative). Returns `num_bins` filters over the
/// `padded / 2` non-Nyquist FFT bins.
fn mel_banks(cfg: &FbankConfig, padded: usize) -> Result<Vec<MelFilter>> {
    let num_bins = cfg.num_mel_bins;
    let sr = cfg.sample_rate as f64;
    let nyquist = 0.5 * sr;
    let low = cfg.low_freq as f64;
    let mut high = cfg.high_freq as f64;
    if high <= 0.0 {
        high += nyquist;
    }
    if num_bins <= 3
        || !(0.0 <= low && low < nyquist && 0.0 < high && high <= nyquist && low < high)
    {
        return Err(Error::Preprocess(format!(
            "fbank: bad mel options: {num_bins} bins (need > 3), low {low} Hz, high {high} Hz, \
             Nyquist {nyquist} Hz"
        )));
    }
    let num_fft_bins = padded / 2;
    let fft_bin_width = sr / padded as f64;
    let mel_low = mel_scale_f64(low);
    let mel_high = mel_scale_f64(high);
    let delta = (mel_high - mel_low) / (num_bins as f64 + 1.0);
    let weights: Vec<f32> = tch::no_grad(|| {
        let cpu = tch::Device::Cpu;
        // python scalars meet int64 / f32 tensors: results are f32, as in torchaudio
        let bin = Tensor::arange(num_bins as i64, (Kind::Int64, cpu)).unsqueeze(1);
        let left = (&bin * delta) + mel_low;
        let center = ((&bin + 1.0) * delta) + mel_low;
        let right = ((&bin + 2.0) * delta) + mel_low;
        let freq = Tensor::arange(num_fft_bins as i64, (Kind::Float, cpu)) * fft_bin_width;
        let mel = (((freq / 700.0) + 1.0).log() * 1127.0).unsqueeze(0);
        let up = (&mel - &left) / (&center - &left);
        let down = (&right - &mel) / (&right - &center);
        let w = Tensor::zeros([1], (Kind::Float, cpu)).maximum(&up.minimum(&down));
        Vec::<f32>::try_from(w.contiguous().view([-1]))
    })
    .map_err(|e| Error::Preprocess(format!("fbank: mel banks: {e}")))?;
    let filters = weights
        .chunks(num_fft_bins)
        .map(|w| {
            let start = w.iter().position(|&x| x > 0.0).unwrap_or(0);
            let end = w.iter().rposition(|&x| x > 0.0).map_or(start, |e| e + 1);
            MelFilter {
                start,
                weights: w[start..end].iter().map(|&x| x as f64).collect(),
            }
        })
        .collect();
    Ok(filters)
}

impl Fbank {
    /// Plans the filterbank (window, mel banks, FFT) for `cfg`.
    pub fn new(cfg: FbankConfig) -> Result<Self> {
        // torchaudio: int(sample_frequency * frame_length * 0.001), in f64
        let window_size = (cfg.sample_rate as f64 * cfg.frame_length_ms as f64 * 0.001) as usize;
        let window_shift = (cfg.sample_rate as f64 * cfg.frame_shift_ms as f64 * 0.001) as usize;
        if window_size < 2 || window_shift == 0 || !(0.0..=1.0).contains(&cfg.preemphasis) {
            return Err(Error::Preprocess(format!(
                "fbank: bad framing options: window {window_size} samples (need >= 2), shift \
                 {window_shift} samples (need > 0), preemphasis {} (need [0, 1])",
                cfg.preemphasis
            )));
        }
        let padded = window_size.next_power_of_two();
        // torch.hann_window(N, periodic=False) = 0.5 - 0.5 cos(2 pi n / (N - 1))
        let denom = (window_size - 1) as f64;
        let window = (0..window_size)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / denom).cos())
            .collect();
        let filters = mel_banks(&cfg, padded)?;
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(padded);
        Ok(Self {
            cfg,
            window_size,
            window_shift,
            padded,
            window,
            filters,
            fft,
        })
    }

    /// The configuration this filterbank was planned for.
    pub fn config(&self) -> &FbankConfig {
        &self.cfg
    }

    /// Samples per frame (400 at 16 kHz / 25 ms).
    pub fn window_size(&self) -> usize {
        self.window_size
    }

    /// Number of frames `compute` returns for `n` samples: `1 + (n - window) / shift`, or `None`
    /// when `n` is shorter than one window (torchaudio refuses such input too).
    pub fn num_frames(&self, n: usize) -> Option<usize> {
        (n >= self.window_size).then(|| 1 + (n - self.window_size) / self.window_shift)
    }

    /// Log-mel filterbank of a mono waveform at `sample_rate` (floats in [-1, 1], not scaled
    /// by 2^15). Returns `[frames, num_mel_bins]` row-major. A waveform shorter than one window
    /// is an error ([`Error::AudioTooShort`]), as it is in torchaudio.
    pub fn compute(&self, wave: &[f32]) -> Result<Vec<f32>> {
        let frames = self.num_frames(wave.len()).ok_or(Error::AudioTooShort {
            samples: wave.len(),
            needed: self.window_size,
        })?;
        let bins = self.cfg.num_mel_bins;
        let p = self.cfg.preemphasis as f64;
        let eps = f32::EPSILON as f64;
        let mut out = Vec::with_capacity(frames * bins);
        let mut x = vec![0.0f64; self.window_size];
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f64; self.padded / 2];
        for f in 0..frames {
            let frame = &wave[f * self.window_shift..f * self.window_shift + self.window_size];
            for (xi, &s) in x.iter_mut().zip(frame) {
                *xi = s as f64;
            }
            if self.cfg.remove_dc_offset {
                let mean = x.iter().sum::<f64>() / self.window_size as f64;
                x.iter_mut().for_each(|v| *v -= mean);
            }
            // pre-emphasis with replicate padding on the left, then the window; the rest of
            // `input` is zero (zero-padding to the FFT size; the FFT uses `input` as scratch,
            // so it is cleared every frame)
            let (head, tail) = input.split_at_mut(self.window_size);
            tail.fill(0.0);
            head[0] = (x[0] - p * x[0]) * self.window[0];
            for (j, o) in head.iter_mut().enumerate().skip(1) {
                *o = (x[j] - p * x[j - 1]) * self.window[j];
            }
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .map_err(|e| Error::Preprocess(format!("fbank: FFT failed: {e}")))?;
            for (pw, c) in power.iter_mut().zip(&spectrum) {
                *pw = c.re * c.re + c.im * c.im;
            }
            for filt in &self.filters {
                let e: f64 = filt
                    .weights
                    .iter()
                    .zip(&power[filt.start..])
                    .map(|(w, p)| w * p)
                    .sum();
                out.push(e.max(eps).ln() as f32);
            }
        }
        Ok(out)
    }
}

/// `ASTFeatureExtractor` for one mono 16 kHz waveform: fbank, zero rows appended (or rows
/// dropped) to exactly `max_length` frames, then `(x - mean) / (2 std)` (padding rows included).
/// AST's values: `max_length` 1024, `mean` -4.2677393, `std` 4.5689974.
/// Returns `[max_length, num_mel_bins]` row-major.
pub fn ast_input_values(
    fbank: &Fbank,
    wave: &[f32],
    max_length: usize,
    mean: f32,
    std: f32,
) -> Result<Vec<f32>> {
    let bins = fbank.cfg.num_mel_bins;
    let mut v = fbank.compute(wave)?;
    v.resize(max_length * bins, 0.0);
    let denom = std * 2.0;
    v.iter_mut().for_each(|x| *x = (*x - mean) / denom);
    Ok(v)
}

/// AST's normalisation constants (`ASTFeatureExtractor` defaults).
pub const AST_MEAN: f32 = -4.267_739_3;
/// See [`AST_MEAN`].
pub const AST_STD: f32 = 4.568_997_4;
/// AST's frame count (10.24 s at 16 kHz).
pub const AST_MAX_LENGTH: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fbank_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Fbank>();
    }

    #[test]
    fn frame_count_and_short_input() {
        let fb = Fbank::new(FbankConfig::default()).unwrap();
        assert_eq!(fb.num_frames(399), None);
        assert_eq!(fb.num_frames(400), Some(1));
        assert_eq!(fb.num_frames(164_080), Some(1024));
        assert!(matches!(
            fb.compute(&[0.0; 399]),
            Err(Error::AudioTooShort {
                samples: 399,
                needed: 400
            })
        ));
    }

    #[test]
    fn mel_bin_3_is_empty_with_ast_settings() {
        let fb = Fbank::new(FbankConfig::default()).unwrap();
        assert!(fb.filters[3].weights.is_empty());
        assert!(fb
            .filters
            .iter()
            .enumerate()
            .all(|(i, f)| i == 3 || !f.weights.is_empty()));
        let wave: Vec<f32> = (0..800).map(|i| ((i as f32) * 0.37).sin() * 0.5).collect();
        let v = fb.compute(&wave).unwrap();
        assert_eq!(v.len(), 3 * 128); // 1 + (800 - 400) / 160 frames
        assert_eq!(v[3], f32::EPSILON.ln());
    }
}
