//! Convergence probes (docs/design.md §6): every K steps, on a fixed set of probe mini-batches,
//! measure the objective, the gradient mapping, smoothness, gradient variance and the metric's
//! lower bound on the free coordinates, and check the inequalities of [`crate::bounds`]: the
//! averaged bound (`lhs`, `rhs`) and the K-step descent between consecutive probes
//! (`descent_*`).
//!
//! The probe is model-agnostic: the caller supplies a closure returning the loss and the
//! gradients on probe batch i at the *current* parameter values (it is called `2m` times per
//! probe: m batches at x, then m at a second point `x + d̄` for the smoothness secant; the
//! probe restores the parameters exactly afterwards). The caller is responsible for anything
//! else the closure changes (BN running statistics). Everything else is host f64 arithmetic
//! in a fixed order, so probes are deterministic and checkpointable ([`ConvergenceProbe::state`]).
//!
//! *Free coordinates* (Theorem B) are those a step can move: the gradient is non-zero on some
//! probe batch, or the coordinate is non-zero in a group the prox shrinks. Coordinates with an
//! identically zero gradient — those of exactly-zero groups behind a zeroed channel, whose Adam
//! metric is ε — are excluded, so ρ̂ = min H over the free coordinates does not collapse.
//! L̂_H, σ̂_H², ρ̂ and `‖𝒢‖²_H` are measured on them, and each window checks that nothing else
//! moved (`free_set_held`): a coordinate with v̂ ≈ 0 that starts moving (a revived group
//! wakes the weights it feeds) takes a step ∝ g/ε and is rightly out of the theorem. Theorem A
//! (H = I) holds on the whole space: every coordinate is free.

//! # For the trainer
//!
//! ```text
//! let mut probe = ConvergenceProbe::new(config, theorem)?;   // theorem: A for SGD, B for Adam
//! probe.set_regime(RunRegime { .. });      // again whenever it changes (ATO: at T_end)
//! measure at the first step to be covered  // e.g. the first step of epoch T_end
//! after every optimiser step:  probe.record_step(lr)
//! every K steps:               probe.measure(ProbeInputs { .. }, |i| loss and grads of batch i)
//! checkpoints:                 probe.state(device) / probe.load_state(&state)
//! ```
//!
//! - The first `measure` starts both checks; steps recorded before it are not covered, so
//!   "measure from T_end" is simply "first measure at T_end". A change of `penalty` between
//!   probes restarts both (the row says `regulariser_fixed` was violated).
//! - Probe batches: `config.batches` fixed batches of the *training* batch size drawn with the
//!   *training* transform (augmentation drawn once, seeded), so f and σ̂² are those of training;
//!   declare it in [`RunRegime::probe_uses_training_transform`].
//! - The closure runs `2·batches` times per probe, at x and at x + d̄, on the model's current
//!   parameters; BN running statistics it touches are the caller's to restore.
//! - Host memory: f64/f32 vectors of the parameter count, about 100 bytes per parameter while
//!   measuring and 9 bytes per parameter kept between probes (the window's start).
//! - [`crate::bounds::assess`] gives the assumption table for the report; each row carries
//!   `in_regime` and `violated`.

mod descent;
mod flat;
mod mapping;
mod measure;
mod secant;
mod state;
mod step_check;

pub use mapping::group_prox_in_metric;
pub use step_check::{check_step, StepCapture, StepRule, StepVerdict, StepWindow};

use crate::bounds::{RunRegime, Theorem};
use crate::groups::GroupSet;
use crate::params::ParamSet;
use crate::{OptimError, Result};
use candle_core::Tensor;
use descent::{Averaged, ProbePoint};
use serde::{Deserialize, Serialize};

/// How often and how thoroughly to probe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbeConfig {
    /// Probe every this many optimiser steps; 0 switches probing off.
    pub every: u64,
    /// Probe mini-batches per measurement (≥ 2, for the variance); they should have the
    /// training batch size and transform, so σ̂² is the variance of a training gradient.
    pub batches: usize,
    /// Ψ_low, a known lower bound of the objective (0 for cross-entropy plus norms).
    pub objective_lower_bound: f64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            every: 0,
            batches: 4,
            objective_lower_bound: 0.0,
        }
    }
}

