//! `train-head compare`: one table of finished runs of any heads (TABLE.md, .csv, .png).
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use weld_cache::runs::compare;

#[derive(Args)]
pub struct CompareArgs {
    /// Finished run folders (metrics.json + run.json), in table order
    #[arg(long, num_args = 1.., required = true)]
    runs: Vec<PathBuf>,
    /// Output path without extension: writes OUT.md, OUT.csv and OUT.png
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: CompareArgs) -> Result<()> {
    let runs = compare::read(&a.runs)?;
    print!("{}", compare::write(&a.out, &runs)?);
    println!("written to {}.md (.csv, .png)", a.out.display());
    Ok(())
}
