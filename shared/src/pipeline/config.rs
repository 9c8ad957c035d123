//! The configuration of `extract run` (`configs/extract.toml`), with CLI overrides applied by the
//! binary. Every knob of the feature-cache stage lives here, none only in code.
use crate::store::StoreDtype;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One modality stage of the extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    Video,
    Audio,
    Image,
    Sensor,
    Text,
    /// `video/frame_dino`: DINOv3 on N frames of the video (`[frame_dino]`).
    FrameDino,
    /// `audio/spectrogram`: log-mel of the whole clip (`[spectrogram]`).
    Spectrogram,
}

impl StageKind {
    /// Every stage, in the order a run executes them (cheap ones first).
    pub const ALL: [StageKind; 7] = [
        StageKind::Sensor,
        StageKind::Text,
        StageKind::Spectrogram,
        StageKind::Image,
        StageKind::FrameDino,
        StageKind::Audio,
        StageKind::Video,
    ];
    /// The names `--only` accepts, for help texts and errors.
    pub const NAMES: &'static str = "video, audio, image, sensor, text, frame_dino, spectrogram";
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Video => "video",
            StageKind::Audio => "audio",
            StageKind::Image => "image",
            StageKind::Sensor => "sensor",
            StageKind::Text => "text",
            StageKind::FrameDino => "frame_dino",
            StageKind::Spectrogram => "spectrogram",
        }
    }
}

impl std::str::FromStr for StageKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "video" => Ok(StageKind::Video),
            "audio" => Ok(StageKind::Audio),
            "image" | "images" => Ok(StageKind::Image),
            "sensor" | "sensors" => Ok(StageKind::Sensor),
            "text" => Ok(StageKind::Text),
            "frame_dino" => Ok(StageKind::FrameDino),
            "spectrogram" => Ok(StageKind::Spectrogram),
            other => Err(Error::Msg(format!(
                "unknown stage `{other}` (expected {})",
                StageKind::NAMES
            ))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    pub root: PathBuf,
    /// The sample table; absent: the sample folders under `root` are discovered by their files
    /// and stored UNLABELLED ([`crate::data::Manifest::discover`]).
    #[serde(default)]
    pub manifest: Option<PathBuf>,
}

impl DataSection {
    /// The samples: the manifest's, or those discovered under the root.
    pub fn read_samples(&self) -> Result<crate::data::Manifest> {
        match &self.manifest {
            Some(m) => crate::data::Manifest::read(m),
            None => crate::data::Manifest::discover(&self.root),
        }
    }

    /// Where the samples come from, for messages.
    pub fn describe(&self) -> String {
        match &self.manifest {
            Some(m) => m.display().to_string(),
            None => format!(
                "{} (sample folders discovered, UNLABELLED)",
                self.root.display()
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    pub path: PathBuf,
    pub dtype: StoreDtype,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsSection {
    pub vjepa: PathBuf,
    pub ast: PathBuf,
    pub dinov3: PathBuf,
    pub clip: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    pub device: String,
    pub dtype: String,
    pub only: Vec<StageKind>,
    pub batch_size: usize,
    pub workers: usize,
    pub queue: usize,
    /// libtorch intra-op threads (OpenMP team size of every thread calling torch ops); 0 = auto,
    /// see [`RunSection::intra_op_threads`].
    #[serde(default)]
    pub threads: usize,
    /// Where video frames and images are resized, cropped and normalised (see
    /// [`PreprocessAt`]).
    #[serde(default)]
    pub preprocess: PreprocessAt,
}

/// Where the image and video preprocessing runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreprocessAt {
    /// On the model's device from uint8 uploads (`preprocess::device`): the decode workers only
    /// decode. On the CPU bit-identical to `cpu`; on CUDA within float rounding of it.
    #[default]
    Device,
    /// In the decode workers on the CPU (`preprocess::image` / `preprocess::video`), f32
    /// tensors handed to the device.
    Cpu,
}

impl std::str::FromStr for PreprocessAt {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "device" => Ok(PreprocessAt::Device),
            "cpu" => Ok(PreprocessAt::Cpu),
            o => Err(Error::Msg(format!(
                "unknown preprocess place `{o}` (expected device or cpu)"
            ))),
        }
    }
}

impl PreprocessAt {
    pub fn as_str(self) -> &'static str {
        match self {
            PreprocessAt::Device => "device",
            PreprocessAt::Cpu => "cpu",
        }
    }
}

