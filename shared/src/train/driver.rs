//! Runs any registered head on a store: opens the generic feeder with the head's declared
//! inputs, builds the head, and trains (gradient loop or fit-once), evaluates or only checks
//! it. One generic function per way of learning; the registry points each head at one of them,
//! so the binaries hold no per-head code.
use crate::features::scoring::ScoringFeeder;
use crate::features::StoreFeeder;
use crate::heads::{BankHead, GradientHead, Head, StoreContext};
use crate::runs::{write_run_info, RunInfo, RunLock};
use crate::schema::Split;
use crate::train::checkpoint::{self, TrainState, FORMAT};
use crate::train::config::TrainConfig;
use crate::train::eval::{evaluate_best, write_outputs, Evaluation};
use crate::train::history::write_atomic;
use crate::train::trainer::{fit, model_tensors, BatchSource, Event, FitOutcome, RunOptions};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{nn, Device};

/// What a head is run on.
pub struct Setup<'a> {
    /// the resolved config document (`head`, `[train]`, the head's tables)
    pub doc: &'a toml::Value,
    pub store: &'a Path,
    pub device: Device,
    /// load the splits into device memory once
    pub resident: bool,
    /// print the head's description and the split sizes to stderr
    pub verbose: bool,
}

/// What to do with the head.
pub enum Task<'a> {
    /// Train into `opts.out` (or resume), then evaluate the chosen weights.
    Train {
        opts: RunOptions,
        on_event: &'a mut dyn FnMut(Event),
    },
    /// Re-evaluate `run`'s best checkpoint.
    Eval { run: PathBuf },
    /// Open the store and build the head only: checks the config against the store.
    Check,
    /// Score every sample of another store with `run`'s best weights (the setup's store is the
    /// run's training store, against which the head is built).
    Score { run: PathBuf, store: PathBuf },
}

/// What the task produced.
pub enum Outcome {
    Trained(FitOutcome),
    Evaluated(Box<Evaluation>),
    Checked { trainable_params: i64 },
    Scored(Box<NewScores>),
}

/// The scores of a store's samples, in store order (`train-head score`).
pub struct NewScores {
    /// per sample: key, score (None when unreadable), the reason when unreadable
    pub rows: Vec<(String, Option<f64>, Option<String>)>,
    /// the score parts' names and, per scored sample, their values (NaN when unreadable)
    pub part_names: Vec<String>,
    pub parts: Vec<Vec<f64>>,
    /// class codes of labelled samples (None for UNLABELLED)
    pub classes: Vec<Option<u8>>,
}

/// The feeder's batches converted by a head: the [`BatchSource`] the loop and the evaluation
/// consume.
pub struct HeadSource<'h, H: Head> {
    pub feeder: StoreFeeder,
    head: &'h H,
}

impl<'h, H: Head> HeadSource<'h, H> {
    pub fn new(feeder: StoreFeeder, head: &'h H) -> Self {
        HeadSource { feeder, head }
    }
}

impl<H: Head> BatchSource for HeadSource<'_, H> {
    type Batch = H::Batch;

    fn len(&self, split: Split) -> usize {
        self.feeder.rows(split).len()
    }

    fn classes(&self, split: Split) -> Vec<u8> {
        self.feeder.classes(split)
    }

    fn keys(&self, split: Split) -> Vec<String> {
        self.feeder.keys(split)
    }

    /// The head's batch of `indices`, with their class codes attached ([`Head::with_classes`]).
    fn load(&mut self, split: Split, indices: &[usize]) -> Result<H::Batch> {
        let b = self.head.make_batch(self.feeder.load(split, indices)?)?;
        let classes = self.feeder.classes(split);
        let of: Vec<u8> = indices.iter().map(|&i| classes[i]).collect();
        Ok(self.head.with_classes(b, &of))
    }
}

