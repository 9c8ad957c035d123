//! `paper-video-ae`: a per-token MLP autoencoder on V-JEPA 2 tokens `video/tokens` `[Tv, Dv]`
//! (**V-JEPA 2 instead of the paper's SlowFast**), standardised per dimension on TRAIN:
//! Dv -> `hidden` -> `bottleneck` -> `hidden` -> Dv with ReLU. The tokens are in time-major order
//! (`time_steps` temporal positions of Tv / time_steps tokens each); the per-step error is the
//! mean over that step's tokens, smoothed by a moving average of `window_steps` steps (about 2 s:
//! a 37 s clip in 16 V-JEPA steps is 2.3 s per step, so 1), and the score is its maximum over
//! time. Loss: the mean squared error over every token. Table `[paper_video_ae]`.
use super::train_stats;
use crate::features::{Input, Inputs};
use crate::heads::{GradientHead, Head, Named, StoreContext};
use crate::schema::VIDEO_TOKENS;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperVideoConfig {
    #[serde(default = "default_hidden")]
    pub hidden: i64,
    #[serde(default = "default_bottleneck")]
    pub bottleneck: i64,
    /// temporal positions of the stored tokens (V-JEPA 2 at 32 frames, tubelet 2: 16)
    pub time_steps: i64,
    /// moving-average window in time steps (~2 s)
    #[serde(default = "default_window")]
    pub window_steps: i64,
}

fn default_hidden() -> i64 {
    256
}
fn default_bottleneck() -> i64 {
    64
}
fn default_window() -> i64 {
    1
}

pub struct PaperVideoAe {
    ae: nn::Sequential,
    norm_mean: Tensor,
    norm_std: Tensor,
    time_steps: i64,
    window: i64,
}

impl PaperVideoAe {
    /// Per-token squared error averaged over dims `[B, Tv]` of standardised `x` `[B, Tv, Dv]`.
    fn token_errors(&self, x: &Tensor) -> Tensor {
        (self.ae.forward(x) - x)
            .square()
            .mean_dim([2i64].as_slice(), false, Kind::Float)
    }
}

impl Head for PaperVideoAe {
    const NAME: &'static str = "paper-video-ae";
    type Config = PaperVideoConfig;
    /// standardised tokens `[B, Tv, Dv]`
    type Batch = Tensor;

    fn config(doc: &toml::Value) -> Result<PaperVideoConfig> {
        let cfg: PaperVideoConfig = doc
            .get("paper_video_ae")
            .ok_or_else(|| {
                Error::Msg("config has no [paper_video_ae] table (time_steps is required)".into())
            })?
            .clone()
            .try_into()
            .map_err(|e| Error::Msg(format!("config [paper_video_ae]: {e}")))?;
        if cfg.time_steps < 1 || cfg.window_steps < 1 || cfg.window_steps > cfg.time_steps {
            return Err(Error::Msg(format!(
                "config [paper_video_ae]: need time_steps >= 1 and 1 <= window_steps <= \
                 time_steps (got {} and {})",
                cfg.time_steps, cfg.window_steps
            )));
        }
        Ok(cfg)
    }

    fn inputs(_cfg: &PaperVideoConfig) -> Inputs {
        Inputs {
            per_sample: vec![Input::Array(VIDEO_TOKENS.into())],
            text: false,
        }
    }

    fn build(p: &nn::Path, cfg: &PaperVideoConfig, ctx: &StoreContext) -> Result<Self> {
        let s = ctx.feeder.input_shape(0);
        let (tv, d) = (s[0], s[1]);
        if tv % cfg.time_steps != 0 {
            return Err(Error::Msg(format!(
                "config [paper_video_ae]: time_steps = {} does not divide the store's {tv} \
                 video tokens",
                cfg.time_steps
            )));
        }
        let (mean, std) = train_stats(ctx)?;
        let lin = |name: &str, i: i64, o: i64| nn::linear(p / name, i, o, Default::default());
        let ae = nn::seq()
            .add(lin("enc1", d, cfg.hidden))
            .add_fn(|x| x.relu())
            .add(lin("enc2", cfg.hidden, cfg.bottleneck))
            .add_fn(|x| x.relu())
            .add(lin("dec1", cfg.bottleneck, cfg.hidden))
            .add_fn(|x| x.relu())
            .add(lin("dec2", cfg.hidden, d));
        let mut head = PaperVideoAe {
            ae,
            norm_mean: p.zeros_no_train("norm_mean", &[d]),
            norm_std: p.ones_no_train("norm_std", &[d]),
            time_steps: cfg.time_steps,
            window: cfg.window_steps,
        };
        let _g = tch::no_grad_guard();
        head.norm_mean.copy_(&mean);
        head.norm_std.copy_(&std);
        Ok(head)
    }

    fn make_batch(&self, fed: Vec<Tensor>) -> Result<Tensor> {
        crate::heads::expect_inputs(Self::NAME, &fed, 1)?;
        Ok((&fed[0] - &self.norm_mean) / &self.norm_std)
    }

    /// max over time of the moving average of the per-step error, `[B]`.
    fn score(&self, x: &Tensor) -> Tensor {
        let e = self.token_errors(x);
        let b = e.size()[0];
        let steps =
            e.reshape([b, self.time_steps, -1])
                .mean_dim([2i64].as_slice(), false, Kind::Float);
        steps
            .unfold(1, self.window, 1)
            .mean_dim([2i64].as_slice(), false, Kind::Float)
            .amax(1, false)
    }
}

impl GradientHead for PaperVideoAe {
    fn loss(&self, x: &Tensor, _train: bool) -> (Tensor, Named) {
        let loss = self.token_errors(x).mean(Kind::Float);
        let v = loss.double_value(&[]);
        (loss, vec![("mse".into(), v)])
    }
}
