//! Decoders on synthesised inputs with known content: video frame indices/shape/RGB order,
//! audio resampling (length, dominant frequency, anti-aliasing, mono mix), images, and named
//! errors for empty/corrupt/truncated files.
#![cfg(feature = "extract")]
use std::path::Path;

use weld_cache::data::audio::{read_audio, read_audio_16k};
use weld_cache::data::images::{read_image, read_images};
use weld_cache::data::synth::audio::encode_flac;
use weld_cache::data::synth::video::write_avi;
use weld_cache::data::synth::write_image;
use weld_cache::data::video::{read_video_frames, uniform_indices, video_info};
use weld_cache::data::Modality;

const W: usize = 48;
const H: usize = 32;
const T: usize = 10;

/// Solid colour of frame k: R, G, B all distinct and varying differently with k.
fn colour(k: usize) -> [u8; 3] {
    [
        (20 + 20 * k) as u8,
        (220 - 15 * k) as u8,
        (40 + 60 * (k % 3)) as u8,
    ]
}

fn coloured_frames() -> Vec<u8> {
    let mut v = Vec::with_capacity(T * H * W * 3);
    for k in 0..T {
        for _ in 0..H * W {
            v.extend_from_slice(&colour(k));
        }
    }
    v
}

fn mean_rgb(frame: &[u8]) -> [f64; 3] {
    let mut m = [0f64; 3];
    for px in frame.chunks_exact(3) {
        for c in 0..3 {
            m[c] += px[c] as f64;
        }
    }
    m.map(|s| s / (frame.len() / 3) as f64)
}

#[test]
fn uniform_index_formula() {
    assert_eq!(uniform_indices(10, 4), vec![0, 3, 6, 9]);
    assert_eq!(uniform_indices(1110, 32)[31], 1109);
    assert_eq!(uniform_indices(1110, 32)[1], 35); // floor(1109 / 31)
    assert_eq!(uniform_indices(3, 5), vec![0, 0, 1, 1, 2]);
    assert_eq!(uniform_indices(7, 1), vec![0]);
}

#[test]
fn video_frames_count_shape_and_rgb_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.avi");
    write_avi(&p, &coloured_frames(), T, H, W, 10.0, "MJPG").unwrap();
    let info = video_info(&p).unwrap();
    assert_eq!((info.frames, info.width, info.height), (T, W, H));
    assert!((info.fps - 10.0).abs() < 1e-6);
    let f = read_video_frames(&p, 4, "s").unwrap();
    assert_eq!((f.t, f.h, f.w), (4, H, W));
    assert_eq!(f.data.len(), 4 * H * W * 3);
    let mut worst = 0f64;
    for (j, &k) in [0usize, 3, 6, 9].iter().enumerate() {
        let m = mean_rgb(&f.data[j * H * W * 3..(j + 1) * H * W * 3]);
        let c = colour(k);
        for ch in 0..3 {
            worst = worst.max((m[ch] - c[ch] as f64).abs());
        }
    }
    // MJPEG is lossy; swapped channels would be off by > 100
    assert!(worst < 8.0, "worst channel error {worst}");
    // more frames than the clip has: indices repeat, content follows them
    let f = read_video_frames(&p, 13, "s").unwrap();
    assert_eq!(f.t, 13);
    for (j, k) in uniform_indices(T, 13).into_iter().enumerate() {
        let m = mean_rgb(&f.data[j * H * W * 3..(j + 1) * H * W * 3]);
        assert!(
            (m[0] - colour(k)[0] as f64).abs() < 8.0,
            "frame {j} -> {k}: {m:?}"
        );
    }
}

#[test]
fn gray_video_comes_back_as_equal_channels() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.avi");
    let mut v = Vec::new();
    for k in 0..4 {
        for i in 0..H * W {
            let g = (30 + 40 * k + (i % W)) as u8;
            v.extend_from_slice(&[g, g, g]);
        }
    }
    write_avi(&p, &v, 4, H, W, 5.0, "MJPG").unwrap();
    let f = read_video_frames(&p, 4, "s").unwrap();
    let max_diff = f
        .data
        .chunks_exact(3)
        .map(|px| {
            (px[0] as i32 - px[2] as i32)
                .abs()
                .max((px[0] as i32 - px[1] as i32).abs())
        })
        .max()
        .unwrap();
    assert!(max_diff <= 3, "channels differ by {max_diff}");
}