/// Loads `run`'s best weights into `vs` (refusing another training store) and scores every
/// sample of `store`; samples with broken or missing inputs get their reason instead.
fn score_store<H: Head>(
    head: &H,
    vs: &nn::VarStore,
    feeder: &StoreFeeder,
    run: &Path,
    store: &Path,
    batch: usize,
) -> Result<NewScores> {
    let path = run.join("best.safetensors");
    let (tensors, state) = checkpoint::load(&path)?;
    checkpoint::check_fingerprint(&path, &state, feeder.fingerprint())?;
    crate::train::trainer::load_model(vs, &tensors, &path)?;
    let new = ScoringFeeder::open(store, feeder, feeder.device())?;
    let n = new.table().len();
    let mut rows: Vec<(String, Option<f64>, Option<String>)> = new
        .table()
        .iter()
        .enumerate()
        .map(|(i, r)| (r.key.clone(), None, new.unreadable(i)))
        .collect();
    let ok: Vec<usize> = (0..n).filter(|&i| rows[i].2.is_none()).collect();
    let mut part_names: Vec<String> = vec![];
    let mut parts: Vec<Vec<f64>> = vec![];
    let _g = tch::no_grad_guard();
    for chunk in ok.chunks(batch.max(1)) {
        let b = head.make_batch(new.load_rows(chunk)?)?;
        let s = Vec::<f64>::try_from(
            head.score(&b)
                .to_kind(tch::Kind::Double)
                .to_device(Device::Cpu),
        )?;
        let p = head.score_parts(&b);
        if part_names.is_empty() && !p.is_empty() {
            part_names = p.iter().map(|(k, _)| k.clone()).collect();
            parts = vec![vec![f64::NAN; n]; p.len()];
        }
        for (k, (_, t)) in p.iter().enumerate() {
            let v = Vec::<f64>::try_from(t.to_kind(tch::Kind::Double).to_device(Device::Cpu))?;
            for (j, &i) in chunk.iter().enumerate() {
                parts[k][i] = v[j];
            }
        }
        for (j, &i) in chunk.iter().enumerate() {
            if !s[j].is_finite() {
                return Err(Error::Msg(format!(
                    "{}: sample `{}` scored {} (its features hold NaN or inf?)",
                    store.display(),
                    rows[i].0,
                    s[j]
                )));
            }
            rows[i].1 = Some(s[j]);
        }
    }
    Ok(NewScores {
        rows,
        part_names,
        parts,
        classes: new.table().iter().map(|r| r.class_code).collect(),
    })
}

fn trainable_params(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

/// The resolved config's top-level `split_file` (set by `--split-file`), if any.
pub fn split_file(doc: &toml::Value) -> Result<Option<PathBuf>> {
    match doc.get("split_file") {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(PathBuf::from(s))),
        Some(other) => Err(Error::Msg(format!(
            "config key `split_file` must be a path string, not {other}"
        ))),
    }
}

/// Opens the feeder, seeds torch and builds `H` in a fresh `VarStore` on the setup's device;
/// prints the head's description and the split sizes to stderr.
fn open<H: Head>(setup: &Setup, seed: u64) -> Result<(H, nn::VarStore, StoreFeeder)> {
    let cfg = H::config(setup.doc)?;
    let feeder = StoreFeeder::open_with_splits(
        setup.store,
        &H::inputs(&cfg),
        H::needs(&cfg),
        setup.device,
        setup.resident,
        split_file(setup.doc)?.as_deref(),
    )?;
    tch::manual_seed(seed as i64);
    let vs = nn::VarStore::new(setup.device);
    let head = H::build(&vs.root(), &cfg, &StoreContext { feeder: &feeder })?;
    if setup.verbose {
        // to stderr: `eval` prints its metrics as JSON on stdout
        eprint!("{}", head.describe(&vs));
        for split in Split::LABELLED {
            let c = feeder.classes(split);
            let bad = c.iter().filter(|&&x| x != 0).count();
            eprintln!("{split}: {} samples ({bad} defective)", c.len());
        }
    }
    Ok((head, vs, feeder))
}

/// The registry's runner for a gradient-trained head.
pub fn run_gradient<H: GradientHead>(setup: &Setup, task: Task) -> Result<Outcome> {
    let cfg = TrainConfig::from_doc(setup.doc)?;
    let (head, vs, feeder) = open::<H>(setup, cfg.seed)?;
    let fingerprint = feeder.fingerprint().to_string();
    let mut src = HeadSource::new(feeder, &head);
    match task {
        Task::Check => Ok(Outcome::Checked {
            trainable_params: trainable_params(&vs),
        }),
        Task::Eval { run } => Ok(Outcome::Evaluated(Box::new(evaluate_best(
            &head,
            &vs,
            &mut src,
            &run,
            &fingerprint,
            cfg.eval_batch_size,
        )?))),
        Task::Score { run, store } => Ok(Outcome::Scored(Box::new(score_store(
            &head,
            &vs,
            &src.feeder,
            &run,
            &store,
            cfg.eval_batch_size,
        )?))),
        Task::Train { opts, on_event } => {
            let _lock = RunLock::acquire(&opts.out)?;
            let opts = RunOptions {
                fingerprint,
                ..opts
            };
            let outcome = fit(&head, &vs, &mut src, &cfg, &opts, on_event)?;
            if let FitOutcome::Finished(_) = &outcome {
                let hist = crate::train::history::total_seconds(&opts.out.join("history.csv"))?;
                write_run_info(
                    &opts.out,
                    &RunInfo {
                        head: H::NAME.into(),
                        learner: "gradient".into(),
                        trainable_params: trainable_params(&vs),
                        train_seconds: hist,
                        store: std::fs::canonicalize(setup.store).ok(),
                    },
                )?;
            }
            Ok(Outcome::Trained(outcome))
        }
    }
}