impl RunSection {
    /// The intra-op thread count to use: `threads`, or when 0 the available cores shared equally
    /// by the `workers` decode threads and the device thread (at least 1). Each of them runs torch
    /// ops with its own OpenMP team; larger teams oversubscribe the cores and their idle threads
    /// spin (measured on 2 cores: 40% less CPU time with 1 thread than with the default 2).
    ///
    /// With `preprocess = "device"` the decode workers run no torch ops, so the OpenMP team of
    /// the device thread is the only one and gets every core: measured on 2 cores at real media
    /// size (README "Extraction speed"), the device step is the bottleneck there and the
    /// decoders need a fraction of a core.
    pub fn intra_op_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        match self.preprocess {
            PreprocessAt::Device => cores,
            PreprocessAt::Cpu => (cores / (self.workers + 1)).max(1),
        }
    }
}

/// Where the V-JEPA 2 frames come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoSource {
    /// The sample's `.avi` (correct).
    Video,
    /// The five post-weld images repeated to the frame count, as the seed's reader did when an
    /// `images/` folder existed. Only for explaining the seed's numbers.
    Images,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoSection {
    pub frames: usize,
    pub short_side: usize,
    pub crop: usize,
    pub pool: usize,
    pub source: VideoSource,
    /// Frame reader: auto (MJPEG AVI read frame by frame, anything else through opencv),
    /// opencv, or mjpeg.
    #[serde(default)]
    pub reader: crate::data::video::VideoReader,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioSection {
    pub windows: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSection {
    pub layers: Vec<usize>,
    pub size: usize,
    /// Decode JPEGs at least twice the target size at 1/2, 1/4 or 1/8 scale (libjpeg DCT
    /// scaling) before the resize. Off by default: not bit-identical to the HF processor (error
    /// measured in README "Extraction speed"); recorded in the provenance.
    #[serde(default)]
    pub jpeg_reduce: bool,
}

/// `[frame_dino]`: the `video/frame_dino` stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameDinoSection {
    /// Frames of the `.avi`, sampled uniformly over the clip as the V-JEPA 2 frames are
    /// (`data::video::uniform_indices`).
    pub frames: usize,
    /// DINOv3 hidden-state index (0 = embeddings; the seed's "Layer 12" = 11).
    pub layer: usize,
}

/// `[spectrogram]`: the `audio/spectrogram` stage (`preprocess::logmel`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpectrogramSection {
    /// Hz; the audio reader resamples every clip to 16000.
    pub sample_rate: usize,
    /// Every clip is cropped (longer: its first `clip_seconds`) or padded at the end with silence
    /// (shorter) to this length, recorded per sample in `audio/spectrogram_clip`.
    pub clip_seconds: f64,
    /// A clip shorter than this is a fault of its sample rather than mostly padding.
    pub min_seconds: f64,
    pub n_fft: usize,
    pub hop: usize,
    pub n_mels: usize,
    pub f_min: f64,
    pub f_max: f64,
    /// `ln(mel power + log_offset)`.
    pub log_offset: f64,
}

impl SpectrogramSection {
    /// Samples of the fixed clip length.
    pub fn clip_samples(&self) -> usize {
        (self.clip_seconds * self.sample_rate as f64).round() as usize
    }

    pub fn logmel(&self) -> crate::preprocess::LogMelConfig {
        crate::preprocess::LogMelConfig {
            sample_rate: self.sample_rate,
            n_fft: self.n_fft,
            hop: self.hop,
            n_mels: self.n_mels,
            f_min: self.f_min,
            f_max: self.f_max,
            log_offset: self.log_offset,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorSection {
    pub steps: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSection {
    pub prompt: String,
}

/// `configs/extract.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractConfig {
    pub data: DataSection,
    pub store: StoreSection,
    pub models: ModelsSection,
    pub run: RunSection,
    pub video: VideoSection,
    pub audio: AudioSection,
    pub image: ImageSection,
    pub frame_dino: FrameDinoSection,
    pub spectrogram: SpectrogramSection,
    pub sensor: SensorSection,
    pub text: TextSection,
}

impl ExtractConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&text).map_err(|e| Error::Msg(format!("{}: {e}", path.display())))
    }

