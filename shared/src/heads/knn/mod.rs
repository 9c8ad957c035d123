//! `knn`: a PatchCore-style memory bank (Roth et al. 2022; anomalib's `patchcore` model folder)
//! of DINOv3 patch tokens, fitted once on TRAIN (DESIGN.md "feature-bank detectors").
//!
//! Bank: every TRAIN patch token of hidden state `layer` (`image/tokens_L{layer}` `[V, Ntok, D]`,
//! the first `skip_tokens` tokens of each view, CLS and registers, left out), in store order
//! (sample, view, token): `M` rows. Coreset: greedy k-center selection of
//! `K = max(1, floor(coreset_ratio * M))` rows, starting from row 0 and repeatedly taking the row
//! farthest (euclidean) from the rows taken so far; exact distances, no random projection (so the
//! selection is deterministic and checked against NumPy in `shared/tests/heads_banks.rs`).
//! Score: the maximum over a sample's patches (every view) of the euclidean distance to the
//! nearest coreset row (PatchCore's re-weighting by the neighbourhood is not applied).
//!
//! Fitted state (non-trainable, in the checkpoint): `coreset` `[K, D]` f32 and `coreset_index`
//! `[K]` i64 (bank row of each coreset row).
use crate::features::{Input, Inputs};
use crate::heads::{BankHead, Head, StoreContext};
use crate::schema::Split;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// `[knn]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnnConfig {
    /// DINOv3 hidden-state index whose tokens form the bank (`image/tokens_L{layer}`)
    pub layer: i64,
    /// leading tokens of each view that are not patches: 1 (CLS) + the model's registers
    pub skip_tokens: i64,
    /// fraction of the bank kept by the greedy coreset, in (0, 1]
    pub coreset_ratio: f64,
    /// coreset rows scored against per matrix product (bounds the `[patches, chunk]` memory)
    #[serde(default = "default_chunk")]
    pub chunk: i64,
}

fn default_chunk() -> i64 {
    8192
}

pub struct Knn {
    coreset: Tensor,
    coreset_index: Tensor,
    skip: i64,
    chunk: i64,
}

/// Greedy k-center coreset of `bank` `[M, D]`: `k` row indices, the first 0, each next one the
/// row with the largest euclidean distance to the rows already taken (first maximum on ties).
pub fn greedy_coreset(bank: &Tensor, k: i64) -> Vec<i64> {
    let m = bank.size()[0];
    let k = k.clamp(1, m);
    let mut taken = vec![0i64];
    let mut min_d = (bank - bank.get(0))
        .square()
        .sum_dim_intlist(1, false, Kind::Float);
    while (taken.len() as i64) < k {
        let j = min_d.argmax(0, false).int64_value(&[]);
        taken.push(j);
        let d = (bank - bank.get(j))
            .square()
            .sum_dim_intlist(1, false, Kind::Float);
        min_d = min_d.minimum(&d);
    }
    taken
}

/// Euclidean distance of every row of `x` `[P, D]` to its nearest row of `bank` `[K, D]`:
/// `[P]`, computed as `sqrt(max(|x|^2 + |b|^2 - 2 x.b, 0))` over chunks of `chunk` bank rows.
pub fn nearest_distance(x: &Tensor, bank: &Tensor, chunk: i64) -> Tensor {
    let x2 = x.square().sum_dim_intlist(1, true, Kind::Float);
    let k = bank.size()[0];
    let mut best: Option<Tensor> = None;
    let mut start = 0;
    while start < k {
        let b = bank.narrow(0, start, chunk.min(k - start));
        let b2 = b.square().sum_dim_intlist(1, false, Kind::Float);
        let d2 = (&x2 + b2.unsqueeze(0) - x.matmul(&b.transpose(0, 1)) * 2.0).amin(1, false);
        best = Some(match best {
            None => d2,
            Some(prev) => prev.minimum(&d2),
        });
        start += chunk;
    }
    best.expect("a non-empty bank").clamp_min(0.0).sqrt()
}

impl Knn {
    /// `[B, V, Ntok, D]` -> `[B, V * (Ntok - skip), D]` patch tokens.
    fn patches(&self, t: &Tensor) -> Tensor {
        let s = t.size();
        t.narrow(2, self.skip, s[2] - self.skip)
            .reshape([s[0], -1, s[3]])
    }
}

