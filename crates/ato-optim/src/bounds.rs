//! The convergence theorems the probes check (DESIGN.md §6), stated with their sources and
//! assumptions, and their right-hand sides computed from measured quantities.
//!
//! # Setting
//!
//! `Ψ(x) = f(x) + h(x)`: f the training loss (plus `½·wd·‖x‖²` where weight decay applies),
//! L-smooth and possibly non-convex; h convex, here the weighted group lasso whose proximal
//! operator the pruner applies, `h(x) = Σ_g λ_g ‖x_g‖` (ATO: `λ_g = λ·ratio_ℓ` on masked
//! groups, 0 elsewhere). A step is
//!
//! ```text
//! x_{k+1} = argmin_u ⟨G_k, u⟩ + (1/2η_k)‖u − x_k‖²_{H_k} + h(u)
//! ```
//!
//! with G_k an unbiased mini-batch gradient, `E‖G_k − ∇f(x_k)‖² ≤ s²` (s² is the variance of a
//! *mini-batch* gradient, what the probe measures), and a diagonal metric `H_k ⪰ ρI` (H = I,
//! ρ = 1 for SGD; `H = diag(√v̂ + ε)` for Adam-type methods). The measured left-hand side is
//! the gradient mapping with the true gradient, `𝒢_k = (x_k − x̄_{k+1})/η_k`, x̄ the step taken
//! with ∇f instead of G_k.
//!
//! # Statement (both theorems)
//!
//! If `0 < η_k < 2ρ/L` for every k, then with `w_k = η_k − (L/2ρ)·η_k²`,
//!
//! ```text
//! Σ_k w_k E‖𝒢_k‖² / Σ_k w_k  ≤  2·[ Ψ(x_0) − Ψ* + (s²/ρ)·Σ_k (η_k + w_k) ] / (ρ·Σ_k w_k)
//! ```
//!
//! *Proof sketch* (after Ghadimi, Lan & Zhang 2016, Lemma 1 and Theorem 2): smoothness gives
//! `Ψ(x_{k+1}) ≤ Ψ(x_k) − (1/η − L/2ρ)‖d‖²_H − ⟨δ, d⟩` for `d = x_{k+1} − x_k`,
//! `δ = G_k − ∇f(x_k)`, by the optimality of the proximal subproblem. The prox is
//! non-expansive in ‖·‖_H, so `‖d − d̄‖_H ≤ η‖δ‖_{H⁻¹}`; hence `−E⟨δ,d⟩ ≤ ηs²/ρ` and
//! `‖d‖²_H ≥ ½‖d̄‖²_H − η²s²/ρ`. Using `‖d̄‖²_H ≥ ρη²‖𝒢‖²` and summing over k gives the bound.
//! For SGD (ρ = 1, H = I) it is the constant-free form of GLZ 2016, Theorem 2 (Euclidean
//! distance, α = 1). The constants are derived here; they are not copied from the paper.
//!
//! # What is measured (see [`crate::probes`])
//!
//! L̂ is the largest secant estimate `‖∇f(x_t) − ∇f(x_s)‖ / ‖x_t − x_s‖` seen so far (a lower
//! bound of the true L, so the step condition can only look better than it is); s² the sample
//! variance of the probe mini-batch gradients; `Ψ(x_0) − Ψ*` is bounded by `Ψ(x_0) − Ψ_low`
//! with `Ψ_low` a known lower bound (0 for cross-entropy plus norms); ρ̂ the smallest
//! `√v̂ + ε` of the Adam state. The probes sample 𝒢 every K steps, so the left-hand side is
//! estimated by the `w`-weighted mean over probe points. The theorem holds for a fixed h; when
//! the regulariser changes (ATO's mask and λ until T_end, DHSPG's partition) the bound restarts
//! at the next probe, which is then x₀ of a new run (a conservative choice: the steps between
//! the change and that probe are not counted).

use serde::Serialize;

/// The theorems available.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Theorem {
    /// Proximal SGD on a non-convex composite objective (H = I, ρ = 1).
    ProximalSgd,
    /// Preconditioned proximal SGD with a diagonal metric H ⪰ ρ̂I (Adam-type).
    AdaptiveProximalSgd,
}

