//! Causal-FiLM (DESIGN.md "The main head"): sensors -> SensorModulator -> (gamma, beta);
//! video/audio tokens -> MLP projectors -> FiLM -> ProcessEncoder -> Z_process ->
//! AntiGenDecoder -> Z_pred; DINOv3 hidden states -> RobustResultEncoder (per view, max over
//! views) -> Z_result. Score: (1 - cos) + 10 * mean(top 50% |Z_result - Z_pred|).
//!
//! Parameter names equal those of the PyTorch reference `tests/oracle/heads_ref.py`.
pub mod config;
mod decoder;
mod film;
mod head;
mod inputs;
mod layers;
pub mod loss;
mod mamba;
mod process;
mod result;

pub use crate::features::PooledStat;
pub use config::{
    Activation, BranchConfig, CausalFilmConfig, ClipHeadConfig, DecoderConfig, LossConfig,
    MambaConfig, ModelConfig, ProcessConfig, RecLoss, ResultConfig, ScoreConfig, SensorNorm,
};
pub use film::{film, SENSOR_STD_FLOOR};
pub use head::CausalFilmHead;
pub use loss::{anomaly_score, loss, loss_tensors, score_parts, ClipHead, LossTensors, LossTerms};
pub use result::{result_branch_inputs, BranchInput};

use crate::{Error, Result};
use decoder::AntiGenDecoder;
use film::SensorModulator;
use layers::{LayerNorm, Linear};
use process::ProcessEncoder;
use result::ResultEncoder;
use tch::{nn, Kind, Tensor};

/// The top-level modules, in the order `param_counts` reports them.
pub const MODULES: [&str; 6] = [
    "sensor",
    "video_proj",
    "audio_proj",
    "process",
    "result",
    "decoder",
];

/// One batch of cached features, all f32 on the model's device.
#[derive(Debug)]
pub struct HeadBatch {
    /// [B, Tv, video_dim]
    pub video: Tensor,
    /// [B, Ta, audio_dim] (the AST windows' tokens concatenated)
    pub audio: Tensor,
    /// [B, L, sensor_channels], raw values (the head normalises them)
    pub sensor: Tensor,
    /// [B, n_pooled_branches, V, image_dim]: the stored mean/max vectors the mean/max branches
    /// read, in branch order (with no mean/max branch, e.g. v5_text, pass [B, 0, V, image_dim];
    /// it is not read)
    pub image_pooled: Tensor,
    /// per GeM branch, in branch order: [B, V, N_tok, image_dim]. May also be f16/bf16 (as
    /// stored, to keep a resident split small): GeM converts to f32 before pooling.
    pub image_tokens: Vec<Tensor>,
}

impl HeadBatch {
    /// Checks every shape against the config (call once per feeder, not per step).
    pub fn validate(&self, cfg: &CausalFilmConfig) -> Result<()> {
        let m = &cfg.model;
        let bad = |msg: String| Error::BadInput {
            what: "Causal-FiLM HeadBatch".into(),
            msg,
        };
        let b = self.video.size().first().copied().unwrap_or(0);
        let expect = |name: &str,
                      t: &Tensor,
                      rank: usize,
                      last: &[(usize, i64)],
                      kinds: &[Kind]|
         -> Result<()> {
            let s = t.size();
            if s.len() != rank || s[0] != b {
                return Err(bad(format!(
                    "{name}: shape {s:?}, expected rank {rank} with batch {b}"
                )));
            }
            for &(axis, want) in last {
                if s[axis] != want {
                    return Err(bad(format!(
                        "{name}: shape {s:?}, axis {axis} must be {want}"
                    )));
                }
            }
            if !kinds.contains(&t.kind()) {
                return Err(bad(format!(
                    "{name}: kind {:?}, expected one of {kinds:?}",
                    t.kind()
                )));
            }
            Ok(())
        };
        let f32_only = [Kind::Float];
        expect("video", &self.video, 3, &[(2, m.video_dim)], &f32_only)?;
        expect("audio", &self.audio, 3, &[(2, m.audio_dim)], &f32_only)?;
        expect(
            "sensor",
            &self.sensor,
            3,
            &[(2, m.sensor_channels)],
            &f32_only,
        )?;
        let np = cfg.n_pooled_branches() as i64;
        if np > 0 {
            expect(
                "image_pooled",
                &self.image_pooled,
                4,
                &[(1, np), (2, m.n_views), (3, m.image_dim)],
                &f32_only,
            )?;
        }
        if self.image_tokens.len() != cfg.n_gem_branches() {
            return Err(bad(format!(
                "{} token tensors for {} GeM branches",
                self.image_tokens.len(),
                cfg.n_gem_branches()
            )));
        }
        for (i, t) in self.image_tokens.iter().enumerate() {
            expect(
                &format!("image_tokens[{i}]"),
                t,
                4,
                &[(1, m.n_views), (3, m.image_dim)],
                &[Kind::Float, Kind::Half, Kind::BFloat16],
            )?;
        }
        Ok(())
    }
}

