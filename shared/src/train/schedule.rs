//! Per-epoch learning-rate schedules.
//!
//! `warmup_cosine` (the V5 text's):
//! Epochs are 0-based. For `e < W`: `warmup_start + (lr - warmup_start) * e / W` (epoch 0 runs
//! at `warmup_start`). For `e >= W`: `min_lr + (lr - min_lr) * (1 + cos(pi * t)) / 2` with
//! `t = (e - W) / (E - W - 1)`, so epoch `W` runs at `lr` and the last epoch `E - 1` at `min_lr`.

//!
//! `cosine_annealing` (what the seed's code ran: torch `CosineAnnealingLR(T_max=epochs,
//! eta_min=min_lr)` stepped once per epoch, no warm-up): epoch `e` runs at
//! `min_lr + (lr - min_lr) * (1 + cos(pi * e / E)) / 2`, so epoch 0 runs at `lr`.
use serde::{Deserialize, Serialize};

/// Which per-epoch schedule `[train] schedule` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    #[default]
    WarmupCosine,
    CosineAnnealing,
}

/// A learning-rate schedule over `epochs` epochs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub lr: f64,
    pub min_lr: f64,
    pub warmup_epochs: usize,
    pub warmup_start_lr: f64,
    pub epochs: usize,
    pub kind: ScheduleKind,
}

impl Schedule {
    /// Learning rate of (0-based) `epoch`.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        if self.kind == ScheduleKind::CosineAnnealing {
            let t = epoch as f64 / self.epochs.max(1) as f64;
            return self.min_lr
                + (self.lr - self.min_lr) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0;
        }
        let w = self.warmup_epochs;
        if epoch < w {
            return self.warmup_start_lr
                + (self.lr - self.warmup_start_lr) * epoch as f64 / w as f64;
        }
        let span = self.epochs.saturating_sub(w);
        let t = if span <= 1 {
            0.0
        } else {
            ((epoch - w) as f64 / (span - 1) as f64).min(1.0)
        };
        self.min_lr + (self.lr - self.min_lr) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0
    }
}
