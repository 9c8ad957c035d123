//! `train-head`: trains, evaluates and sweeps the small heads on a memory-mapped feature store.
use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "train-head",
    version,
    about = "Train and evaluate heads on cached features"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the libtorch build and whether CUDA is usable.
    Doctor,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Doctor => print!("{}", weld_cache::device::doctor_report()),
    }
    Ok(())
}
