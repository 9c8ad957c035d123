//! A small MLP autoencoder over pooled features: the single-modality baseline of DESIGN.md (the
//! seed's "video AE" is D -> 128 -> 64 -> 128 -> D) and the smallest head of the registry.
//!
//! Inputs (`[mlp_ae] features`): each entry is one pooled vector per sample, concatenated in
//! order: `{ pooled = L, stat = "mean"|"max" }` reads the DINOv3 pooled vector of hidden state
//! L and averages it over the views; `{ array = "video/tokens" }` (any array) averages the array
//! over every axis but the last. The concatenation is standardised with TRAIN statistics (kept
//! in the checkpoint as `norm_mean`/`norm_std`).
//!
//! Training: input dropout (denoising), MSE reconstruction. Score: per-sample mean squared
//! reconstruction error of the clean input.
mod head;
pub mod preset;

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Tensor};

pub use crate::heads::pooled::FeatureSpec;

/// `[mlp_ae]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpAeConfig {
    pub hidden: i64,
    pub bottleneck: i64,
    /// dropout on the input features during training
    pub input_dropout: f64,
    /// pooled inputs read from the store (not used with in-memory synthetic features)
    #[serde(default)]
    pub features: Vec<FeatureSpec>,
}

/// D -> hidden -> bottleneck -> hidden -> D with ReLU between layers.
pub struct MlpAe {
    enc: nn::Sequential,
    dec: nn::Sequential,
    input_dropout: f64,
    /// `[D]` standardisation of the store features (0 / 1 for in-memory features)
    norm_mean: Tensor,
    norm_std: Tensor,
    features: Vec<FeatureSpec>,
}

impl MlpAe {
    /// Builds the head under `p` for `dim`-dimensional inputs.
    pub fn new(p: nn::Path, dim: i64, cfg: &MlpAeConfig) -> Self {
        let enc = nn::seq()
            .add(nn::linear(&p / "enc1", dim, cfg.hidden, Default::default()))
            .add_fn(|x| x.relu())
            .add(nn::linear(
                &p / "enc2",
                cfg.hidden,
                cfg.bottleneck,
                Default::default(),
            ));
        let dec = nn::seq()
            .add_fn(|x| x.relu())
            .add(nn::linear(
                &p / "dec1",
                cfg.bottleneck,
                cfg.hidden,
                Default::default(),
            ))
            .add_fn(|x| x.relu())
            .add(nn::linear(&p / "dec2", cfg.hidden, dim, Default::default()));
        MlpAe {
            norm_mean: p.zeros_no_train("norm_mean", &[dim]),
            norm_std: p.ones_no_train("norm_std", &[dim]),
            enc,
            dec,
            input_dropout: cfg.input_dropout,
            features: cfg.features.clone(),
        }
    }

    /// Per-sample mean squared error `[B]` of reconstructing `x` `[B, D]` from `input`.
    fn errors(&self, input: &Tensor, x: &Tensor) -> (Tensor, Tensor) {
        let z = self.enc.forward(input);
        let rec = self.dec.forward(&z);
        ((rec - x).square().mean_dim(-1, false, tch::Kind::Float), z)
    }
}

impl MlpAe {
    /// Denoising MSE of a batch `[B, D]` and its single term `mse`.
    pub fn loss_of(&self, x: &Tensor, train: bool) -> (Tensor, Vec<(String, f64)>) {
        let input = x.dropout(self.input_dropout, train);
        let (err, _) = self.errors(&input, x);
        let loss = err.mean(tch::Kind::Float);
        let v = loss.double_value(&[]);
        (loss, vec![("mse".into(), v)])
    }

    /// Reconstruction error `[B]` of `[B, D]`.
    pub fn score_of(&self, x: &Tensor) -> Tensor {
        self.errors(x, x).0
    }

    /// `z_spread`: standard deviation of the bottleneck across the batch, averaged over units
    /// (near 0 means the code collapsed to a constant).
    pub fn diagnostics_of(&self, x: &Tensor) -> Vec<(String, f64)> {
        let (_, z) = self.errors(x, x);
        let spread = if z.size()[0] > 1 {
            z.std_dim(0, true, false)
                .mean(tch::Kind::Float)
                .double_value(&[])
        } else {
            0.0
        };
        vec![("z_spread".into(), spread)]
    }
}
