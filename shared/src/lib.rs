//! weld-cache: unsupervised multimodal anomaly detection of robotic arc welds with cached
//! frozen-backbone features.
//!
//! Data flow, one module per concern:
//! `data` (manifest, sample discovery, decoders, synthetic data) -> `preprocess` (image, video,
//! Kaldi fbank) -> `backbones` (loader + one file per model) -> `pipeline` (extract run) ->
//! `store` (Zarr v3 writer, reader, markers) with `schema` (array names, sample table, splits)
//! -> `features` (the generic feeder every head shares, synthetic stores) -> `heads` (traits,
//! registry, one folder per head) -> `train` (gradient loop, fit-once, evaluation) ->
//! `metrics` -> `runs` (run folders, sweeps, leaderboards); `tracking` mirrors a run's history
//! and metrics into TensorBoard event files.
//!
//! Cargo features: `backbones` gates the frozen backbones and the tensor-side preprocessing
//! (libtorch only); `extract` adds the decoders (opencv, symphonia), synthetic media, the dataset
//! checker and the extraction pipeline. `train-head` builds with neither and can only read the
//! store; `scripts/build.sh` builds each binary on its own so the features never unify.

#[cfg(feature = "backbones")]
pub mod backbones;
pub mod data;
pub mod device;
pub mod error;
pub mod features;
pub mod heads;
pub mod metrics;
#[cfg(feature = "extract")]
pub mod pipeline;
#[cfg(feature = "backbones")]
pub mod preprocess;
pub mod runs;
pub mod schema;
pub mod store;
pub mod tracking;
pub mod train;

pub use error::{Error, Result};
