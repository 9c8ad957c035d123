//! Builds the head named by the config's `head` key and its batch source, then hands both to a
//! [`Job`] (train or eval). Adding a head = one match arm in [`with_head`].
//!
//! Heads: `mlp-ae` (pooled-feature autoencoder baseline; with `--store synth` it reads the
//! synthetic features of the config's `[synth]` table). The Causal-FiLM head and the store-backed
//! sources are joined here by the integrator.
use anyhow::{bail, Context, Result};
use tch::{nn, Device};
use weld_cache::train::mlp_ae::{MlpAe, MlpAeConfig};
use weld_cache::train::synth::{SynthConfig, SynthFeatures};
use weld_cache::train::{BatchSource, TrainableHead};

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
pub fn head_name(doc: &toml::Value) -> Result<String> {
    doc.get("head")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .context("config has no top-level `head = \"...\"` key (or pass --head)")
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
    let name = head_name(setup.doc)?;
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
        // Integration point for Causal-FiLM (branch `heads`) over the store (branch `store`):
        // "causal-film" => {
        //     let mut src = <store-backed BatchSource>::open(setup.store, setup.doc, setup.device,
        //                                                    setup.resident)?;
        //     tch::manual_seed(seed as i64);
        //     let vs = nn::VarStore::new(setup.device);
        //     let head = heads::causal_film::<Model>::new(vs.root(), &<its config table>)?;
        //     job.run(&head, &vs, &mut src, &<store fingerprint>)
        // }
        other => bail!("unknown head `{other}` (this build knows: mlp-ae)"),
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
