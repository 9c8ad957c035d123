//! `mlp-ae` on the store: its pooled inputs, the TRAIN standardisation, and the head traits
//! (thin delegations to the model).
use super::{MlpAe, MlpAeConfig};
use crate::features::Inputs;
use crate::heads::pooled::{self, concat};
use crate::heads::{GradientHead, Head, Named, StoreContext};
use crate::schema::Split;
use crate::{Error, Result};
use tch::{nn, Kind, Tensor};

impl Head for MlpAe {
    const NAME: &'static str = "mlp-ae";
    type Config = MlpAeConfig;
    /// standardised features `[B, D]`, f32
    type Batch = Tensor;

    fn config(doc: &toml::Value) -> Result<MlpAeConfig> {
        let cfg: MlpAeConfig = doc
            .get("mlp_ae")
            .ok_or_else(|| Error::Msg("config has no [mlp_ae] table".into()))?
            .clone()
            .try_into()
            .map_err(|e| Error::Msg(format!("config [mlp_ae]: {e}")))?;
        if cfg.features.is_empty() {
            return Err(Error::Msg(
                "config [mlp_ae]: `features` is empty; list the pooled inputs, e.g. \
                 features = [{ pooled = 4, stat = \"mean\" }]"
                    .into(),
            ));
        }
        Ok(cfg)
    }

    fn inputs(cfg: &MlpAeConfig) -> Inputs {
        pooled::inputs(&cfg.features)
    }

    fn build(p: &nn::Path, cfg: &MlpAeConfig, ctx: &StoreContext) -> Result<Self> {
        MlpAe::on_store(p, cfg, ctx)
    }

    fn make_batch(&self, fed: Vec<Tensor>) -> Result<Tensor> {
        crate::heads::expect_inputs(Self::NAME, &fed, self.features.len())?;
        Ok((concat(&fed) - &self.norm_mean) / &self.norm_std)
    }

    fn score(&self, x: &Tensor) -> Tensor {
        self.score_of(x)
    }

    fn diagnostics(&self, x: &Tensor) -> Named {
        self.diagnostics_of(x)
    }

    fn describe(&self, vs: &nn::VarStore) -> String {
        self.describe_as(Self::NAME, vs)
    }
}

impl MlpAe {
    /// Builds the autoencoder for the concatenated pooled inputs of `cfg.features` and sets its
    /// standardisation to the TRAIN mean and standard deviation (ddof 0) of those inputs.
    pub fn on_store(p: &nn::Path, cfg: &MlpAeConfig, ctx: &StoreContext) -> Result<Self> {
        let f = ctx.feeder;
        let dim: i64 = (0..cfg.features.len())
            .map(|i| *f.input_shape(i).last().unwrap_or(&0))
            .sum();
        let mut head = MlpAe::new(p.clone(), dim, cfg);
        let train: Vec<Tensor> = (0..cfg.features.len())
            .map(|i| f.whole_split(Split::Train, i))
            .collect::<Result<_>>()?;
        let x = concat(&train).to_kind(Kind::Double);
        let mean = x.mean_dim(0, false, Kind::Double);
        let std = x.std_correction(0, 0, false).clamp_min(1e-6);
        let _g = tch::no_grad_guard();
        head.norm_mean.copy_(&mean.to_kind(Kind::Float));
        head.norm_std.copy_(&std.to_kind(Kind::Float));
        Ok(head)
    }

    /// The model's description line (shared by the heads built on it).
    pub fn describe_as(&self, name: &str, vs: &nn::VarStore) -> String {
        let n: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        format!(
            "{name}: {} input features, {n} trainable parameters\n",
            self.norm_mean.size()[0]
        )
    }
}

impl GradientHead for MlpAe {
    fn loss(&self, x: &Tensor, train: bool) -> (Tensor, Named) {
        self.loss_of(x, train)
    }
}
