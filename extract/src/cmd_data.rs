//! Data tools of `extract`: `check-data` (decode every sample, report problems) and `synth`
//! (write a synthetic dataset in the Intel layout). The work lives in `weld_cache::data`.
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use weld_cache::data::check::{check_dataset_with_progress, CheckReport};
use weld_cache::data::synth::{generate_with_progress, SynthConfig};
use weld_cache::data::{Manifest, Split};

/// `extract check-data`.
#[derive(Args, Debug)]
pub struct CheckDataArgs {
    /// Dataset root (sample folders are `<root>/<SUBDIRS>`).
    #[arg(long)]
    pub data_root: PathBuf,
    /// Manifest CSV (default `<data-root>/manifest.csv`).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Where to write the JSON report.
    #[arg(long)]
    pub json: PathBuf,
    /// Exit non-zero when any problem is found.
    #[arg(long)]
    pub strict: bool,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// `extract synth`. Settings come from `--config` (TOML, keys of `SynthConfig`; default
/// `configs/synth.toml` values are the built-in defaults), then each flag given overrides.
#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Output folder (created).
    #[arg(long)]
    pub out: PathBuf,
    /// TOML file with SynthConfig keys (samples, seed, fps, seconds, width, height, ...).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Number of samples [default 200].
    #[arg(long)]
    pub samples: Option<usize>,
    /// Random seed [default 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Video frames per clip (sets seconds = frames / fps).
    #[arg(long)]
    pub frames: Option<usize>,
    /// Video frame rate [default 8].
    #[arg(long)]
    pub fps: Option<f64>,
    /// Clip length in seconds: video, audio and sensor log [default 4].
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Video frame size WxH [default 64x64].
    #[arg(long)]
    pub size: Option<String>,
    /// Audio sample rate in Hz [default 44100].
    #[arg(long)]
    pub audio_rate: Option<u32>,
    /// Side of the 5 square post-weld images [default 96].
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Sensor rows per second [default 9].
    #[arg(long)]
    pub sensor_hz: Option<f64>,
    /// Share of samples in TRAIN, all good [default 0.4].
    #[arg(long)]
    pub train_fraction: Option<f64>,
    /// Share of defective samples in VAL and TEST [default 0.5].
    #[arg(long)]
    pub defect_fraction: Option<f64>,
    /// Defect class codes, comma separated [default 2,3,5,6,7,9,11].
    #[arg(long, value_delimiter = ',')]
    pub classes: Option<Vec<u8>>,
    /// Samples per session folder [default 8].
    #[arg(long)]
    pub session_size: Option<usize>,
    /// Video fourcc for the FFMPEG backend: MJPG (intra-frame), FFV1, FMP4 (MPEG-4,
    /// inter-frame, a key frame every 12 frames)... [default MJPG].
    #[arg(long)]
    pub fourcc: Option<String>,
    /// Media geometry preset applied before the other flags: `demo` (the defaults) or `real`
    /// (the real dataset's sizes: 37 s clips, 1110-frame 640x480 grey MJPEG video at 30 fps,
    /// five 1920x1080 JPEGs, 16 kHz audio, ~340 sensor rows).
    #[arg(long, value_parser = ["demo", "real"])]
    pub geometry: Option<String>,
}

