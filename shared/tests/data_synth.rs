//! Synthetic data: byte-identical for a seed (whatever the thread count), real layout, and the
//! physical coupling between modalities that the defect classes break.
#![cfg(feature = "extract")]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use weld_cache::data::audio::read_audio;
use weld_cache::data::sensors::read_sensor_csv;
use weld_cache::data::synth::{generate, SynthConfig};
use weld_cache::data::video::read_video_frames;
use weld_cache::data::{Manifest, SampleFiles, Split};

fn small(samples: usize, seed: u64) -> SynthConfig {
    SynthConfig {
        samples,
        seed,
        fps: 8.0,
        seconds: 2.0,
        width: 32,
        height: 32,
        image_size: 40,
        ..SynthConfig::default()
    }
}

fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut m = BTreeMap::new();
    walk(root, root, &mut m);
    m
}

#[test]
fn same_seed_same_bytes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let cfg = small(12, 7);
    generate(a.path(), &cfg).unwrap();
    // single-threaded second run: same bytes
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| generate(b.path(), &cfg)).unwrap();
    let (fa, fb) = (files(a.path()), files(b.path()));
    // 12 samples x (avi, flac, csv, 5 images) + manifest + config
    assert_eq!(fa.len(), 12 * 8 + 2);
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(v == &fb[k], "{} differs between runs", k.display());
    }
    let exts: BTreeMap<String, usize> = fa.keys().fold(BTreeMap::new(), |mut m, k| {
        *m.entry(k.extension().unwrap().to_string_lossy().into_owned())
            .or_default() += 1;
        m
    });
    assert_eq!(exts["avi"], 12);
    assert_eq!(exts["flac"], 12);
    assert_eq!(exts["jpg"], 36);
    assert_eq!(exts["png"], 24);
    // another seed: other data
    generate(c.path(), &small(12, 8)).unwrap();
    let fc = files(c.path());
    assert_ne!(fa[Path::new("manifest.csv")], fc[Path::new("manifest.csv")]);
}

#[test]
fn layout_and_splits() {
    let d = tempfile::tempdir().unwrap();
    let s = generate(d.path(), &small(30, 3)).unwrap();
    assert_eq!(s.samples, 30);
    let m = Manifest::read(&d.path().join("manifest.csv")).unwrap();
    assert_eq!(m.len(), 30);
    assert_eq!(m.split(Split::Train).count(), 12);
    assert!(m.split(Split::Train).all(|r| r.class_code == Some(0)));
    for split in [Split::Val, Split::Test] {
        let n = m.split(split).count();
        let good = m.split(split).filter(|r| r.class_code == Some(0)).count();
        assert_eq!(n, 9);
        assert!((4..=5).contains(&good), "{split}: {good} good of {n}");
    }
    for r in &m.samples {
        let f = SampleFiles::locate(d.path(), r).unwrap();
        assert!(f.video().is_ok() && f.audio().is_ok() && f.sensors().is_ok());
        assert_eq!(f.images().unwrap().len(), 5);
        assert_eq!(r.key, format!("{}/{}", r.directory, r.id));
    }
    // the audio is at 44.1 kHz, so extraction exercises the resampler
    let f = SampleFiles::locate(d.path(), &m.samples[0]).unwrap();
    assert_eq!(read_audio(&f.audio().unwrap(), "s").unwrap().rate, 44_100);
}

fn corr(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// Per-sample statistics read back through the decoders.
struct Stats {
    class: u8,
    current: f64,
    power: f64,
    spike: f64,
    gas_dip: f64,
    audio_rms: f64,
    video_mean: f64,
}

fn stats(root: &Path, r: &weld_cache::data::SampleRecord) -> Stats {
    let f = SampleFiles::locate(root, r).unwrap();
    let t = read_sensor_csv(&f.sensors().unwrap(), &r.key).unwrap();
    // columns: Pressure, CO2 Weld Flow, Feed, Primary Weld Current, Wire Consumed, Voltage
    let on: Vec<&[f32]> = t.data.chunks_exact(6).filter(|row| row[3] > 50.0).collect();
    let mean = |c: usize| on.iter().map(|row| row[c] as f64).sum::<f64>() / on.len() as f64;
    let median = |c: usize| {
        let mut v: Vec<f64> = on.iter().map(|row| row[c] as f64).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let max = |c: usize| on.iter().map(|row| row[c] as f64).fold(f64::MIN, f64::max);
    let min = |c: usize| on.iter().map(|row| row[c] as f64).fold(f64::MAX, f64::min);
    let a = read_audio(&f.audio().unwrap(), &r.key).unwrap();
    let audio_rms = (a.samples.iter().map(|v| (*v as f64).powi(2)).sum::<f64>()
        / a.samples.len() as f64)
        .sqrt();
    let v = read_video_frames(&f.video().unwrap(), 16, &r.key).unwrap();
    let video_mean = v.data.iter().map(|&b| b as f64).sum::<f64>() / v.data.len() as f64;
    Stats {
        class: r.class_code.expect("labelled synthetic sample"),
        current: mean(3),
        power: mean(3) * mean(5),
        spike: max(3) / median(3),
        gas_dip: min(1) / median(1),
        audio_rms,
        video_mean,
    }
}

#[test]
fn modalities_are_coupled_and_defects_break_it() {
    let d = tempfile::tempdir().unwrap();
    let mut cfg = small(60, 11);
    cfg.train_fraction = 0.5;
    generate(d.path(), &cfg).unwrap();
    let m = Manifest::read(&d.path().join("manifest.csv")).unwrap();
    let all: Vec<Stats> = m.samples.iter().map(|r| stats(d.path(), r)).collect();
    let good: Vec<&Stats> = all.iter().filter(|s| s.class == 0).collect();
    assert!(good.len() >= 40);
    let cur: Vec<f64> = good.iter().map(|s| s.current).collect();
    let pow: Vec<f64> = good.iter().map(|s| s.power).collect();
    let rms: Vec<f64> = good.iter().map(|s| s.audio_rms).collect();
    let vid: Vec<f64> = good.iter().map(|s| s.video_mean).collect();
    let c_audio = corr(&cur, &rms);
    let c_video = corr(&pow, &vid);
    println!("corr(current, audio rms) = {c_audio:.3}, corr(power, video mean) = {c_video:.3}");
    assert!(
        c_audio > 0.8,
        "audio level does not follow current: {c_audio}"
    );
    assert!(
        c_video > 0.6,
        "video brightness does not follow arc power: {c_video}"
    );
    // burnthrough: a current spike beyond every good weld; porosity: a gas-flow dip below
    let good_spike = good.iter().map(|s| s.spike).fold(f64::MIN, f64::max);
    let good_dip = good.iter().map(|s| s.gas_dip).fold(f64::MAX, f64::min);
    for s in &all {
        match s.class {
            2 => assert!(
                s.spike > good_spike,
                "burnthrough spike {} <= {good_spike}",
                s.spike
            ),
            3 => assert!(
                s.gas_dip < good_dip,
                "porosity dip {} >= {good_dip}",
                s.gas_dip
            ),
            _ => {}
        }
    }
    assert!(all.iter().any(|s| s.class == 2) && all.iter().any(|s| s.class == 3));
}

#[test]
fn shipped_config_equals_the_defaults() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/synth.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let cfg: SynthConfig = toml::from_str(&text).unwrap();
    assert_eq!(cfg, SynthConfig::default());
    // unknown keys are refused
    assert!(toml::from_str::<SynthConfig>("sampels = 3").is_err());
}
