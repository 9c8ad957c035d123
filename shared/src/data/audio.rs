//! Audio decoder: symphonia 0.6 (FLAC, WAV) -> mono (mean of the channels) -> 16 kHz with rubato.
//!
//! Resampler choice: rubato's synchronous FFT resampler (`rubato::Fft`, `FixedSync::Input`,
//! 1024-frame chunks). The ratio between two fixed integer rates is constant, so the FFT
//! resampler (band-limited, with an anti-aliasing low-pass below the lower Nyquist frequency) is
//! exact in ratio and much faster than the asynchronous sinc one; `process_all` trims the
//! resampler delay, so output sample `k` lines up with input time `k / 16000` s and the output
//! has `ceil(len * 16000 / rate)` samples. Audio already at 16 kHz passes through untouched.
//! The result is clamped to [-1, 1] (band-limiting can overshoot a full-scale input slightly).
use std::fs::File;
use std::path::Path;

use rubato::audioadapter::Adapter;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::{Modality, SampleError};

/// Target sample rate of every decoded clip.
pub const TARGET_RATE: u32 = 16_000;

/// Decoded audio at its own rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// [N] mono samples in [-1, 1].
    pub samples: Vec<f32>,
    pub rate: u32,
    /// Channels in the file before mixing.
    pub channels: usize,
}

/// Decode a FLAC or WAV file to mono at its own rate. Errors (modality `audio`): empty,
/// unreadable, unsupported or corrupt file (any packet that fails to decode is an error, never
/// skipped), truncated file (end of file inside a packet, or fewer samples than the header
/// announces), no audio track, zero samples.
pub fn read_audio(path: &Path, sample: &str) -> Result<Audio, SampleError> {
    let err = |m: String| SampleError::new(sample, Modality::Audio, path, m);
    let file = File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return Err(err("empty file (0 bytes)".into()));
    }
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| err(format!("unrecognised audio container: {e}")))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| err("no audio track".into()))?;
    let track_id = track.id;
    let expected_frames = track.num_frames;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| err("audio track without codec parameters".into()))?
        .clone();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| err(format!("no decoder: {e}")))?;
    let mut rate = params.sample_rate.unwrap_or(0);
    let mut channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
    // the header's sample count, when it has one (capped: a lying header costs no more than 1 GB)
    let announced = expected_frames.map_or(0, |n| usize::try_from(n).unwrap_or(0).min(1 << 28));
    let mut mono: Vec<f32> = Vec::with_capacity(announced);
    let mut planes: Vec<Vec<f32>> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(err(format!(
                    "truncated: unexpected end of file after {} samples",
                    mono.len()
                )))
            }
            Err(e) => {
                return Err(err(format!(
                    "demux error after {} samples: {e}",
                    mono.len()
                )))
            }
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = decoder
            .decode(&packet)
            .map_err(|e| err(format!("decode error at sample {}: {e}", mono.len())))?;
        rate = buf.spec().rate();
        channels = buf.spec().channels().count();
        buf.copy_to_vecs_planar::<f32>(&mut planes);
        let frames = buf.frames();
        if let [only] = planes.as_slice() {
            // one channel: the mean is the sample itself (bit for bit, -0.0 included)
            mono.extend_from_slice(&only[..frames]);
        } else {
            let nch = planes.len().max(1);
            mono.extend((0..frames).map(|i| planes.iter().map(|p| p[i]).sum::<f32>() / nch as f32));
        }
    }
    if rate == 0 {
        return Err(err("unknown sample rate".into()));
    }
    if mono.is_empty() {
        return Err(err("no audio samples".into()));
    }
    if let Some(n) = expected_frames {
        if n != mono.len() as u64 {
            return Err(err(format!(
                "truncated: decoded {} of the {n} samples the header announces",
                mono.len()
            )));
        }
    }
    Ok(Audio {
        samples: mono,
        rate,
        channels,
    })
}

/// Resample mono audio from `rate` to [`TARGET_RATE`] (see the module doc).
/// Returns [ceil(len * 16000 / rate)] samples clamped to [-1, 1].
pub fn resample_to_16k(samples: &[f32], rate: u32) -> Result<Vec<f32>, String> {
    if rate == TARGET_RATE {
        return Ok(samples.to_vec());
    }
    let mut rs = Fft::<f32>::new(
        rate as usize,
        TARGET_RATE as usize,
        1024,
        1,
        FixedSync::Input,
    )
    .map_err(|e| format!("resampler {rate} -> {TARGET_RATE}: {e}"))?;
    let input =
        InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| format!("resampler: {e}"))?;
    let out = rs
        .process_all(&input, samples.len(), None)
        .map_err(|e| format!("resampling {rate} -> {TARGET_RATE}: {e}"))?;
    let n = out.frames();
    let mut v = out.take_data(); // one channel: interleaved == the samples
    v.truncate(n);
    v.iter_mut().for_each(|s| *s = s.clamp(-1.0, 1.0));
    Ok(v)
}

/// Decode, mix to mono and resample to 16 kHz. Returns [N] samples in [-1, 1].
pub fn read_audio_16k(path: &Path, sample: &str) -> Result<Vec<f32>, SampleError> {
    let a = read_audio(path, sample)?;
    if a.rate == TARGET_RATE {
        return Ok(a.samples); // what resample_to_16k returns, without its copy
    }
    resample_to_16k(&a.samples, a.rate)
        .map_err(|m| SampleError::new(sample, Modality::Audio, path, m))
}
