//! `train-head train`: resolve the config, run the head the config names (through the registry)
//! with a progress bar per epoch and one summary line per epoch, print the final metrics.
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use weld_cache::heads::registry;
use weld_cache::train::{Event, FitOutcome, Outcome, RunOptions, Setup, Task, TrainConfig};

#[derive(Args)]
pub struct TrainArgs {
    /// Feature store folder (written by `extract run` or `train-head synth-store`); every head
    /// but `late-fusion` (which reads finished runs) needs one
    #[arg(long)]
    store: Option<PathBuf>,
    /// TOML config (`head`, `[train]` and the head's tables; see configs/)
    #[arg(long)]
    config: PathBuf,
    /// Run folder (config.toml, history.csv, checkpoints, metrics.json, scores.csv, plots/)
    #[arg(long)]
    out: PathBuf,
    /// Override a config key: `--set train.lr=1e-4` (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Head to train (written into the resolved config as `head`); default: the config's `head`
    #[arg(long)]
    head: Option<String>,
    /// late-fusion: the finished runs whose scores.csv are fused (sets `late_fusion.runs`)
    #[arg(long, num_args = 1.., value_name = "RUN")]
    runs: Vec<PathBuf>,
    /// Train and evaluate on the splits of this `key,split` CSV (`train-head resplit`) instead
    /// of the store's; recorded in the run's config.toml (`split_file`), so eval uses it too
    #[arg(long, value_name = "CSV")]
    split_file: Option<PathBuf>,
    /// ae: the single modality (sets `ae.modality`): video, audio, image or sensor
    #[arg(long, value_name = "MODALITY")]
    modality: Option<String>,
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
    /// libtorch intra-op threads (default: libtorch's own, one per core)
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
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
    registry::lookup(&registry::head_name(&doc)?)?;
    Ok(doc)
}

/// The `--store` a head runs on: required unless the head reads no store (`late-fusion`).
pub fn store_for(entry: &registry::Entry, store: Option<&PathBuf>) -> Result<PathBuf> {
    match (store, entry.reads_store) {
        (Some(s), _) => Ok(s.clone()),
        (None, false) => Ok(PathBuf::new()),
        (None, true) => anyhow::bail!("--store STORE is required for head `{}`", entry.name),
    }
}

/// The absolute path of an existing file (named in the error when it does not exist).
pub fn absolute(p: &std::path::Path) -> Result<PathBuf> {
    std::fs::canonicalize(p).with_context(|| format!("split file {}", p.display()))
}

/// Sets `[table] key = value`, creating the table (a flag's value, e.g. `--runs`, whether or not
/// the config file has the key).
fn insert(doc: &mut toml::Value, table: &str, key: &str, value: toml::Value) -> Result<()> {
    let t = doc
        .as_table_mut()
        .context("config is not a table")?
        .entry(table)
        .or_insert_with(|| toml::Value::Table(Default::default()))
        .as_table_mut()
        .with_context(|| format!("config key `{table}` is not a table"))?;
    t.insert(key.to_string(), value);
    Ok(())
}

/// `1.2345e-7` for small magnitudes, `0.1234` otherwise: every loss term stays readable.
pub fn num(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

/// Sets libtorch's intra-op threads, bounded by the machine.
pub fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        if n == 0 || n > 4 * cores {
            anyhow::bail!(
                "--threads {n}: give 1..={} (this machine has {cores} cores)",
                4 * cores
            );
        }
        tch::set_num_threads(n as i32);
    }
    Ok(())
}

fn on_event(total: usize) -> impl FnMut(Event) {
    let mut bar: Option<ProgressBar> = None;
    move |ev: Event| match ev {
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
            let terms: Vec<String> = r
                .terms
                .iter()
                .map(|(k, v)| format!("{k} {}", num(*v)))
                .collect();
            let diag: Vec<String> = r
                .diagnostics
                .iter()
                .map(|(k, v)| format!("{k} {}", num(*v)))
                .collect();
            let ema = r
                .val_auroc_ema
                .map(|a| format!(" ema {a:.4}"))
                .unwrap_or_default();
            println!(
                "epoch {:>3}/{total} lr {:.2e} loss {} ({}) | val auroc raw {:.4}{ema} -> {} | {} | {:.1}s",
                r.epoch + 1,
                r.lr,
                num(r.loss),
                terms.join(", "),
                r.val_auroc_raw,
                r.chosen,
                diag.join(", "),
                r.seconds
            );
        }
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    set_threads(args.threads)?;
    let mut doc = resolve_config(&args.config, &args.sets, args.head.as_deref())?;
    if !args.runs.is_empty() {
        let list = args
            .runs
            .iter()
            .map(|r| toml::Value::String(r.display().to_string()))
            .collect();
        insert(&mut doc, "late_fusion", "runs", toml::Value::Array(list))?;
    }
    if let Some(f) = &args.split_file {
        let f = absolute(f)?;
        doc.as_table_mut().context("config is not a table")?.insert(
            "split_file".into(),
            toml::Value::String(f.display().to_string()),
        );
    }
    if let Some(m) = &args.modality {
        insert(&mut doc, "ae", "modality", toml::Value::String(m.clone()))?;
    }
    let entry = registry::lookup(&registry::head_name(&doc)?)?;
    let store = store_for(entry, args.store.as_ref())?;
    // the epoch count for the progress lines; a head without a [train] table has no epochs
    let epochs = if doc.get("train").is_some() || entry.reads_store {
        TrainConfig::from_doc(&doc)
            .with_context(|| args.config.display().to_string())?
            .epochs
    } else {
        0
    };
    let device = weld_cache::device::parse_device(&args.device)?;
    let config_text = toml::to_string(&doc).context("serialising the resolved config")?;
    let setup = Setup {
        doc: &doc,
        store: &store,
        device,
        resident: args.resident,
        verbose: true,
    };
    let mut events = on_event(epochs);
    let task = Task::Train {
        opts: RunOptions {
            out: args.out.clone(),
            fingerprint: String::new(),
            config_text,
            resume: args.resume,
            max_epochs_this_run: args.stop_after_epochs,
        },
        on_event: &mut events,
    };
    let outcome = registry::run(&setup, task)
        .with_context(|| format!("training into {}", args.out.display()))?;
    match outcome {
        Outcome::Trained(FitOutcome::Paused { epochs_done }) => println!(
            "stopped after {epochs_done} epochs; continue with --resume (run {})",
            args.out.display()
        ),
        Outcome::Trained(FitOutcome::Finished(ev)) => {
            print!("{}", crate::cmd_eval::table(&ev.metrics));
            println!("run written to {}", args.out.display());
        }
        _ => unreachable!("a train task trains"),
    }
    Ok(())
}
