//! `[magnitude]`: the magnitude baseline — train dense, drop the lowest-norm groups once at
//! one epoch, keep training — and the checks of `[hesso]` and `[magnitude]`, the two baselines
//! that reach the FLOPs target by construction.

use super::{EpochSpec, Method, RunConfig};
use crate::TrainError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the magnitude baseline compares group norms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MagnitudeScopeName {
    /// Across all gates.
    #[default]
    Global,
    /// Every gate keeps the same share of its groups.
    PerGate,
}

/// `[magnitude]`: train dense, drop the lowest-norm groups at one epoch, keep training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MagnitudeSection {
    /// Epoch at whose first step the groups are dropped [default: 0.5].
    pub prune_epoch: Option<EpochSpec>,
    /// global | per_gate: where the norms ‖x_g‖/√D_g are compared.
    #[schemars(with = "String")]
    pub scope: MagnitudeScopeName,
}

impl Default for MagnitudeSection {
    fn default() -> Self {
        Self {
            prune_epoch: None,
            scope: MagnitudeScopeName::Global,
        }
    }
}

impl RunConfig {
    /// The epoch the magnitude baseline prunes at [default: half the run].
    pub fn magnitude_prune_epoch(&self) -> usize {
        self.magnitude
            .prune_epoch
            .unwrap_or(EpochSpec::Fraction(0.5))
            .resolve(self.train.epochs)
    }

    /// Checks `[hesso]` and `[magnitude]` (only for the method that uses them).
    pub(super) fn validate_baselines(&self) -> Result<(), TrainError> {
        let bad = |key: &str, why: String| Err(TrainError::Config(format!("{key}: {why}")));
        for (key, spec) in [
            ("hesso.start_epoch", self.hesso.start_epoch),
            ("hesso.pruning_epochs", self.hesso.pruning_epochs),
            ("magnitude.prune_epoch", self.magnitude.prune_epoch),
        ] {
            if let Some(EpochSpec::Fraction(f)) = spec {
                if !(0.0..=1.0).contains(&f) {
                    return bad(key, format!("{f} is outside [0, 1] (a fraction of train.epochs; write an integer for an epoch)"));
                }
            }
        }
        let e = self.train.epochs;
        match self.method {
            Method::Hesso => {
                if self.hesso.periods == 0 {
                    return bad("hesso.periods", "0 is outside [1, ∞)".into());
                }
                if let Some(t) = self.hesso.target_group_sparsity {
                    if !(t > 0.0 && t < 1.0) {
                        return bad(
                            "hesso.target_group_sparsity",
                            format!("{t} is outside (0, 1)"),
                        );
                    }
                }
                let (s, p) = (self.hesso_start(), self.hesso_pruning_epochs());
                if p == 0 || s + p > e {
                    return bad(
                        "hesso.pruning_epochs",
                        format!(
                            "start {s} + {p} pruning epochs must lie in [1, train.epochs = {e}]"
                        ),
                    );
                }
            }
            Method::Magnitude => {
                let at = self.magnitude_prune_epoch();
                if at >= e {
                    return bad(
                        "magnitude.prune_epoch",
                        format!("{at} is outside [0, train.epochs = {e})"),
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }
}
