//! `video-ae` (the seed's "Plan E + Video AE", DESIGN.md "The seed's other systems"): an MLP
//! autoencoder D -> 128 -> 64 -> 128 -> D on the per-frame DINOv3 features `video/frame_dino`
//! `[N, D]` averaged over the frames; score = reconstruction error. The seed fused its score with
//! Causal-FiLM's (`late-fusion`). Table `[video_ae]`: `hidden`, `bottleneck`, `input_dropout`.
use crate::heads::mlp_ae::preset::{refuse, AeTable, Preset, PresetAe};
use crate::heads::pooled::FeatureSpec;
use crate::schema::VIDEO_FRAME_DINO;
use crate::Result;

pub struct VideoFrames;

impl Preset for VideoFrames {
    const NAME: &'static str = "video-ae";
    const TABLE: &'static str = "video_ae";

    fn features(t: &AeTable) -> Result<Vec<FeatureSpec>> {
        refuse(t, Self::TABLE, false, false)?;
        Ok(vec![FeatureSpec::Array {
            array: VIDEO_FRAME_DINO.into(),
        }])
    }
}

pub type VideoAe = PresetAe<VideoFrames>;
