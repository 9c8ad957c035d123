//! The ProcessEncoder: PyTorch `nn.TransformerDecoder` semantics (post-norm layers of
//! self-attention on the target, cross-attention to the memory and a ReLU feed-forward, each
//! followed by dropout, residual and LayerNorm), target = modulated video tokens, memory =
//! modulated audio tokens; then the mean over target tokens and a LayerNorm.
//! Parameter names follow torch (`decoder.layers.{i}.self_attn.in_proj_weight`, ...).
//! Attention runs through `scaled_dot_product_attention`, as torch's MultiheadAttention does.
use super::config::ProcessConfig;
use super::layers::{param, xavier_uniform, LayerNorm, Linear};
use tch::{nn, nn::Init, Tensor};

/// `nn.MultiheadAttention(d, heads, dropout, batch_first=True)`.
#[derive(Debug)]
struct Attention {
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: Linear,
    heads: i64,
    dropout: f64,
}

impl Attention {
    fn new(p: nn::Path, d: i64, heads: i64, dropout: f64) -> Self {
        // torch: xavier_uniform_ on in_proj_weight, zero in_proj_bias and out_proj.bias.
        let in_proj_weight = param(
            &p,
            "in_proj_weight",
            &[3 * d, d],
            xavier_uniform(d, 3 * d),
            true,
        );
        let in_proj_bias = param(&p, "in_proj_bias", &[3 * d], Init::Const(0.0), true);
        let bound = 1.0 / (d as f64).sqrt();
        let out_proj = Linear::with_init(
            &p / "out_proj",
            d,
            d,
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
            Some(Init::Const(0.0)),
            true,
        );
        Attention {
            in_proj_weight,
            in_proj_bias,
            out_proj,
            heads,
            dropout,
        }
    }

    /// query [B, Tq, d], key/value source [B, Tk, d] -> [B, Tq, d]
    fn forward(&self, query: &Tensor, kv: &Tensor, train: bool) -> Tensor {
        let (b, tq, d) = query.size3().expect("attention query must be [B, T, D]");
        let tk = kv.size()[1];
        let (h, hd) = (self.heads, d / self.heads);
        let w = self.in_proj_weight.chunk(3, 0);
        let bias = self.in_proj_bias.chunk(3, 0);
        let split = |x: Tensor, t: i64| x.view([b, t, h, hd]).transpose(1, 2);
        let q = split(query.linear(&w[0], Some(&bias[0])), tq);
        let k = split(kv.linear(&w[1], Some(&bias[1])), tk);
        let v = split(kv.linear(&w[2], Some(&bias[2])), tk);
        let p = if train { self.dropout } else { 0.0 };
        let o =
            Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, p, false, None, false);
        let o = o.transpose(1, 2).reshape([b, tq, d]);
        self.out_proj.forward(&o)
    }
}

/// `nn.TransformerDecoderLayer(d, heads, ff, dropout, activation=relu, batch_first=True,
/// norm_first=False)`.
#[derive(Debug)]
struct DecoderLayer {
    self_attn: Attention,
    multihead_attn: Attention,
    linear1: Linear,
    linear2: Linear,
    norm1: LayerNorm,
    norm2: LayerNorm,
    norm3: LayerNorm,
    dropout: f64,
}

impl DecoderLayer {
    fn new(p: nn::Path, d: i64, cfg: &ProcessConfig) -> Self {
        DecoderLayer {
            self_attn: Attention::new(&p / "self_attn", d, cfg.heads, cfg.dropout),
            multihead_attn: Attention::new(&p / "multihead_attn", d, cfg.heads, cfg.dropout),
            linear1: Linear::new(&p / "linear1", d, cfg.ff, true, true),
            linear2: Linear::new(&p / "linear2", cfg.ff, d, true, true),
            norm1: LayerNorm::new(&p / "norm1", d, true),
            norm2: LayerNorm::new(&p / "norm2", d, true),
            norm3: LayerNorm::new(&p / "norm3", d, true),
            dropout: cfg.dropout,
        }
    }