/// What the probe needs to know about the run at the moment of a measurement.
pub struct ProbeInputs<'a> {
    pub step: u64,
    pub epoch: usize,
    /// The current learning rate η (> 0).
    pub lr: f64,
    pub params: &'a ParamSet,
    /// Weight decay of the decayed parameters (part of f, as `½·wd·‖x‖²`).
    pub weight_decay: f64,
    pub groups: &'a GroupSet,
    /// λ_g for every group of every gate (0 where h does not act).
    pub penalty: &'a [Vec<f64>],
    /// The diagonal metric `H = √v̂ + ε` per parameter name (Adam); `None` for SGD. Used by
    /// [`Theorem::AdaptiveProximalSgd`] only.
    pub preconditioner: Option<Vec<(String, Tensor)>>,
    /// Groups whose mask changed since the previous probe.
    pub mask_flips: usize,
}

/// One row of `convergence.csv`. Every value is finite in the regime of
/// [`crate::bounds`] (fixed h, momentum 0, step condition); see each field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvergenceRow {
    pub step: u64,
    pub epoch: usize,
    pub lr: f64,
    /// f on the probe batches (loss + ½·wd·‖x‖²).
    pub loss: f64,
    /// Ψ = f + h.
    pub objective: f64,
    /// ‖𝒢_η(x)‖² with the Euclidean prox, all coordinates (docs/design.md §6).
    pub grad_mapping_sq: f64,
    /// ‖𝒢_η(x)‖²_H with the prox in the metric H, on the free coordinates: what the theorem
    /// bounds (H = I for SGD).
    pub grad_mapping_sq_metric: f64,
    /// Number of free coordinates.
    pub free_coords: usize,
    /// min H over all coordinates (1 for SGD): collapses to Adam's ε on zero groups.
    pub rho_all: f64,
    /// min H over the free coordinates: the ρ̂ of Theorem B (∞ when none is free).
    pub rho_free: f64,
    /// L̂ at this probe: the larger secant (along the step, from the previous probe), free
    /// coordinates, Euclidean.
    pub smoothness: f64,
    /// The same in the metric, `‖Δ∇f‖_{H⁻¹}/‖Δx‖_H` (L̂_H; = `smoothness` for SGD).
    pub smoothness_metric: f64,
    /// σ̂², the variance of one probe batch's gradient on the free coordinates.
    pub variance: f64,
    /// σ̂_H², the same in `‖·‖_{H⁻¹}`.
    pub variance_metric: f64,
    pub mask_flips: usize,
    pub theorem: String,
    /// Averaged bound (Corollary 2) since its start: `Σ_j w_j Ĝ_j / Σ_j w_j` over the steps
    /// since the start and the next one, with per-step estimates (bounds::window_steps: Ĝ
    /// one standard error below the probe value; inner steps of a window take the safer end).
    pub lhs: f64,
    /// Its right-hand side `(√(Ψ₀−Ψ_low+Σησ̂²) + √(Σwσ̂²))²/Σw`; NaN when the step condition
    /// failed on some step since the start.
    pub rhs: f64,
    /// `(Ψ₀ − Ψ_low)/Σw`, the part without noise.
    pub rhs_opt: f64,
    /// `rhs − rhs_opt`, the part the noise adds.
    pub rhs_noise: f64,
    pub lhs_rhs_ratio: f64,
    /// `max η·L̂ < 2` for the averaged bound and for the window.
    pub step_condition: bool,
    /// Steps in the window that ends here (0: no window — the first probe, or h changed).
    pub window_steps: usize,
    /// `Ψ(x_{k+K}) − Ψ(x_k)` on the probe batches.
    pub descent_lhs: f64,
    /// `−(1−α)·Q̂`, Q̂ the conservative estimate of `Σ_j w_j‖𝒢_j‖²` (bounds::descent_bound).
    pub descent_opt_term: f64,
    /// `Σ_j η_j σ̂_j² + (1/α − 1)Σ_j w_j σ̂_j²`.
    pub descent_noise_term: f64,
    /// `z·sd` of the randomness of one realisation (the martingale `Σ⟨δ_j, d̄_j⟩` with its
    /// variance measured along the step, and the probe evaluation of ΔΨ; 0 for a deterministic
    /// run) plus the f32 resolution of Ψ (4 ulps of |Ψ|).
    pub descent_tolerance: f64,
    /// `descent_lhs ≤ opt + noise + tolerance` (false also when the step condition fails).
    pub descent_holds: bool,
    /// Nothing outside the window start's free set moved.
    pub free_set_held: bool,
    /// No assumption is violated (static ones from [`RunRegime`], and on this row h
    /// unchanged, the free set held, the step condition).
    pub in_regime: bool,
    /// The violated assumptions, `;`-separated (bounds::assess names).
    pub violated: String,
    /// `rhs − lhs`: the smallest excess of the averaged `‖𝒢‖²_H` the averaged bound could
    /// have detected here (empty when the bound is undefined).
    #[serde(default)]
    pub averaged_slack: Option<f64>,
    /// `opt + noise + tolerance − descent_lhs`: the smallest rise of Ψ over the window the
    /// descent check could have detected (empty without a window).
    #[serde(default)]
    pub descent_slack: Option<f64>,
    /// Steps the per-step check ([`check_step`]) verified since the previous probe (0: the
    /// check does not run — monitor mode, or a step that is not a prox of h).
    #[serde(default)]
    pub step_checks: usize,
    /// The largest `r/t` over those steps (≤ 1: every one solved its subproblem; empty: none).
    #[serde(default)]
    pub step_worst_ratio: Option<f64>,
    /// `t` at that step: the smallest defect, as a distance in parameter space, the check could
    /// have detected there.
    #[serde(default)]
    pub step_tolerance: Option<f64>,
    /// The first step with `r > t` (empty when every step held).
    #[serde(default)]
    pub step_violated_at: Option<u64>,
}

