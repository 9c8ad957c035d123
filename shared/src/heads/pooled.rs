//! Pooled feature inputs shared by the feature heads (`mlp-ae`, `gaussian`): each entry of a
//! `features = [...]` list is one vector per sample; the head concatenates them.
//! `{ pooled = L, stat = "mean"|"max" }` reads the DINOv3 pooled vector of hidden state L
//! (`[V, Di]`, averaged over the views); `{ array = NAME }` reads any array and averages it over
//! every axis but the last.
use crate::features::{Input, Inputs, PooledStat};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// One pooled input of a feature head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum FeatureSpec {
    /// DINOv3 pooled vector of hidden state `pooled`, averaged over views: `[Di]`
    Pooled { pooled: i64, stat: Stat },
    /// any array averaged over every axis but the last: `[D]`
    Array { array: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    Mean,
    Max,
}

impl FeatureSpec {
    pub fn input(&self) -> Input {
        match self {
            FeatureSpec::Pooled { pooled, stat } => Input::Pooled {
                layer: *pooled,
                stat: match stat {
                    Stat::Mean => PooledStat::Mean,
                    Stat::Max => PooledStat::Max,
                },
            },
            FeatureSpec::Array { array } => Input::Array(array.clone()),
        }
    }
}

/// `[B, ...,  D]` -> `[B, D]`: mean over every axis between the batch and the last.
pub fn pool(t: &Tensor) -> Tensor {
    let s = t.size();
    if s.len() <= 2 {
        return t.shallow_clone();
    }
    t.reshape([s[0], -1, s[s.len() - 1]])
        .mean_dim(1, false, Kind::Float)
}

/// The inputs of a `features` list.
pub fn inputs(features: &[FeatureSpec]) -> Inputs {
    Inputs {
        per_sample: features.iter().map(FeatureSpec::input).collect(),
        text: false,
    }
}

/// `[B, sum D]`: every fed input pooled, concatenated in list order.
pub fn concat(fed: &[Tensor]) -> Tensor {
    let parts: Vec<Tensor> = fed.iter().map(pool).collect();
    Tensor::cat(&parts, 1)
}
