//! Training shared by every head: AdamW with savable moments, the warm-up + cosine schedule,
//! EMA, checkpoints, history, the `[train]` config, the gradient loop ([`trainer`]), the
//! evaluation of a run's chosen weights ([`eval`]) and the generic runners the head registry
//! points at ([`driver`]: gradient loop or fit-once).
pub mod adamw;
pub mod checkpoint;
pub mod config;
pub mod driver;
pub mod ema;
pub mod eval;
pub mod history;
pub mod schedule;
pub mod trainer;

pub use adamw::{AdamW, AdamWConfig};
pub use config::{apply_set, load_config, TrainConfig};
pub use driver::{HeadSource, NewScores, Outcome, Setup, Task};
pub use ema::Ema;
pub use eval::{evaluate_best, score_split, Evaluation, RunMetrics, Scored};
pub use history::HistoryRow;
pub use schedule::Schedule;
pub use trainer::{fit, BatchSource, Event, FitOutcome, RunOptions};