/// The registry's runner for a head fitted once on TRAIN.
pub fn run_bank<H: BankHead>(setup: &Setup, task: Task) -> Result<Outcome> {
    let cfg = TrainConfig::from_doc(setup.doc)?;
    let (mut head, vs, mut feeder) = open::<H>(setup, cfg.seed)?;
    let fingerprint = feeder.fingerprint().to_string();
    match task {
        Task::Check => Ok(Outcome::Checked {
            trainable_params: trainable_params(&vs),
        }),
        Task::Eval { run } => {
            let mut src = HeadSource::new(feeder, &head);
            Ok(Outcome::Evaluated(Box::new(evaluate_best(
                &head,
                &vs,
                &mut src,
                &run,
                &fingerprint,
                cfg.eval_batch_size,
            )?)))
        }
        Task::Score { run, store } => Ok(Outcome::Scored(Box::new(score_store(
            &head,
            &vs,
            &feeder,
            &run,
            &store,
            cfg.eval_batch_size,
        )?))),
        Task::Train { opts, .. } => {
            let out = &opts.out;
            let _lock = RunLock::acquire(out)?;
            let best = out.join("best.safetensors");
            if best.exists() && !opts.resume {
                return Err(Error::Msg(format!(
                    "{} already holds a run; pass --resume to continue it or choose another --out",
                    best.display()
                )));
            }
            write_atomic(&out.join("config.toml"), opts.config_text.as_bytes())?;
            let t0 = Instant::now();
            if best.exists() {
                let (_, state) = checkpoint::load(&best)?;
                checkpoint::check_fingerprint(&best, &state, &fingerprint)?;
                if state.config != opts.config_text {
                    return Err(Error::Msg(format!(
                        "{}: the resolved config differs from the one this run was started with",
                        best.display()
                    )));
                }
            } else {
                fit_bank(&mut head, &mut feeder, cfg.eval_batch_size)?;
                let state = TrainState {
                    format: FORMAT,
                    epochs_done: 1,
                    adam_step: 0,
                    ema_updates: 0,
                    seed: cfg.seed,
                    best_auroc: None,
                    best_epoch: Some(0),
                    best_chosen: "fit".into(),
                    bad_epochs: 0,
                    stopped: true,
                    history: vec![],
                    fingerprint: fingerprint.clone(),
                    config: opts.config_text.clone(),
                };
                checkpoint::save(&best, &model_tensors(&vs), &state)?;
            }
            let fit_seconds = t0.elapsed().as_secs_f64();
            let mut src = HeadSource::new(feeder, &head);
            let ev = evaluate_best(&head, &vs, &mut src, out, &fingerprint, cfg.eval_batch_size)?;
            write_outputs(out, &ev, &[])?;
            crate::tracking::sync_run_events(out, &[], Some(&ev.metrics))?;
            write_run_info(
                out,
                &RunInfo {
                    head: H::NAME.into(),
                    learner: "fit-once".into(),
                    trainable_params: trainable_params(&vs),
                    train_seconds: fit_seconds,
                    store: std::fs::canonicalize(setup.store).ok(),
                },
            )?;
            Ok(Outcome::Trained(FitOutcome::Finished(Box::new(ev))))
        }
    }
}

/// Feeds every TRAIN sample once, in store order and fixed batches, to [`BankHead::fit`].
fn fit_bank<H: BankHead>(head: &mut H, feeder: &mut StoreFeeder, batch: usize) -> Result<()> {
    let n = feeder.rows(Split::Train).len();
    let all: Vec<usize> = (0..n).collect();
    let mut chunks = all.chunks(batch.max(1));
    let mut iter = std::iter::from_fn(|| chunks.next().map(|c| feeder.load(Split::Train, c)));
    let _guard = tch::no_grad_guard();
    head.fit(&mut iter)
}
