//! `train-head train`: resolve the config, build head + source, run the training loop with a
//! progress bar per epoch and one summary line per epoch, print the final metrics.
use crate::heads::{with_head, Job, Setup};
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use tch::nn;
use weld_cache::train::trainer::FitOutcome;
use weld_cache::train::{fit, BatchSource, Event, RunOptions, TrainConfig, TrainableHead};

#[derive(Args)]
pub struct TrainArgs {
    /// Feature store folder (or `synth` for the config's synthetic features)
    #[arg(long)]
    store: String,
    /// TOML config (`[train]` table plus the head's tables)
    #[arg(long)]
    config: PathBuf,
    /// Run folder (config.toml, history.csv, checkpoints, metrics.json, plots/)
    #[arg(long)]
    out: PathBuf,
    /// Override a config key: `--set train.lr=1e-4` (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Head to train (written into the resolved config as `head`); default: the config's `head`
    #[arg(long)]
    head: Option<String>,
    /// Continue from RUN/last.safetensors
    #[arg(long)]
    resume: bool,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Load the splits into device memory once
    #[arg(long)]
    resident: bool,
    /// Stop after this many epochs of this invocation (continue later with --resume)
    #[arg(long, value_name = "N")]
    stop_after_epochs: Option<usize>,
}

/// The config file with `--set` overrides and `--head` applied.
pub fn resolve_config(
    path: &std::path::Path,
    sets: &[String],
    head: Option<&str>,
) -> Result<toml::Value> {
    let mut doc = weld_cache::train::load_config(path, sets)
        .with_context(|| format!("reading config {}", path.display()))?;
    if let Some(h) = head {
        doc.as_table_mut()
            .context("config is not a table")?
            .insert("head".into(), toml::Value::String(h.to_string()));
    }
    Ok(doc)
}

struct TrainJob {
    cfg: TrainConfig,
    opts: RunOptions,
}

impl Job for TrainJob {
    type Output = FitOutcome;
    fn run<H, S>(self, head: &H, vs: &nn::VarStore, src: &mut S, fp: &str) -> Result<FitOutcome>
    where
        H: TrainableHead,
        S: BatchSource<Batch = H::Batch>,
    {
        let n_params: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        println!("trainable parameters: {n_params}");
        let opts = RunOptions {
            fingerprint: fp.to_string(),
            ..self.opts
        };
        let total = self.cfg.epochs;
        let mut bar: Option<ProgressBar> = None;
        let mut on_event = |ev: Event| match ev {
            Event::EpochStart { epoch, steps, .. } => {
                let b = ProgressBar::new(steps as u64);
                b.set_style(
                    ProgressStyle::with_template("epoch {msg} [{bar:30}] {pos}/{len} {elapsed}")
                        .expect("valid template"),
                );
                b.set_message(format!("{}/{total}", epoch + 1));
                bar = Some(b);
            }
            Event::Step { .. } => {
                if let Some(b) = &bar {
                    b.inc(1);
                }
            }
            Event::EpochEnd(r) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                let terms: Vec<String> =
                    r.terms.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
                let diag: Vec<String> = r
                    .diagnostics
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.4}"))
                    .collect();
                let ema = r
                    .val_auroc_ema
                    .map(|a| format!(" ema {a:.4}"))
                    .unwrap_or_default();
                println!(
                    "epoch {:>3}/{total} lr {:.2e} loss {:.4} ({}) | val auroc raw {:.4}{ema} -> {} | {} | {:.1}s",
                    r.epoch + 1,
                    r.lr,
                    r.loss,
                    terms.join(", "),
                    r.val_auroc_raw,
                    r.chosen,
                    diag.join(", "),
                    r.seconds
                );
            }
        };
        Ok(fit(head, vs, src, &self.cfg, &opts, &mut on_event)?)
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let mut doc = resolve_config(&args.config, &args.sets, args.head.as_deref())?;
    if doc.get("head").is_none() {
        let name = crate::heads::head_name(&doc, &args.store)?;
        if let Some(t) = doc.as_table_mut() {
            t.insert("head".into(), toml::Value::String(name));
        }
    }
    let cfg = TrainConfig::from_doc(&doc).with_context(|| args.config.display().to_string())?;
    let device = weld_cache::device::parse_device(&args.device)?;
    let config_text = toml::to_string(&doc).context("serialising the resolved config")?;
    let setup = Setup {
        doc: &doc,
        store: &args.store,
        device,
        resident: args.resident,
    };
    let job = TrainJob {
        cfg: cfg.clone(),
        opts: RunOptions {
            out: args.out.clone(),
            fingerprint: String::new(),
            config_text,
            resume: args.resume,
            max_epochs_this_run: args.stop_after_epochs,
        },
    };
    match with_head(&setup, cfg.seed, job)
        .with_context(|| format!("training into {}", args.out.display()))?
    {
        FitOutcome::Paused { epochs_done } => println!(
            "stopped after {epochs_done} epochs; continue with --resume (run {})",
            args.out.display()
        ),
        FitOutcome::Finished(ev) => {
            print!("{}", crate::cmd_eval::table(&ev.metrics));
            println!("run written to {}", args.out.display());
        }
    }
    Ok(())
}
