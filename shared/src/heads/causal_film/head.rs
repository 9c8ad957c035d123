//! `CausalFilmHead`: the model, its CLIP loss head and the text embedding bundled with the
//! calls a training loop needs (loss, score, score parts, diagnostics); the head traits
//! (`inputs.rs`) delegate to them.
use super::config::CausalFilmConfig;
use super::loss::{anomaly_score, loss_tensors, score_parts, ClipHead};
use super::{format_param_counts, trainable_count, CausalFilm, HeadBatch};
use crate::{Error, Result};
use tch::{nn, Kind, Tensor};

/// Model under `<path>.model`, CLIP head under `<path>.clip_head`.
#[derive(Debug)]
pub struct CausalFilmHead {
    pub model: CausalFilm,
    pub clip_head: ClipHead,
    /// [text_dim]: the CLIP text embedding of "a normal weld", on the model's device.
    pub text_embed: Tensor,
    cfg: CausalFilmConfig,
    prefix: String,
}

impl CausalFilmHead {
    /// text_embed [text_dim] (any float kind; moved to the store's device as f32).
    pub fn new(vs: &nn::Path, cfg: &CausalFilmConfig, text_embed: &Tensor) -> Result<Self> {
        let want = [cfg.model.clip_head.text_dim];
        if text_embed.size() != want {
            return Err(Error::BadInput {
                what: "Causal-FiLM text embedding".into(),
                msg: format!("shape {:?}, expected {want:?}", text_embed.size()),
            });
        }
        Ok(CausalFilmHead {
            model: CausalFilm::new(&(vs / "model"), cfg),
            clip_head: ClipHead::new(&(vs / "clip_head"), cfg),
            text_embed: text_embed.to_kind(Kind::Float).to_device(vs.device()),
            cfg: cfg.clone(),
            prefix: vs.components().collect::<Vec<_>>().join("."),
        })
    }

    pub fn config(&self) -> &CausalFilmConfig {
        &self.cfg
    }

    /// Total loss (scalar with grad) and the unweighted terms `cos`, `rec`, `gram`, `clip`.
    pub fn loss(&self, batch: &HeadBatch, train: bool) -> (Tensor, Vec<(String, f64)>) {
        let (zr, zp) = self.model.forward_t(batch, train);
        let t = loss_tensors(
            &self.cfg,
            &zr,
            &zp,
            &self.clip_head,
            &self.text_embed,
            train,
        );
        let terms = Tensor::stack(&[&t.cos, &t.rec, &t.gram, &t.clip], 0)
            .to_kind(Kind::Double)
            .to_device(tch::Device::Cpu);
        let named = ["cos", "rec", "gram", "clip"]
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), terms.double_value(&[i as i64])))
            .collect();
        (t.total, named)
    }

    /// Anomaly scores [B] in eval mode (call under `no_grad`).
    pub fn score(&self, batch: &HeadBatch) -> Tensor {
        let (zr, zp) = self.model.forward_t(batch, false);
        anomaly_score(&self.cfg, &zr, &zp)
    }

    /// The two parts of the score, each [B]: `cos` = 1 - cos(Z_result, Z_pred) and `topk_l1` =
    /// the mean of the top-k |Z_result - Z_pred| (score = cos + loss.score.weight * topk_l1).
    pub fn score_parts(&self, batch: &HeadBatch) -> Vec<(String, Tensor)> {
        let (zr, zp) = self.model.forward_t(batch, false);
        let (cos, top) = score_parts(&self.cfg, &zr, &zp);
        vec![("cos".into(), cos), ("topk_l1".into(), top)]
    }

    /// Variable-name prefix of the CLIP head (`clip_head.` under this head's path).
    pub fn clip_head_prefix(&self) -> String {
        if self.prefix.is_empty() {
            "clip_head.".to_string()
        } else {
            format!("{}.clip_head.", self.prefix)
        }
    }

    /// Eval-mode spread across the batch: mean over dimensions of the std over samples of
    /// Z_result and Z_pred (a collapse to a constant shows as ~0), and their mean norms.
    pub fn diagnostics(&self, batch: &HeadBatch) -> Vec<(String, f64)> {
        let (zr, zp) = self.model.forward_t(batch, false);
        let spread = |z: &Tensor| {
            if z.size()[0] < 2 {
                return 0.0;
            }
            z.std_correction(0, 0, false)
                .mean(Kind::Float)
                .double_value(&[])
        };
        let norm = |z: &Tensor| {
            z.norm_scalaropt_dim(2, [1], false)
                .mean(Kind::Float)
                .double_value(&[])
        };
        vec![
            ("z_result_spread".into(), spread(&zr)),
            ("z_pred_spread".into(), spread(&zp)),
            ("z_result_norm".into(), norm(&zr)),
            ("z_pred_norm".into(), norm(&zp)),
        ]
    }

    /// Per-module trainable counts, model total, CLIP head and sum, as a table to print.
    pub fn param_report(&self, vs: &nn::VarStore) -> String {
        format_param_counts(
            &self.model.param_counts(vs),
            trainable_count(vs, &self.clip_head_prefix()),
        )
    }
}
