//! `concat-mlp` (DESIGN.md "Baselines: concat-MLP mid fusion"): the pooled features of every
//! modality (V-JEPA 2 tokens, AST tokens, the DINOv3 pooled vector of `image_layer`, the sensor
//! series), each averaged to one vector, concatenated and standardised, into one MLP
//! autoencoder; score = reconstruction error.
use crate::heads::mlp_ae::preset::{refuse, AeTable, Modality, Preset, PresetAe};
use crate::heads::pooled::FeatureSpec;
use crate::Result;

pub struct AllModalities;

impl Preset for AllModalities {
    const NAME: &'static str = "concat-mlp";
    const TABLE: &'static str = "concat_mlp";

    fn features(t: &AeTable) -> Result<Vec<FeatureSpec>> {
        refuse(t, Self::TABLE, false, true)?;
        Modality::ALL
            .iter()
            .map(|m| m.feature(t, Self::TABLE))
            .collect()
    }
}

pub type ConcatMlp = PresetAe<AllModalities>;
