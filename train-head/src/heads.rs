//! Builds the head named by the config's `head` key and its batch source, then hands both to a
//! [`Job`] (train or eval). Adding a head = one match arm in [`with_head`].
//!
//! Heads: `mlp-ae` (pooled-feature autoencoder baseline; with `--store synth` it reads the
//! synthetic features of the config's `[synth]` table) and `causal-film` (the main head, fed
//! from the feature store by [`CausalFilmSource`]; prints its per-module parameter table).
//! A config without a `head` key trains `causal-film` when `--store` is a store path and
//! `mlp-ae` with `--store synth`.
use anyhow::{bail, Context, Result};
use tch::{nn, Device};
use weld_cache::heads::causal_film::{CausalFilmConfig, CausalFilmHead, SensorNorm};
use weld_cache::train::mlp_ae::{MlpAe, MlpAeConfig};
use weld_cache::train::synth::{SynthConfig, SynthFeatures};
use weld_cache::train::{BatchSource, CausalFilmSource, Split, TrainableHead};

/// What the head is run on.
pub struct Setup<'a> {
    /// resolved config document
    pub doc: &'a toml::Value,
    /// `--store` argument (`synth` or a store path)
    pub store: &'a str,
    pub device: Device,
    /// load the needed splits into device memory once
    pub resident: bool,
}

/// Work done with a concrete head and source (monomorphised per head).
pub trait Job {
    type Output;
    fn run<H, S>(
        self,
        head: &H,
        vs: &nn::VarStore,
        src: &mut S,
        fingerprint: &str,
    ) -> Result<Self::Output>
    where
        H: TrainableHead,
        S: BatchSource<Batch = H::Batch>;
}

/// Name of the head in a resolved config (top-level `head = "..."`).
/// Without one: `causal-film` for a store path, `mlp-ae` for `--store synth`.
pub fn head_name(doc: &toml::Value, store: &str) -> Result<String> {
    match doc.get("head") {
        Some(v) => v
            .as_str()
            .map(str::to_string)
            .context("config key `head` must be a string"),
        None if store == "synth" => Ok("mlp-ae".into()),
        None => Ok("causal-film".into()),
    }
}

fn table<T: serde::de::DeserializeOwned>(doc: &toml::Value, key: &str) -> Result<T> {
    doc.get(key)
        .with_context(|| format!("config has no [{key}] table"))?
        .clone()
        .try_into()
        .with_context(|| format!("config [{key}]"))
}

/// Seeds torch, builds the head named in `setup.doc` on `setup.device`, opens its source and
/// runs `job`.
pub fn with_head<J: Job>(setup: &Setup, seed: u64, job: J) -> Result<J::Output> {
    let name = head_name(setup.doc, setup.store)?;
    match name.as_str() {
        "mlp-ae" => {
            let cfg: MlpAeConfig = table(setup.doc, "mlp_ae")?;
            let mut src = pooled_source(setup)?;
            tch::manual_seed(seed as i64);
            let vs = nn::VarStore::new(setup.device);
            let head = MlpAe::new(vs.root(), src.dim() as i64, &cfg);
            let fp = src.fingerprint();
            job.run(&head, &vs, &mut src, &fp)
        }
        "causal-film" => {
            let cfg = CausalFilmConfig::from_toml_value(setup.doc, "resolved config")?;
            if setup.store == "synth" {
                bail!("the causal-film head reads a feature store: pass --store STORE");
            }
            let store = std::path::Path::new(setup.store);
            let mut src = CausalFilmSource::open(store, &cfg, setup.device, setup.resident)
                .with_context(|| format!("opening store {}", store.display()))?;
            tch::manual_seed(seed as i64);
            let vs = nn::VarStore::new(setup.device);
            let mut head = CausalFilmHead::new(&vs.root(), &cfg, src.text_embed())?;
            if cfg.model.sensor_norm == SensorNorm::Train {
                let (mean, std) = src.train_sensor_stats()?;
                head.model.set_sensor_stats(&mean, &std)?;
            }
            // to stderr: `eval` prints its metrics as JSON on stdout
            eprint!("{}", head.param_report(&vs));
            for split in [Split::Train, Split::Val, Split::Test] {
                let c = src.classes(split);
                let bad = c.iter().filter(|&&x| x != 0).count();
                eprintln!("{split}: {} samples ({bad} defective)", c.len());
            }
            let fp = src.fingerprint();
            job.run(&head, &vs, &mut src, &fp)
        }
        other => bail!("unknown head `{other}` (this build knows: mlp-ae, causal-film)"),
    }
}

fn pooled_source(setup: &Setup) -> Result<SynthFeatures> {
    if setup.store != "synth" {
        bail!(
            "{}: the mlp-ae head reads pooled features from a store, which this build cannot \
             yet do; use `--store synth` with a [synth] table",
            setup.store
        );
    }
    let cfg: SynthConfig = table(setup.doc, "synth")?;
    Ok(SynthFeatures::new(&cfg, setup.device, setup.resident)?)
}
