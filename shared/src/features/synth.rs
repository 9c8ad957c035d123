//! Synthetic pooled features with planted defects: a [`BatchSource`] for tests and CPU demos of
//! the training loop without a feature store.
//!
//! Good samples are `W z + noise` with `z ~ N(0, I_rank)` and a fixed random `W` [dim, rank];
//! a defect of class `c` adds `shift * u_c` with a fixed random unit direction `u_c`. TRAIN is
//! all good; VAL and TEST hold `defect_fraction` defects spread over classes `1..=n_classes`.
use crate::schema::Split;
use crate::train::BatchSource;
use crate::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// `[synth]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthConfig {
    pub dim: usize,
    pub rank: usize,
    pub n_train: usize,
    pub n_val: usize,
    pub n_test: usize,
    pub defect_fraction: f64,
    pub n_classes: u8,
    pub shift: f64,
    pub noise: f64,
    pub seed: u64,
}

/// The three splits in memory (`[N, dim]` f32 each) and their class codes.
pub struct SynthFeatures {
    cfg: SynthConfig,
    feats: [Tensor; 3],
    classes: [Vec<u8>; 3],
    device: Device,
    resident: bool,
}

/// Position of a labelled split in the arrays (UNLABELLED: none, an empty split).
fn slot(split: Split) -> Option<usize> {
    (split != Split::Unlabelled).then(|| split.slot())
}

impl SynthFeatures {
    /// Generates the data (deterministic in `cfg.seed`). With `resident` the features are
    /// moved to `device` once; otherwise each batch is copied there when loaded.
    pub fn new(cfg: &SynthConfig, device: Device, resident: bool) -> Result<Self> {
        if cfg.dim == 0 || cfg.rank == 0 || cfg.n_classes == 0 {
            return Err(Error::Msg(
                "[synth]: dim, rank and n_classes must be > 0".into(),
            ));
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut normal = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| rng.sample::<f32, _>(StandardNormal))
                .collect()
        };
        let (d, r) = (cfg.dim, cfg.rank);
        let w = normal(d * r);
        let dirs: Vec<Vec<f32>> = (0..cfg.n_classes)
            .map(|_| {
                let u = normal(d);
                let norm = u.iter().map(|x| x * x).sum::<f32>().sqrt();
                u.into_iter().map(|x| x / norm).collect()
            })
            .collect();
        let mut make = |n: usize, defects: bool| -> (Tensor, Vec<u8>) {
            let n_bad = if defects {
                (n as f64 * cfg.defect_fraction).round() as usize
            } else {
                0
            };
            let mut data = Vec::with_capacity(n * d);
            let mut classes = Vec::with_capacity(n);
            for i in 0..n {
                let z = normal(r);
                let e = normal(d);
                let class = if i < n_bad {
                    1 + (i % cfg.n_classes as usize) as u8
                } else {
                    0
                };
                for j in 0..d {
                    let mut v: f32 = (0..r).map(|k| w[j * r + k] * z[k]).sum();
                    v += cfg.noise as f32 * e[j];
                    if class > 0 {
                        v += cfg.shift as f32 * dirs[class as usize - 1][j];
                    }
                    data.push(v);
                }
                classes.push(class);
            }
            let t = Tensor::from_slice(&data).view([n as i64, d as i64]);
            (t, classes)
        };
        let (tr, ctr) = make(cfg.n_train, false);
        let (va, cva) = make(cfg.n_val, true);
        let (te, cte) = make(cfg.n_test, true);
        let mut feats = [tr, va, te];
        if resident {
            feats = feats.map(|t| t.to_device(device));
        }
        Ok(SynthFeatures {
            cfg: cfg.clone(),
            feats,
            classes: [ctr, cva, cte],
            device,
            resident,
        })
    }

    /// Stands in for a store fingerprint: every parameter of the generator.
    pub fn fingerprint(&self) -> String {
        let c = &self.cfg;
        format!(
            "synth-v1:dim={}:rank={}:n={}/{}/{}:defects={}:classes={}:shift={}:noise={}:seed={}",
            c.dim,
            c.rank,
            c.n_train,
            c.n_val,
            c.n_test,
            c.defect_fraction,
            c.n_classes,
            c.shift,
            c.noise,
            c.seed
        )
    }

    pub fn dim(&self) -> usize {
        self.cfg.dim
    }
}

impl BatchSource for SynthFeatures {
    /// `[B, dim]` f32 on the device
    type Batch = Tensor;

    fn len(&self, split: Split) -> usize {
        slot(split).map_or(0, |k| self.classes[k].len())
    }

    fn classes(&self, split: Split) -> Vec<u8> {
        slot(split).map_or(vec![], |k| self.classes[k].clone())
    }

    fn keys(&self, split: Split) -> Vec<String> {
        (0..self.len(split))
            .map(|i| format!("{split}/{i:05}"))
            .collect()
    }

    fn load(&mut self, split: Split, indices: &[usize]) -> Result<Tensor> {
        let n = self.len(split);
        if let Some(&i) = indices.iter().find(|&&i| i >= n) {
            return Err(Error::Msg(format!(
                "{split} position {i} out of range ({n} samples)"
            )));
        }
        let src = &self.feats[slot(split).expect("in range, so labelled")];
        let idx: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let idx = Tensor::from_slice(&idx).to_device(src.device());
        let b = src.index_select(0, &idx).to_kind(Kind::Float);
        Ok(if self.resident {
            b
        } else {
            b.to_device(self.device)
        })
    }
}
