//! Hyper-parameters of the Causal-FiLM head: the `[model]` and `[loss]` tables of
//! `configs/causal_film.toml` / `configs/v5_text.toml` / `configs/demo.toml`.
//!
//! Every field is required in the TOML (no value lives only in code) and unknown keys are
//! rejected, so a typo in a config or a `--set` override is an error, not a silent default.
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `[model]` and `[loss]` tables. Other tables of the same file (e.g. `[train]`) are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CausalFilmConfig {
    pub model: ModelConfig,
    pub loss: LossConfig,
}

/// How the head normalises the raw sensor channels before the SensorModulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorNorm {
    /// Per-sample, per-channel z-score over time (population std; a std below 1e-6 counts as
    /// 0 and is replaced by 1), as the seed's reader did.
    Sample,
    /// `(x - mean) / std` with TRAIN statistics stored in the model as non-trainable buffers
    /// (`sensor.stat_mean`, `sensor.stat_std`), set by [`super::CausalFilm::set_sensor_stats`].
    Train,
}

/// Activation of the AntiGenDecoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Silu,
    Gelu,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Width of Z_process / Z_result / Z_pred and of the ProcessEncoder (512).
    pub d_model: i64,
    /// Hidden width of the video/audio projector MLPs (512).
    pub proj_hidden: i64,
    /// Backbone feature widths: V-JEPA 2 (1024), AST (768), DINOv3 (1280).
    pub video_dim: i64,
    pub audio_dim: i64,
    pub image_dim: i64,
    /// Post-weld views per sample (5).
    pub n_views: i64,
    /// Sensor channels (6) and the SensorModulator width (128).
    pub sensor_channels: i64,
    pub sensor_hidden: i64,
    pub sensor_norm: SensorNorm,
    /// Training-only noise on the raw video/audio backbone features: dropout with this p ...
    pub feature_dropout: f64,
    /// ... then an element mask dropping this fraction (kept values scaled by 1/(1-p)).
    pub feature_mask: f64,
    pub mamba: MambaConfig,
    pub process: ProcessConfig,
    pub result: ResultConfig,
    pub decoder: DecoderConfig,
    pub clip_head: ClipHeadConfig,
}

/// The SensorModulator's Mamba blocks (mamba_ssm `Mamba` semantics and initialisation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MambaConfig {
    /// Residual blocks `x + Mamba(LN(x))` (2).
    pub layers: i64,
    pub d_state: i64,
    pub d_conv: i64,
    pub expand: i64,
    /// Rank of the dt projection; mamba_ssm's "auto" is ceil(sensor_hidden / 16).
    pub dt_rank: i64,
    /// dt is drawn log-uniformly in [dt_min, dt_max] (clamped at dt_init_floor) at init.
    pub dt_min: f64,
    pub dt_max: f64,
    pub dt_init_floor: f64,
}

/// The ProcessEncoder: torch `nn.TransformerDecoder` (post-norm, ReLU) over video (tgt) and
/// audio (memory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    pub layers: i64,
    pub heads: i64,
    pub ff: i64,
    pub dropout: f64,
    /// every layer starts from the same values, as the original's `nn.TransformerDecoder`
    /// (it deep-copies its layer); false draws each layer on its own
    #[serde(default = "yes")]
    pub identical_layers: bool,
}

fn yes() -> bool {
    true
}

/// One RobustResultEncoder branch: a DINOv3 hidden-state index and how its 201 tokens per view
/// are pooled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "pool", rename_all = "snake_case", deny_unknown_fields)]
pub enum BranchConfig {
    /// Reads the stored per-view mean vector of `layer`.
    Mean { layer: i64 },
    /// Reads the stored per-view max vector of `layer`.
    Max { layer: i64 },
    /// Generalised mean over the stored tokens of `layer`, learnable p initialised to `p0`.
    Gem { layer: i64, p0: f64 },
}

