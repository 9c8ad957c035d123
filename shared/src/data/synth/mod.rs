//! Synthetic weld dataset in the exact Intel Robotic Welding layout (`manifest.csv`,
//! `<DIRECTORY>/<id>/<id>.avi`, `<id>.flac`, `<id>.csv`, `images/` with 5 views), generated from a
//! latent per-sample welding process ([`process`]) so that the modalities are physically coupled
//! and each defect class breaks the coupling in its own modalities. TRAIN holds only good welds;
//! VAL and TEST are about half good. Deterministic for a seed: every sample draws from its own
//! ChaCha8 stream seeded from (seed, sample index), so the output bytes do not depend on the
//! thread count.
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::manifest::{Split, CLASS_NAMES, MANIFEST_COLUMNS};
use crate::{Error, Result};

pub mod audio;
pub mod images;
pub mod large;
pub mod process;
pub mod sensors;
pub mod video;

use process::{Defect, Nominal, Process};

/// Generator settings (the CLI flags of `extract synth`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthConfig {
    /// Number of samples.
    pub samples: usize,
    pub seed: u64,
    /// Video frame rate and clip length (frames = round(fps * seconds)); the audio and sensor
    /// logs cover the same `seconds`.
    pub fps: f64,
    pub seconds: f64,
    /// Video frame size.
    pub width: usize,
    pub height: usize,
    /// Audio sample rate (44100 exercises the resampler; 16000 passes through).
    pub audio_rate: u32,
    /// Square size of the 5 post-weld images.
    pub image_size: usize,
    /// Sensor log rate (rows per second).
    pub sensor_hz: f64,
    /// Share of samples in TRAIN (all good); the rest splits evenly into VAL and TEST.
    pub train_fraction: f64,
    /// Share of defective samples in VAL and TEST.
    pub defect_fraction: f64,
    /// Defect class codes used (1..=11).
    pub classes: Vec<u8>,
    /// Samples per recording session (`DIRECTORY`).
    pub session_size: usize,
    /// Video codec (FFMPEG backend), e.g. "MJPG" (intra-frame), "FFV1", or "FMP4" (MPEG-4
    /// part 2, inter-frame: a key frame every 12 frames).
    pub fourcc: String,
    /// Height of the post-weld images (0 = square, `image_size` x `image_size`); `image_size`
    /// is then their width.
    pub image_height: usize,
    /// Grey video (luma written as a grey stream), as the dataset's in-process camera.
    pub gray_video: bool,
    /// How many of the 5 views are PNG (the last ones); the others are JPEG.
    pub png_views: usize,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            samples: 200,
            seed: 0,
            fps: 8.0,
            seconds: 4.0,
            width: 64,
            height: 64,
            audio_rate: 44_100,
            image_size: 96,
            sensor_hz: 9.0,
            train_fraction: 0.4,
            defect_fraction: 0.5,
            classes: vec![2, 3, 5, 6, 7, 9, 11],
            session_size: 8,
            fourcc: "MJPG".into(),
            image_height: 0,
            gray_video: false,
            png_views: 2,
        }
    }
}

impl SynthConfig {
    /// The geometry of the real dataset (`extract synth --geometry real`): 37 s clips of
    /// 640x480 grey MJPEG video at 30 fps (1110 frames), 16 kHz audio, ~340 sensor rows (9.2 Hz)
    /// and five 1920x1080 JPEG images; the other settings as `self`.
    pub fn real_geometry(self) -> Self {
        SynthConfig {
            fps: 30.0,
            seconds: 37.0,
            width: 640,
            height: 480,
            audio_rate: 16_000,
            image_size: 1920,
            image_height: 1080,
            sensor_hz: 9.2,
            gray_video: true,
            png_views: 0,
            fourcc: "MJPG".into(),
            ..self
        }
    }

