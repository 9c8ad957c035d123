//! Small building blocks shared by the ViT backbones (DINOv3, V-JEPA 2, AST): a linear layer and
//! a LayerNorm whose parameters sit at HF key names, activation functions named as HF names them,
//! multi-head attention via `scaled_dot_product_attention`, and the common load path
//! (own `VarStore`, strict copy, freeze).
use super::loader::{load_dir_strict, KeyRules};
use crate::{Error, Result};
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

/// `nn.Linear`: `weight [out, in]`, optional `bias [out]`.
#[derive(Debug)]
pub(crate) struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub(crate) fn new(p: nn::Path, in_dim: i64, out_dim: i64, bias: bool) -> Self {
        let weight = p.zeros("weight", &[out_dim, in_dim]);
        let bias = bias.then(|| p.zeros("bias", &[out_dim]));
        Self { weight, bias }
    }

    /// [.., in] -> [.., out]
    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, self.bias.as_ref())
    }
}

/// `nn.LayerNorm(dim, eps)` with affine weight and bias.
#[derive(Debug)]
pub(crate) struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
    dim: i64,
}

impl LayerNorm {
    pub(crate) fn new(p: nn::Path, dim: i64, eps: f64) -> Self {
        let weight = p.ones("weight", &[dim]);
        let bias = p.zeros("bias", &[dim]);
        Self {
            weight,
            bias,
            eps,
            dim,
        }
    }

    /// [.., dim] -> [.., dim]
    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm(
            [self.dim],
            Some(&self.weight),
            Some(&self.bias),
            self.eps,
            true,
        )
    }
}

/// Activation functions, by their `transformers.activations.ACT2FN` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    /// "gelu": exact erf GELU.
    Gelu,
    /// "gelu_new" / "gelu_pytorch_tanh": tanh approximation.
    GeluTanh,
    /// "silu" / "swish".
    Silu,
    /// "quick_gelu": x * sigmoid(1.702 x).
    QuickGelu,
    /// "relu".
    Relu,
}

impl Act {
    pub(crate) fn parse(name: &str, dir: &Path) -> Result<Self> {
        Ok(match name {
            "gelu" => Act::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => Act::GeluTanh,
            "silu" | "swish" => Act::Silu,
            "quick_gelu" => Act::QuickGelu,
            "relu" => Act::Relu,
            other => {
                return Err(Error::Msg(format!(
                    "{}: unsupported hidden_act `{other}`",
                    dir.join("config.json").display()
                )))
            }
        })
    }

    pub(crate) fn forward(self, x: &Tensor) -> Tensor {
        match self {
            Act::Gelu => x.gelu("none"),
            Act::GeluTanh => x.gelu("tanh"),
            Act::Silu => x.silu(),
            Act::QuickGelu => x * (x * 1.702).sigmoid(),
            Act::Relu => x.relu(),
        }
    }
}

/// [B, L, H*Dh] -> [B, H, L, Dh]
pub(crate) fn split_heads(x: &Tensor, heads: i64) -> Tensor {
    let (b, l, d) = x.size3().expect("split_heads: [B, L, D]");
    x.view([b, l, heads, d / heads]).transpose(1, 2)
}

/// Non-causal softmax attention, scale `Dh^-0.5`. q, k, v: [B, H, L, Dh] -> [B, L, H*Dh]
pub(crate) fn attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
    let (b, h, l, dh) = q.size4().expect("attention: [B, H, L, Dh]");
    let scale = (dh as f64).powf(-0.5);
    Tensor::scaled_dot_product_attention(q, k, v, None::<Tensor>, 0.0, false, scale, false)
        .transpose(1, 2)
        .reshape([b, l, h * dh])
}

/// Checks that a float dtype is one the backbones run in.
pub(crate) fn check_kind(kind: Kind) -> Result<()> {
    match kind {
        Kind::Float | Kind::BFloat16 | Kind::Half => Ok(()),
        k => Err(Error::Msg(format!(
            "backbones run in f32, bf16 or f16, not {k:?}"
        ))),
    }
}

/// Copies a model folder's checkpoint into `vs` strictly, converts it to `kind` and freezes it.
pub(crate) fn load_into(
    vs: &mut nn::VarStore,
    dir: &Path,
    rules: &KeyRules,
    kind: Kind,
) -> Result<()> {
    check_kind(kind)?;
    vs.set_kind(kind);
    load_dir_strict(vs, dir, rules)?;
    vs.freeze();
    Ok(())
}

/// A fresh `VarStore` on `device`.
pub(crate) fn store(device: Device) -> nn::VarStore {
    nn::VarStore::new(device)
}

/// Number of parameters held by a loaded backbone's `VarStore`.
pub(crate) fn num_parameters(vs: &nn::VarStore) -> i64 {
    vs.variables().values().map(|t| t.numel() as i64).sum()
}

/// Runs the blocks over the embedding output `h` and returns every hidden state with the final
/// LayerNorm applied to the last one (transformers 4.56-4.57 semantics), or only the normed last
/// state when `keep_all` is false. [B, L, D] each.
pub(crate) fn run_blocks(
    mut h: Tensor,
    blocks: usize,
    block: impl Fn(usize, &Tensor) -> Tensor,
    norm: &LayerNorm,
    keep_all: bool,
) -> Vec<Tensor> {
    let mut out = Vec::with_capacity(if keep_all { blocks + 1 } else { 1 });
    for i in 0..blocks {
        if keep_all {
            out.push(h.shallow_clone());
        }
        h = block(i, &h);
    }
    out.push(norm.forward(&h));
    out
}
