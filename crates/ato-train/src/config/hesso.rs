//! `[hesso]`: HESSO (OTOv3) — its schedule, its target (a MACs reduction by construction, or
//! the reference's group share) and its epochs.

use super::{EpochSpec, RunConfig};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `[hesso]`: HESSO's schedule in epochs (the reference counts steps: start step S =
/// `start_epoch`·steps per epoch, pruning steps = `pruning_epochs`·steps per epoch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HessoSection {
    /// Epoch before which nothing is pruned [default: 0.1].
    pub start_epoch: Option<EpochSpec>,
    /// Epochs the pruning periods span, from `start_epoch` [default: 0.3].
    pub pruning_epochs: Option<EpochSpec>,
    /// P, the number of pruning periods (each shrinks its groups linearly to zero).
    pub periods: usize,
    /// What HESSO aims at: unset = `prune.target_flops_reduction`, a MACs reduction (ours);
    /// a share of all groups in (0, 1) = the reference's target, a group count
    /// (only_train_once's `target_group_sparsity`). With matched FLOPs the share is the
    /// searched knob, as OTOv2's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_group_sparsity: Option<f64>,
}

impl Default for HessoSection {
    fn default() -> Self {
        Self {
            start_epoch: None,
            pruning_epochs: None,
            periods: 10,
            target_group_sparsity: None,
        }
    }
}

impl RunConfig {
    /// HESSO's start epoch [default: a tenth of the run].
    pub fn hesso_start(&self) -> usize {
        self.hesso
            .start_epoch
            .unwrap_or(EpochSpec::Fraction(0.1))
            .resolve(self.train.epochs)
    }

    /// Epochs HESSO's pruning periods span [default: 0.3 of the run].
    pub fn hesso_pruning_epochs(&self) -> usize {
        self.hesso
            .pruning_epochs
            .unwrap_or(EpochSpec::Fraction(0.3))
            .resolve(self.train.epochs)
    }
}
