//! HSPG, the optimiser of OTO (Chen et al., NeurIPS 2021), on the groups of `ato-zig`
//! (DESIGN.md §5). The base optimiser's step x̂ = x − α·d is taken first; then, for every group
//! that was non-zero before the step,
//!
//! ```text
//! stage 1 (e < n_p):  x̂_g ← x̂_g − α·λ·x_g/‖x_g‖                      (subgradient step)
//! stage 2 (e ≥ n_p):  the same trial point, then x̂_g ← 0 if ⟨x̂_g, x_g⟩ < ε‖x_g‖²
//! ```
//!
//! The regularisation term is 0 for a zero group; in stage 2 groups that were zero stay
//! exactly zero (in stage 1 the base step may move them, as in OTO).

use crate::groups::{GroupSet, GroupSnapshot};
use crate::prox::{half_space_project, row_directions, sub_scaled_rows, zero_rows};
use crate::{OptimError, Result};

/// Settings of [`Hspg`]; defaults λ = 1e-3, ε = 0 (DESIGN.md §5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HspgConfig {
    pub lambda: f64,
    pub epsilon: f64,
}

impl Default for HspgConfig {
    fn default() -> Self {
        Self {
            lambda: 1e-3,
            epsilon: 0.0,
        }
    }
}

/// The half-space stochastic projected gradient method.
#[derive(Clone, Debug)]
pub struct Hspg {
    config: HspgConfig,
}

impl Hspg {
    pub fn new(config: HspgConfig) -> Result<Self> {
        if !(config.lambda >= 0.0 && config.lambda.is_finite()) {
            return Err(OptimError::Config(format!(
                "HSPG λ = {} is negative",
                config.lambda
            )));
        }
        if !(0.0..1.0).contains(&config.epsilon) {
            return Err(OptimError::Config(format!(
                "HSPG ε = {} is outside [0, 1)",
                config.epsilon
            )));
        }
        Ok(Self { config })
    }

    pub fn config(&self) -> &HspgConfig {
        &self.config
    }

    /// Applies the group part of one HSPG step at learning rate `lr` after the base step;
    /// `half_space` selects stage 2. Returns the number of groups projected to zero.
    pub fn after_step(
        &self,
        groups: &GroupSet,
        before: &GroupSnapshot,
        lr: f64,
        half_space: bool,
    ) -> Result<usize> {
        let mut projected = 0;
        for (gate, x) in groups.gates().iter().zip(&before.per_gate) {
            let was_zero: Vec<bool> = crate::groups::row_sums(&x.sqr()?)?
                .into_iter()
                .map(|n2| n2 == 0.0)
                .collect();
            let step = (lr * self.config.lambda) as f32;
            let mut hat = sub_scaled_rows(
                &gate.values()?,
                &row_directions(x)?,
                &vec![step; gate.width],
            )?;
            if half_space {
                hat = zero_rows(&hat, &was_zero)?;
                let eligible: Vec<bool> = was_zero.iter().map(|z| !z).collect();
                let (h, p) = half_space_project(&hat, x, &eligible, self.config.epsilon)?;
                projected += p.iter().filter(|&&p| p).count();
                hat = h;
            }
            gate.set_values(&hat)?;
        }
        Ok(projected)
    }
}
