//! Learning-rate schedules evaluated per optimiser step: a linear warm-up, then cosine
//! annealing to zero, step decay at milestones, or a constant rate.

use serde::{Deserialize, Serialize};

/// The schedule after warm-up as a config names it (`optim.schedule`): cosine to 0, ×0.1 at
/// 50% and 75% of the epochs, or constant. [`DecayKind::decay`] makes it a [`Decay`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecayKind {
    Cosine,
    Multistep,
    Constant,
}

impl DecayKind {
    /// The decay of a run of `epochs` epochs of `steps_per_epoch` steps.
    pub fn decay(self, epochs: usize, steps_per_epoch: usize) -> Decay {
        match self {
            DecayKind::Cosine => Decay::Cosine,
            DecayKind::Multistep => LrSchedule::half_and_three_quarters(epochs, steps_per_epoch),
            DecayKind::Constant => Decay::Constant,
        }
    }
}

/// What follows the warm-up.
#[derive(Clone, Debug, PartialEq)]
pub enum Decay {
    /// `η = η₀ · ½(1 + cos(π·p))`, p the progress from the end of the warm-up to the last step.
    Cosine,
    /// `η = η₀ · factor^k` after the k-th milestone step.
    MultiStep {
        milestones: Vec<u64>,
        factor: f64,
    },
    Constant,
}

/// The learning rate of every step of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct LrSchedule {
    base: f64,
    warmup_steps: u64,
    total_steps: u64,
    decay: Decay,
}

impl LrSchedule {
    /// `base` rate, `warmup_steps` of linear warm-up (`η = η₀·(t+1)/W`), `total_steps` in the run.
    pub fn new(base: f64, warmup_steps: u64, total_steps: u64, decay: Decay) -> Self {
        Self {
            base,
            warmup_steps,
            total_steps: total_steps.max(1),
            decay,
        }
    }

    /// The common recipe in epochs: warm-up epochs, then `decay`; multistep milestones at 50%
    /// and 75% of the epochs with factor 0.1.
    pub fn per_epoch(
        base: f64,
        warmup_epochs: usize,
        epochs: usize,
        steps_per_epoch: usize,
        decay: Decay,
    ) -> Self {
        let spe = steps_per_epoch as u64;
        Self::new(base, warmup_epochs as u64 * spe, epochs as u64 * spe, decay)
    }

    /// Multistep decay ×0.1 at 50% and 75% of `epochs`.
    pub fn half_and_three_quarters(epochs: usize, steps_per_epoch: usize) -> Decay {
        let spe = steps_per_epoch as u64;
        Decay::MultiStep {
            milestones: vec![(epochs as u64 / 2) * spe, (3 * epochs as u64 / 4) * spe],
            factor: 0.1,
        }
    }

    pub fn base(&self) -> f64 {
        self.base
    }

    /// The rate of step `t` (0-based).
    pub fn lr(&self, t: u64) -> f64 {
        if t < self.warmup_steps {
            return self.base * (t + 1) as f64 / self.warmup_steps as f64;
        }
        match &self.decay {
            Decay::Constant => self.base,
            Decay::Cosine => {
                let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
                let p = ((t - self.warmup_steps) as f64 / span).min(1.0);
                self.base * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
            Decay::MultiStep { milestones, factor } => {
                let k = milestones.iter().filter(|&&m| t >= m).count();
                self.base * factor.powi(k as i32)
            }
        }
    }
}
