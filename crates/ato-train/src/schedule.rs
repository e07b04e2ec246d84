//! The ATO epoch schedule (DESIGN.md §4): which parts of the algorithm run in an epoch.
//!
//! ```text
//! epoch:   0 … T_start … T_prox … T_end … E
//! control:    [────────────────────)            controller step every hyper_step steps
//! prox:                 [──────────────────)    proximal step on masked groups, mask of the epoch
//! frozen:                          [───────)    mask stored, λ × lambda_final_mult
//! ```

use serde::{Deserialize, Serialize};

/// Resolved ATO epochs and λ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AtoSchedule {
    pub epochs: usize,
    pub t_start: usize,
    pub t_prox: usize,
    pub t_end: usize,
    pub lambda: f64,
    pub lambda_final_mult: f64,
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
}

impl AtoSchedule {
    /// The phase of epoch `e` (0-based).
    pub fn phase(&self, e: usize) -> EpochPhase {
        let frozen = e >= self.t_end;
        EpochPhase {
            controller: e >= self.t_start && e < self.t_end,
            prox: e >= self.t_prox,
            frozen,
            lambda: if frozen {
                self.lambda * self.lambda_final_mult
            } else {
                self.lambda
            },
        }
    }
}
