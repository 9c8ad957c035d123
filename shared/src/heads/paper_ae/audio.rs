//! `paper-audio-ae`: a 1D-CNN autoencoder over time on the log-mel spectrogram
//! `audio/spectrogram` `[T, F]`, mel bins as channels, standardised per bin on TRAIN.
//! Encoder: two Conv1d (kernel 5, stride 2, padding 2) with ReLU, F -> `channels` -> `bottleneck`;
//! decoder: nearest upsampling back to each encoder length, each followed by a Conv1d (kernel 5,
//! padding 2), ReLU between. Loss and score: mean squared reconstruction error over frames and
//! bins (the paper's frame-mean error). Table `[paper_audio_ae]`: `channels`, `bottleneck`.
use super::train_stats;
use crate::features::{Input, Inputs};
use crate::heads::{GradientHead, Head, Named, StoreContext};
use crate::schema::AUDIO_SPECTROGRAM;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperAudioConfig {
    #[serde(default = "default_channels")]
    pub channels: i64,
    #[serde(default = "default_bottleneck")]
    pub bottleneck: i64,
}

fn default_channels() -> i64 {
    64
}
fn default_bottleneck() -> i64 {
    16
}

pub struct PaperAudioAe {
    enc1: nn::Conv1D,
    enc2: nn::Conv1D,
    dec1: nn::Conv1D,
    dec2: nn::Conv1D,
    norm_mean: Tensor,
    norm_std: Tensor,
}

fn conv(p: nn::Path, i: i64, o: i64, stride: i64) -> nn::Conv1D {
    let c = nn::ConvConfig {
        stride,
        padding: 2,
        ..Default::default()
    };
    nn::conv1d(p, i, o, 5, c)
}

impl PaperAudioAe {
    /// Reconstruction of standardised `x` `[B, F, T]`.
    fn reconstruct(&self, x: &Tensor) -> Tensor {
        let t = x.size()[2];
        let h1 = self.enc1.forward(x).relu();
        let t1 = h1.size()[2];
        let z = self.enc2.forward(&h1).relu();
        let u1 = self.dec1.forward(&z.upsample_nearest1d([t1], None)).relu();
        self.dec2.forward(&u1.upsample_nearest1d([t], None))
    }

    /// Per-sample mean squared error `[B]`.
    fn errors(&self, x: &Tensor) -> Tensor {
        (self.reconstruct(x) - x)
            .square()
            .mean_dim([1i64, 2].as_slice(), false, Kind::Float)
    }
}

impl Head for PaperAudioAe {
    const NAME: &'static str = "paper-audio-ae";
    type Config = PaperAudioConfig;
    /// standardised spectrogram `[B, F, T]`
    type Batch = Tensor;

    fn config(doc: &toml::Value) -> Result<PaperAudioConfig> {
        doc.get("paper_audio_ae")
            .cloned()
            .unwrap_or_else(|| toml::Value::Table(Default::default()))
            .try_into()
            .map_err(|e| Error::Msg(format!("config [paper_audio_ae]: {e}")))
    }

    fn inputs(_cfg: &PaperAudioConfig) -> Inputs {
        Inputs {
            per_sample: vec![Input::Array(AUDIO_SPECTROGRAM.into())],
            text: false,
        }
    }

    fn build(p: &nn::Path, cfg: &PaperAudioConfig, ctx: &StoreContext) -> Result<Self> {
        let f = *ctx.feeder.input_shape(0).last().unwrap_or(&0);
        let (mean, std) = train_stats(ctx)?;
        let mut head = PaperAudioAe {
            enc1: conv(p / "enc1", f, cfg.channels, 2),
            enc2: conv(p / "enc2", cfg.channels, cfg.bottleneck, 2),
            dec1: conv(p / "dec1", cfg.bottleneck, cfg.channels, 1),
            dec2: conv(p / "dec2", cfg.channels, f, 1),
            norm_mean: p.zeros_no_train("norm_mean", &[f]),
            norm_std: p.ones_no_train("norm_std", &[f]),
        };
        let _g = tch::no_grad_guard();
        head.norm_mean.copy_(&mean);
        head.norm_std.copy_(&std);
        Ok(head)
    }

    fn make_batch(&self, fed: Vec<Tensor>) -> Result<Tensor> {
        crate::heads::expect_inputs(Self::NAME, &fed, 1)?;
        Ok(((&fed[0] - &self.norm_mean) / &self.norm_std).transpose(1, 2))
    }

    fn score(&self, x: &Tensor) -> Tensor {
        self.errors(x)
    }
}

impl GradientHead for PaperAudioAe {
    fn loss(&self, x: &Tensor, _train: bool) -> (Tensor, Named) {
        let loss = self.errors(x).mean(Kind::Float);
        let v = loss.double_value(&[]);
        (loss, vec![("mse".into(), v)])
    }
}