    /// (width, height) of the post-weld images.
    pub fn image_dims(&self) -> (usize, usize) {
        let h = if self.image_height == 0 {
            self.image_size
        } else {
            self.image_height
        };
        (self.image_size, h)
    }

    /// Video frames per clip.
    pub fn frames(&self) -> usize {
        (self.fps * self.seconds).round().max(1.0) as usize
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Msg(format!("synth config: {m}")));
        if self.samples == 0 {
            return bad("samples must be > 0");
        }
        if !(self.fps > 0.0 && self.seconds > 0.0) {
            return bad("fps and seconds must be > 0");
        }
        if self.width < 8 || self.height < 8 || self.image_dims().0 < 8 || self.image_dims().1 < 8 {
            return bad("video and image sizes must be at least 8 pixels");
        }
        if self.png_views > 5 {
            return bad("png_views must be in 0..=5");
        }
        if self.audio_rate < 8000 || self.audio_rate > 192_000 {
            return bad("audio_rate must be in 8000..=192000");
        }
        if (self.sensor_hz * self.seconds) < 2.0 {
            return bad("sensor_hz * seconds must give at least 2 rows");
        }
        if !(0.0..=1.0).contains(&self.train_fraction)
            || !(0.0..=1.0).contains(&self.defect_fraction)
        {
            return bad("fractions must be in [0, 1]");
        }
        if self.classes.is_empty() || self.classes.iter().any(|&c| c == 0 || c > 11) {
            return bad("classes must be defect codes in 1..=11");
        }
        if self.session_size == 0 {
            return bad("session_size must be > 0");
        }
        Ok(())
    }
}

/// What was generated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SynthSummary {
    pub samples: usize,
    pub manifest: PathBuf,
    /// (split, samples) in TRAIN, VAL, TEST order.
    pub per_split: Vec<(String, usize)>,
    /// (class name, samples) by class code, classes present only.
    pub per_class: Vec<(String, usize)>,
}

/// One planned sample.
#[derive(Debug, Clone)]
struct Planned {
    split: Split,
    class: u8,
    session: usize,
    id: String,
    seq: usize,
}

/// One planned recording session.
#[derive(Debug, Clone)]
struct Session {
    directory: String,
    class: u8,
    date: (u32, u32, u32),
    nominal: Nominal,
    weld_type: &'static str,
    thickness: u32,
    steel: &'static str,
    samples: usize,
}

fn dir_name(class: u8, k: usize, (m, d, y): (u32, u32, u32), steel: &str) -> String {
    let dash = format!("{m:02}-{d:02}-{y:02}");
    let under = format!("{m:02}_{d:02}_{y:02}");
    match class {
        0 => format!("good_weld_{k}_{dash}_butt"),
        1 => format!("excessive_penetration_{k}_{dash}_{steel}"),
        2 => format!("burnthrough_weld_{k}_{dash}_butt_joint"),
        3 => format!("porosity_weld_{k}_{dash}_plane_plate"),
        4 => format!("porosity_w-excessive_penetration_{k}_{under}_butt_joint"),
        5 => format!("undercut_{k}_{dash}_{steel}"),
        6 => format!("overlap_{k}_{dash}_{steel}"),
        7 => format!("lack_of_fusion_{k}_{dash}_butt"),
        8 => format!("excessive_convexity_{k}_{dash}_{steel}"),
        9 => format!("spatter_weld_{k}_{dash}_plane_plate"),
        10 => format!("warping_weld_{k}_{under}_butt_joint"),
        _ => format!("crater_cracks_{k}_{dash}_{steel}"),
    }
}

