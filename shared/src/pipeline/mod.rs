//! `extract run`: the feature-cache stage. Decodes every sample, runs the frozen backbones and
//! fills the Zarr store, resumably (per-sample markers), shardable (`--shard i/n`) and with
//! faults reported per sample instead of stopping the run.
pub mod config;
pub mod engine;
pub mod like;
pub mod precheck;
pub mod provenance;
pub mod run;
pub mod stages;
pub mod stages_extra;

pub use config::{ExtractConfig, Shard, StageKind};
pub use engine::{Fault, NoProgress, Progress, StageSummary};
pub use run::{run_extract, ExtractReport, RunOptions};