    /// Checks values that would otherwise fail deep inside a run.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Msg(format!("extract config: {m}")));
        if self.run.batch_size == 0 || self.run.workers == 0 || self.run.queue == 0 {
            return bad("run.batch_size, run.workers and run.queue must be >= 1".into());
        }
        if self.video.frames == 0 || self.video.pool == 0 || self.video.crop == 0 {
            return bad("video.frames, video.crop and video.pool must be >= 1".into());
        }
        if self.audio.windows == 0 || self.sensor.steps < 2 || self.image.size == 0 {
            return bad("audio.windows >= 1, sensor.steps >= 2, image.size >= 1 required".into());
        }
        if self.frame_dino.frames == 0 {
            return bad("frame_dino.frames must be >= 1".into());
        }
        let sp = &self.spectrogram;
        if sp.sample_rate != 16000 {
            return bad(format!(
                "spectrogram.sample_rate {}: the audio reader resamples every clip to 16000 Hz",
                sp.sample_rate
            ));
        }
        if !(sp.min_seconds > 0.0 && sp.min_seconds <= sp.clip_seconds) {
            return bad(format!(
                "spectrogram: need 0 < min_seconds ({}) <= clip_seconds ({})",
                sp.min_seconds, sp.clip_seconds
            ));
        }
        if sp.clip_samples() <= sp.n_fft / 2 {
            return bad(format!(
                "spectrogram.clip_seconds {} is shorter than half an FFT window (n_fft {})",
                sp.clip_seconds, sp.n_fft
            ));
        }
        crate::preprocess::LogMel::new(sp.logmel())
            .map_err(|e| Error::Msg(format!("extract config: {e}")))?;
        if self.run.only.is_empty() {
            return bad("run.only names no modality".into());
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if self.run.threads > cores {
            return bad(format!(
                "--threads / run.threads {} exceeds the {cores} cores of this machine (0 = auto)",
                self.run.threads
            ));
        }
        if self.run.workers > 4 * cores {
            return bad(format!(
                "--workers / run.workers {} exceeds 4 x the {cores} cores of this machine",
                self.run.workers
            ));
        }
        Ok(())
    }
}

/// `--shard i/n`: this process fills the batch groups g with g % n == i.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };
    pub fn takes(&self, group: usize) -> bool {
        group % self.count == self.index
    }
    /// The zarr group of the store whose attribute `report` holds this shard's run report.
    pub fn report_name(&self) -> String {
        if self.count == 1 {
            "reports/extract".to_string()
        } else {
            format!("reports/shard-{}-of-{}", self.index, self.count)
        }
    }
}

impl std::str::FromStr for Shard {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let err = || Error::Msg(format!("bad shard `{s}` (expected i/n with 0 <= i < n)"));
        let (i, n) = s.split_once('/').ok_or_else(err)?;
        let index: usize = i.trim().parse().map_err(|_| err())?;
        let count: usize = n.trim().parse().map_err(|_| err())?;
        if count == 0 || index >= count {
            return Err(err());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/extract.toml");
        let cfg = ExtractConfig::from_file(&path).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.image.layers, vec![9, 20, 31]);
        assert_eq!(cfg.audio.windows, 4);
        assert_eq!((cfg.frame_dino.frames, cfg.frame_dino.layer), (16, 11));
        for name in ["extract_demo.toml", "extract_real.toml"] {
            let p = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../configs")
                .join(name);
            ExtractConfig::from_file(&p).unwrap().validate().unwrap();
        }
        for s in StageKind::ALL {
            assert_eq!(s.as_str().parse::<StageKind>().unwrap(), s);
            assert!(StageKind::NAMES.contains(s.as_str()));
        }
    }

    #[test]
    fn shards_partition_groups() {
        let shards: Vec<Shard> = (0..3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        for g in 0..20 {
            assert_eq!(shards.iter().filter(|s| s.takes(g)).count(), 1);
        }
        assert!("3/3".parse::<Shard>().is_err());
        assert!("1".parse::<Shard>().is_err());
    }
}
