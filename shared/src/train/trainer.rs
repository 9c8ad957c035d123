//! The training loop: AdamW + warm-up/cosine schedule + EMA, validation of raw and EMA weights
//! each epoch, early stopping on VAL I-AUROC, checkpoints, and the final evaluation of the best
//! checkpoint (threshold chosen on VAL, applied to TEST).
//!
//! A head implements [`GradientHead`]; the feature store (through
//! [`crate::train::driver::HeadSource`]) or any other feeder implements [`BatchSource`]. Indices handed to a source are positions within the requested split
//! (`0..len(split)`).
//!
//! Determinism: TRAIN is shuffled per epoch by a ChaCha8 RNG seeded from `(seed, epoch)`, and
//! `tch::manual_seed(step_seed(seed, epoch, step))` runs before every step, so dropout and mask
//! randomness depend only on `(seed, epoch, step)`. A run resumed from `last.safetensors`
//! therefore computes exactly the steps an uninterrupted run computes (bit-exact on CPU).
//! torch's RNG is process-global: two `fit` calls must not run concurrently in one process.
use crate::heads::GradientHead;
use crate::metrics;
use crate::schema::Split;
use crate::train::adamw::{copy_checked, AdamW};
use crate::train::checkpoint::{self, TrainState, FORMAT};
use crate::train::config::TrainConfig;
use crate::train::ema::Ema;
use crate::train::eval::{evaluate_best, score_split, write_outputs, Evaluation};
use crate::train::history::{self, write_atomic, HistoryRow};
use crate::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{nn, Tensor};

/// Feeds batches of one split. Implemented over the feature store by the integrator and over
/// synthetic features in [`crate::train::synth`].
pub trait BatchSource {
    type Batch;
    /// Number of samples in `split`.
    fn len(&self, split: Split) -> usize;
    /// Class code of each sample of `split` (`[len(split)]`, 0 = good).
    fn classes(&self, split: Split) -> Vec<u8>;
    /// Sample key of each sample of `split` (`[len(split)]`), for `scores.csv`.
    fn keys(&self, split: Split) -> Vec<String>;
    /// The batch of the given positions within `split`, on the head's device.
    fn load(&mut self, split: Split, indices: &[usize]) -> Result<Self::Batch>;
    /// The TRAIN batch of training step `step` of `epoch`. A source holding several augmented
    /// copies per TRAIN sample picks the copy here, from `(seed, epoch, step)` only, so resumed
    /// runs stay exact. Default: `load(Split::Train, indices)`.
    fn load_train(
        &mut self,
        indices: &[usize],
        _seed: u64,
        _epoch: usize,
        _step: usize,
    ) -> Result<Self::Batch> {
        self.load(Split::Train, indices)
    }
}

/// Where and how a run is written.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// run folder (created)
    pub out: PathBuf,
    /// identifies the store; written into checkpoints, checked on resume and eval
    pub fingerprint: String,
    /// the resolved config, written as `config.toml` and stored in checkpoints
    pub config_text: String,
    /// continue from `out/last.safetensors`
    pub resume: bool,
    /// stop (without final evaluation) after this many epochs of this invocation
    pub max_epochs_this_run: Option<usize>,
}

/// Progress notifications from [`fit`].
pub enum Event<'a> {
    EpochStart { epoch: usize, steps: usize, lr: f64 },
    Step { loss: f64 },
    EpochEnd(&'a HistoryRow),
}

/// How [`fit`] ended.
pub enum FitOutcome {
    /// training done (all epochs or early stop), best checkpoint evaluated
    Finished(Box<Evaluation>),
    /// `max_epochs_this_run` reached; resume to continue
    Paused { epochs_done: usize },
}

