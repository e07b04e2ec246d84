//! HSPG, the optimiser of OTO (Chen et al., NeurIPS 2021), on the groups of `ato-zig`
//! (docs/design.md §5), as the authors' code runs it: the group-lasso term enters the *gradient*,
//! so the base optimiser's momentum carries it.
//!
//! ```text
//! every step:        ψ_g = ∇_g f + λ·x_g/(‖x_g‖ + 1e-6)     (ψ_g = ∇_g f for a zero group)
//!                    x̂ = base step (SGD, momentum on ψ)
//! stage 1 (e < n_p): x ← x̂
//! stage 2 (e ≥ n_p): x̂_g ← 0 if ⟨x̂_g, x_g⟩ < ε‖x_g‖², and groups that were zero stay zero
//! ```
//!
//! The trainer calls [`Hspg::add_penalty_to_grads`] before `optimizer.step` in both stages and
//! [`Hspg::project`] after it in stage 2 (with a snapshot of x taken before the step); the
//! reference restarts the momentum buffer when stage 2 begins ([`crate::Sgd::reset_momentum`]).

use crate::groups::{GroupSet, GroupSnapshot};
use crate::half_space::HalfSpaceStep;
use crate::prox::row_directions_guarded;
use crate::{OptimError, Result};
use candle_core::backprop::GradStore;

/// The reference's guard in `x/(‖x‖ + 1e-6)`.
pub const PENALTY_NORM_GUARD: f64 = 1e-6;

/// Settings of [`Hspg`]; defaults λ = 1e-3, ε = 0 (docs/design.md §5).
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
    step: HalfSpaceStep,
}

impl Hspg {
    pub fn new(config: HspgConfig) -> Result<Self> {
        if !(config.lambda >= 0.0 && config.lambda.is_finite()) {
            return Err(OptimError::Config(format!(
                "HSPG λ = {} is negative",
                config.lambda
            )));
        }
        let step = HalfSpaceStep::new(config.epsilon)?;
        Ok(Self { config, step })
    }

    pub fn config(&self) -> &HspgConfig {
        &self.config
    }

    /// Adds `λ·x_g/(‖x_g‖ + 1e-6)` (0 for a zero group) to the gradient of every group, at
    /// the current point x; members without a gradient get one.
    pub fn add_penalty_to_grads(&self, groups: &GroupSet, grads: &mut GradStore) -> Result<()> {
        if self.config.lambda == 0.0 {
            return Ok(());
        }
        for gate in groups.gates() {
            let dir = row_directions_guarded(&gate.values()?, PENALTY_NORM_GUARD)?;
            gate.add_to_grads(&dir.affine(self.config.lambda, 0.0)?, grads)?;
        }
        Ok(())
    }

    /// Stage 2 after the base step: the half-space projection of the trial point (the groups'
    /// values now) against `before`; groups that were zero stay zero. Returns the number of
    /// groups projected to zero.
    pub fn project(&self, groups: &GroupSet, before: &GroupSnapshot) -> Result<usize> {
        let all: Vec<Vec<Option<f64>>> = groups
            .gates()
            .iter()
            .map(|g| vec![Some(0.0); g.width])
            .collect();
        let projected = self.step.apply(groups, before, &all, 0.0, None)?;
        Ok(projected.iter().flatten().filter(|&&p| p).count())
    }
}
