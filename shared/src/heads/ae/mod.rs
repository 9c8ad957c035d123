//! `ae` (DESIGN.md "Baselines: single-modality heads"): an MLP autoencoder on one modality's
//! pooled features, chosen by `[ae] modality = "video" | "audio" | "image" | "sensor"`
//! (`train-head train --head ae --modality video`); the image modality reads the DINOv3 pooled
//! vector of `image_layer`. Score = reconstruction error.
use crate::heads::mlp_ae::preset::{refuse, AeTable, Preset, PresetAe};
use crate::heads::pooled::FeatureSpec;
use crate::{Error, Result};

pub struct OneModality;

impl Preset for OneModality {
    const NAME: &'static str = "ae";
    const TABLE: &'static str = "ae";

    fn features(t: &AeTable) -> Result<Vec<FeatureSpec>> {
        let m = t.modality.ok_or_else(|| {
            Error::Msg(
                "config [ae]: `modality` is required: video, audio, image or sensor \
                 (train-head train --head ae --modality video)"
                    .into(),
            )
        })?;
        // `image_layer` may stay in the table for the other modalities (one config, --modality)
        refuse(t, Self::TABLE, true, true)?;
        Ok(vec![m.feature(t, Self::TABLE)?])
    }
}

pub type Ae = PresetAe<OneModality>;
