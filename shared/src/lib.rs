//! weld-cache: unsupervised multimodal anomaly detection of robotic arc welds with cached
//! frozen-backbone features.
//!
//! Data flow, one module per concern:
//! `data` (manifest, sample discovery, decoders, synthetic data) -> `preprocess` (image, video,
//! Kaldi fbank) -> `backbones` (loader + one file per model) -> `store` (Zarr v3 schema, writer,
//! reader, markers) -> `heads` -> `train` -> `metrics`; `tracking` mirrors a run's history and
//! metrics into TensorBoard event files.
//!
//! The `extract` cargo feature gates everything that needs decoders or backbones; `train-head`
//! builds without it and can only read the store.

#[cfg(feature = "extract")]
pub mod backbones;
pub mod data;
pub mod device;
pub mod error;
pub mod heads;
pub mod metrics;
#[cfg(feature = "extract")]
pub mod pipeline;
#[cfg(feature = "extract")]
pub mod preprocess;
pub mod store;
pub mod tracking;
pub mod train;

pub use error::{Error, Result};
