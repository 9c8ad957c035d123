//! The `[supcon]` table: which modalities the fusion reads, the fusion and projection widths,
//! the SupCon temperature, the optional cross-entropy weight and the k of the k-NN evaluation.
//! Every key but `image_layer` (when the image modality is read) has a default, listed in
//! `configs/supcon.toml`.
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// A modality the fusion tokens attend to, read as tokens: `video/tokens` `[Tv, Dv]`;
/// `audio/tokens` `[W, Na, Da]` as `[W * Na, Da]`; `image/tokens_L{image_layer}` `[V, Ntok, Di]`
/// as `[V * Ntok, Di]`; `sensor/raw` `[L, C]` standardised per channel with TRAIN statistics, one
/// token per step.
pub use crate::heads::Modality;

/// `[supcon]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupConConfig {
    /// modalities read, in this order (default: all four)
    #[serde(default = "default_modalities")]
    pub modalities: Vec<Modality>,
    /// DINOv3 hidden state whose tokens are the image modality (`image/tokens_L{layer}`)
    #[serde(default)]
    pub image_layer: Option<i64>,
    /// common width every modality is projected to, and the width of the fusion tokens
    #[serde(default = "default_d_model")]
    pub d_model: i64,
    /// number of learned fusion tokens (the queries of the cross-attention)
    #[serde(default = "default_fusion_tokens")]
    pub fusion_tokens: i64,
    /// attention heads (must divide `d_model`)
    #[serde(default = "default_heads")]
    pub heads: i64,
    /// cross-attention blocks (attention + FFN, each residual + LayerNorm)
    #[serde(default = "default_layers")]
    pub layers: i64,
    /// hidden width of each block's FFN
    #[serde(default = "default_ff")]
    pub ff: i64,
    /// dropout after attention and FFN (training only)
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// hidden width of the projection head MLP
    #[serde(default = "default_proj_hidden")]
    pub proj_hidden: i64,
    /// width of the L2-normalised embedding (SupCon space, k-NN bank)
    #[serde(default = "default_embed_dim")]
    pub embed_dim: i64,
    /// SupCon temperature (the seed: 0.07-0.1)
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// weight of the optional cross-entropy of a linear classifier on the pooled feature over
    /// the classes present in TRAIN; 0 (default) builds no classifier
    #[serde(default)]
    pub ce_weight: f64,
    /// neighbours of the k-NN evaluation (cosine similarity on the TRAIN bank)
    #[serde(default = "default_k")]
    pub k: i64,
}

fn default_modalities() -> Vec<Modality> {
    Modality::ALL.to_vec()
}
fn default_d_model() -> i64 {
    128
}
fn default_fusion_tokens() -> i64 {
    4
}
fn default_heads() -> i64 {
    4
}
fn default_layers() -> i64 {
    1
}
fn default_ff() -> i64 {
    256
}
fn default_dropout() -> f64 {
    0.1
}
fn default_proj_hidden() -> i64 {
    128
}
fn default_embed_dim() -> i64 {
    64
}
fn default_temperature() -> f64 {
    0.07
}
fn default_k() -> i64 {
    5
}

impl SupConConfig {
    /// Reads and checks the `[supcon]` table of a resolved config.
    pub fn from_doc(doc: &toml::Value) -> Result<Self> {
        let table = doc
            .get("supcon")
            .cloned()
            .unwrap_or_else(|| toml::Value::Table(Default::default()));
        let cfg: SupConConfig = table
            .try_into()
            .map_err(|e| Error::Msg(format!("config [supcon]: {e}")))?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Msg(format!("config [supcon]: {m}")));
        if self.modalities.is_empty() {
            return bad("`modalities` is empty; list some of video, audio, image, sensor".into());
        }
        for (i, m) in self.modalities.iter().enumerate() {
            if self.modalities[..i].contains(m) {
                return bad(format!("`modalities` lists {m:?} twice"));
            }
        }
        if self.modalities.contains(&Modality::Image) && self.image_layer.is_none() {
            return bad(
                "the image modality needs `image_layer` (the DINOv3 hidden-state index whose \
                 tokens are read, e.g. image_layer = 31 for ViT-H+)"
                    .into(),
            );
        }
        for (key, v) in [
            ("d_model", self.d_model),
            ("fusion_tokens", self.fusion_tokens),
            ("heads", self.heads),
            ("layers", self.layers),
            ("ff", self.ff),
            ("proj_hidden", self.proj_hidden),
            ("embed_dim", self.embed_dim),
            ("k", self.k),
        ] {
            if v < 1 {
                return bad(format!("`{key}` = {v} must be >= 1"));
            }
        }
        if self.d_model % self.heads != 0 {
            return bad(format!(
                "`heads` = {} must divide `d_model` = {}",
                self.heads, self.d_model
            ));
        }
        if self.temperature.is_nan() || self.temperature <= 0.0 {
            return bad(format!("`temperature` = {} must be > 0", self.temperature));
        }
        if self.ce_weight.is_nan() || self.ce_weight < 0.0 {
            return bad(format!("`ce_weight` = {} must be >= 0", self.ce_weight));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("`dropout` = {} must be in [0, 1)", self.dropout));
        }
        Ok(())
    }
}
