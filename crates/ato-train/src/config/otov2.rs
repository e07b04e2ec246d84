//! `[otov2]`: OTOv2's DHSPG (docs/design.md §5), its start epoch and its base λ.

use super::{EpochSpec, OptimizerName, RunConfig};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `[otov2]`: DHSPG (docs/design.md §5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Otov2Section {
    /// Share of groups to zero, in (0, 1).
    pub target_group_sparsity: f64,
    /// Base λ of DHSPG [default: the reference's, 1e-3 with SGD, 1e-2 with AdamW].
    pub lambda: Option<f64>,
    /// ε of the half-space projection.
    pub epsilon: f64,
    /// Epoch of the one-off partition into redundant and important groups [default: 0.1].
    pub start_pruning: Option<EpochSpec>,
}

impl Default for Otov2Section {
    fn default() -> Self {
        Self {
            target_group_sparsity: 0.5,
            lambda: None,
            epsilon: 0.95,
            start_pruning: None,
        }
    }
}

impl RunConfig {
    /// OTOv2's `start_pruning` in epochs [default: a tenth of the run].
    pub fn otov2_start(&self) -> usize {
        self.otov2
            .start_pruning
            .unwrap_or(EpochSpec::Fraction(0.1))
            .resolve(self.train.epochs)
    }

    /// OTOv2's base λ: `otov2.lambda`, else the reference's default for the optimiser.
    pub fn otov2_lambda(&self) -> f64 {
        self.otov2.lambda.unwrap_or(match self.optim.name {
            OptimizerName::Sgd => ato_optim::DhspgConfig::for_sgd().lambda,
            OptimizerName::Adamw => ato_optim::DhspgConfig::for_adamw().lambda,
        })
    }
}