#[test]
fn bad_videos_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.avi");
    write_avi(&good, &coloured_frames(), T, H, W, 10.0, "MJPG").unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let empty = dir.path().join("empty.avi");
    std::fs::write(&empty, b"").unwrap();
    let junk = dir.path().join("junk.avi");
    std::fs::write(&junk, vec![0x5au8; 4096]).unwrap();
    let trunc = dir.path().join("trunc.avi");
    std::fs::write(&trunc, &bytes[..bytes.len() / 3]).unwrap();
    for p in [&empty, &junk, &trunc, &dir.path().join("absent.avi")] {
        let e = read_video_frames(p, 8, "smp").expect_err(&p.display().to_string());
        assert_eq!((e.sample.as_str(), e.modality), ("smp", Modality::Video));
        assert_eq!(&e.file, p);
    }
    let e = read_video_frames(&empty, 8, "smp").unwrap_err();
    assert!(e.message.contains("empty"), "{}", e.message);
}

fn sine(freq: f64, rate: u32, n: usize, amp: f64) -> Vec<f64> {
    (0..n)
        .map(|i| amp * (std::f64::consts::TAU * freq * i as f64 / rate as f64).sin())
        .collect()
}

fn to_i16(x: &[f64]) -> Vec<i32> {
    x.iter().map(|v| (v * 32767.0).round() as i32).collect()
}

/// Magnitude of the DFT of `x` at `freq` (Hz) for sample rate `rate`.
fn dft_mag(x: &[f32], rate: f64, freq: f64) -> f64 {
    let (mut re, mut im) = (0.0, 0.0);
    for (i, v) in x.iter().enumerate() {
        let a = std::f64::consts::TAU * freq * i as f64 / rate;
        re += *v as f64 * a.cos();
        im += *v as f64 * a.sin();
    }
    (re * re + im * im).sqrt() / x.len() as f64
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

#[test]
fn flac_44k_resampled_to_16k_keeps_frequency() {
    let dir = tempfile::tempdir().unwrap();
    let n = 66_150; // 1.5 s at 44.1 kHz
    let p = dir.path().join("tone.flac");
    std::fs::write(
        &p,
        encode_flac(&to_i16(&sine(440.0, 44_100, n, 0.5)), 44_100).unwrap(),
    )
    .unwrap();
    let raw = read_audio(&p, "s").unwrap();
    assert_eq!((raw.rate, raw.channels, raw.samples.len()), (44_100, 1, n));
    let y = read_audio_16k(&p, "s").unwrap();
    assert_eq!(y.len(), 24_000); // ceil(66150 * 16000 / 44100)
    assert!(y.iter().all(|v| (-1.0..=1.0).contains(v)));
    let mid = &y[4000..20_000]; // 1 s away from the edges: 1 Hz resolution
    let best = (100..4000)
        .step_by(10)
        .map(|f| (f, dft_mag(mid, 16_000.0, f as f64)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert_eq!(best.0, 440, "dominant frequency {best:?}");
    let fine = (430..=450)
        .map(|f| (f, dft_mag(mid, 16_000.0, f as f64)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert_eq!(fine.0, 440);
    let r = rms(mid);
    assert!((r - 0.5 / 2f64.sqrt()).abs() < 0.01, "rms {r}");
    // time alignment: the resampler delay is trimmed (phase of the sine at 16 kHz sample 8000)
    let expect = 0.5 * (std::f64::consts::TAU * 440.0 * 0.5).sin();
    assert!(
        (y[8000] as f64 - expect).abs() < 0.02,
        "{} vs {expect}",
        y[8000]
    );
}

#[test]
fn resampler_removes_content_above_8k() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("hi.flac");
    let n = 44_100;
    let x: Vec<f64> = sine(12_000.0, 44_100, n, 0.5)
        .iter()
        .zip(sine(1000.0, 44_100, n, 0.2))
        .map(|(a, b)| a + b)
        .collect();
    std::fs::write(&p, encode_flac(&to_i16(&x), 44_100).unwrap()).unwrap();
    let y = read_audio_16k(&p, "s").unwrap();
    let mid = &y[2000..14_000];
    let alias = dft_mag(mid, 16_000.0, 4000.0); // where 12 kHz would fold to
    let keep = dft_mag(mid, 16_000.0, 1000.0);
    assert!((keep - 0.1).abs() < 0.01, "1 kHz amplitude/2 {keep}");
    assert!(alias < 0.002, "aliased 12 kHz leaks {alias}");
}

/// A 16-bit PCM WAV file.
fn wav_bytes(channels: &[Vec<f64>], rate: u32) -> Vec<u8> {
    let nch = channels.len() as u16;
    let n = channels[0].len();
    let data_len = (n * nch as usize * 2) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&nch.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * nch as u32 * 2).to_le_bytes());
    b.extend_from_slice(&(nch * 2).to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..n {
        for ch in channels {
            b.extend_from_slice(&((ch[i] * 32767.0).round() as i16).to_le_bytes());
        }
    }
    b
}

#[test]
fn wav_stereo_16k_is_mixed_and_passed_through() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("st.wav");
    let l = sine(1000.0, 16_000, 16_000, 0.4);
    let r: Vec<f64> = sine(250.0, 16_000, 16_000, 0.2);
    std::fs::write(&p, wav_bytes(&[l.clone(), r.clone()], 16_000)).unwrap();
    let a = read_audio(&p, "s").unwrap();
    assert_eq!((a.rate, a.channels), (16_000, 2));
    let y = read_audio_16k(&p, "s").unwrap();
    assert_eq!(y.len(), 16_000);
    for i in (0..16_000).step_by(97) {
        let expect = ((l[i] * 32767.0).round() + (r[i] * 32767.0).round()) / 2.0 / 32768.0;
        assert!(
            (y[i] as f64 - expect).abs() < 1e-6,
            "{i}: {} vs {expect}",
            y[i]
        );
    }
}

#[test]
fn bad_audio_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = encode_flac(&to_i16(&sine(300.0, 16_000, 40_000, 0.3)), 16_000).unwrap();
    let cases: [(&str, Vec<u8>); 4] = [
        ("empty.flac", Vec::new()),
        ("junk.flac", vec![7u8; 5000]),
        ("trunc.flac", good[..good.len() / 2].to_vec()),
        ("junk.wav", b"RIFF\x10\x00\x00\x00WAVEjunkjunk".to_vec()),
    ];
    for (name, bytes) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = read_audio_16k(&p, "smp").expect_err(name);
        assert_eq!(
            (e.sample.as_str(), e.modality),
            ("smp", Modality::Audio),
            "{name}"
        );
        assert_eq!(e.file, p);
    }
}