/// `Linear(in, hidden) LN GELU Linear(hidden, d)` (torch `Sequential` indices 0, 1, 3).
#[derive(Debug)]
struct Projector {
    l0: Linear,
    ln1: LayerNorm,
    l3: Linear,
}

impl Projector {
    fn new(p: nn::Path, in_dim: i64, hidden: i64, out: i64) -> Self {
        Projector {
            l0: Linear::new(&p / 0, in_dim, hidden, true, true),
            ln1: LayerNorm::new(&p / 1, hidden, true),
            l3: Linear::new(&p / 3, hidden, out, true, true),
        }
    }

    /// [B, T, in] -> [B, T, out]
    fn forward(&self, x: &Tensor) -> Tensor {
        self.l3
            .forward(&self.ln1.forward(&self.l0.forward(x)).gelu("none"))
    }
}

/// The Causal-FiLM head (without its CLIP loss head, see [`ClipHead`]).
#[derive(Debug)]
pub struct CausalFilm {
    cfg: CausalFilmConfig,
    /// Path prefix of this model's variables in its VarStore ("" at the root).
    prefix: String,
    sensor: SensorModulator,
    video_proj: Projector,
    audio_proj: Projector,
    process: ProcessEncoder,
    result: ResultEncoder,
    decoder: AntiGenDecoder,
}

impl CausalFilm {
    /// Builds the model under `vs` with the seed's initialisations (torch defaults, xavier
    /// sensor embedding with zero bias, zero FiLM head, mamba_ssm's Mamba init). Draws from
    /// torch's RNG: `tch::manual_seed` first for a reproducible init.
    pub fn new(vs: &nn::Path, cfg: &CausalFilmConfig) -> Self {
        let m = &cfg.model;
        let d = m.d_model;
        CausalFilm {
            cfg: cfg.clone(),
            prefix: vs.components().collect::<Vec<_>>().join("."),
            sensor: SensorModulator::new(vs / "sensor", m),
            video_proj: Projector::new(vs / "video_proj", m.video_dim, m.proj_hidden, d),
            audio_proj: Projector::new(vs / "audio_proj", m.audio_dim, m.proj_hidden, d),
            process: ProcessEncoder::new(vs / "process", d, &m.process),
            result: ResultEncoder::new(vs / "result", cfg),
            decoder: AntiGenDecoder::new(vs / "decoder", d, &m.decoder),
        }
    }

    pub fn config(&self) -> &CausalFilmConfig {
        &self.cfg
    }

    /// Sets the TRAIN sensor statistics (mean, std: [sensor_channels]) used when
    /// `sensor_norm = "train"`; they live in the VarStore (`sensor.stat_mean`/`stat_std`, not
    /// trainable) so checkpoints carry them. Error when the config normalises per sample.
    pub fn set_sensor_stats(&mut self, mean: &Tensor, std: &Tensor) -> Result<()> {
        self.sensor.set_stats(mean, std)
    }

