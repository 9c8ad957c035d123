//! Heads trained on the cached features, and the traits every head implements. One folder per
//! head; [`registry`] lists them, so adding a head is its folder plus one registry line (the
//! binaries hold no per-head code).
//!
//! A head declares what it reads ([`Head::inputs`]: arrays, layers, poolings); the generic
//! [`StoreFeeder`](crate::features::StoreFeeder) serves it; the head turns the fed tensors into
//! its batch ([`Head::make_batch`]) and scores it. Two ways to learn:
//! - [`GradientHead`]: a loss minimised by the training loop (AdamW, schedule, EMA, early stop);
//! - [`BankHead`]: fitted once on TRAIN (a feature bank, a Gaussian): no optimiser, no epochs.
pub mod ae;
pub mod causal_film;
pub mod concat_mlp;
pub mod gaussian;
pub mod knn;
pub mod late_fusion;
pub mod mlp_ae;
pub mod paper_ae;
pub mod pooled;
pub mod registry;
pub mod supcon;
pub mod video_ae;

use crate::features::{Inputs, Needs, StoreFeeder};
use crate::{Error, Result};
use tch::{nn, Tensor};

pub use causal_film::{
    CausalFilm, CausalFilmConfig, CausalFilmHead, ClipHead, HeadBatch, LossTerms,
};

/// One recorded modality a head reads (config spelling `video|audio|image|sensor`); how it is
/// read (pooled, or as tokens) is the head's: see `mlp_ae::preset` and `supcon::config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    /// V-JEPA 2 tokens (`video/tokens`)
    Video,
    /// AST tokens (`audio/tokens`)
    Audio,
    /// DINOv3 features of one hidden state of the five views
    Image,
    /// the resampled sensor series (`sensor/raw`)
    Sensor,
}

impl Modality {
    pub const ALL: [Modality; 4] = [
        Modality::Video,
        Modality::Audio,
        Modality::Image,
        Modality::Sensor,
    ];
}

/// Named scalars (loss terms, diagnostics).
pub type Named = Vec<(String, f64)>;

/// What a head's constructor may look at: the opened feeder (input shapes, the text
/// embedding, TRAIN statistics).
pub struct StoreContext<'a> {
    pub feeder: &'a StoreFeeder,
}

/// A model that scores samples from cached features. Its variables live in the `VarStore`
/// whose root is passed to [`Head::build`]; checkpoints hold every variable.
pub trait Head: Sized {
    /// The name in configs (`head = "..."`) and on the command line (`--head`).
    const NAME: &'static str;
    type Config: Clone;
    type Batch;
    /// Reads the head's own tables from the resolved config document.
    fn config(doc: &toml::Value) -> Result<Self::Config>;
    /// The arrays (layer, pooling) and side data the head reads.
    fn inputs(cfg: &Self::Config) -> Inputs;
    /// Which TRAIN samples the head may train on.
    fn needs(_cfg: &Self::Config) -> Needs {
        Needs::GoodTrain
    }
    /// Builds the head; checks its dims against the store (an error names the config key and
    /// the store's value). Draws its initialisation from torch's RNG (seeded by the caller).
    fn build(p: &nn::Path, cfg: &Self::Config, ctx: &StoreContext) -> Result<Self>;
    /// The batch from the fed tensors (one per input, in [`Head::inputs`] order, f32).
    fn make_batch(&self, fed: Vec<Tensor>) -> Result<Self::Batch>;
    /// The batch of labelled samples with their class codes `[B]` (0 = good), attached by the
    /// store's batch source for TRAIN, VAL and TEST (never for new welds being scored). Only a
    /// supervised head's loss may read them. Default: the batch unchanged.
    fn with_classes(&self, b: Self::Batch, _classes: &[u8]) -> Self::Batch {
        b
    }
    /// Anomaly scores `[B]` (higher = more anomalous), eval mode; called under `no_grad`.
    fn score(&self, b: &Self::Batch) -> Tensor;
    /// Named parts of the score, each `[B]` (written beside the score in `scores.csv`).
    fn score_parts(&self, _b: &Self::Batch) -> Vec<(String, Tensor)> {
        vec![]
    }
    /// Named scalars logged per epoch (e.g. the spread of a latent, to see a collapse); eval
    /// mode, under `no_grad`, averaged over VAL batches.
    fn diagnostics(&self, _b: &Self::Batch) -> Named {
        vec![]
    }
    /// A printable description (e.g. the parameter table), shown when a run starts.
    fn describe(&self, _vs: &nn::VarStore) -> String {
        String::new()
    }
}

/// A head trained by gradient descent.
pub trait GradientHead: Head {
    /// Total loss (scalar tensor with grad) and named terms for `history.csv`. `train` selects
    /// training behaviour (dropout, feature masks); the loop seeds torch's RNG before each call.
    fn loss(&self, b: &Self::Batch, train: bool) -> (Tensor, Named);
    /// Variable-name prefixes whose gradients are clipped as a group of their own, outside the
    /// model's global norm (e.g. an auxiliary loss head). Default: one global norm.
    fn own_clip_groups(&self) -> Vec<String> {
        vec![]
    }
    /// Called by the training loop before each scoring of VAL (every epoch, for the raw and for
    /// the EMA weights), with TRAIN in fixed batches of the evaluation batch size in position
    /// order and each batch's class codes, in eval mode under `no_grad`. A head whose score
    /// reads TRAIN through the weights being evaluated (a k-NN bank of embeddings) recomputes
    /// that state here into non-trainable variables, so the checkpoint saved with those weights
    /// carries it and evaluation and scoring from the checkpoint need no TRAIN pass. Default:
    /// nothing (no batch is loaded).
    fn refresh_from_train(
        &self,
        _train: &mut dyn Iterator<Item = Result<(Self::Batch, Vec<u8>)>>,
    ) -> Result<()> {
        Ok(())
    }
}

/// A head fitted once on TRAIN (no optimiser, no epochs). Its fitted state must live in the
/// `VarStore` (as non-trainable variables) so the checkpoint carries it.
pub trait BankHead: Head {
    /// Consumes TRAIN once, in fixed batches in store order, as fed tensors (turn each into a
    /// batch with [`Head::make_batch`]); runs under `no_grad`.
    fn fit(&mut self, train: &mut dyn Iterator<Item = Result<Vec<Tensor>>>) -> Result<()>;
}

/// Checks that a head was fed the `n` tensors it declared (`[B, ...]` each).
pub fn expect_inputs(head: &str, fed: &[Tensor], n: usize) -> Result<()> {
    if fed.len() != n {
        return Err(Error::Msg(format!(
            "{head}: fed {} input tensors, the head declared {n}",
            fed.len()
        )));
    }
    Ok(())
}
