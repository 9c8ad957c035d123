//! Exponential moving average of a `VarStore`'s weights with a ramped decay
//! `min(max_decay, (1 + n) / (10 + n))`, `n` = updates done before this one.
//!
//! A fixed decay of 0.9999 at ~18 steps per epoch would leave most of the weight on the initial
//! values after 100 epochs; the ramp makes early EMA weights follow the model closely.
//! Trainable variables are averaged; non-trainable ones (buffers) are copied.
use crate::train::adamw::copy_checked;
use crate::{Error, Result};
use std::collections::HashMap;
use tch::{nn, Tensor};

/// Shadow copies of every variable of a store, ordered by name.
pub struct Ema {
    max_decay: f64,
    names: Vec<String>,
    vars: Vec<Tensor>,
    shadow: Vec<Tensor>,
    updates: i64,
}

impl Ema {
    /// Starts from a copy of the current weights.
    pub fn new(vs: &nn::VarStore, max_decay: f64) -> Self {
        let mut all: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let (names, vars): (Vec<String>, Vec<Tensor>) = all.into_iter().unzip();
        let shadow = vars.iter().map(|v| v.detach().copy()).collect();
        Ema {
            max_decay,
            names,
            vars,
            shadow,
            updates: 0,
        }
    }

    /// Decay the next update will use.
    pub fn decay(&self) -> f64 {
        let n = self.updates as f64;
        self.max_decay.min((1.0 + n) / (10.0 + n))
    }

    pub fn updates(&self) -> i64 {
        self.updates
    }

    /// `shadow = d * shadow + (1 - d) * weights` for trainable variables, copy for the rest.
    pub fn update(&mut self) {
        let _guard = tch::no_grad_guard();
        let d = self.decay();
        for (v, s) in self.vars.iter().zip(self.shadow.iter_mut()) {
            if v.requires_grad() {
                let _ = s.lerp_(v, 1.0 - d);
            } else {
                s.copy_(v);
            }
        }
        self.updates += 1;
    }

    /// Exchanges the model's weights and the shadow weights in place; calling it twice restores
    /// the original state. Used to validate the EMA weights.
    pub fn swap(&mut self) {
        let _guard = tch::no_grad_guard();
        for (v, s) in self.vars.iter_mut().zip(self.shadow.iter_mut()) {
            let tmp = v.detach().copy();
            v.copy_(s);
            s.copy_(&tmp);
        }
    }

    /// The shadow weights as `<prefix><var>` named tensors.
    pub fn named(&self, prefix: &str) -> Vec<(String, Tensor)> {
        self.names
            .iter()
            .zip(&self.shadow)
            .map(|(n, s)| (format!("{prefix}{n}"), s.shallow_clone()))
            .collect()
    }

    /// Restores the shadow weights from `<prefix><var>` tensors and the update counter.
    pub fn load(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        prefix: &str,
        updates: i64,
    ) -> Result<()> {
        for (n, s) in self.names.iter().zip(self.shadow.iter_mut()) {
            let key = format!("{prefix}{n}");
            let src = tensors
                .get(&key)
                .ok_or_else(|| Error::Msg(format!("checkpoint lacks `{key}`")))?;
            copy_checked(s, src, &key)?;
        }
        self.updates = updates;
        Ok(())
    }
}
