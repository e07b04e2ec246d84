//! The convergence theorems the probes check (docs/design.md §6): their statements, assumptions and
//! proofs, the right-hand sides computed from measured quantities ([`averaged_bound`],
//! [`descent_bound`]), and which assumptions a run satisfies ([`assess`]).
//!
//! # Setting
//!
//! `Ψ(x) = f(x) + h(x)`. f is the training loss (plus `½·wd·‖x‖²` where weight decay enters the
//! gradient), possibly non-convex. h is the weighted group lasso `h(x) = Σ_g λ_g‖x_g‖`,
//! `λ_g ≥ 0` (ATO: `λ·ratio_ℓ` on masked groups, 0 elsewhere). `F_k` is the history up to
//! `x_k`. A step with learning rate `η_k`, metric `H_k` (diagonal, positive) and mini-batch
//! gradient `G_k = ∇f(x_k) + δ_k` is
//!
//! ```text
//! x_{k+1} = prox^{H_k}_{η_k h}(x_k − η_k H_k⁻¹ G_k)
//!         = argmin_u ⟨G_k, u⟩ + (1/2η_k)‖u − x_k‖²_{H_k} + h(u)
//! ```
//!
//! `x̄_{k+1}` is the same step with `∇f(x_k)` instead of `G_k`, `𝒢_k = (x_k − x̄_{k+1})/η_k` the
//! gradient mapping (`𝒢 = ∇f` when h = 0), `d_k = x_{k+1} − x_k`, `d̄_k = x̄_{k+1} − x_k`.
//! Norms: `‖v‖²_H = Σ H_i v_i²`, `‖v‖²_{H⁻¹} = Σ v_i²/H_i`.
//!
//! # Theorem A — proximal SGD, non-convex composite (H = I)
//!
//! Assumptions:
//! - (A1) f is L-smooth: `‖∇f(x) − ∇f(y)‖ ≤ L‖x − y‖`; non-convex allowed.
//! - (A2) h is convex, proper, closed, and FIXED over the steps considered (same λ_g).
//! - (A3) Ψ ≥ Ψ_low on the iterates.
//! - (A4) `E[δ_k | F_k] = 0` and `E[‖δ_k‖² | F_k] ≤ σ²` (σ² = variance of a mini-batch
//!   gradient of the training distribution, augmentation included).
//! - (A5) `η_k` is `F_k`-measurable (a fixed schedule qualifies) and `0 < η_k < 2/L`.
//! - (A6) the step is exactly the proximal step above with H = I: momentum 0, weight decay
//!   inside `G_k` (it is then part of f).
//!
//! Claim (one step). With `w_k = η_k − (L/2)η_k²` and any `α ∈ (0, 1]`,
//!
//! ```text
//! E[Ψ(x_{k+1}) | F_k] ≤ Ψ(x_k) − (1−α)·w_k·‖𝒢_k‖² + (η_k + (1/α − 1)·w_k)·σ²
//! ```
//!
//! # Theorem B — adaptive-matrix (Adam-type) proximal step
//!
//! As A, with (A6) replaced by: the step uses the metric `H_k`, which is diagonal,
//! `F_k`-measurable (built from the past only, not from `G_k`), and the proximal operator is
//! taken in `‖·‖_{H_k}`; momentum 0. (A1) is used in the metric,
//! `f(y) ≤ f(x) + ⟨∇f(x), y−x⟩ + (L_H/2)‖y − x‖²_H`, and (A4)–(A5) read
//! `E[‖δ_k‖²_{H⁻¹}|F_k] ≤ σ_H²` and `η_k < 2/L_H`. If
//! `H ⪰ ρI` on the coordinates that move, then `L_H ≤ L/ρ` and `σ_H² ≤ σ²/ρ`, so the classical
//! condition `η < 2ρ/L` implies this one. The claim is Theorem A's with `w_k = η_k − (L_H/2)η_k²`,
//! `‖𝒢_k‖²_{H_k}` and `σ_H²`. Coordinates that do not move over the steps considered can be
//! held fixed (the problem restricted to the others satisfies the same assumptions), so L_H,
//! σ_H² and ρ are taken over the *free* coordinates: those whose gradient is non-zero, or that
//! the prox shrinks. The coordinates behind a zeroed channel (gradient identically zero, Adam
//! metric ε) drop out, and ρ̂ does not collapse to ε. That nothing else moved is checked per
//! window (`free_set_held`); a coordinate with v̂ ≈ 0 that starts moving takes a step ∝ g/ε and
//! is rightly outside the theorem. Theorem A needs no restriction (H = I).
//!
//! *Proof (both).* Write `x, η, H, G, δ, d, d̄` for step k and `c = 1/η − L_H/2 > 0`.
//! 1. Optimality of the subproblem: `−G − Hd/η ∈ ∂h(x + d)`, so by convexity of h,
//!    `h(x + d) ≤ h(x) − ⟨G, d⟩ − ‖d‖²_H/η`.
//! 2. Smoothness: `f(x + d) ≤ f(x) + ⟨∇f(x), d⟩ + (L_H/2)‖d‖²_H`. Adding:
//!    `Ψ(x + d) ≤ Ψ(x) − ⟨δ, d⟩ − c‖d‖²_H`.
//! 3. `prox^H` is non-expansive in `‖·‖_H`, so `‖d − d̄‖_H ≤ η‖δ‖_{H⁻¹}` and
//!    `−⟨δ, d⟩ ≤ −⟨δ, d̄⟩ + η‖δ‖²_{H⁻¹}`.
//! 4. Young: `‖d‖²_H ≥ (1−α)‖d̄‖²_H − (1/α − 1)‖d − d̄‖²_H`, `‖d̄‖_H = η‖𝒢‖_H`, `cη² = w`.
//! 5. Hence `Ψ(x_{k+1}) ≤ Ψ(x_k) − ⟨δ, d̄⟩ − (1−α)w‖𝒢‖²_H + (η + (1/α−1)w)‖δ‖²_{H⁻¹}` for
//!    every realisation; `d̄` is `F_k`-measurable, so `E⟨δ, d̄⟩ = 0`. ∎
//!
//! With σ² = 0 and α → 0 the claim is `Ψ(x_{k+1}) ≤ Ψ(x_k) − w_k‖𝒢_k‖²`, an equality for a
//! one-dimensional quadratic with curvature L: the constants cannot be improved.
//!
//! The constants may be taken per step: the proof uses (A1) only on the segment from `x_k` to
//! `x_{k+1}` and (A4) only at step k, so any `L_k` bounding the curvature of f near `x_k` and
//! any `σ_k² ≥ E[‖δ_k‖² | F_k]`, both fixed by `F_k`, will do; `w_k = η_k − (L_k/2)η_k²`.
//!
//! **Corollary 1 (K-step descent).** Summing steps `j = k … k+K−1`, for every α:
//! `E[Ψ(x_{k+K}) − Ψ(x_k)] ≤ −(1−α)·Q + E + (1/α − 1)·N` with `Q = Σ_j w_j E‖𝒢_j‖²`,
//! `N = Σ_j w_j σ_j²`, `E = Σ_j η_j σ_j²`. The best α is `√(N/Q)` (1 when `Q ≤ N`), giving
//! `E − (√Q − √N)²`. One realisation deviates from its mean by the martingale
//! `−Σ⟨δ_j, d̄_j⟩`, whose variance is `Σ_j E⟨δ_j, d̄_j⟩²` (≤ `Σ_j σ_j²η_j²‖𝒢_j‖²`; the probe
//! measures it along the step). See [`window_steps`] for
//! how the steps between two probe points are estimated (the first step of a window is the
//! probe point itself; inner steps take the conservative end).
//!
//! **Corollary 2 (averaged).** Summing all T steps of a window with fixed h and using (A3):
//! `Σ w_k E‖𝒢_k‖² / Σ w_k ≤ (√(Ψ_0 − Ψ_low + Σ η_k σ_k²) + √(Σ w_k σ_k²))² / Σ w_k`
//! (the minimum over α, reached at `α = √N/(√N + √P)`, `P = Ψ_0 − Ψ_low + Σ η_k σ_k²`). With
//! σ = 0 it is `(Ψ_0 − Ψ_low)/Σw`, tight for quadratics.
//!
//! *What no check can see.* Near a noise-dominated equilibrium both inequalities allow
//! `‖𝒢‖² ≈ σ²` on average: a defect of the step smaller than the mini-batch variance cannot be
//! told apart from noise by one window (a deterministic run has no such floor).
//!
//! *Sources.* Theorem A is the argument of Ghadimi, Lan & Zhang (2016), Math. Program.
//! 155:267–305, Lemma 1, Proposition 1 and Theorem 2 (Euclidean case), re-derived here with the
//! Young parameter α kept free; the constants above are ours, not the paper's. Theorem B is the
//! same argument in the metric `‖·‖_H` (variable-metric proximal gradient; cf. Yun, Lozano &
//! Yang, NeurIPS 2021, "Adaptive proximal gradient methods for structured neural networks",
//! whose analysis also covers momentum). ATO's paper gives no constants for its method, so
//! these standard results are what is checked.
//!
//! *Momentum* is not covered: with SGD momentum μ > 0 or Adam β₁ > 0 the step is not the one
//! above, and the rows say so ([`assess`]). Analyses that do cover it: Mai & Johansson, ICML
//! 2020 (proximal SGD with heavy-ball momentum, weakly convex f) and Yun, Lozano & Yang 2021
//! (Adam-type with momentum); neither is implemented here.
//!
//! # Regime in which every row is finite
//!
//! h fixed since the bound's start, momentum 0, η_k from a constant or fixed schedule with
//! `η_k·L̂_k < 2` on every step (the step condition), Ψ finite on the probe batches. Then every
//! quantity of a [`crate::ConvergenceRow`] is finite from the first probe on: L̂ is measured at
//! every probe (a secant along the step, [`crate::probes`]), and the bound at a probe covers
//! the steps since its start *including* the step about to be taken at the current η, so it
//! never has zero weight; a change of h restarts both checks at that probe, finite. Where the
//! step condition fails the theorems say nothing: `rhs` and the ratio are NaN from then until
//! the next restart, the window's descent terms are NaN, and `step_condition = false`.
//!
//! # Which runs satisfy which assumptions
//!
//! The trainer declares its facts per epoch ([`RunRegime`], `ato_train::probe_regime`) and
//! [`assess`] turns them into the `violated` column. With `convergence.mode = "theorem"`
//! (momentum 0, probes from the epoch h is fixed, probe batches with the training transform,
//! every step's η fed to the bound):
//!
//! | run | Theorem | outside the assumptions |
//! |---|---|---|
//! | dense or ATO (`projector = "prox"`), SGD | A | nothing (per row: the step condition) |
//! | dense or ATO, AdamW | B | `preconditioner_from_past` (v̂ includes G_k), `prox_in_metric` (Euclidean prox), `no_decoupled_decay` when wd > 0 |
//! | OTO (HSPG), OTOv2 (DHSPG), ATO half-space | A/B | `step_is_prox`: reference lines only |
//!
//! (A1) L-smoothness, (A3) Ψ_low and (A4) unbiasedness are assumed, not checkable: L̂ is a
//! secant (a lower bound of L), Ψ_low = 0 (cross-entropy and norms are ≥ 0), σ̂² the sample
//! variance over the probe batches. With `mode = "monitor"` (the default) rows before T_end add
//! `regulariser_fixed`, runs with momentum `momentum_zero`, and every row `probe_transform`.
//!
//! *Replaced column.* `adam_min_sqrt_v` (min √v̂ + ε over all coordinates) is gone: it is
//! `rho_all`, and the ρ̂ of Theorem B is `rho_free`, the minimum over the free coordinates.

