//! Dataset checker: decodes every modality of every manifest sample (in parallel) and collects
//! every problem, never stopping at the first one.
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use super::manifest::Manifest;
use super::sample::SampleFiles;
use super::{audio, images, sensors, video, Modality, SampleError};

/// Frames decoded per video by the checker (uniform indices, first and last frame included, so
/// a container whose frame count is wrong or whose end is truncated is caught).
pub const CHECK_VIDEO_FRAMES: usize = 16;
/// Sensor steps the checker resamples to (what extraction uses).
pub const CHECK_SENSOR_STEPS: usize = 128;

/// One problem, as written to the check-data JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Sample key (`SUBDIRS`).
    pub sample: String,
    /// `video | audio | sensor | images | folder`.
    pub modality: String,
    /// The error message (names the file).
    pub error: String,
}

impl From<&SampleError> for Problem {
    fn from(e: &SampleError) -> Self {
        Problem {
            sample: e.sample.clone(),
            modality: e.modality.as_str().to_string(),
            error: format!("{}: {}", e.file.display(), e.message),
        }
    }
}

/// The check-data report: `{"samples": N, "ok": K, "problems": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub samples: usize,
    /// Samples without any problem.
    pub ok: usize,
    /// Problems in manifest order, then modality order (folder, video, audio, sensor, images).
    pub problems: Vec<Problem>,
}

/// Check one sample: every problem of every modality (a folder problem stops the others, since
/// there is nothing to read).
pub fn check_sample(root: &Path, rec: &super::SampleRecord) -> Vec<SampleError> {
    let files = match SampleFiles::locate(root, rec) {
        Ok(f) => f,
        Err(e) => return vec![e],
    };
    let key = rec.key.as_str();
    let mut errs = Vec::new();
    if let Err(e) = files
        .video()
        .and_then(|p| video::read_video_frames(&p, CHECK_VIDEO_FRAMES, key))
    {
        errs.push(e);
    }
    if let Err(e) = files.audio().and_then(|p| audio::read_audio_16k(&p, key)) {
        errs.push(e);
    }
    match files
        .sensors()
        .and_then(|p| sensors::read_sensor_csv(&p, key))
    {
        Ok(t) => {
            let mut r = sensors::resample_linear(&t, CHECK_SENSOR_STEPS);
            sensors::zscore_per_sample(&mut r, sensors::SENSOR_CHANNELS);
            if let Some(i) = r.iter().position(|v| !v.is_finite()) {
                errs.push(SampleError::new(
                    key,
                    Modality::Sensor,
                    files.dir.clone(),
                    format!("non-finite value after normalisation at {i}"),
                ));
            }
        }
        Err(e) => errs.push(e),
    }
    if let Err(e) = files.images().and_then(|ps| images::read_images(&ps, key)) {
        errs.push(e);
    }
    errs
}

/// Check every sample of `manifest` under `root` with `threads` workers (0 = all cores);
/// `on_sample` is called once per finished sample (progress display).
pub fn check_dataset_with_progress(
    root: &Path,
    manifest: &Manifest,
    threads: usize,
    on_sample: &(dyn Fn() + Sync),
) -> CheckReport {
    let run = || -> Vec<Vec<SampleError>> {
        manifest
            .samples
            .par_iter()
            .map(|rec| {
                let e = check_sample(root, rec);
                on_sample();
                e
            })
            .collect()
    };
    let per_sample = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(run),
        Err(_) => run(),
    };
    let ok = per_sample.iter().filter(|e| e.is_empty()).count();
    let problems = per_sample.iter().flatten().map(Problem::from).collect();
    CheckReport {
        samples: manifest.samples.len(),
        ok,
        problems,
    }
}

/// [`check_dataset_with_progress`] without progress.
pub fn check_dataset(root: &Path, manifest: &Manifest, threads: usize) -> CheckReport {
    check_dataset_with_progress(root, manifest, threads, &|| {})
}

/// Modalities of a problem list, for summaries.
pub fn modality_of(p: &Problem) -> Option<Modality> {
    Modality::ALL.into_iter().find(|m| m.as_str() == p.modality)
}
