//! Training infrastructure shared by every head: AdamW with savable moments, the warm-up +
//! cosine schedule, EMA, checkpoints, history, the `[train]` config and the training loop.
//! `mlp_ae` and `synth` are a baseline head and a synthetic feeder that exercise the loop
//! without a store; `store_source` feeds Causal-FiLM from the feature store.
pub mod adamw;
pub mod checkpoint;
pub mod config;
pub mod ema;
pub mod history;
pub mod mlp_ae;
pub mod schedule;
pub mod store_source;
pub mod synth;
pub mod synth_store;
pub mod trainer;

pub use adamw::{AdamW, AdamWConfig};
pub use config::{apply_set, load_config, TrainConfig};
pub use ema::Ema;
pub use history::HistoryRow;
pub use schedule::Schedule;
pub use store_source::CausalFilmSource;
pub use trainer::{
    evaluate_best, fit, score_split, BatchSource, Evaluation, Event, FitOutcome, Named, RunMetrics,
    RunOptions, Split, TrainableHead,
};