/// The manifest CATEGORY spelling of a class (as in the real manifest).
fn category(class: u8) -> String {
    match class {
        0 => "Good".into(),
        c => CLASS_NAMES[usize::from(c)]
            .split('_')
            .map(|w| {
                let mut ch = w.chars();
                match ch.next() {
                    Some(f) if w != "of" && w != "w" => f.to_uppercase().chain(ch).collect(),
                    _ => w.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("_"),
    }
}

/// Splits, classes, sessions and ids of every sample (manifest order: TRAIN, VAL, TEST).
fn plan(cfg: &SynthConfig) -> (Vec<Planned>, Vec<Session>) {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x005E_ED0F_5E55_1015);
    let n = cfg.samples;
    let n_train = ((n as f64) * cfg.train_fraction).round() as usize;
    let rest = n - n_train.min(n);
    let n_val = rest.div_ceil(2);
    let n_test = rest - n_val;
    let mut items: Vec<(Split, u8)> = vec![(Split::Train, 0); n_train.min(n)];
    let mut cls = cfg.classes.clone();
    cls.shuffle(&mut rng);
    let mut next_cls = 0usize;
    for (split, m) in [(Split::Val, n_val), (Split::Test, n_test)] {
        let n_bad = ((m as f64) * cfg.defect_fraction).round() as usize;
        let mut part: Vec<(Split, u8)> = Vec::with_capacity(m);
        for _ in 0..(m - n_bad) {
            part.push((split, 0));
        }
        for _ in 0..n_bad {
            part.push((split, cls[next_cls % cls.len()]));
            next_cls += 1;
        }
        part.shuffle(&mut rng);
        items.extend(part);
    }
    // sessions: per class, consecutive chunks of a shuffled order (good sessions cross splits,
    // as in the real data)
    let mut sessions: Vec<Session> = Vec::new();
    let mut session_of = vec![0usize; items.len()];
    for class in 0..=11u8 {
        let mut idx: Vec<usize> = (0..items.len()).filter(|&i| items[i].1 == class).collect();
        idx.shuffle(&mut rng);
        for (k, chunk) in idx.chunks(cfg.session_size).enumerate() {
            let date = (
                rng.random_range(1..=12),
                rng.random_range(1..=28),
                rng.random_range(22..=23),
            );
            let steel = if rng.random::<bool>() {
                "Fe410"
            } else {
                "BSK46"
            };
            let nominal = Nominal {
                current: [140.0, 150.0, 160.0, 170.0, 180.0][rng.random_range(0..5)],
                voltage: [21.0, 22.0, 23.0, 24.0][rng.random_range(0..4)],
                gas_bar: [3.5, 4.0, 4.5][rng.random_range(0..3)],
                speed_cpm: [25.0, 30.0, 35.0][rng.random_range(0..3)],
            };
            let s = sessions.len();
            sessions.push(Session {
                directory: dir_name(class, k + 1, date, steel),
                class,
                date,
                nominal,
                weld_type: if rng.random::<bool>() {
                    "NON_FILLET"
                } else {
                    "FILLET"
                },
                thickness: if rng.random::<bool>() { 7 } else { 3 },
                steel: if steel == "Fe410" { "FE410" } else { "BSK46" },
                samples: chunk.len(),
            });
            for &i in chunk {
                session_of[i] = s;
            }
        }
    }
    let mut counters = vec![0usize; sessions.len()];
    let base: Vec<usize> = (0..sessions.len())
        .map(|_| rng.random_range(1..900))
        .collect();
    let planned = items
        .iter()
        .enumerate()
        .map(|(seq, &(split, class))| {
            let s = session_of[seq];
            let (m, d, y) = sessions[s].date;
            let num = base[s] + counters[s];
            counters[s] += 1;
            Planned {
                split,
                class,
                session: s,
                id: format!("{m:02}-{d:02}-{y:02}-{num:04}-{class:02}"),
                seq,
            }
        })
        .collect();
    (planned, sessions)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// Generate one sample's files into `dir`.
fn generate_sample(dir: &Path, pl: &Planned, ses: &Session, cfg: &SynthConfig) -> Result<()> {
    std::fs::create_dir_all(dir.join("images")).map_err(|e| Error::io(dir, e))?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(pl.seq as u64 + 1);
    let defect = Defect::of_class(pl.class, &mut rng);
    let proc = Process::draw(&ses.nominal, defect, cfg.seconds, &mut rng);
    // each modality draws from its own stream so changing one renderer leaves the others intact
    let sub = |k: u64| {
        let mut r = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(k * 0x9E37_79B9));
        r.set_stream(pl.seq as u64 + 1);
        r
    };
    // sensors
    let rows = (cfg.sensor_hz * cfg.seconds).round() as usize;
    let (m, d, y) = ses.date;
    let date = format!("20{y:02}-{m:02}-{d:02}");
    let start = 8.0 * 3600.0 + (pl.seq as f64) * 97.0;
    let csv = sensors::render_sensor_csv(
        &proc,
        rows,
        cfg.sensor_hz,
        &date,
        start,
        1000 + pl.session as u32,
        &mut sub(1),
    );
    write(&dir.join(format!("{}.csv", pl.id)), csv.as_bytes())?;
    // audio
    let pcm = audio::render_audio(&proc, cfg.audio_rate, &mut sub(2));
    let flac = audio::encode_flac(&pcm, cfg.audio_rate)?;
    write(&dir.join(format!("{}.flac", pl.id)), &flac)?;
    // video
    let frames = cfg.frames();
    let path = dir.join(format!("{}.avi", pl.id));
    let f = large::render_factor(cfg.width, cfg.height);
    if f == 1 && !cfg.gray_video {
        let rgb = video::render_video(&proc, frames, cfg.fps, cfg.width, cfg.height, &mut sub(3));
        video::write_avi(
            &path,
            &rgb,
            frames,
            cfg.height,
            cfg.width,
            cfg.fps,
            &cfg.fourcc,
        )?;
    } else {
        let (sw, sh) = (cfg.width / f, cfg.height / f);
        let mut rng = sub(3);
        let mut small = video::render_video(&proc, frames, cfg.fps, sw, sh, &mut rng);
        if cfg.gray_video {
            large::to_gray(&mut small);
        }
        let noise = large::noise_table(1 << 20, 3, &mut rng);
        let fsz = sh * sw * 3;
        let (h, w) = (cfg.height, cfg.width);
        let gray = cfg.gray_video;
        video::write_avi_with(&path, frames, h, w, cfg.fps, &cfg.fourcc, !gray, &mut |k| {
            let src = &small[k * fsz..(k + 1) * fsz];
            let mut fr = if gray {
                let g: Vec<u8> = src.chunks_exact(3).map(|p| p[0]).collect();
                large::upscale(&g, sh, sw, 1, h, w)?
            } else {
                large::upscale(src, sh, sw, 3, h, w)?
            };
            large::add_noise(&mut fr, &noise, rng.random_range(0..noise.len()));
            Ok(fr)
        })?;
    }
    // images: the first 5 - png_views JPEG, the rest PNG
    let (iw, ih) = cfg.image_dims();
    let fi = large::render_factor(iw, ih);
    let mut rng = sub(4);
    let views = images::render_images(&proc, iw / fi, ih / fi, &mut rng);
    let noise = (fi > 1).then(|| large::noise_table(1 << 20, 2, &mut rng));
    for (v, img) in views.iter().enumerate() {
        let ext = if v < 5 - cfg.png_views { "jpg" } else { "png" };
        let p = dir
            .join("images")
            .join(format!("{}_{}.{ext}", pl.id, v + 1));
        match &noise {
            None => write_image(&p, img, ih, iw)?,
            Some(noise) => {
                let mut big = large::upscale(img, ih / fi, iw / fi, 3, ih, iw)?;
                large::add_noise(&mut big, noise, rng.random_range(0..noise.len()));
                write_image(&p, &big, ih, iw)?;
            }
        }
    }
    Ok(())
}

/// Write an [h, w, 3] RGB image (format from the extension; JPEG quality 95).
pub fn write_image(path: &Path, rgb: &[u8], h: usize, w: usize) -> Result<()> {
    use opencv::core::{Mat, MatTraitManual, Scalar, Vector, CV_8UC3};
    use opencv::imgcodecs;
    let err = |m: String| Error::Msg(format!("writing image {}: {m}", path.display()));
    let mut mat = Mat::new_rows_cols_with_default(h as i32, w as i32, CV_8UC3, Scalar::all(0.0))
        .map_err(|e| err(e.to_string()))?;
    let dst = mat.data_bytes_mut().map_err(|e| err(e.to_string()))?;
    for (d, s) in dst.chunks_exact_mut(3).zip(rgb.chunks_exact(3)) {
        d[0] = s[2];
        d[1] = s[1];
        d[2] = s[0];
    }
    let jpg = path
        .extension()
        .map(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
        .unwrap_or(false);
    let params: Vector<i32> = if jpg {
        Vector::from_slice(&[imgcodecs::IMWRITE_JPEG_QUALITY, 95])
    } else {
        Vector::new()
    };
    let ok = imgcodecs::imwrite(path, &mat, &params).map_err(|e| err(e.to_string()))?;
    if !ok {
        return Err(err("opencv imwrite returned false".into()));
    }
    Ok(())
}

/// The manifest text of a plan.
fn manifest_csv(planned: &[Planned], sessions: &[Session]) -> String {
    let mut s = MANIFEST_COLUMNS.join(",");
    s.push('\n');
    for pl in planned {
        let ses = &sessions[pl.session];
        let n = &ses.nominal;
        debug_assert_eq!(ses.class, pl.class);
        s.push_str(&format!(
            "{},{},{},{},{},{},{:.1},{:.1},{},{},{}/{},{}\n",
            category(pl.class),
            ses.weld_type,
            ses.thickness,
            ses.steel,
            ses.samples,
            n.current,
            n.voltage,
            n.gas_bar,
            n.speed_cpm,
            ses.directory,
            ses.directory,
            pl.id,
            pl.split.as_str()
        ));
    }
    s
}

/// Generate a dataset under `out` (created if missing; existing sample files are overwritten).
/// `on_sample` is called once per finished sample (progress display).
pub fn generate_with_progress(
    out: &Path,
    cfg: &SynthConfig,
    on_sample: &(dyn Fn() + Sync),
) -> Result<SynthSummary> {
    cfg.validate()?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let (planned, sessions) = plan(cfg);
    planned.par_iter().try_for_each(|pl| {
        let ses = &sessions[pl.session];
        let dir = out.join(&ses.directory).join(&pl.id);
        generate_sample(&dir, pl, ses, cfg)?;
        on_sample();
        Ok::<(), Error>(())
    })?;
    let manifest = out.join("manifest.csv");
    write(&manifest, manifest_csv(&planned, &sessions).as_bytes())?;
    let cfg_json = serde_json::to_string_pretty(cfg).map_err(|e| Error::Msg(e.to_string()))?;
    write(&out.join("synth_config.json"), cfg_json.as_bytes())?;
    let per_split = Split::LABELLED
        .iter()
        .map(|s| {
            let c = planned.iter().filter(|p| p.split == *s).count();
            (s.as_str().to_string(), c)
        })
        .collect();
    let per_class = (0..=11u8)
        .filter_map(|c| {
            let k = planned.iter().filter(|p| p.class == c).count();
            (k > 0).then(|| (CLASS_NAMES[usize::from(c)].to_string(), k))
        })
        .collect();
    Ok(SynthSummary {
        samples: planned.len(),
        manifest,
        per_split,
        per_class,
    })
}

/// [`generate_with_progress`] without progress.
pub fn generate(out: &Path, cfg: &SynthConfig) -> Result<SynthSummary> {
    generate_with_progress(out, cfg, &|| {})
}
