//! `extract`: runs the frozen backbones once over a welding dataset and writes their features to a
//! Zarr v3 store. Also hosts the data tools (check-data, synth) and the model tools.
use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "extract",
    version,
    about = "Frozen-backbone feature extraction into a Zarr v3 store"
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
