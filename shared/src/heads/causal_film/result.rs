//! The RobustResultEncoder: per post-weld view, a configurable list of DINOv3 branches
//! (hidden-state index + mean / max / GeM pooling over the view's tokens), each with its own
//! LayerNorm; concat -> sigmoid gate (Linear(C, C/r) SiLU Linear(C/r, C)) multiplied in ->
//! Linear(C, hidden) LN SiLU Linear(hidden, d_model); then the max over views.
//! Mean/max branches read the stored pooled vectors; GeM branches read the stored tokens.
use super::config::{BranchConfig, CausalFilmConfig};
use super::layers::{param, LayerNorm, Linear};
use tch::{nn, nn::Init, Kind, Tensor};

pub use crate::features::PooledStat;

/// What one result branch reads from the feature store (in branch order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchInput {
    /// The stored pooled vector of hidden state `layer`: [V, image_dim] per sample.
    Pooled { layer: i64, stat: PooledStat },
    /// The stored tokens of hidden state `layer`: [V, N_tok, image_dim] per sample.
    Tokens { layer: i64 },
}

/// What each branch reads, in branch order. Pooled entries fill `HeadBatch::image_pooled`
/// (axis 1, in this order), token entries fill `HeadBatch::image_tokens` (in this order).
pub fn result_branch_inputs(cfg: &CausalFilmConfig) -> Vec<BranchInput> {
    cfg.model
        .result
        .branches
        .iter()
        .map(|b| match *b {
            BranchConfig::Mean { layer } => BranchInput::Pooled {
                layer,
                stat: PooledStat::Mean,
            },
            BranchConfig::Max { layer } => BranchInput::Pooled {
                layer,
                stat: PooledStat::Max,
            },
            BranchConfig::Gem { layer, .. } => BranchInput::Tokens { layer },
        })
        .collect()
}

#[derive(Debug)]
enum Source {
    /// Index into the pooled axis of `image_pooled`.
    Pooled(i64),
    /// Index into `image_tokens` and the learnable exponent p ([1]).
    Gem(usize, Tensor),
}

#[derive(Debug)]
struct Branch {
    source: Source,
    norm: LayerNorm,
}

#[derive(Debug)]
pub(crate) struct ResultEncoder {
    branches: Vec<Branch>,
    gate1: Linear,
    gate2: Linear,
    proj0: Linear,
    proj1: LayerNorm,
    proj3: Linear,
    gem_eps: f64,
}

impl ResultEncoder {
    pub fn new(p: nn::Path, cfg: &CausalFilmConfig) -> Self {
        let m = &cfg.model;
        let (mut n_pooled, mut n_gem) = (0i64, 0usize);
        let branches = m
            .result
            .branches
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let bp = &p / "branches" / i;
                let source = match b {
                    BranchConfig::Mean { .. } | BranchConfig::Max { .. } => {
                        n_pooled += 1;
                        Source::Pooled(n_pooled - 1)
                    }
                    BranchConfig::Gem { p0, .. } => {
                        n_gem += 1;
                        Source::Gem(n_gem - 1, param(&bp, "p", &[1], Init::Const(*p0), true))
                    }
                };
                Branch {
                    source,
                    norm: LayerNorm::new(&bp / "norm", m.image_dim, true),
                }
            })
            .collect();
        let c = cfg.concat_dim();
        let g = c / m.result.gate_reduction;
        let h = m.result.hidden;
        ResultEncoder {
            branches,
            gate1: Linear::new(&p / "gate" / 0, c, g, true, true),
            gate2: Linear::new(&p / "gate" / 2, g, c, true, true),
            proj0: Linear::new(&p / "proj" / 0, c, h, true, true),
            proj1: LayerNorm::new(&p / "proj" / 1, h, true),
            proj3: Linear::new(&p / "proj" / 3, h, m.d_model, true, true),
            gem_eps: m.result.gem_eps,
        }
    }

    /// image_pooled [B, P, V, D], image_tokens (per GeM branch) [B, V, N, D] -> Z_result [B, d]
    pub fn forward(&self, image_pooled: &Tensor, image_tokens: &[Tensor]) -> Tensor {
        let parts: Vec<Tensor> = self
            .branches
            .iter()
            .map(|br| {
                let pooled = match &br.source {
                    Source::Pooled(j) => image_pooled.select(1, *j),
                    Source::Gem(j, p) => gem(&image_tokens[*j], p, self.gem_eps),
                };
                br.norm.forward(&pooled)
            })
            .collect();
        let x = Tensor::cat(&parts, -1); // [B, V, C]
        let gate = self.gate2.forward(&self.gate1.forward(&x).silu()).sigmoid();
        let x = x * gate;
        let z = self
            .proj3
            .forward(&self.proj1.forward(&self.proj0.forward(&x)).silu()); // [B, V, d]
        z.max_dim(1, false).0
    }
}

/// Generalised mean over tokens in f32: (mean_n clamp(x, eps)^p)^(1/p), p clamped at >= 1.
/// tokens [B, V, N, D], p [1] -> [B, V, D]
fn gem(tokens: &Tensor, p: &Tensor, eps: f64) -> Tensor {
    let p = p.clamp_min(1.0);
    tokens
        .to_kind(Kind::Float)
        .clamp_min(eps)
        .pow(&p)
        .mean_dim(2, false, None::<Kind>)
        .pow(&p.reciprocal())
}