impl ConvergenceRow {
    /// Records the per-step checks of the window that ends at this row.
    pub fn set_step_window(&mut self, w: &StepWindow) {
        self.step_checks = w.checked;
        self.step_worst_ratio = w.worst.map(|v| v.ratio());
        self.step_tolerance = w.worst.map(|v| v.tolerance);
        self.step_violated_at = w.first_violation.map(|v| v.step);
    }
}

/// The probe and its running state.
pub struct ConvergenceProbe {
    config: ProbeConfig,
    theorem: Theorem,
    regime: Option<RunRegime>,
    descent_z: f64,
    averaged: Averaged,
    /// The previous probe: the start of the current window.
    window: Option<ProbePoint>,
    /// η of every step since the previous probe.
    window_lrs: Vec<f64>,
    /// The largest per-step secant of ∇f recorded since the previous probe
    /// ([`ConvergenceProbe::record_secant`]; 0: none).
    window_secant: f64,
    /// The group weights of h at the last probe: when they change, the bounds restart.
    penalty: Option<Vec<Vec<f64>>>,
}

impl ConvergenceProbe {
    pub fn new(config: ProbeConfig, theorem: Theorem) -> Result<Self> {
        if config.every > 0 && config.batches < 2 {
            return Err(OptimError::Config(format!(
                "convergence probes need at least 2 batches for the variance, got {}",
                config.batches
            )));
        }
        Ok(Self {
            config,
            theorem,
            regime: None,
            descent_z: 3.0,
            averaged: Averaged::default(),
            window: None,
            window_lrs: Vec::new(),
            window_secant: 0.0,
            penalty: None,
        })
    }

    /// Standard deviations of a realisation's randomness allowed by the descent check
    /// (default 3; one-sided Cantelli: a correct run exceeds it with probability ≤ 1/(1+z²)).
    pub fn with_descent_z(mut self, z: f64) -> Self {
        self.descent_z = z;
        self
    }

    /// Declares the run's regime (what [`crate::bounds::assess`] needs); rows then report
    /// `in_regime` and the violated assumptions. Call again when it changes (ATO at T_end).
    /// Until it is set, every row says `regime_not_declared`.
    pub fn set_regime(&mut self, regime: RunRegime) {
        self.regime = Some(regime);
    }

    pub fn config(&self) -> &ProbeConfig {
        &self.config
    }

    pub fn theorem(&self) -> Theorem {
        self.theorem
    }

    /// Records the learning rate of one optimiser step (call after every step).
    pub fn record_step(&mut self, lr: f64) {
        self.window_lrs.push(lr);
    }

    /// Records `‖∇f(x_{k+1}) − ∇f(x_k)‖/‖x_{k+1} − x_k‖` of one step, when the step's gradients
    /// are of f itself (a deterministic objective, `convergence.mode = "exact"`, Euclidean
    /// metric). The next probe's L̂ is then at least the largest of them: the curvature along
    /// every step of the window, not only the secants at its ends, so a run at the edge of
    /// stability (η·L → 2 between probes) shows up as a failed step condition rather than as a
    /// descent violation.
    pub fn record_secant(&mut self, secant: f64) {
        if secant.is_finite() {
            self.window_secant = self.window_secant.max(secant);
        }
    }

    /// Whether a probe is due after `steps` optimiser steps.
    pub fn due(&self, steps: u64) -> bool {
        self.config.every > 0 && steps > 0 && steps.is_multiple_of(self.config.every)
    }
}
