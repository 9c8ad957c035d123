//! Frozen backbones, one file per family, each matching `transformers==4.57.1`.
pub mod loader;
