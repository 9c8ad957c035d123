//! Frozen backbones, one file per family, each matching `transformers==4.57.1`.
pub mod clip;
pub mod loader;
