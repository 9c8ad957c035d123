//! Small building blocks of the Causal-FiLM head with PyTorch's default initialisations and
//! parameter names (`weight`, `bias`), so a VarStore saved from Rust loads into the PyTorch
//! reference with `load_state_dict(strict=True)`.
use super::config::Activation;
use tch::{nn, nn::Init, Tensor};

/// Creates a parameter: trainable through `p.var`, or a plain (no-grad) entry of the store.
pub(crate) fn param(p: &nn::Path, name: &str, dims: &[i64], init: Init, trainable: bool) -> Tensor {
    if trainable {
        p.var(name, dims, init)
    } else {
        p.add(name, nn::init::init(init, dims, p.device()), false)
    }
}

/// `nn.Linear`: y = x W^T + b.
#[derive(Debug)]
pub(crate) struct Linear {
    pub ws: Tensor,
    pub bs: Option<Tensor>,
}

impl Linear {
    /// torch's default init: W, b ~ U(-1/sqrt(in), 1/sqrt(in)).
    pub fn new(p: nn::Path, in_dim: i64, out_dim: i64, bias: bool, trainable: bool) -> Self {
        let bound = 1.0 / (in_dim as f64).sqrt();
        let init = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        Self::with_init(p, in_dim, out_dim, init, bias.then_some(init), trainable)
    }

    /// Explicit initialisations (`bias_init` None: no bias).
    pub fn with_init(
        p: nn::Path,
        in_dim: i64,
        out_dim: i64,
        weight_init: Init,
        bias_init: Option<Init>,
        trainable: bool,
    ) -> Self {
        let ws = param(&p, "weight", &[out_dim, in_dim], weight_init, trainable);
        let bs = bias_init.map(|i| param(&p, "bias", &[out_dim], i, trainable));
        Linear { ws, bs }
    }

    /// [.., in] -> [.., out]
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.ws, self.bs.as_ref())
    }
}

/// Xavier (Glorot) uniform bound for a [out, in] weight.
pub(crate) fn xavier_uniform(in_dim: i64, out_dim: i64) -> Init {
    let bound = (6.0 / (in_dim + out_dim) as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// `nn.LayerNorm(dim)` with eps 1e-5, weight 1, bias 0.
#[derive(Debug)]
pub(crate) struct LayerNorm {
    pub(crate) ws: Tensor,
    pub(crate) bs: Tensor,
    dim: i64,
}

impl LayerNorm {
    pub fn new(p: nn::Path, dim: i64, trainable: bool) -> Self {
        let ws = param(&p, "weight", &[dim], Init::Const(1.0), trainable);
        let bs = param(&p, "bias", &[dim], Init::Const(0.0), trainable);
        LayerNorm { ws, bs, dim }
    }

    /// [.., dim] -> [.., dim]
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm([self.dim], Some(&self.ws), Some(&self.bs), 1e-5, true)
    }
}

/// Applies an activation (GELU is the exact erf form, torch's default).
pub(crate) fn activate(x: &Tensor, act: Activation) -> Tensor {
    match act {
        Activation::Relu => x.relu(),
        Activation::Silu => x.silu(),
        Activation::Gelu => x.gelu("none"),
    }
}