impl Theorem {
    pub fn name(self) -> &'static str {
        match self {
            Theorem::ProximalSgd => "proximal_sgd",
            Theorem::AdaptiveProximalSgd => "adaptive_proximal_sgd",
        }
    }

    /// Where the result comes from.
    pub fn source(self) -> &'static str {
        match self {
            Theorem::ProximalSgd => {
                "Ghadimi, Lan & Zhang (2016), Mini-batch stochastic approximation methods for \
                 nonconvex stochastic composite optimization, Math. Program. 155:267-305, \
                 Theorem 2 (Euclidean case), constants re-derived in ato_optim::bounds"
            }
            Theorem::AdaptiveProximalSgd => {
                "the same argument in the metric ||.||_H with H ⪰ ρI (adaptive-matrix \
                 proximal methods, cf. Yun, Lozano & Yang, NeurIPS 2021), derived in \
                 ato_optim::bounds"
            }
        }
    }

    /// The assumptions under which the bound holds.
    pub fn assumptions(self) -> &'static [&'static str] {
        const COMMON: [&str; 4] = [
            "f is L-smooth (gradient L-Lipschitz), possibly non-convex; h is convex",
            "mini-batch gradients are unbiased with variance at most s^2",
            "0 < eta_k < 2*rho/L for every step",
            "Psi is bounded below by Psi_low",
        ];
        match self {
            Theorem::ProximalSgd => &[
                COMMON[0],
                COMMON[1],
                COMMON[2],
                COMMON[3],
                "the step is plain proximal SGD; with momentum the bound is a reference line",
            ],
            Theorem::AdaptiveProximalSgd => &[
                COMMON[0],
                COMMON[1],
                COMMON[2],
                COMMON[3],
                "H_k = diag(sqrt(v_hat)+eps) ⪰ rho*I depends only on past steps; Adam's \
                 momentum, bias correction and decoupled decay depart from this, and the \
                 trainer's prox after the Adam step is Euclidean, not the H-metric prox of \
                 the theorem's step, so the ratio is an empirical reference; rho is the \
                 smallest value seen at probe points, an upper estimate of the true minimum",
            ],
        }
    }

    /// The inequality, in plain text.
    pub fn formula(self) -> &'static str {
        "sum_k w_k E||G_k||^2 / sum_k w_k <= 2 [Psi_0 - Psi_low + (s^2/rho) sum_k (eta_k + w_k)] \
         / (rho sum_k w_k),  w_k = eta_k - (L/(2 rho)) eta_k^2"
    }

    /// ρ as this theorem uses it: 1 for proximal SGD, ρ̂ for the adaptive variant.
    pub fn rho(self, i: &BoundInputs) -> f64 {
        match self {
            Theorem::ProximalSgd => 1.0,
            Theorem::AdaptiveProximalSgd => i.rho,
        }
    }

    /// The weight `w(η) = η − (L/2ρ)·η²` of a step (or probe point) in the left-hand side.
    pub fn weight(self, eta: f64, i: &BoundInputs) -> f64 {
        eta - i.smoothness / (2.0 * self.rho(i)) * eta * eta
    }

    /// The right-hand side at the measured inputs.
    pub fn rhs(self, i: &BoundInputs) -> BoundValue {
        let rho = self.rho(i);
        let l = i.smoothness;
        let weights = i.sum_lr - l / (2.0 * rho) * i.sum_lr_sq;
        let step_condition = rho > 0.0 && i.max_lr * l < 2.0 * rho && weights > 0.0;
        let rhs = if step_condition {
            2.0 * (i.objective_gap + i.variance / rho * (i.sum_lr + weights)) / (rho * weights)
        } else {
            f64::NAN
        };
        BoundValue {
            rhs,
            step_condition,
        }
    }
}

/// Measured quantities the right-hand side needs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BoundInputs {
    /// L̂.
    pub smoothness: f64,
    /// s², the variance of a mini-batch gradient.
    pub variance: f64,
    /// Ψ(x₀) − Ψ_low.
    pub objective_gap: f64,
    /// ρ̂, the metric's lower bound (ignored by [`Theorem::ProximalSgd`]).
    pub rho: f64,
    /// Σ η_k over the steps taken.
    pub sum_lr: f64,
    /// Σ η_k² over the steps taken.
    pub sum_lr_sq: f64,
    /// max η_k.
    pub max_lr: f64,
}

/// The right-hand side and whether the step condition held.
#[derive(Clone, Copy, Debug)]
pub struct BoundValue {
    /// NaN when the step condition fails (the bound says nothing then).
    pub rhs: f64,
    pub step_condition: bool,
}
