//! Sensor conditioning: the SensorModulator (sensor normalisation -> Linear -> residual Mamba
//! blocks -> LayerNorm -> last time step -> zero-initialised Linear -> gamma + 1, beta) and the
//! FiLM modulation `F * gamma + beta`.
use super::config::{ModelConfig, SensorNorm};
use super::layers::{xavier_uniform, LayerNorm, Linear};
use super::mamba::Mamba;
use crate::{Error, Result};
use tch::{nn, nn::Init, Kind, Tensor};

/// A per-sample z-score counts a channel's std below this as zero (and divides by 1 instead).
pub const SENSOR_STD_FLOOR: f64 = 1e-6;

#[derive(Debug)]
struct MambaBlock {
    norm: LayerNorm,
    mamba: Mamba,
}

#[derive(Debug)]
pub(crate) struct SensorModulator {
    embedding: Linear,
    layers: Vec<MambaBlock>,
    norm: LayerNorm,
    head: Linear,
    d_model: i64,
    /// TRAIN statistics ([C] each) when `sensor_norm = "train"`.
    stats: Option<(Tensor, Tensor)>,
}

impl SensorModulator {
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        let (c, h) = (cfg.sensor_channels, cfg.sensor_hidden);
        let embedding = Linear::with_init(
            &p / "embedding",
            c,
            h,
            xavier_uniform(c, h),
            Some(Init::Const(0.0)),
            true,
        );
        let layers = (0..cfg.mamba.layers)
            .map(|i| {
                let lp = &p / "layers" / i;
                MambaBlock {
                    norm: LayerNorm::new(&lp / "norm", h, true),
                    mamba: Mamba::new(&lp / "mamba", h, &cfg.mamba),
                }
            })
            .collect();
        let norm = LayerNorm::new(&p / "norm", h, true);
        let head = Linear::with_init(
            &p / "head",
            h,
            2 * cfg.d_model,
            Init::Const(0.0),
            Some(Init::Const(0.0)),
            true,
        );
        let stats = match cfg.sensor_norm {
            SensorNorm::Sample => None,
            SensorNorm::Train => Some((
                p.zeros_no_train("stat_mean", &[c]),
                p.ones_no_train("stat_std", &[c]),
            )),
        };
        SensorModulator {
            embedding,
            layers,
            norm,
            head,
            d_model: cfg.d_model,
            stats,
        }
    }

    /// Stores TRAIN statistics (mean, std: [C]); a std below [`SENSOR_STD_FLOOR`] becomes 1.
    pub fn set_stats(&mut self, mean: &Tensor, std: &Tensor) -> Result<()> {
        let (m, s) = self.stats.as_mut().ok_or_else(|| Error::BadInput {
            what: "SensorModulator::set_stats".into(),
            msg: "the config has sensor_norm = \"sample\": no statistics to set".into(),
        })?;
        if mean.size() != m.size() || std.size() != s.size() {
            return Err(Error::BadInput {
                what: "SensorModulator::set_stats".into(),
                msg: format!(
                    "expected mean and std of shape {:?}, got {:?} and {:?}",
                    m.size(),
                    mean.size(),
                    std.size()
                ),
            });
        }
        tch::no_grad(|| {
            m.copy_(mean);
            let s_fixed = std.where_self(&std.ge(SENSOR_STD_FLOOR), &std.ones_like());
            s.copy_(&s_fixed);
        });
        Ok(())
    }

    /// [B, L, C] raw -> [B, L, C] normalised.
    fn normalise(&self, x: &Tensor) -> Tensor {
        match &self.stats {
            Some((m, s)) => (x - m) / s,
            None => {
                let mean = x.mean_dim(1, true, None::<Kind>);
                let std = x.std_correction(1, 0, true);
                let std = std.where_self(&std.ge(SENSOR_STD_FLOOR), &std.ones_like());
                (x - mean) / std
            }
        }
    }

    /// sensor [B, L, C] -> (gamma [B, 1, d_model], beta [B, 1, d_model])
    pub fn forward(&self, sensor: &Tensor) -> (Tensor, Tensor) {
        let mut x = self.embedding.forward(&self.normalise(sensor));
        for blk in &self.layers {
            x = &x + blk.mamba.forward(&blk.norm.forward(&x));
        }
        let x = self.norm.forward(&x);
        let last = x.select(1, -1); // [B, h]
        let mods = self.head.forward(&last); // [B, 2 d]
        let gamma = mods.narrow(1, 0, self.d_model) + 1.0;
        let beta = mods.narrow(1, self.d_model, self.d_model);
        (gamma.unsqueeze(1), beta.unsqueeze(1))
    }
}

/// FiLM: features [B, T, D] * gamma [B, 1, D] + beta [B, 1, D].
pub fn film(features: &Tensor, gamma: &Tensor, beta: &Tensor) -> Tensor {
    features * gamma + beta
}
