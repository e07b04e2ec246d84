//! `[oto]`: OTO's HSPG (docs/design.md §5) and its epochs.

use super::{EpochSpec, RunConfig};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `[oto]`: HSPG (docs/design.md §5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OtoSection {
    /// λ of HSPG's group-lasso term.
    pub lambda: f64,
    /// ε of the half-space test.
    pub epsilon: f64,
    /// Epoch at which the half-space stage begins [default: 0.25].
    pub n_p: Option<EpochSpec>,
}

impl Default for OtoSection {
    fn default() -> Self {
        Self {
            lambda: 1e-3,
            epsilon: 0.0,
            n_p: None,
        }
    }
}

impl RunConfig {
    /// OTO's `n_p` in epochs [default: a quarter of the run].
    pub fn oto_n_p(&self) -> usize {
        self.oto
            .n_p
            .unwrap_or(EpochSpec::Fraction(0.25))
            .resolve(self.train.epochs)
    }
}