    /// Training-only noise on raw backbone features: dropout, then an element mask with
    /// inverted scaling (torch RNG). [B, T, D] -> [B, T, D]
    fn feature_noise(&self, x: &Tensor, train: bool) -> Tensor {
        let m = &self.cfg.model;
        if !train {
            return x.shallow_clone();
        }
        let x = x.dropout(m.feature_dropout, true);
        if m.feature_mask > 0.0 {
            let keep = x.rand_like().gt(m.feature_mask).to_kind(x.kind());
            x * keep / (1.0 - m.feature_mask)
        } else {
            x
        }
    }

    /// -> (z_result [B, d_model], z_pred [B, d_model]). `train` switches on every dropout and
    /// the feature noise (all drawn from torch's RNG).
    pub fn forward_t(&self, b: &HeadBatch, train: bool) -> (Tensor, Tensor) {
        let video = self
            .video_proj
            .forward(&self.feature_noise(&b.video, train));
        let audio = self
            .audio_proj
            .forward(&self.feature_noise(&b.audio, train));
        let (gamma, beta) = self.sensor.forward(&b.sensor);
        let video = film(&video, &gamma, &beta);
        let audio = film(&audio, &gamma, &beta);
        let z_process = self.process.forward(&video, &audio, train);
        let z_pred = self.decoder.forward(&z_process, train);
        let z_result = self.result.forward(&b.image_pooled, &b.image_tokens);
        (z_result, z_pred)
    }

    /// Trainable parameter counts by top-level module ([`MODULES`] order), read from the
    /// VarStore this model was built in.
    pub fn param_counts(&self, vs: &nn::VarStore) -> Vec<(String, i64)> {
        let prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}.", self.prefix)
        };
        let vars = vs.variables();
        MODULES
            .iter()
            .map(|module| {
                let head = format!("{prefix}{module}.");
                let n = vars
                    .iter()
                    .filter(|(name, t)| name.starts_with(&head) && t.requires_grad())
                    .map(|(_, t)| t.numel() as i64)
                    .sum();
                (module.to_string(), n)
            })
            .collect()
    }
}

/// Trainable parameter count of every variable under `prefix` ("" = whole store), e.g. the
/// CLIP head's own path.
pub fn trainable_count(vs: &nn::VarStore, prefix: &str) -> i64 {
    vs.variables()
        .iter()
        .filter(|(name, t)| name.starts_with(prefix) && t.requires_grad())
        .map(|(_, t)| t.numel() as i64)
        .sum()
}

/// A printable table of per-module counts, the model total, the CLIP head and the sum.
pub fn format_param_counts(counts: &[(String, i64)], clip_head: i64) -> String {
    let model: i64 = counts.iter().map(|(_, n)| n).sum();
    let mut s = String::new();
    for (name, n) in counts {
        s.push_str(&format!("{name:<12} {:>12}\n", group_thousands(*n)));
    }
    s.push_str(&format!("{:<12} {:>12}\n", "model", group_thousands(model)));
    s.push_str(&format!(
        "{:<12} {:>12}\n",
        "clip_head",
        group_thousands(clip_head)
    ));
    s.push_str(&format!(
        "{:<12} {:>12}\n",
        "trainable",
        group_thousands(model + clip_head)
    ));
    s
}

/// 18264385 -> "18,264,385"
fn group_thousands(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_noise_is_dropout_then_scaled_mask() {
        let text = include_str!("../../../../configs/demo.toml");
        let cfg = CausalFilmConfig::from_toml_str(text, "demo.toml").unwrap();
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let model = CausalFilm::new(&vs.root(), &cfg);
        let x = Tensor::ones([100, 1000], (Kind::Float, tch::Device::Cpu));
        assert!(model.feature_noise(&x, false).equal(&x));
        let y = model.feature_noise(&x, true);
        // Kept values are scaled by 1/(1-0.2) twice; 1 - 0.8 * 0.8 = 36% are dropped.
        let kept = 1.0 / (0.8 * 0.8);
        let zero = y
            .eq(0.0)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]);
        let other = (y.ne(0.0).to_kind(Kind::Float) * (&y - kept).abs())
            .max()
            .double_value(&[]);
        assert!((zero - 0.36).abs() < 0.01, "dropped fraction {zero}");
        assert!(other < 1e-5, "kept values must equal {kept}");
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(group_thousands(18264385), "18,264,385");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
    }
}