    /// Every parameter tensor of the layer, in a fixed order (for copying one layer's values).
    fn tensors(&self) -> Vec<&Tensor> {
        let mut v = vec![];
        for a in [&self.self_attn, &self.multihead_attn] {
            v.extend([&a.in_proj_weight, &a.in_proj_bias, &a.out_proj.ws]);
            v.extend(a.out_proj.bs.iter());
        }
        for l in [&self.linear1, &self.linear2] {
            v.push(&l.ws);
            v.extend(l.bs.iter());
        }
        for n in [&self.norm1, &self.norm2, &self.norm3] {
            v.extend([&n.ws, &n.bs]);
        }
        v
    }

    /// tgt [B, Tq, d], memory [B, Tk, d] -> [B, Tq, d]
    fn forward(&self, x: &Tensor, memory: &Tensor, train: bool) -> Tensor {
        let p = self.dropout;
        let sa = self.self_attn.forward(x, x, train).dropout(p, train);
        let x = self.norm1.forward(&(x + sa));
        let ca = self
            .multihead_attn
            .forward(&x, memory, train)
            .dropout(p, train);
        let x = self.norm2.forward(&(&x + ca));
        let ff = self
            .linear2
            .forward(&self.linear1.forward(&x).relu().dropout(p, train))
            .dropout(p, train);
        self.norm3.forward(&(&x + ff))
    }
}

#[derive(Debug)]
pub(crate) struct ProcessEncoder {
    layers: Vec<DecoderLayer>,
    norm: LayerNorm,
}

impl ProcessEncoder {
    /// With `cfg.identical_layers` (the original: `nn.TransformerDecoder` deep-copies its
    /// layer) every layer starts from layer 0's values; the other layers are still drawn first
    /// and then overwritten, so the RNG stream is the same either way. Otherwise each layer
    /// keeps its own draw.
    pub fn new(p: nn::Path, d: i64, cfg: &ProcessConfig) -> Self {
        let layers: Vec<DecoderLayer> = (0..cfg.layers)
            .map(|i| DecoderLayer::new(&p / "decoder" / "layers" / i, d, cfg))
            .collect();
        if cfg.identical_layers {
            let _guard = tch::no_grad_guard();
            let first: Vec<Tensor> = layers[0].tensors().into_iter().map(|t| t.copy()).collect();
            for layer in &layers[1..] {
                for (dst, src) in layer.tensors().into_iter().zip(&first) {
                    dst.shallow_clone().copy_(src);
                }
            }
        }
        ProcessEncoder {
            layers,
            norm: LayerNorm::new(&p / "norm", d, true),
        }
    }

    /// video [B, Tv, d] (queries), audio [B, Ta, d] (keys/values) -> Z_process [B, d]
    pub fn forward(&self, video: &Tensor, audio: &Tensor, train: bool) -> Tensor {
        let mut x = video.shallow_clone();
        for layer in &self.layers {
            x = layer.forward(&x, audio, train);
        }
        self.norm.forward(&x.mean_dim(1, false, None::<tch::Kind>))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoder(identical: bool) -> ProcessEncoder {
        let cfg = ProcessConfig {
            layers: 3,
            heads: 2,
            ff: 16,
            dropout: 0.1,
            identical_layers: identical,
        };
        tch::manual_seed(3);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        ProcessEncoder::new(vs.root(), 8, &cfg)
    }

    #[test]
    fn identical_layers_start_equal_like_a_deep_copy() {
        let same = encoder(true);
        let apart = encoder(false);
        let n = same.layers[0].tensors().len();
        assert_eq!(n, 2 * 4 + 4 + 6);
        for i in 1..3 {
            for (a, b) in same.layers[0]
                .tensors()
                .iter()
                .zip(same.layers[i].tensors())
            {
                assert!(a.equal(b), "layer {i} differs from layer 0");
            }
        }
        // drawn apart: the weight matrices differ (whether layer 0 is the same draw either way is
        // not asserted: the default generator is global and other test threads draw from it)
        let w = |e: &ProcessEncoder, i: usize| e.layers[i].self_attn.in_proj_weight.shallow_clone();
        assert!(!w(&apart, 1).equal(&w(&apart, 0)));
        assert!(!w(&apart, 2).equal(&w(&apart, 1)));
        // the copies share no storage with layer 0 (training moves them apart)
        assert_ne!(w(&same, 1).data_ptr(), w(&same, 0).data_ptr());
    }
}
