//! Experiment tracking the way the community reads runs: TensorBoard event files.
//!
//! `history.csv` and `metrics.json` stay the source of truth; every run also keeps
//! `RUN/tensorboard/` in step with them ([`sync_run_events`]): the per-epoch scalars, the final
//! VAL/TEST metrics and the plots as images. `tensorboard --logdir runs/` shows each run (and a
//! sweep's trials) as its own run; W&B users upload them with
//! `wandb sync --sync-tensorboard RUN/tensorboard`. No W&B code is linked.
//!
//! [`tensorboard`] is a small hand-written writer/reader of the event-file format (why: see its
//! doc); it needs no decoder, so this module builds without the `extract` feature.
pub mod run_events;
pub mod tensorboard;

pub use run_events::{final_scalars, history_scalars, sync_run_events, SyncReport, EVENTS_DIR};
