//! Heads that are an [`MlpAe`] over a fixed choice of inputs (`video-ae`, `ae --modality`,
//! `concat-mlp`): each head folder declares only its inputs ([`Preset`]); the autoencoder, its
//! TRAIN standardisation, loss and score are [`MlpAe`]'s.
//!
//! Their table (`[video_ae]`, `[ae]`, `[concat_mlp]`; every key optional but `ae`'s `modality`
//! and the image layer where an image input is read): `hidden` (128), `bottleneck` (64),
//! `input_dropout` (0.1), `modality`, `image_layer`, `image_stat` (`mean`).
use super::{MlpAe, MlpAeConfig};
use crate::features::Inputs;
use crate::heads::pooled::{self, FeatureSpec, Stat};
use crate::heads::{GradientHead, Head, Named, StoreContext};
use crate::schema::{AUDIO_TOKENS, SENSOR_RAW, VIDEO_TOKENS};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use tch::{nn, Tensor};

/// The table of a preset autoencoder head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeTable {
    #[serde(default = "default_hidden")]
    pub hidden: i64,
    #[serde(default = "default_bottleneck")]
    pub bottleneck: i64,
    #[serde(default = "default_dropout")]
    pub input_dropout: f64,
    /// `ae`: which single modality
    #[serde(default)]
    pub modality: Option<Modality>,
    /// the DINOv3 hidden state of the image input (`image/pooled`)
    #[serde(default)]
    pub image_layer: Option<i64>,
    #[serde(default)]
    pub image_stat: Option<Stat>,
}

fn default_hidden() -> i64 {
    128
}
fn default_bottleneck() -> i64 {
    64
}
fn default_dropout() -> f64 {
    0.1
}

/// How a preset reads a modality: V-JEPA 2 tokens averaged over tokens, AST tokens averaged over
/// windows and tokens, the DINOv3 pooled vector of `image_layer` averaged over the views, the
/// resampled sensor series averaged over time.
pub use crate::heads::Modality;

impl Modality {
    /// The modality's input, reading `image_layer` from the `table` of head `head`.
    pub fn feature(self, t: &AeTable, table: &str) -> Result<FeatureSpec> {
        Ok(match self {
            Modality::Video => FeatureSpec::Array {
                array: VIDEO_TOKENS.into(),
            },
            Modality::Audio => FeatureSpec::Array {
                array: AUDIO_TOKENS.into(),
            },
            Modality::Sensor => FeatureSpec::Array {
                array: SENSOR_RAW.into(),
            },
            Modality::Image => FeatureSpec::Pooled {
                pooled: t.image_layer.ok_or_else(|| {
                    Error::Msg(format!(
                        "config [{table}]: the image input needs `image_layer` (the DINOv3 \
                         hidden-state index, e.g. image_layer = 31 for ViT-H+)"
                    ))
                })?,
                stat: t.image_stat.unwrap_or(Stat::Mean),
            },
        })
    }
}

/// What a preset head reads.
pub trait Preset {
    const NAME: &'static str;
    /// its config table
    const TABLE: &'static str;
    fn features(t: &AeTable) -> Result<Vec<FeatureSpec>>;
}

/// An [`MlpAe`] whose inputs are chosen by `P`.
pub struct PresetAe<P> {
    ae: MlpAe,
    _preset: PhantomData<P>,
}

impl<P: Preset> Head for PresetAe<P> {
    const NAME: &'static str = P::NAME;
    type Config = MlpAeConfig;
    /// standardised features `[B, D]`, f32
    type Batch = Tensor;

    fn config(doc: &toml::Value) -> Result<MlpAeConfig> {
        let table = doc
            .get(P::TABLE)
            .cloned()
            .unwrap_or_else(|| toml::Value::Table(Default::default()));
        let t: AeTable = table
            .try_into()
            .map_err(|e| Error::Msg(format!("config [{}]: {e}", P::TABLE)))?;
        Ok(MlpAeConfig {
            hidden: t.hidden,
            bottleneck: t.bottleneck,
            input_dropout: t.input_dropout,
            features: P::features(&t)?,
        })
    }

    fn inputs(cfg: &MlpAeConfig) -> Inputs {
        pooled::inputs(&cfg.features)
    }

    fn build(p: &nn::Path, cfg: &MlpAeConfig, ctx: &StoreContext) -> Result<Self> {
        Ok(PresetAe {
            ae: MlpAe::on_store(p, cfg, ctx)?,
            _preset: PhantomData,
        })
    }

    fn make_batch(&self, fed: Vec<Tensor>) -> Result<Tensor> {
        self.ae.make_batch(fed)
    }

    fn score(&self, x: &Tensor) -> Tensor {
        self.ae.score_of(x)
    }

    fn diagnostics(&self, x: &Tensor) -> Named {
        self.ae.diagnostics_of(x)
    }

    fn describe(&self, vs: &nn::VarStore) -> String {
        self.ae.describe_as(P::NAME, vs)
    }
}

impl<P: Preset> GradientHead for PresetAe<P> {
    fn loss(&self, x: &Tensor, train: bool) -> (Tensor, Named) {
        self.ae.loss_of(x, train)
    }
}

/// Refuses a key a preset does not read (`modality` outside `ae`, ...).
pub fn refuse(t: &AeTable, table: &str, modality: bool, image: bool) -> Result<()> {
    if !modality && t.modality.is_some() {
        return Err(Error::Msg(format!(
            "config [{table}]: `modality` is a key of the `ae` head; this head's inputs are fixed"
        )));
    }
    if !image && (t.image_layer.is_some() || t.image_stat.is_some()) {
        return Err(Error::Msg(format!(
            "config [{table}]: this head reads no image input (`image_layer`/`image_stat`)"
        )));
    }
    Ok(())
}
