//! `train-head`: trains, evaluates and sweeps the small heads on a memory-mapped feature store.
//! Every head comes from the library's registry (`weld_cache::heads::registry`): this binary
//! holds no per-head code.
mod cmd_compare;
mod cmd_eval;
mod cmd_resplit;
mod cmd_score;
mod cmd_sweep;
mod cmd_synth_store;
mod cmd_train;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "train-head",
    version,
    about = "Train, evaluate and sweep heads on cached features"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the libtorch build and whether CUDA is usable.
    Doctor,
    /// Train a head; writes config.toml, history.csv, checkpoints, metrics.json, scores.csv and
    /// plots/.
    Train(cmd_train::TrainArgs),
    /// Re-evaluate a run's best checkpoint on VAL or TEST.
    Eval(cmd_eval::EvalArgs),
    /// Score new welds with a finished run: one row per weld with its decision at the run's
    /// VAL threshold (`unreadable` with the reason for broken recordings).
    Score(cmd_score::ScoreArgs),
    /// Print the store a run was trained on (for late-fusion: its runs' store): the template
    /// `extract run --like` copies to extract new recordings (scripts/score.sh).
    TrainStore(cmd_score::TrainStoreArgs),
    /// Run a grid of trials x seeds (each an ordinary run) and write a leaderboard.
    Sweep(cmd_sweep::SweepArgs),
    /// Tabulate finished runs of any heads: VAL/TEST metrics, per-class TEST AUROC, parameters,
    /// seconds (TABLE.md, .csv, .png).
    Compare(cmd_compare::CompareArgs),
    /// Write a split that keeps every recording session on one side (or a supervised one), as
    /// a `key,split` CSV for `--split-file`.
    Resplit(cmd_resplit::ResplitArgs),
    /// Write a synthetic feature store (extractor schema, planted defects) for trials.
    SynthStore(cmd_synth_store::SynthStoreArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Doctor => print!("{}", weld_cache::device::doctor_report()),
        Cmd::Train(a) => cmd_train::run(a)?,
        Cmd::Eval(a) => cmd_eval::run(a)?,
        Cmd::Score(a) => cmd_score::run(a)?,
        Cmd::TrainStore(a) => cmd_score::train_store(a)?,
        Cmd::Sweep(a) => cmd_sweep::run(a)?,
        Cmd::Compare(a) => cmd_compare::run(a)?,
        Cmd::Resplit(a) => cmd_resplit::run(a)?,
        Cmd::SynthStore(a) => cmd_synth_store::run(a)?,
    }
    Ok(())
}
