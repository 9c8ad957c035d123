//! `train-head eval`: re-score VAL and TEST from RUN/best.safetensors with RUN/config.toml
//! (threshold from VAL), print the requested split as JSON, and say whether it equals
//! RUN/metrics.json.
use crate::heads::{with_head, Job, Setup};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use tch::nn;
use weld_cache::train::{
    evaluate_best, BatchSource, RunMetrics, Split, TrainConfig, TrainableHead,
};

#[derive(Args)]
pub struct EvalArgs {
    /// Feature store folder (or `synth`); must be the store the run was trained on
    #[arg(long)]
    store: String,
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

struct EvalJob {
    run: PathBuf,
    eval_batch_size: usize,
}

impl Job for EvalJob {
    type Output = RunMetrics;
    fn run<H, S>(self, head: &H, vs: &nn::VarStore, src: &mut S, fp: &str) -> Result<RunMetrics>
    where
        H: TrainableHead,
        S: BatchSource<Batch = H::Batch>,
    {
        Ok(evaluate_best(head, vs, src, &self.run, fp, self.eval_batch_size)?.metrics)
    }
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
    let cfg = TrainConfig::from_doc(&doc).with_context(|| cfg_path.display().to_string())?;
    let setup = Setup {
        doc: &doc,
        store: &args.store,
        device: weld_cache::device::parse_device(&args.device)?,
        resident: args.resident,
    };
    let job = EvalJob {
        run: args.run.clone(),
        eval_batch_size: cfg.eval_batch_size,
    };
    let m = with_head(&setup, cfg.seed, job)
        .with_context(|| format!("evaluating {}", args.run.display()))?;
    let part = match split {
        Split::Val => &m.val,
        Split::Test => &m.test,
        Split::Train => anyhow::bail!("TRAIN holds only good samples: evaluate VAL or TEST"),
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