impl Head for Knn {
    const NAME: &'static str = "knn";
    type Config = KnnConfig;
    /// patch tokens `[B, V * P, D]`, f32
    type Batch = Tensor;

    fn config(doc: &toml::Value) -> Result<KnnConfig> {
        let cfg: KnnConfig = doc
            .get("knn")
            .ok_or_else(|| Error::Msg("config has no [knn] table".into()))?
            .clone()
            .try_into()
            .map_err(|e| Error::Msg(format!("config [knn]: {e}")))?;
        if !(cfg.coreset_ratio > 0.0 && cfg.coreset_ratio <= 1.0) {
            return Err(Error::Msg(format!(
                "config [knn]: coreset_ratio = {} must be in (0, 1]",
                cfg.coreset_ratio
            )));
        }
        if cfg.skip_tokens < 0 || cfg.chunk < 1 {
            return Err(Error::Msg(
                "config [knn]: skip_tokens must be >= 0 and chunk >= 1".into(),
            ));
        }
        Ok(cfg)
    }

    fn inputs(cfg: &KnnConfig) -> Inputs {
        Inputs {
            per_sample: vec![Input::Tokens { layer: cfg.layer }],
            text: false,
        }
    }

    fn build(p: &nn::Path, cfg: &KnnConfig, ctx: &StoreContext) -> Result<Self> {
        let shape = ctx.feeder.input_shape(0);
        let (v, ntok, d) = (shape[0], shape[1], shape[2]);
        if cfg.skip_tokens >= ntok {
            return Err(Error::Msg(format!(
                "config [knn]: skip_tokens = {} leaves no patch of the store's {ntok} tokens per view",
                cfg.skip_tokens
            )));
        }
        let m = ctx.feeder.rows(Split::Train).len() as i64 * v * (ntok - cfg.skip_tokens);
        let k = ((cfg.coreset_ratio * m as f64).floor() as i64).clamp(1, m);
        Ok(Knn {
            coreset: p.add(
                "coreset",
                Tensor::zeros([k, d], (Kind::Float, p.device())),
                false,
            ),
            coreset_index: p.add(
                "coreset_index",
                Tensor::zeros([k], (Kind::Int64, p.device())),
                false,
            ),
            skip: cfg.skip_tokens,
            chunk: cfg.chunk,
        })
    }

    fn make_batch(&self, fed: Vec<Tensor>) -> Result<Tensor> {
        crate::heads::expect_inputs(Self::NAME, &fed, 1)?;
        Ok(self.patches(&fed[0]))
    }

    /// Max over patches of the distance to the nearest coreset row, `[B]`.
    fn score(&self, x: &Tensor) -> Tensor {
        let s = x.size();
        let flat = x.reshape([-1, s[2]]);
        nearest_distance(&flat, &self.coreset, self.chunk)
            .reshape([s[0], s[1]])
            .amax(1, false)
    }

    fn describe(&self, _vs: &nn::VarStore) -> String {
        let s = self.coreset.size();
        format!(
            "knn: coreset of {} patch tokens x {}, fitted once on TRAIN\n",
            s[0], s[1]
        )
    }
}

impl BankHead for Knn {
    fn fit(&mut self, train: &mut dyn Iterator<Item = Result<Vec<Tensor>>>) -> Result<()> {
        let parts: Vec<Tensor> = train
            .map(|f| {
                let b = self.make_batch(f?)?;
                Ok(b.reshape([-1, b.size()[2]]))
            })
            .collect::<Result<_>>()?;
        let bank = Tensor::cat(&parts, 0).to_kind(Kind::Float);
        let k = self.coreset.size()[0];
        if bank.size()[0] < k {
            return Err(Error::Msg(format!(
                "knn: TRAIN gave {} patch tokens, the coreset was sized for {k}",
                bank.size()[0]
            )));
        }
        let idx = greedy_coreset(&bank, k);
        let idx_t = Tensor::from_slice(&idx).to_device(bank.device());
        self.coreset.copy_(&bank.index_select(0, &idx_t));
        self.coreset_index.copy_(&idx_t);
        Ok(())
    }
}
