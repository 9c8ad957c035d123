//! The fusion network of `supcon`: every modality's tokens projected to a common width
//! (Linear + LayerNorm, plus a learned modality embedding), `M` learned fusion tokens that
//! cross-attend to the concatenated tokens (multi-head attention, residual + LayerNorm, then an
//! FFN with residual + LayerNorm; `layers` such blocks), the mean over the fusion tokens (the
//! pooled feature), and a projection-head MLP to the L2-normalised embedding. An optional
//! linear classifier on the pooled feature serves the auxiliary cross-entropy.
use super::config::SupConConfig;
use tch::{nn, nn::Module, Kind, Tensor};

/// One cross-attention block: queries `[B, M, d]` attend to keys/values `[B, N, d]`.
struct CrossBlock {
    q: nn::Linear,
    k: nn::Linear,
    v: nn::Linear,
    o: nn::Linear,
    ln1: nn::LayerNorm,
    ff1: nn::Linear,
    ff2: nn::Linear,
    ln2: nn::LayerNorm,
    heads: i64,
    dropout: f64,
}

impl CrossBlock {
    fn new(p: &nn::Path, cfg: &SupConConfig) -> Self {
        let d = cfg.d_model;
        let lin = |name: &str, i: i64, o: i64| nn::linear(p / name, i, o, Default::default());
        CrossBlock {
            q: lin("q", d, d),
            k: lin("k", d, d),
            v: lin("v", d, d),
            o: lin("o", d, d),
            ln1: nn::layer_norm(p / "ln1", vec![d], Default::default()),
            ff1: lin("ff1", d, cfg.ff),
            ff2: lin("ff2", cfg.ff, d),
            ln2: nn::layer_norm(p / "ln2", vec![d], Default::default()),
            heads: cfg.heads,
            dropout: cfg.dropout,
        }
    }

    /// `[B, L, d]` -> `[B, heads, L, d / heads]`
    fn split(&self, t: &Tensor) -> Tensor {
        let s = t.size();
        t.reshape([s[0], s[1], self.heads, s[2] / self.heads])
            .transpose(1, 2)
    }

    /// Queries `[B, M, d]`, tokens `[B, N, d]` -> `[B, M, d]`.
    fn forward(&self, x: &Tensor, kv: &Tensor, train: bool) -> Tensor {
        let s = x.size();
        let (q, k, v) = (
            self.split(&self.q.forward(x)),
            self.split(&self.k.forward(kv)),
            self.split(&self.v.forward(kv)),
        );
        let hd = (s[2] / self.heads) as f64;
        let att = (q.matmul(&k.transpose(-2, -1)) / hd.sqrt()).softmax(-1, Kind::Float);
        let a = att.matmul(&v).transpose(1, 2).reshape([s[0], s[1], s[2]]);
        let a = self.o.forward(&a).dropout(self.dropout, train);
        let x = self.ln1.forward(&(x + a));
        let f = self
            .ff2
            .forward(&self.ff1.forward(&x).gelu("none"))
            .dropout(self.dropout, train);
        self.ln2.forward(&(x + f))
    }
}

/// The fusion network (see the module docs).
pub struct FusionModel {
    proj: Vec<(nn::Linear, nn::LayerNorm)>,
    /// `[n_modalities, d]`
    modality_emb: Tensor,
    /// `[M, d]`
    fusion: Tensor,
    blocks: Vec<CrossBlock>,
    head1: nn::Linear,
    head2: nn::Linear,
    classifier: Option<nn::Linear>,
}

/// What one forward pass gives.
pub struct Forward {
    /// mean over the fusion tokens `[B, d]`
    pub pooled: Tensor,
    /// L2-normalised projection `[B, E]`
    pub embedding: Tensor,
    /// classifier logits `[B, n_train_classes]` when the CE term is on
    pub logits: Option<Tensor>,
}

impl FusionModel {
    /// Builds the network for modalities of token widths `dims` and `n_classes` TRAIN classes
    /// (the classifier exists only with `ce_weight > 0`).
    pub fn new(p: &nn::Path, cfg: &SupConConfig, dims: &[i64], n_classes: i64) -> Self {
        let d = cfg.d_model;
        let proj = dims
            .iter()
            .enumerate()
            .map(|(i, &di)| {
                let q = p / format!("proj{i}");
                (
                    nn::linear(&q / "lin", di, d, Default::default()),
                    nn::layer_norm(&q / "ln", vec![d], Default::default()),
                )
            })
            .collect();
        let blocks = (0..cfg.layers)
            .map(|l| CrossBlock::new(&(p / format!("block{l}")), cfg))
            .collect();
        let classifier = (cfg.ce_weight > 0.0)
            .then(|| nn::linear(p / "classifier", d, n_classes, Default::default()));
        FusionModel {
            proj,
            modality_emb: p.randn("modality_emb", &[dims.len() as i64, d], 0.0, 0.02),
            fusion: p.randn("fusion_tokens", &[cfg.fusion_tokens, d], 0.0, 0.02),
            blocks,
            head1: nn::linear(p / "head1", d, cfg.proj_hidden, Default::default()),
            head2: nn::linear(
                p / "head2",
                cfg.proj_hidden,
                cfg.embed_dim,
                Default::default(),
            ),
            classifier,
        }
    }

    /// One pass over per-modality tokens `[B, N_m, D_m]` (in config order).
    pub fn forward(&self, tokens: &[Tensor], train: bool) -> Forward {
        let parts: Vec<Tensor> = tokens
            .iter()
            .zip(&self.proj)
            .enumerate()
            .map(|(i, (t, (lin, ln)))| {
                ln.forward(&lin.forward(t)) + self.modality_emb.get(i as i64)
            })
            .collect();
        let kv = Tensor::cat(&parts, 1); // [B, N, d]
        let b = kv.size()[0];
        let mut x = self.fusion.unsqueeze(0).expand([b, -1, -1], false);
        for blk in &self.blocks {
            x = blk.forward(&x, &kv, train);
        }
        let pooled = x.mean_dim(1, false, Kind::Float);
        let z = self.head2.forward(&self.head1.forward(&pooled).relu());
        let n = z.norm_scalaropt_dim(2.0, [1], true).clamp_min(1e-12);
        Forward {
            embedding: z / n,
            logits: self.classifier.as_ref().map(|c| c.forward(&pooled)),
            pooled,
        }
    }
}
