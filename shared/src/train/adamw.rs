//! AdamW written over a `VarStore`'s trainable variables, with its moments kept as tensors so
//! a checkpoint can hold them (tch's own optimiser state cannot be saved).
//!
//! The update is `torch.optim.AdamW` (single-tensor path, amsgrad off): decoupled weight decay
//! `p *= 1 - lr * wd`, `m = lerp(m, g, 1 - b1)`, `v = b2 v + (1 - b2) g^2`, then
//! `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`. Gradient clipping is
//! `torch.nn.utils.clip_grad_norm_` with the 2-norm. Parameters are ordered by name.
//! A parameter whose gradient is undefined (never reached by a backward pass) is skipped, as
//! torch skips `grad is None`; note that tch zeroes gradients instead of dropping them, so a
//! parameter used once and then never again keeps receiving weight decay.
use crate::{Error, Result};
use std::collections::HashMap;
use tch::{nn, Tensor};

/// AdamW hyper-parameters (the learning rate changes per epoch through [`AdamW::set_lr`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }
}

/// AdamW over the trainable variables of a `VarStore`.
pub struct AdamW {
    pub cfg: AdamWConfig,
    names: Vec<String>,
    params: Vec<Tensor>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: i64,
}

/// The trainable variables of a store, sorted by name (shallow handles on the same storage).
pub fn trainable_vars(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

impl AdamW {
    /// Zero moments for every trainable variable of `vs`.
    pub fn new(vs: &nn::VarStore, cfg: AdamWConfig) -> Self {
        let (names, params): (Vec<String>, Vec<Tensor>) = trainable_vars(vs).into_iter().unzip();
        let m = params.iter().map(|p| p.zeros_like().detach()).collect();
        let v = params.iter().map(|p| p.zeros_like().detach()).collect();
        AdamW {
            cfg,
            names,
            params,
            m,
            v,
            step: 0,
        }
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    /// Number of updates done so far.
    pub fn step_count(&self) -> i64 {
        self.step
    }

    /// Zeroes every parameter gradient.
    pub fn zero_grad(&mut self) {
        for p in self.params.iter_mut() {
            p.zero_grad();
        }
    }

    /// Scales all gradients so that their global 2-norm is at most `max_norm`
    /// (`clip_grad_norm_`: coefficient `max_norm / (norm + 1e-6)` clamped to 1, always applied).
    /// Returns the norm before clipping.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        self.clip_grad_norm_groups(max_norm, &[])
    }

    /// [`AdamW::clip_grad_norm`] per group: the variables whose name starts with one of
    /// `own_groups` are clipped as a group of their own (one group per prefix); all others form
    /// the main group. Returns the main group's norm before clipping.
    pub fn clip_grad_norm_groups(&mut self, max_norm: f64, own_groups: &[String]) -> f64 {
        let group_of = |name: &str| {
            own_groups
                .iter()
                .position(|p| name.starts_with(p.as_str()))
                .map_or(0, |k| k + 1)
        };
        let mut main = 0.0;
        for g in 0..=own_groups.len() {
            let idx: Vec<usize> = (0..self.params.len())
                .filter(|&i| group_of(&self.names[i]) == g)
                .collect();
            let norm = clip_group(&self.params, &idx, max_norm);
            if g == 0 {
                main = norm;
            }
        }
        main
    }

    /// One AdamW update of every parameter with a defined gradient.
    pub fn step(&mut self) {
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let c = self.cfg;
        let t = self.step as f64;
        let bc1 = 1.0 - c.beta1.powf(t);
        let bc2_sqrt = (1.0 - c.beta2.powf(t)).sqrt();
        let step_size = c.lr / bc1;
        for ((p, m), v) in self.params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            let _ = p.g_mul_scalar_(1.0 - c.lr * c.weight_decay);
            let _ = m.lerp_(&g, 1.0 - c.beta1);
            let _ = v.g_mul_scalar_(c.beta2);
            let _ = v.g_add_(&(&g * &g * (1.0 - c.beta2)));
            let denom = v.sqrt() / bc2_sqrt + c.eps;
            let _ = p.g_add_(&(&*m / denom * (-step_size)));
        }
    }

    /// The moments as named tensors: `adam_m.<var>`, `adam_v.<var>`.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.names.len());
        for (n, (m, v)) in self.names.iter().zip(self.m.iter().zip(&self.v)) {
            out.push((format!("adam_m.{n}"), m.shallow_clone()));
            out.push((format!("adam_v.{n}"), v.shallow_clone()));
        }
        out
    }

    /// Restores moments (by name, shapes checked) and the step counter.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: i64) -> Result<()> {
        let _guard = tch::no_grad_guard();
        for (n, (m, v)) in self.names.iter().zip(self.m.iter_mut().zip(&mut self.v)) {
            for (prefix, dst) in [("adam_m", &mut *m), ("adam_v", &mut *v)] {
                let key = format!("{prefix}.{n}");
                let src = tensors
                    .get(&key)
                    .ok_or_else(|| Error::Msg(format!("checkpoint lacks `{key}`")))?;
                copy_checked(dst, src, &key)?;
            }
        }
        self.step = step;
        Ok(())
    }
}

/// `dst.copy_(src)` after checking the shape; `src` may live on another device.
pub(crate) fn copy_checked(dst: &mut Tensor, src: &Tensor, key: &str) -> Result<()> {
    if dst.size() != src.size() {
        return Err(Error::Msg(format!(
            "checkpoint tensor `{key}` has shape {:?}, the model expects {:?}",
            src.size(),
            dst.size()
        )));
    }
    let _guard = tch::no_grad_guard();
    dst.copy_(&src.to_kind(dst.kind()).to_device(dst.device()));
    Ok(())
}

/// Clips the gradients of `params[idx]` to a global norm of `max_norm`; returns the norm.
fn clip_group(params: &[Tensor], idx: &[usize], max_norm: f64) -> f64 {
    let _guard = tch::no_grad_guard();
    let grads: Vec<Tensor> = idx
        .iter()
        .map(|&i| params[i].grad())
        .filter(|g| g.defined())
        .collect();
    if grads.is_empty() {
        return 0.0;
    }
    let norms: Vec<Tensor> = grads.iter().map(|g| g.norm()).collect();
    let total = Tensor::stack(&norms, 0).norm();
    let coef = ((&total + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
    for mut g in grads {
        let _ = g.g_mul_(&coef);
    }
    total.double_value(&[])
}