impl BranchConfig {
    pub fn layer(&self) -> i64 {
        match self {
            BranchConfig::Mean { layer } | BranchConfig::Max { layer } => *layer,
            BranchConfig::Gem { layer, .. } => *layer,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultConfig {
    pub branches: Vec<BranchConfig>,
    /// Gate bottleneck: Linear(C, C / gate_reduction) (4).
    pub gate_reduction: i64,
    /// Hidden width of the final projector Linear(C, hidden) LN SiLU Linear(hidden, d_model) (512).
    pub hidden: i64,
    /// GeM clamps its input at this minimum (1e-6).
    pub gem_eps: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderConfig {
    pub act: Activation,
    pub dropout: f64,
}

/// The CLIP projection head of the text loss: Linear(d_model, hidden) LN GELU Dropout
/// Linear(hidden, text_dim).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipHeadConfig {
    /// false reproduces the seed, whose optimiser skipped the head (it stays at its init).
    pub trainable: bool,
    pub hidden: i64,
    pub text_dim: i64,
    pub dropout: f64,
    /// clip the head's gradients as a group of their own (0.5 global norm like the model's),
    /// so the now-trained head does not change the model's clipping (the original clipped the
    /// model's parameters only); false puts them in the model's global norm
    #[serde(default = "yes")]
    pub own_grad_clip: bool,
}

/// The reconstruction term of the loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RecLoss {
    /// Smooth L1 (beta) per element, mean over the top `topk` fraction of elements per sample.
    SmoothL1Topk { weight: f64, beta: f64, topk: f64 },
    /// Mean absolute error over all elements.
    L1Mean { weight: f64 },
}

impl RecLoss {
    pub fn weight(&self) -> f64 {
        match self {
            RecLoss::SmoothL1Topk { weight, .. } | RecLoss::L1Mean { weight } => *weight,
        }
    }
}

/// The anomaly score: (1 - cos) + weight * mean(top `topk` fraction of |Z_result - Z_pred|).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    pub topk: f64,
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    pub cos_weight: f64,
    pub rec: RecLoss,
    pub gram_weight: f64,
    pub clip_weight: f64,
    pub score: ScoreConfig,
}

impl CausalFilmConfig {
    /// Parses the `[model]` and `[loss]` tables of a TOML document and validates them.
    /// `source` names the document in errors (usually the file path).
    pub fn from_toml_str(text: &str, source: &str) -> Result<Self> {
        let value: toml::Value = toml::from_str(text).map_err(|e| Error::Config {
            source_name: source.to_string(),
            msg: e.to_string(),
        })?;
        Self::from_toml_value(&value, source)
    }

    /// Like [`Self::from_toml_str`] on an already parsed document (after `--set` overrides).
    pub fn from_toml_value(value: &toml::Value, source: &str) -> Result<Self> {
        let err = |msg: String| Error::Config {
            source_name: source.to_string(),
            msg,
        };
        let table = value
            .as_table()
            .ok_or_else(|| err("not a TOML table".into()))?;
        let mut sub = toml::map::Map::new();
        for key in ["model", "loss"] {
            let t = table
                .get(key)
                .ok_or_else(|| err(format!("missing table [{key}]")))?;
            sub.insert(key.to_string(), t.clone());
        }
        let cfg: CausalFilmConfig = toml::Value::Table(sub)
            .try_into()
            .map_err(|e: toml::de::Error| err(e.to_string()))?;
        cfg.validate().map_err(err)?;
        Ok(cfg)
    }

