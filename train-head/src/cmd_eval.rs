//! `train-head eval`: re-score VAL and TEST from RUN/best.safetensors with RUN/config.toml
//! (threshold from VAL), print the requested split as JSON, and say whether it equals
//! RUN/metrics.json.
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use weld_cache::heads::registry;
use weld_cache::schema::Split;
use weld_cache::train::{Outcome, RunMetrics, Setup, Task};

#[derive(Args)]
pub struct EvalArgs {
    /// Feature store folder; must be the store the run was trained on (not needed by
    /// `late-fusion`, which reads its runs' scores)
    #[arg(long)]
    store: Option<PathBuf>,
    /// Run folder written by `train-head train`
    #[arg(long)]
    run: PathBuf,
    /// VAL or TEST
    #[arg(long, default_value = "TEST")]
    split: String,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Load the splits into device memory once
    #[arg(long)]
    resident: bool,
}

/// A small text table of a run's metrics.
pub fn table(m: &RunMetrics) -> String {
    let mut s = format!(
        "best epoch {} (0-based, as in history.csv; {} weights)\n",
        m.best_epoch, m.chosen
    );
    s.push_str("split  auroc   ap      f1      prec    recall  threshold\n");
    for (name, x) in [("VAL", &m.val), ("TEST", &m.test)] {
        s.push_str(&format!(
            "{name:<6} {:.4}  {:.4}  {:.4}  {:.4}  {:.4}  {:.6}\n",
            x.auroc, x.ap, x.f1, x.precision, x.recall, x.threshold
        ));
    }
    s
}

pub fn run(args: EvalArgs) -> Result<()> {
    let split: Split = args.split.parse()?;
    let cfg_path = args.run.join("config.toml");
    let text = std::fs::read_to_string(&cfg_path)
        .with_context(|| format!("reading {}", cfg_path.display()))?;
    let doc: toml::Value =
        toml::from_str(&text).with_context(|| format!("parsing {}", cfg_path.display()))?;
    let entry = registry::lookup(&registry::head_name(&doc)?)?;
    let store = crate::cmd_train::store_for(entry, args.store.as_ref())?;
    let setup = Setup {
        doc: &doc,
        store: &store,
        device: weld_cache::device::parse_device(&args.device)?,
        resident: args.resident,
        verbose: true,
    };
    let task = Task::Eval {
        run: args.run.clone(),
    };
    let m = match registry::run(&setup, task)
        .with_context(|| format!("evaluating {}", args.run.display()))?
    {
        Outcome::Evaluated(ev) => ev.metrics,
        _ => unreachable!("an eval task evaluates"),
    };
    let part = match split {
        Split::Val => &m.val,
        Split::Test => &m.test,
        other => bail!("{other} is not scored by eval: evaluate VAL or TEST"),
    };
    println!("{}", serde_json::to_string_pretty(part)?);
    let saved = args.run.join("metrics.json");
    match std::fs::read_to_string(&saved) {
        Ok(t) => {
            let same = t == serde_json::to_string_pretty(&m)?;
            eprintln!(
                "{} {}",
                if same { "identical to" } else { "DIFFERS from" },
                saved.display()
            );
        }
        Err(e) => eprintln!("{}: {e}", saved.display()),
    }
    Ok(())
}
