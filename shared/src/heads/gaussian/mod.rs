//! `gaussian`: a fit-once baseline (DESIGN.md "feature-bank detectors"): the mean and the
//! Ledoit-Wolf shrunk covariance of pooled TRAIN features; score = squared Mahalanobis distance
//! to the TRAIN mean. Computed in f64 exactly as scikit-learn's `LedoitWolf` (centred data,
//! shrinkage from `ledoit_wolf_shrinkage`, precision = pseudo-inverse of the shrunk covariance),
//! against which `shared/tests/heads_gaussian.rs` checks it.
//!
//! Fitted state (non-trainable variables, so the checkpoint carries them): `mean` [D],
//! `precision` [D, D], `shrinkage` [1].
use crate::features::Inputs;
use crate::heads::pooled::{self, concat, FeatureSpec};
use crate::heads::{BankHead, Head, StoreContext};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// `[gaussian]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaussianConfig {
    /// pooled inputs, concatenated (see [`crate::heads::pooled`])
    pub features: Vec<FeatureSpec>,
}

pub struct Gaussian {
    mean: Tensor,
    precision: Tensor,
    shrinkage: Tensor,
    n_inputs: usize,
}

/// Ledoit-Wolf of `x` `[N, D]` (f64): (mean [D], shrunk covariance [D, D], shrinkage).
pub fn ledoit_wolf(x: &Tensor) -> (Tensor, Tensor, f64) {
    let (n, p) = (x.size()[0] as f64, x.size()[1]);
    let mean = x.mean_dim(0, false, Kind::Double);
    let xc = x - &mean;
    let emp_cov = xc.transpose(0, 1).matmul(&xc) / n;
    let x2 = xc.square();
    let emp_cov_trace = x2.sum_dim_intlist(0, false, Kind::Double) / n;
    let mu = emp_cov_trace.sum(Kind::Double).double_value(&[]) / p as f64;
    let beta_ = x2
        .transpose(0, 1)
        .matmul(&x2)
        .sum(Kind::Double)
        .double_value(&[]);
    let delta_ = xc
        .transpose(0, 1)
        .matmul(&xc)
        .square()
        .sum(Kind::Double)
        .double_value(&[])
        / (n * n);
    let beta = 1.0 / (p as f64 * n) * (beta_ / n - delta_);
    let delta = (delta_ - 2.0 * mu * emp_cov_trace.sum(Kind::Double).double_value(&[])
        + p as f64 * mu * mu)
        / p as f64;
    let beta = beta.min(delta);
    let shrinkage = if beta == 0.0 { 0.0 } else { beta / delta };
    let eye = Tensor::eye(p, (Kind::Double, x.device()));
    let cov = emp_cov * (1.0 - shrinkage) + eye * (shrinkage * mu);
    (mean, cov, shrinkage)
}

impl Head for Gaussian {
    const NAME: &'static str = "gaussian";
    type Config = GaussianConfig;
    /// pooled features `[B, D]`, f32
    type Batch = Tensor;

    fn config(doc: &toml::Value) -> Result<GaussianConfig> {
        let cfg: GaussianConfig = doc
            .get("gaussian")
            .ok_or_else(|| Error::Msg("config has no [gaussian] table".into()))?
            .clone()
            .try_into()
            .map_err(|e| Error::Msg(format!("config [gaussian]: {e}")))?;
        if cfg.features.is_empty() {
            return Err(Error::Msg("config [gaussian]: `features` is empty".into()));
        }
        Ok(cfg)
    }

    fn inputs(cfg: &GaussianConfig) -> Inputs {
        pooled::inputs(&cfg.features)
    }

    fn build(p: &nn::Path, cfg: &GaussianConfig, ctx: &StoreContext) -> Result<Self> {
        let d: i64 = (0..cfg.features.len())
            .map(|i| *ctx.feeder.input_shape(i).last().unwrap_or(&0))
            .sum();
        let f64_var = |name: &str, shape: &[i64]| {
            p.add(
                name,
                Tensor::zeros(shape, (Kind::Double, p.device())),
                false,
            )
        };
        Ok(Gaussian {
            mean: f64_var("mean", &[d]),
            precision: f64_var("precision", &[d, d]),
            shrinkage: f64_var("shrinkage", &[1]),
            n_inputs: cfg.features.len(),
        })
    }

    fn make_batch(&self, fed: Vec<Tensor>) -> Result<Tensor> {
        crate::heads::expect_inputs(Self::NAME, &fed, self.n_inputs)?;
        Ok(concat(&fed))
    }

    /// Squared Mahalanobis distance to the TRAIN mean, [B] f64.
    fn score(&self, x: &Tensor) -> Tensor {
        let xc = x.to_kind(Kind::Double) - &self.mean;
        (xc.matmul(&self.precision) * &xc).sum_dim_intlist(1, false, Kind::Double)
    }

    fn describe(&self, _vs: &nn::VarStore) -> String {
        format!(
            "gaussian: {} pooled features, fitted once on TRAIN\n",
            self.mean.size()[0]
        )
    }
}

impl BankHead for Gaussian {
    fn fit(&mut self, train: &mut dyn Iterator<Item = Result<Vec<Tensor>>>) -> Result<()> {
        let parts: Vec<Tensor> = train.map(|f| self.make_batch(f?)).collect::<Result<_>>()?;
        let x = Tensor::cat(&parts, 0).to_kind(Kind::Double);
        if x.size()[0] < 2 {
            return Err(Error::Msg(
                "gaussian: TRAIN needs at least 2 samples".into(),
            ));
        }
        let (mean, cov, shrinkage) = ledoit_wolf(&x);
        self.mean.copy_(&mean);
        self.precision.copy_(&cov.linalg_pinv(1e-15, true));
        self.shrinkage.copy_(&Tensor::from_slice(&[shrinkage]));
        Ok(())
    }
}