    /// Reads and validates a config file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Checks the relations between values that serde cannot: positive sizes, divisibility,
    /// probabilities in [0, 1), at least one branch.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let m = &self.model;
        let positive = [
            ("model.d_model", m.d_model),
            ("model.proj_hidden", m.proj_hidden),
            ("model.video_dim", m.video_dim),
            ("model.audio_dim", m.audio_dim),
            ("model.image_dim", m.image_dim),
            ("model.n_views", m.n_views),
            ("model.sensor_channels", m.sensor_channels),
            ("model.sensor_hidden", m.sensor_hidden),
            ("model.mamba.layers", m.mamba.layers),
            ("model.mamba.d_state", m.mamba.d_state),
            ("model.mamba.d_conv", m.mamba.d_conv),
            ("model.mamba.expand", m.mamba.expand),
            ("model.mamba.dt_rank", m.mamba.dt_rank),
            ("model.process.layers", m.process.layers),
            ("model.process.heads", m.process.heads),
            ("model.process.ff", m.process.ff),
            ("model.result.gate_reduction", m.result.gate_reduction),
            ("model.result.hidden", m.result.hidden),
            ("model.clip_head.hidden", m.clip_head.hidden),
            ("model.clip_head.text_dim", m.clip_head.text_dim),
        ];
        for (name, v) in positive {
            if v <= 0 {
                return Err(format!("{name} must be positive, got {v}"));
            }
        }
        let probs = [
            ("model.feature_dropout", m.feature_dropout),
            ("model.feature_mask", m.feature_mask),
            ("model.process.dropout", m.process.dropout),
            ("model.decoder.dropout", m.decoder.dropout),
            ("model.clip_head.dropout", m.clip_head.dropout),
        ];
        for (name, p) in probs {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("{name} must be in [0, 1), got {p}"));
            }
        }
        if m.d_model % m.process.heads != 0 {
            return Err(format!(
                "model.d_model ({}) must be divisible by model.process.heads ({})",
                m.d_model, m.process.heads
            ));
        }
        if m.result.branches.is_empty() {
            return Err("model.result.branches is empty".into());
        }
        let c = self.concat_dim();
        if c % m.result.gate_reduction != 0 {
            return Err(format!(
                "concatenated branch width {c} must be divisible by model.result.gate_reduction ({})",
                m.result.gate_reduction
            ));
        }
        for (i, b) in m.result.branches.iter().enumerate() {
            if b.layer() < 0 {
                return Err(format!("model.result.branches[{i}].layer is negative"));
            }
            if let BranchConfig::Gem { p0, .. } = b {
                if *p0 < 1.0 {
                    return Err(format!(
                        "model.result.branches[{i}].p0 must be >= 1, got {p0}"
                    ));
                }
            }
        }
        if m.result.gem_eps.is_nan() || m.result.gem_eps <= 0.0 {
            return Err("model.result.gem_eps must be positive".into());
        }
        let (mi, ma, fl) = (m.mamba.dt_min, m.mamba.dt_max, m.mamba.dt_init_floor);
        if !(mi > 0.0 && mi <= ma && fl > 0.0) {
            return Err(format!(
                "model.mamba needs 0 < dt_min <= dt_max and dt_init_floor > 0, got {mi}, {ma}, {fl}"
            ));
        }
        let l = &self.loss;
        if let RecLoss::SmoothL1Topk { beta, topk, .. } = l.rec {
            if beta.is_nan() || beta <= 0.0 {
                return Err(format!("loss.rec.beta must be positive, got {beta}"));
            }
            if !(topk > 0.0 && topk <= 1.0) {
                return Err(format!("loss.rec.topk must be in (0, 1], got {topk}"));
            }
        }
        if !(l.score.topk > 0.0 && l.score.topk <= 1.0) {
            return Err(format!(
                "loss.score.topk must be in (0, 1], got {}",
                l.score.topk
            ));
        }
        Ok(())
    }

    /// Width of the concatenated branch vector C = branches x image_dim.
    pub fn concat_dim(&self) -> i64 {
        self.model.result.branches.len() as i64 * self.model.image_dim
    }

    /// Number of branches that read stored pooled vectors (mean/max), i.e. the second axis of
    /// `HeadBatch::image_pooled`.
    pub fn n_pooled_branches(&self) -> usize {
        self.model
            .result
            .branches
            .iter()
            .filter(|b| !matches!(b, BranchConfig::Gem { .. }))
            .count()
    }

    /// Number of GeM branches, i.e. the length of `HeadBatch::image_tokens`.
    pub fn n_gem_branches(&self) -> usize {
        self.model.result.branches.len() - self.n_pooled_branches()
    }
}

/// Number of elements kept by a top-k fraction of `d` elements: max(1, floor(d * frac)),
/// as the seed's `int(D * ratio)`.
pub fn topk_count(d: i64, frac: f64) -> i64 {
    ((d as f64 * frac).floor() as i64).max(1)
}