/// Seed of one training step: splitmix64 over `(seed, epoch, step)`, as a non-negative i64.
pub fn step_seed(seed: u64, epoch: usize, step: usize) -> i64 {
    let mut h = seed;
    for v in [epoch as u64, step as u64] {
        h = splitmix(h ^ splitmix(v.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    }
    (h >> 1) as i64
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The shuffled TRAIN batches of one epoch (positions in `0..n`).
pub fn epoch_batches(
    n: usize,
    batch_size: usize,
    drop_last: bool,
    seed: u64,
    epoch: usize,
) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(splitmix(seed) ^ epoch as u64);
    idx.shuffle(&mut rng);
    idx.chunks(batch_size)
        .filter(|c| !drop_last || c.len() == batch_size)
        .map(|c| c.to_vec())
        .collect()
}

/// Every variable of the store as `model.<var>`, sorted by name.
pub fn model_tensors(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (format!("model.{n}"), t))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Copies `model.<var>` tensors into the store; a missing, extra or mis-shaped key is an error.
pub fn load_model(vs: &nn::VarStore, tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let vars = vs.variables();
    let n_model = tensors.keys().filter(|k| k.starts_with("model.")).count();
    if n_model != vars.len() {
        return Err(Error::Msg(format!(
            "{}: {n_model} model tensors, the head has {} variables",
            path.display(),
            vars.len()
        )));
    }
    for (name, mut var) in vars {
        let key = format!("model.{name}");
        let src = tensors
            .get(&key)
            .ok_or_else(|| Error::Msg(format!("{}: lacks `{key}`", path.display())))?;
        copy_checked(&mut var, src, &key)
            .map_err(|e| Error::Msg(format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

/// Hands TRAIN, in fixed batches of `batch_size` in position order with their class codes, to
/// [`GradientHead::refresh_from_train`] (eval mode, no grad); batches are loaded only as the head
/// asks for them.
fn refresh_from_train<H, S>(head: &H, src: &mut S, batch_size: usize) -> Result<()>
where
    H: GradientHead,
    S: BatchSource<Batch = H::Batch>,
{
    let classes = src.classes(Split::Train);
    let all: Vec<usize> = (0..src.len(Split::Train)).collect();
    let mut chunks = all.chunks(batch_size.max(1));
    let mut iter = std::iter::from_fn(|| {
        chunks.next().map(|c| {
            let cls: Vec<u8> = c.iter().map(|&i| classes[i]).collect();
            src.load(Split::Train, c).map(|b| (b, cls))
        })
    });
    let _guard = tch::no_grad_guard();
    head.refresh_from_train(&mut iter)
}

/// Trains `head` (variables in `vs`) on TRAIN, validates on VAL each epoch, early-stops, saves
/// checkpoints, and at the end evaluates the best checkpoint and writes `metrics.json` and
/// `plots/`. With `opts.resume` it continues from `out/last.safetensors`.
pub fn fit<H, S>(
    head: &H,
    vs: &nn::VarStore,
    src: &mut S,
    cfg: &TrainConfig,
    opts: &RunOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<FitOutcome>
where
    H: GradientHead,
    S: BatchSource<Batch = H::Batch>,
{
    let autocast = !cfg.autocast.is_off();
    if autocast {
        if vs.device() == tch::Device::Cpu {
            return Err(Error::Msg(
                "config [train]: autocast = \"bf16\" runs on CUDA only and this run is on the \
                 CPU; train with --device cuda, or set train.autocast = \"off\""
                    .into(),
            ));
        }
        crate::device::set_cuda_autocast_bf16();
    }
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let last_path = out.join("last.safetensors");
    let best_path = out.join("best.safetensors");
    let mut opt = AdamW::new(vs, cfg.adamw());
    let mut ema = cfg.ema.then(|| Ema::new(vs, cfg.ema_max_decay));
    let mut state = if opts.resume {
        let (tensors, state) = checkpoint::load(&last_path)?;
        checkpoint::check_fingerprint(&last_path, &state, &opts.fingerprint)?;
        if state.config != opts.config_text {
            let diff = crate::train::config::config_diff(&state.config, &opts.config_text);
            return Err(Error::Msg(format!(
                "{}: the resolved config differs from the one this run was started with ({}); \
                 resume with the same config and --set flags, or train into another --out",
                last_path.display(),
                diff.join("; ")
            )));
        }
        load_model(vs, &tensors, &last_path)?;
        opt.load_state(&tensors, state.adam_step)?;
        if let Some(e) = ema.as_mut() {
            e.load(&tensors, "ema.", state.ema_updates)?;
        }
        state
    } else {
        if last_path.exists() {
            return Err(Error::Msg(format!(
                "{} already holds a run; pass --resume to continue it or choose another --out",
                last_path.display()
            )));
        }
        TrainState {
            format: FORMAT,
            epochs_done: 0,
            adam_step: 0,
            ema_updates: 0,
            seed: cfg.seed,
            best_auroc: None,
            best_epoch: None,
            best_chosen: "raw".into(),
            bad_epochs: 0,
            stopped: false,
            history: vec![],
            fingerprint: opts.fingerprint.clone(),
            config: opts.config_text.clone(),
        }
    };
    write_atomic(&out.join("config.toml"), opts.config_text.as_bytes())?;
    let schedule = cfg.schedule();
    let own_clip = head.own_clip_groups();
    let n_train = src.len(Split::Train);
    let val_pos = crate::train::eval::positives(&src.classes(Split::Val));
    let mut ran = 0usize;
    while !state.stopped && state.epochs_done < cfg.epochs {
        if opts.max_epochs_this_run.is_some_and(|m| ran >= m) {
            return Ok(FitOutcome::Paused {
                epochs_done: state.epochs_done,
            });
        }
        let epoch = state.epochs_done;
        let t0 = Instant::now();
        let lr = schedule.lr_at(epoch);
        opt.set_lr(lr);
        let batches = epoch_batches(n_train, cfg.batch_size, cfg.drop_last, cfg.seed, epoch);
        if batches.is_empty() {
            return Err(Error::Msg(format!(
                "TRAIN has {n_train} samples: no batch of {} (drop_last = {})",
                cfg.batch_size, cfg.drop_last
            )));
        }
        on_event(Event::EpochStart {
            epoch,
            steps: batches.len(),
            lr,
        });
        let (mut loss_sum, mut gn_sum) = (0.0, 0.0);
        let mut terms: Vec<(String, f64)> = Vec::new();
        for (step, idx) in batches.iter().enumerate() {
            tch::manual_seed(step_seed(cfg.seed, epoch, step));
            let batch = src.load_train(idx, cfg.seed, epoch, step)?;
            let (loss, t) = tch::autocast(autocast, || head.loss(&batch, true));
            let loss = if autocast {
                loss.to_kind(tch::Kind::Float)
            } else {
                loss
            };
            let lv = loss.double_value(&[]);
            if !lv.is_finite() {
                return Err(Error::Msg(format!(
                    "loss is {lv} at epoch {epoch} step {step} (TRAIN positions {idx:?})"
                )));
            }
            opt.zero_grad();
            loss.backward();
            gn_sum += opt.clip_grad_norm_groups(cfg.grad_clip, &own_clip);
            opt.step();
            if let Some(e) = ema.as_mut() {
                e.update();
            }
            loss_sum += lv;
            if terms.is_empty() {
                terms = t.iter().map(|(k, _)| (k.clone(), 0.0)).collect();
            }
            for ((_, acc), (_, v)) in terms.iter_mut().zip(&t) {
                *acc += v;
            }
            on_event(Event::Step { loss: lv });
        }
        let steps = batches.len() as f64;
        terms.iter_mut().for_each(|(_, v)| *v /= steps);

        refresh_from_train(head, src, cfg.eval_batch_size)?;
        let (raw, raw_diag) = score_split(head, src, Split::Val, cfg.eval_batch_size, false)?;
        let raw_auc = metrics::auroc(&raw.scores, &val_pos)?;
        let (ema_auc, ema_diag) = match ema.as_mut() {
            Some(e) => {
                e.swap();
                // the swap exchanges every variable, so the head's TRAIN state computed here
                // with the EMA weights stays with them (in the shadow) after the swap back
                let r = refresh_from_train(head, src, cfg.eval_batch_size)
                    .and_then(|_| score_split(head, src, Split::Val, cfg.eval_batch_size, false));
                e.swap();
                let (s, d) = r?;
                (Some(metrics::auroc(&s.scores, &val_pos)?), d)
            }
            None => (None, vec![]),
        };
        let use_ema = ema_auc.is_some_and(|a| a > raw_auc);
        let row = HistoryRow {
            epoch,
            lr,
            loss: loss_sum / steps,
            terms,
            grad_norm: gn_sum / steps,
            val_auroc_raw: raw_auc,
            val_auroc_ema: ema_auc,
            chosen: if use_ema { "ema" } else { "raw" }.into(),
            diagnostics: if use_ema { ema_diag } else { raw_diag },
            seconds: t0.elapsed().as_secs_f64(),
        };
        let val_auc = row.val_auroc();
        state.history.push(row);
        state.epochs_done = epoch + 1;
        state.adam_step = opt.step_count();
        state.ema_updates = ema.as_ref().map_or(0, |e| e.updates());
        let raw_model = model_tensors(vs);
        let mut opt_state = opt.state_tensors();
        if let Some(e) = ema.as_ref() {
            opt_state.extend(e.named("ema."));
        }
        if state.best_auroc.is_none_or(|b| val_auc > b) {
            state.best_auroc = Some(val_auc);
            state.best_epoch = Some(epoch);
            state.best_chosen = state.history[epoch].chosen.clone();
            state.bad_epochs = 0;
            let mut best: Vec<(String, Tensor)> = match (use_ema, ema.as_ref()) {
                (true, Some(e)) => e.named("model."),
                _ => raw_model
                    .iter()
                    .map(|(n, t)| (n.clone(), t.shallow_clone()))
                    .collect(),
            };
            best.extend(
                opt_state
                    .iter()
                    .map(|(n, t)| (n.clone(), t.shallow_clone())),
            );
            checkpoint::save(&best_path, &best, &state)?;
        } else {
            state.bad_epochs += 1;
            state.stopped = state.bad_epochs >= cfg.patience;
        }
        let mut last = raw_model;
        last.extend(opt_state);
        checkpoint::save(&last_path, &last, &state)?;
        history::write_csv(&out.join("history.csv"), &state.history)?;
        crate::tracking::sync_run_events(out, &state.history, None)?;
        on_event(Event::EpochEnd(&state.history[epoch]));
        ran += 1;
    }
    let ev = evaluate_best(head, vs, src, out, &opts.fingerprint, cfg.eval_batch_size)?;
    write_outputs(out, &ev, &state.history)?;
    crate::tracking::sync_run_events(out, &state.history, Some(&ev.metrics))?;
    Ok(FitOutcome::Finished(Box::new(ev)))
}
