//! Dataset access for the Intel Robotic Welding layout: the manifest (sample table), sample
//! discovery with root-escape checks, strict per-modality decoders (a missing or corrupt input is
//! a [`SampleError`] naming sample, modality and file, never zero-filled), the dataset checker
//! and the synthetic weld-data generator.
//!
//! `manifest`, `sample` and `sensors` are pure Rust and always built (train-head needs the sample
//! table); the decoders (`video`, `images`, `audio`), `check` and `synth` need the `extract`
//! feature (opencv, symphonia, rubato, flacenc).
use std::fmt;
use std::path::PathBuf;

pub mod discover;
pub mod manifest;
pub mod sample;
pub mod sensors;

#[cfg(feature = "extract")]
pub mod audio;
#[cfg(feature = "extract")]
pub mod avi;
#[cfg(feature = "extract")]
pub mod check;
#[cfg(feature = "extract")]
pub mod images;
#[cfg(feature = "extract")]
pub mod jpeg;
#[cfg(feature = "extract")]
pub mod pool;
#[cfg(feature = "extract")]
pub mod synth;
#[cfg(feature = "extract")]
pub mod video;

pub use manifest::{Manifest, SampleRecord, Split, CLASS_NAMES};
pub use sample::SampleFiles;

/// The part of a sample an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Modality {
    Video,
    Audio,
    Sensor,
    Images,
    /// The sample folder itself (missing, or its path leaves the data root).
    Folder,
}

impl Modality {
    /// All modalities, in report order.
    pub const ALL: [Modality; 5] = [
        Modality::Folder,
        Modality::Video,
        Modality::Audio,
        Modality::Sensor,
        Modality::Images,
    ];

    /// `"video" | "audio" | "sensor" | "images" | "folder"` (the check-data JSON spelling).
    pub fn as_str(&self) -> &'static str {
        match self {
            Modality::Video => "video",
            Modality::Audio => "audio",
            Modality::Sensor => "sensor",
            Modality::Images => "images",
            Modality::Folder => "folder",
        }
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fault in one modality of one sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleError {
    /// The sample key (manifest `SUBDIRS`), or the sample id where no manifest is involved.
    pub sample: String,
    pub modality: Modality,
    /// The file (or folder) the fault is about.
    pub file: PathBuf,
    pub message: String,
}

impl SampleError {
    pub fn new(
        sample: impl Into<String>,
        modality: Modality,
        file: impl Into<PathBuf>,
        message: impl Into<String>,
    ) -> Self {
        SampleError {
            sample: sample.into(),
            modality,
            file: file.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sample {} [{}] {}: {}",
            self.sample,
            self.modality,
            self.file.display(),
            self.message
        )
    }
}

impl std::error::Error for SampleError {}
