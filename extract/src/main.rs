//! `extract`: runs the frozen backbones once over a welding dataset and writes their features to a
//! Zarr v3 store. Also hosts the data tools (check-data, synth) and the model tools.
use anyhow::Result;
use clap::{Parser, Subcommand};

#[cfg(feature = "decoders")]
mod cmd_data;
mod cmd_gpu_bench;
mod cmd_models;
#[cfg(feature = "decoders")]
mod cmd_run;

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
    /// Fill (or resume) a feature store: decode, run the frozen backbones, write features.
    #[cfg(feature = "decoders")]
    Run(cmd_run::RunArgs),
    /// Check a store: shapes, completeness, finiteness, provenance, sample table. Exit 0 when
    /// sound: every sample complete or faulted (--require-complete: complete).
    #[cfg(feature = "decoders")]
    Verify(cmd_run::VerifyArgs),
    /// Convert a store of an older format (1) to the current one in place (no chunk rewritten).
    Migrate(MigrateArgs),
    /// Show a model folder: type, config, parameter count, dtype, weight files + sha256.
    Inspect(cmd_models::InspectArgs),
    /// Run a backbone on a safetensors input and write every hidden state (f32).
    Forward(cmd_models::ForwardArgs),
    /// Write random-weight Hugging Face folders of every backbone (tiny, or real-size for timing).
    InitModels(cmd_models::InitModelsArgs),
    /// Time the device side without decoders: backbone forwards (welds/s, TFLOP/s, MFU), the
    /// device-side preprocessing of real-size media, and device-vs-CPU parity (markdown).
    GpuBench(cmd_gpu_bench::GpuBenchArgs),
    /// Decode every sample of a dataset and report missing or corrupt inputs.
    #[cfg(feature = "decoders")]
    CheckData(cmd_data::CheckDataArgs),
    /// Write a synthetic weld dataset in the Intel layout.
    #[cfg(feature = "decoders")]
    Synth(cmd_data::SynthArgs),
}

#[derive(clap::Args)]
struct MigrateArgs {
    /// The store to convert (no `extract run` may be using it).
    #[arg(long)]
    store: std::path::PathBuf,
}

fn migrate(a: &MigrateArgs) -> Result<()> {
    use anyhow::Context;
    let r = weld_cache::store::migrate(&a.store)
        .with_context(|| format!("migrating {}", a.store.display()))?;
    println!(
        "{}: format {} -> {}: {} arrays, {} markers moved, coordinates written {:?}, provenance \
         {:?}, text embedding {}, reports {:?}",
        a.store.display(),
        r.from_version,
        weld_cache::store::FORMAT_VERSION,
        r.arrays,
        r.markers_moved,
        r.coordinates_written,
        r.provenance,
        if r.text_embed {
            "converted"
        } else {
            "unchanged"
        },
        r.reports
    );
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Doctor => print!("{}", weld_cache::device::doctor_report()),
        #[cfg(feature = "decoders")]
        Cmd::Run(a) => cmd_run::run(a)?,
        #[cfg(feature = "decoders")]
        Cmd::Verify(a) => cmd_run::verify(a)?,
        Cmd::Migrate(a) => migrate(&a)?,
        Cmd::Inspect(a) => cmd_models::inspect(&a)?,
        Cmd::Forward(a) => cmd_models::forward(&a)?,
        Cmd::InitModels(a) => cmd_models::init_models(&a)?,
        Cmd::GpuBench(a) => cmd_gpu_bench::run(&a)?,
        #[cfg(feature = "decoders")]
        Cmd::CheckData(a) => cmd_data::check_data(a)?,
        #[cfg(feature = "decoders")]
        Cmd::Synth(a) => cmd_data::synth(a)?,
    }
    Ok(())
}
