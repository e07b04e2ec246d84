//! The ATO epoch schedule (docs/design.md §4): which parts of the algorithm run in an epoch.
//!
//! ```text
//! epoch:   0 … T_start … T_prox … λ_switch … lr_drop … T_end … E
//! control:    [─────────────────────────────────────)          controller steps
//! prox:                 [──────────────────────────────────)    prox on the epoch's mask
//! λ:         λ ······························ λ·lambda_final_mult ·····
//! ctrl lr:   η_c ··································· η_c·factor ·
//! frozen:                                            [───────)    the mask is stored
//! ```
//!
//! The authors' ImageNet runs (E = 245): T_start 25, T_prox 50, λ switch 120 (= ⌊(E−5)/2⌋),
//! controller lr drop 122 (= ⌊0.98(E−5)/2⌋ + 5), T_end 125; the default fractions 0.10, 2·T_start,
//! 0.49, 0.498 and 0.51 of E give exactly these epochs at E = 245.

use serde::{Deserialize, Serialize};

/// Resolved ATO epochs, λ and the controller's learning rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AtoSchedule {
    pub epochs: usize,
    pub t_start: usize,
    pub t_prox: usize,
    pub t_end: usize,
    pub lambda: f64,
    pub lambda_final_mult: f64,
    /// First epoch of λ·lambda_final_mult.
    pub lambda_switch: usize,
    pub controller_lr: f64,
    /// First epoch of the controller lr × `controller_lr_drop_factor`.
    pub controller_lr_drop: usize,
    pub controller_lr_drop_factor: f64,
}

/// What runs in one epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochPhase {
    /// Controller steps happen (T_start ≤ e < T_end).
    pub controller: bool,
    /// The proximal step runs after every target step (e ≥ T_prox).
    pub prox: bool,
    /// The mask is frozen (e ≥ T_end).
    pub frozen: bool,
    /// λ_e.
    pub lambda: f64,
    /// The controller's learning rate in epoch e.
    pub controller_lr: f64,
}

impl AtoSchedule {
    /// The phase of epoch `e` (0-based).
    pub fn phase(&self, e: usize) -> EpochPhase {
        EpochPhase {
            controller: e >= self.t_start && e < self.t_end,
            prox: e >= self.t_prox,
            frozen: e >= self.t_end,
            lambda: if e >= self.lambda_switch {
                self.lambda * self.lambda_final_mult
            } else {
                self.lambda
            },
            controller_lr: if e >= self.controller_lr_drop {
                self.controller_lr * self.controller_lr_drop_factor
            } else {
                self.controller_lr
            },
        }
    }
}
