//! The AntiGenDecoder: Z_process -> Z_pred through Linear(d, d) LN act Dropout(p) Linear(d, d)
//! (torch `nn.Sequential` indices 0, 1, 4 name the parameters).
use super::config::DecoderConfig;
use super::layers::{activate, LayerNorm, Linear};
use tch::{nn, Tensor};

#[derive(Debug)]
pub(crate) struct AntiGenDecoder {
    l0: Linear,
    ln1: LayerNorm,
    l4: Linear,
    cfg: DecoderConfig,
}

impl AntiGenDecoder {
    pub fn new(p: nn::Path, d: i64, cfg: &DecoderConfig) -> Self {
        let net = &p / "net";
        AntiGenDecoder {
            l0: Linear::new(&net / 0, d, d, true, true),
            ln1: LayerNorm::new(&net / 1, d, true),
            l4: Linear::new(&net / 4, d, d, true, true),
            cfg: cfg.clone(),
        }
    }

    /// Z_process [B, d] -> Z_pred [B, d]
    pub fn forward(&self, z: &Tensor, train: bool) -> Tensor {
        let h = activate(&self.ln1.forward(&self.l0.forward(z)), self.cfg.act);
        self.l4.forward(&h.dropout(self.cfg.dropout, train))
    }
}