fn progress(n: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(n as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}

/// Per split and class: (samples, samples with problems, problems).
fn table(manifest: &Manifest, report: &CheckReport) -> String {
    let mut bad: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &report.problems {
        *bad.entry(p.sample.as_str()).or_default() += 1;
    }
    // (split, class) -> (label, samples, samples with problems, problems)
    type Row = (String, usize, usize, usize);
    let mut rows: BTreeMap<(Split, Option<u8>), Row> = BTreeMap::new();
    for s in &manifest.samples {
        let e = rows.entry((s.split, s.class_code)).or_insert_with(|| {
            let name = match (s.class_code, &s.class_name) {
                (Some(c), Some(n)) => format!("{c:02} {n}"),
                _ => "(no class)".to_string(),
            };
            (name, 0, 0, 0)
        });
        e.1 += 1;
        if let Some(&k) = bad.get(s.key.as_str()) {
            e.2 += 1;
            e.3 += k;
        }
    }
    let mut out = format!(
        "{:<6} {:<34} {:>8} {:>8} {:>9} {:>9}\n",
        "split", "class", "samples", "ok", "with_prob", "problems"
    );
    for ((split, _), (name, n, nb, np)) in &rows {
        out.push_str(&format!(
            "{:<6} {:<34} {:>8} {:>8} {:>9} {:>9}\n",
            split.as_str(),
            name,
            n,
            n - nb,
            nb,
            np
        ));
    }
    out.push_str(&format!(
        "{:<6} {:<34} {:>8} {:>8} {:>9} {:>9}\n",
        "all",
        "",
        report.samples,
        report.ok,
        report.samples - report.ok,
        report.problems.len()
    ));
    out
}

pub fn check_data(a: CheckDataArgs) -> Result<()> {
    let manifest_path = a
        .manifest
        .clone()
        .unwrap_or_else(|| a.data_root.join("manifest.csv"));
    let manifest = Manifest::read(&manifest_path)
        .with_context(|| format!("reading manifest {}", manifest_path.display()))?;
    let pb = progress(manifest.len(), "check-data");
    let report = check_dataset_with_progress(&a.data_root, &manifest, a.threads, &|| pb.inc(1));
    pb.finish_and_clear();
    print!("{}", table(&manifest, &report));
    for p in &report.problems {
        println!("problem: {} [{}] {}", p.sample, p.modality, p.error);
    }
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(dir) = a.json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&a.json, json + "\n")
        .with_context(|| format!("writing {}", a.json.display()))?;
    println!(
        "{} samples, {} ok, {} problems -> {}",
        report.samples,
        report.ok,
        report.problems.len(),
        a.json.display()
    );
    if a.strict && !report.problems.is_empty() {
        bail!("{} problems found (--strict)", report.problems.len());
    }
    Ok(())
}

fn parse_size(s: &str) -> Result<(usize, usize)> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .with_context(|| format!("--size {s:?}: expected WxH"))?;
    Ok((
        w.trim()
            .parse()
            .with_context(|| format!("--size width {w:?}"))?,
        h.trim()
            .parse()
            .with_context(|| format!("--size height {h:?}"))?,
    ))
}

/// The generator settings: `--config` (or the defaults), then the flags given.
pub fn synth_config(a: &SynthArgs) -> Result<SynthConfig> {
    let mut cfg = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading synth config {}", p.display()))?;
            toml::from_str::<SynthConfig>(&text)
                .with_context(|| format!("parsing synth config {}", p.display()))?
        }
        None => SynthConfig::default(),
    };
    if a.geometry.as_deref() == Some("real") {
        cfg = cfg.real_geometry();
    }
    macro_rules! set {
        ($($f:ident),*) => {$(if let Some(v) = a.$f.clone() { cfg.$f = v; })*};
    }
    set!(
        samples,
        seed,
        fps,
        seconds,
        audio_rate,
        image_size,
        sensor_hz,
        train_fraction,
        defect_fraction,
        classes,
        session_size,
        fourcc
    );
    if let Some(size) = &a.size {
        (cfg.width, cfg.height) = parse_size(size)?;
    }
    if let Some(f) = a.frames {
        cfg.seconds = f as f64 / cfg.fps;
    }
    Ok(cfg)
}

pub fn synth(a: SynthArgs) -> Result<()> {
    let cfg = synth_config(&a)?;
    let pb = progress(cfg.samples, "synth");
    let summary = generate_with_progress(&a.out, &cfg, &|| pb.inc(1))
        .with_context(|| format!("generating synthetic data in {}", a.out.display()))?;
    pb.finish_and_clear();
    println!(
        "wrote {} samples to {} (manifest {})",
        summary.samples,
        a.out.display(),
        summary.manifest.display()
    );
    for (s, n) in &summary.per_split {
        println!("  {s:<5} {n}");
    }
    for (c, n) in &summary.per_class {
        println!("  {c:<34} {n}");
    }
    Ok(())
}
