//! `train-head score`: a decision per weld of a new store with a finished run: the score, the
//! decision at the run's VAL threshold (or a given one) and the score parts, one CSV row per
//! weld; `unreadable` with the reason for a weld whose recordings could not be extracted.
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use weld_cache::heads::registry;
use weld_cache::runs::read_run_info;
use weld_cache::train::eval::csv_field;
use weld_cache::train::history::write_atomic;
use weld_cache::train::{Outcome, RunMetrics, Setup, Task};

#[derive(Args)]
pub struct ScoreArgs {
    /// Finished run folder (best.safetensors, config.toml, metrics.json, run.json)
    #[arg(long)]
    run: PathBuf,
    /// Store of the new welds (`extract run --like TRAINING_STORE` on the new recordings)
    #[arg(long)]
    store: PathBuf,
    /// Output CSV: key, score, decision (defect | good | unreadable), reason, score parts
    #[arg(long)]
    out: PathBuf,
    /// `val` (the threshold chosen on VAL, recorded in RUN/metrics.json) or a number
    #[arg(long, default_value = "val")]
    threshold: String,
    /// The run's training store (default: the one recorded in RUN/run.json)
    #[arg(long, value_name = "STORE")]
    train_store: Option<PathBuf>,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn run(a: ScoreArgs) -> Result<()> {
    let cfg_path = a.run.join("config.toml");
    let text = std::fs::read_to_string(&cfg_path).with_context(|| {
        format!(
            "reading {} (is {} a finished run?)",
            cfg_path.display(),
            a.run.display()
        )
    })?;
    let doc: toml::Value =
        toml::from_str(&text).with_context(|| format!("parsing {}", cfg_path.display()))?;
    let info = read_run_info(&a.run)?;
    let threshold = match a.threshold.as_str() {
        "val" => {
            let p = a.run.join("metrics.json");
            let m: RunMetrics = serde_json::from_str(
                &std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| format!("parsing {}", p.display()))?;
            m.val.threshold
        }
        t => t
            .parse::<f64>()
            .with_context(|| format!("--threshold {t}: give `val` or a number"))?,
    };
    let reads_store = registry::lookup(&info.head)?.reads_store;
    let train_store = match a.train_store.clone().or(info.store.clone()) {
        Some(s) => s,
        // a fusion of runs: each fused run is scored against its own training store
        None if !reads_store => a.store.clone(),
        None => bail!(
            "{}: run.json records no training store (a run from an older version, or a \
             copied run); give it with --train-store",
            a.run.display()
        ),
    };
    let setup = Setup {
        doc: &doc,
        store: &train_store,
        device: weld_cache::device::parse_device(&a.device)?,
        resident: false,
        verbose: false,
    };
    let task = Task::Score {
        run: a.run.clone(),
        store: a.store.clone(),
    };
    let scores = match registry::run(&setup, task).with_context(|| {
        format!(
            "scoring {} with {} (training store {})",
            a.store.display(),
            a.run.display(),
            train_store.display()
        )
    })? {
        Outcome::Scored(s) => s,
        _ => unreachable!("a score task scores"),
    };
    let mut csv = String::from("key,score,decision,reason");
    for p in &scores.part_names {
        csv.push(',');
        csv.push_str(p);
    }
    csv.push('\n');
    let (mut bad, mut good, mut unreadable) = (0, 0, 0);
    for (i, (key, score, reason)) in scores.rows.iter().enumerate() {
        let (s, decision) = match score {
            Some(s) if *s > threshold => {
                bad += 1;
                (s.to_string(), "defect")
            }
            Some(s) => {
                good += 1;
                (s.to_string(), "good")
            }
            None => {
                unreadable += 1;
                (String::new(), "unreadable")
            }
        };
        csv.push_str(&format!(
            "{},{s},{decision},{}",
            csv_field(key),
            csv_field(reason.as_deref().unwrap_or(""))
        ));
        for p in &scores.parts {
            if score.is_some() {
                csv.push_str(&format!(",{}", p[i]));
            } else {
                csv.push(',');
            }
        }
        csv.push('\n');
    }
    write_atomic(&a.out, csv.as_bytes()).with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "{} welds scored with {} ({}, threshold {threshold:.6}): {bad} defect, {good} good, \
         {unreadable} unreadable -> {}",
        scores.rows.len(),
        a.run.display(),
        info.head,
        a.out.display()
    );
    for (key, _, reason) in scores.rows.iter().filter(|r| r.1.is_none()) {
        println!("  unreadable: {key}: {}", reason.as_deref().unwrap_or(""));
    }
    Ok(())
}

#[derive(Args)]
pub struct TrainStoreArgs {
    /// Finished run folder
    #[arg(long)]
    run: PathBuf,
}

/// The training store of `run` (for a fusion of runs: the one store its runs were trained on).
fn train_store_of(run: &std::path::Path) -> Result<PathBuf> {
    let info = read_run_info(run)?;
    if let Some(s) = info.store {
        return Ok(s);
    }
    if registry::lookup(&info.head)?.reads_store {
        bail!(
            "{}: run.json records no training store (a run from an older version?)",
            run.display()
        );
    }
    let cfg_path = run.join("config.toml");
    let text = std::fs::read_to_string(&cfg_path)
        .with_context(|| format!("reading {}", cfg_path.display()))?;
    let doc: toml::Value =
        toml::from_str(&text).with_context(|| format!("parsing {}", cfg_path.display()))?;
    let cfg = weld_cache::heads::late_fusion::LateFusionConfig::from_doc(&doc)?;
    let mut stores: Vec<PathBuf> = vec![];
    for r in &cfg.runs {
        let s = train_store_of(r)?;
        if !stores.contains(&s) {
            stores.push(s);
        }
    }
    match stores.as_slice() {
        [one] => Ok(one.clone()),
        many => bail!(
            "{}: its fused runs were trained on {} stores ({}); new welds are extracted like \
             one store",
            run.display(),
            many.len(),
            many.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn train_store(a: TrainStoreArgs) -> Result<()> {
    println!("{}", train_store_of(&a.run)?.display());
    Ok(())
}