#[test]
fn images_rgb_order_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    // left half red, right half blue, 20x30
    let (h, w) = (20usize, 30usize);
    let mut rgb = Vec::new();
    for _ in 0..h {
        for x in 0..w {
            rgb.extend_from_slice(if x < w / 2 {
                &[250, 10, 10]
            } else {
                &[10, 10, 250]
            });
        }
    }
    let png = dir.path().join("a.png");
    let jpg = dir.path().join("b.jpg");
    write_image(&png, &rgb, h, w).unwrap();
    write_image(&jpg, &rgb, h, w).unwrap();
    let imgs = read_images(&[png.clone(), jpg.clone()], "s").unwrap();
    assert_eq!(imgs[0].data, rgb); // PNG is exact
    let j = &imgs[1];
    assert_eq!((j.h, j.w), (h, w));
    let px = |x: usize| &j.data[(10 * w + x) * 3..(10 * w + x) * 3 + 3];
    assert!(px(3)[0] > 200 && px(3)[2] < 60, "{:?}", px(3));
    assert!(px(26)[2] > 200 && px(26)[0] < 60, "{:?}", px(26));
    // a 1-channel PNG comes back as 3 equal channels
    let gray = dir.path().join("g.png");
    {
        use opencv::core::{Mat, MatTraitManual, Scalar, Vector, CV_8UC1};
        let mut m = Mat::new_rows_cols_with_default(4, 5, CV_8UC1, Scalar::all(0.0)).unwrap();
        for (i, b) in m.data_bytes_mut().unwrap().iter_mut().enumerate() {
            *b = (i * 10) as u8;
        }
        opencv::imgcodecs::imwrite(&gray, &m, &Vector::new()).unwrap();
    }
    let g = read_image(&gray, "s").unwrap();
    assert_eq!((g.h, g.w), (4, 5));
    for (i, px) in g.data.chunks_exact(3).enumerate() {
        assert_eq!(px, [(i * 10) as u8; 3]);
    }
    // errors
    let empty = dir.path().join("e.png");
    std::fs::write(&empty, b"").unwrap();
    let junk = dir.path().join("j.jpg");
    std::fs::write(&junk, vec![1u8; 300]).unwrap();
    for p in [&empty, &junk, &dir.path().join("absent.png")] {
        let e = read_image(p, "smp").unwrap_err();
        assert_eq!((e.sample.as_str(), e.modality), ("smp", Modality::Images));
        assert_eq!(&e.file, p);
    }
    assert!(Path::new(&png).exists());
}
