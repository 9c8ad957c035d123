//! The dataset paper's baseline (arXiv 2409.02290; DESIGN.md "Baselines"): an audio
//! autoencoder on the spectrogram and a video autoencoder, each scored on its own, z-scored with
//! TRAIN statistics and fused 0.37 audio + 0.63 video. Here the two autoencoders are two heads
//! (two runs) and the fusion is `late-fusion` with weights [0.37, 0.63]
//! (`configs/paper_ae.toml`):
//! - `paper-audio-ae` ([`audio`]): a 1D-CNN autoencoder over time on `audio/spectrogram`
//!   `[T, F]` (mel bins as channels), score = reconstruction error averaged over frames;
//! - `paper-video-ae` ([`video`]): a per-token MLP autoencoder on V-JEPA 2 tokens `[Tv, Dv]`
//!   (the paper used SlowFast features: **V-JEPA 2 instead of SlowFast**), score = the maximum
//!   over time of a moving average (about 2 s) of the per-time-step reconstruction error.
//!
//! Both standardise their input per feature (mel bin, token dimension) with TRAIN statistics
//! kept in the checkpoint.
pub mod audio;
pub mod video;

use crate::schema::Split;
use crate::Result;
use tch::{Kind, Tensor};

/// Per-feature TRAIN mean and standard deviation (ddof 0, floored at 1e-6) of input 0 of the
/// feeder, over every axis but the last: `([D], [D])`.
pub(crate) fn train_stats(ctx: &crate::heads::StoreContext) -> Result<(Tensor, Tensor)> {
    let x = ctx.feeder.whole_split(Split::Train, 0)?;
    let d = *x.size().last().unwrap_or(&1);
    let x = x.reshape([-1, d]).to_kind(Kind::Double);
    let mean = x.mean_dim(0, false, Kind::Double).to_kind(Kind::Float);
    let std = x
        .std_correction(0, 0, false)
        .clamp_min(1e-6)
        .to_kind(Kind::Float);
    Ok((mean, std))
}