mod inequalities;
mod regime;

pub use inequalities::{
    averaged_bound, descent_bound, step_condition, weight, window_steps, AveragedBound,
    AveragedSums, DescentBound, DescentInputs, ProbeSample, StepEstimate,
};
pub(crate) use regime::violated_names;
pub use regime::{assess, AssumptionCheck, OptimizerKind, RunRegime, Schedule, Status};

use serde::Serialize;

/// The theorems available.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Theorem {
    /// Theorem A: proximal SGD on a non-convex composite objective (H = I).
    ProximalSgd,
    /// Theorem B: proximal step in a diagonal metric H built from the past (Adam-type).
    AdaptiveProximalSgd,
}

impl Theorem {
    pub fn name(self) -> &'static str {
        match self {
            Theorem::ProximalSgd => "proximal_sgd",
            Theorem::AdaptiveProximalSgd => "adaptive_proximal_sgd",
        }
    }

    /// Where the argument comes from.
    pub fn source(self) -> &'static str {
        match self {
            Theorem::ProximalSgd => {
                "Ghadimi, Lan & Zhang (2016), Math. Program. 155:267-305, Lemma 1, Prop. 1, \
                 Thm 2 (Euclidean); constants re-derived in ato_optim::bounds"
            }
            Theorem::AdaptiveProximalSgd => {
                "the same argument in the metric ||.||_H (variable-metric proximal gradient; \
                 cf. Yun, Lozano & Yang, NeurIPS 2021); derived in ato_optim::bounds"
            }
        }
    }

    /// The one-step inequality, in plain text.
    pub fn formula(self) -> &'static str {
        match self {
            Theorem::ProximalSgd => {
                "E Psi(x+) <= Psi(x) - (1-a) w ||G||^2 + (eta + (1/a - 1) w) s^2, \
                 w = eta - L eta^2 / 2, 0 < a <= 1, eta < 2/L"
            }
            Theorem::AdaptiveProximalSgd => {
                "E Psi(x+) <= Psi(x) - (1-a) w ||G||_H^2 + (eta + (1/a - 1) w) s_H^2, \
                 w = eta - L_H eta^2 / 2, s_H^2 = E||delta||_{H^-1}^2, eta < 2/L_H"
            }
        }
    }

    /// Whether the theorem measures in the optimiser's preconditioner.
    pub fn uses_metric(self) -> bool {
        self == Theorem::AdaptiveProximalSgd
    }
}
