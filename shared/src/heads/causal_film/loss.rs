//! The Causal-FiLM loss (cos + reconstruction + Gram + CLIP text terms), its CLIP projection
//! head and the anomaly score.
use super::config::{topk_count, CausalFilmConfig, RecLoss};
use super::layers::{LayerNorm, Linear};
use tch::{nn, Kind, Reduction, Tensor};

/// The CLIP text-loss projection head: Linear(d_model, hidden) LN GELU Dropout
/// Linear(hidden, text_dim), parameters `0.*`, `1.*`, `4.*` under its own path. With
/// `clip_head.trainable = false` its parameters are created without gradients (the seed's
/// optimiser never saw them) while the loss still back-propagates through it into Z_pred.
#[derive(Debug)]
pub struct ClipHead {
    l0: Linear,
    ln1: LayerNorm,
    l4: Linear,
    dropout: f64,
}

impl ClipHead {
    pub fn new(vs: &nn::Path, cfg: &CausalFilmConfig) -> Self {
        let c = &cfg.model.clip_head;
        let t = c.trainable;
        ClipHead {
            l0: Linear::new(vs / 0, cfg.model.d_model, c.hidden, true, t),
            ln1: LayerNorm::new(vs / 1, c.hidden, t),
            l4: Linear::new(vs / 4, c.hidden, c.text_dim, true, t),
            dropout: c.dropout,
        }
    }

    /// Z_pred [B, d_model] -> [B, text_dim] (not normalised)
    pub fn forward_t(&self, z: &Tensor, train: bool) -> Tensor {
        let h = self.ln1.forward(&self.l0.forward(z)).gelu("none");
        self.l4.forward(&h.dropout(self.dropout, train))
    }
}

/// The loss of one batch: `total` (a scalar tensor to back-propagate) and the unweighted terms.
#[derive(Debug)]
pub struct LossTerms {
    pub total: Tensor,
    pub cos: f64,
    pub rec: f64,
    pub gram: f64,
    pub clip: f64,
}

/// The same terms as scalar tensors (no device synchronisation).
#[derive(Debug)]
pub struct LossTensors {
    pub total: Tensor,
    pub cos: Tensor,
    pub rec: Tensor,
    pub gram: Tensor,
    pub clip: Tensor,
}

/// `F.normalize(x, dim=-1)`: x / max(||x||, 1e-12).
fn l2_normalize(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2, [-1], true).clamp_min(1e-12)
}

/// Per-sample Gram matrix z z^T / D. [B, D] -> [B, D, D]
fn gram(z: &Tensor) -> Tensor {
    let d = z.size()[1];
    z.unsqueeze(2).bmm(&z.unsqueeze(1)) / d as f64
}

/// All loss terms as tensors. z_result, z_pred [B, d_model]; text_embed [text_dim] (the CLIP
/// text embedding of "a normal weld"; normalised here).
/// - cos  = 1 - mean_b cos(Z_result, Z_pred)
/// - rec  = smooth L1 (beta) mean over the top-k elements per sample, or mean |diff|
/// - gram = MSE between the per-sample Gram matrices z z^T / D
/// - clip = 1 - mean_b cos(normalize(ClipHead(Z_pred)), normalize(text))
///
/// total = cos_weight cos + rec.weight rec + gram_weight gram + clip_weight clip.
pub fn loss_tensors(
    cfg: &CausalFilmConfig,
    z_result: &Tensor,
    z_pred: &Tensor,
    clip_head: &ClipHead,
    text_embed: &Tensor,
    train: bool,
) -> LossTensors {
    let l = &cfg.loss;
    let cos = 1.0 - Tensor::cosine_similarity(z_result, z_pred, 1, 1e-8).mean(Kind::Float);
    let rec = match l.rec {
        RecLoss::SmoothL1Topk { beta, topk, .. } => {
            let e = z_result.smooth_l1_loss(z_pred, Reduction::None, beta); // [B, D]
            let k = topk_count(e.size()[1], topk);
            e.topk(k, 1, true, true).0.mean(Kind::Float)
        }
        RecLoss::L1Mean { .. } => (z_result - z_pred).abs().mean(Kind::Float),
    };
    let gram_term = gram(z_pred).mse_loss(&gram(z_result), Reduction::Mean);
    let proj = l2_normalize(&clip_head.forward_t(z_pred, train));
    let text = l2_normalize(text_embed).unsqueeze(0).expand_as(&proj);
    let clip = 1.0 - Tensor::cosine_similarity(&proj, &text, 1, 1e-8).mean(Kind::Float);
    let total = &cos * l.cos_weight
        + &rec * l.rec.weight()
        + &gram_term * l.gram_weight
        + &clip * l.clip_weight;
    LossTensors {
        total,
        cos,
        rec,
        gram: gram_term,
        clip,
    }
}

/// The loss of a batch with its terms read back as numbers. Shapes as [`loss_tensors`].
pub fn loss(
    cfg: &CausalFilmConfig,
    z_result: &Tensor,
    z_pred: &Tensor,
    clip_head: &ClipHead,
    text_embed: &Tensor,
    train: bool,
) -> LossTerms {
    let t = loss_tensors(cfg, z_result, z_pred, clip_head, text_embed, train);
    LossTerms {
        cos: t.cos.double_value(&[]),
        rec: t.rec.double_value(&[]),
        gram: t.gram.double_value(&[]),
        clip: t.clip.double_value(&[]),
        total: t.total,
    }
}

/// The anomaly score per sample: (1 - cos(Z_result, Z_pred)) + weight * mean of the top-k
/// fraction of |Z_result - Z_pred|. z_result, z_pred [B, d] -> [B]
pub fn anomaly_score(cfg: &CausalFilmConfig, z_result: &Tensor, z_pred: &Tensor) -> Tensor {
    let (dist_cos, top) = score_parts(cfg, z_result, z_pred);
    dist_cos + top * cfg.loss.score.weight
}

/// The unweighted parts of [`anomaly_score`], each [B]: (1 - cos, mean of the top-k |error|).
pub fn score_parts(cfg: &CausalFilmConfig, z_result: &Tensor, z_pred: &Tensor) -> (Tensor, Tensor) {
    let s = &cfg.loss.score;
    let dist_cos = 1.0 - Tensor::cosine_similarity(z_result, z_pred, 1, 1e-8);
    let err = (z_result - z_pred).abs();
    let k = topk_count(err.size()[1], s.topk);
    let top = err
        .topk(k, 1, true, true)
        .0
        .mean_dim(1, false, None::<Kind>);
    (dist_cos, top)
}
