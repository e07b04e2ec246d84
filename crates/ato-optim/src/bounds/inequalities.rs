//! The right-hand sides of Corollaries 1 and 2 of [`crate::bounds`] from measured inputs. All
//! quantities are in the theorem's metric (H = I for proximal SGD). Every step j carries its
//! own `(η_j, L_j, σ_j², ‖𝒢_j‖²)`; only probe points are measured, so a step's values are
//! estimated from the two probe points around it ([`window_steps`]).

/// `w(η) = η − (L/2)·η²`, the weight of a step.
pub fn weight(eta: f64, smoothness: f64) -> f64 {
    eta - 0.5 * smoothness * eta * eta
}

/// What one probe measured, in the theorem's metric.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProbeSample {
    /// The learning rate η_p the gradient mapping was measured at.
    pub eta: f64,
    /// A lower estimate of `‖𝒢_{η_p}(x_p)‖²`: `(√Ĝ − √(σ̂²/m))²₊`, one standard error below the
    /// value Ĝ from the mean of m probe batches (the prox is non-expansive, so the error of 𝒢
    /// is at most the error of the mean gradient).
    pub lower: f64,
    /// `Var_b⟨g_b, d̄⟩` over the probe batches, d̄ the step at η_p: the conditional variance
    /// of the martingale increment `⟨δ, d̄⟩` of one step.
    pub martingale: f64,
    /// L̂ at the probe point.
    pub smoothness: f64,
    /// σ̂² of one mini-batch gradient at the probe point.
    pub variance: f64,
}

impl ProbeSample {
    /// The sample of a probe that measured Ĝ, L̂, σ̂² and the martingale variance on m batches
    /// at rate η.
    pub fn new(
        eta: f64,
        measured: f64,
        (smoothness, variance, martingale): (f64, f64, f64),
        batches: usize,
    ) -> Self {
        let se = (variance / batches.max(1) as f64).sqrt();
        let g = measured.max(0.0).sqrt();
        Self {
            eta,
            lower: (g - se).max(0.0).powi(2),
            martingale,
            smoothness,
            variance,
        }
    }

    /// A lower bound of `‖𝒢_η(x_p)‖²` at another rate η: `‖𝒢_η‖` is non-increasing and
    /// `η‖𝒢_η‖` non-decreasing in η (prox of a convex h; Beck 2017, Thm 10.9), so
    /// `‖𝒢_η‖ ≥ min(1, η_p/η)·‖𝒢_{η_p}‖`.
    fn lower_at(&self, eta: f64) -> f64 {
        (self.eta / eta).min(1.0).powi(2) * self.lower
    }

    /// The martingale variance of a step at rate η: `‖d̄_η‖ = η‖𝒢_η‖ ≤ max(1, η/η_p)·‖d̄_{η_p}‖`.
    fn martingale_at(&self, eta: f64) -> f64 {
        (eta / self.eta).max(1.0).powi(2) * self.martingale
    }
}

/// The estimates for one step of a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepEstimate {
    pub eta: f64,
    /// L_j (upper side).
    pub smoothness: f64,
    /// σ_j² (upper side).
    pub variance: f64,
    /// `‖𝒢_j‖²` (lower side).
    pub mapping_lower: f64,
    /// `E⟨δ_j, d̄_j⟩²` (upper side), the martingale's variance.
    pub martingale: f64,
}

impl StepEstimate {
    pub fn weight(&self) -> f64 {
        weight(self.eta, self.smoothness)
    }
}

/// Per-step estimates over a window whose steps `lrs` run from probe point `start` to probe
/// point `end`. The first step is taken at `start` itself and gets its values. An inner step
/// gets the larger L̂ and σ̂² of the two ends and the smaller lower estimate of ‖𝒢‖² (each end
/// moved to η_j by monotonicity in η): the bound is made larger and Q smaller, so under
/// monotone change over the window a check built on them is never stricter than the theorem.
pub fn window_steps<'a>(
    start: &'a ProbeSample,
    end: &'a ProbeSample,
    lrs: &'a [f64],
) -> impl Iterator<Item = StepEstimate> + 'a {
    lrs.iter().enumerate().map(move |(j, &eta)| {
        if j == 0 {
            StepEstimate {
                eta,
                smoothness: start.smoothness,
                variance: start.variance,
                mapping_lower: start.lower_at(eta),
                martingale: start.martingale_at(eta),
            }
        } else {
            StepEstimate {
                eta,
                smoothness: start.smoothness.max(end.smoothness),
                variance: start.variance.max(end.variance),
                mapping_lower: start.lower_at(eta).min(end.lower_at(eta)),
                martingale: start.martingale_at(eta).max(end.martingale_at(eta)),
            }
        }
    })
}

/// Whether every step satisfies `0 < η_j < 2/L_j` with finite estimates.
pub fn step_condition(s: &StepEstimate) -> bool {
    [s.smoothness, s.variance, s.mapping_lower, s.martingale]
        .iter()
        .all(|v| v.is_finite())
        && s.eta > 0.0
        && s.eta * s.smoothness < 2.0
}

/// Sums over the steps of an averaged-bound window (Corollary 2).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AveragedSums {
    /// Σ w_j.
    pub weights: f64,
    /// Σ w_j·Ĝ_j (lower estimates).
    pub weighted_mapping: f64,
    /// Σ η_j σ_j².
    pub eta_variance: f64,
    /// Σ w_j σ_j².
    pub weight_variance: f64,
    /// Every step so far met the step condition.
    pub step_condition: bool,
}

impl AveragedSums {
    /// No steps yet.
    pub fn new() -> Self {
        Self {
            step_condition: true,
            ..Self::default()
        }
    }

    pub fn add(&mut self, s: &StepEstimate) {
        let w = s.weight();
        self.weights += w;
        self.weighted_mapping += w * s.mapping_lower;
        self.eta_variance += s.eta * s.variance;
        self.weight_variance += w * s.variance;
        self.step_condition &= step_condition(s);
    }
}

/// The averaged bound and its parts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AveragedBound {
    /// `Σ w_j Ĝ_j / Σ w_j`.
    pub lhs: f64,
    /// `(√(gap + Σησ²) + √(Σwσ²))²/Σw`; NaN when the step condition fails.
    pub rhs: f64,
    /// `gap/Σw`: the bound if there were no noise.
    pub rhs_opt: f64,
    /// `rhs − rhs_opt` ≥ 0: what the gradient noise adds (the cross term included).
    pub rhs_noise: f64,
    pub step_condition: bool,
}

/// Corollary 2 with per-step σ_j² and L_j: `Σ w‖𝒢‖²/Σw ≤ (√P + √N)²/Σw`,
/// `P = Ψ₀ − Ψ_low + Σ η_j σ_j²`, `N = Σ w_j σ_j²` (the minimum over the Young parameter α).
pub fn averaged_bound(s: &AveragedSums, objective_gap: f64) -> AveragedBound {
    let lhs = s.weighted_mapping / s.weights;
    let ok = s.step_condition && s.weights > 0.0 && objective_gap.is_finite();
    if !ok {
        return AveragedBound {
            lhs,
            rhs: f64::NAN,
            rhs_opt: f64::NAN,
            rhs_noise: f64::NAN,
            step_condition: false,
        };
    }
    let p = objective_gap + s.eta_variance;
    let n = s.weight_variance;
    // (√P + √N)², written so that N = 0 gives P exactly
    let rhs = (p + n + 2.0 * (p * n).sqrt()) / s.weights;
    let rhs_opt = objective_gap / s.weights;
    AveragedBound {
        lhs,
        rhs,
        rhs_opt,
        rhs_noise: (rhs - rhs_opt).max(0.0),
        step_condition: true,
    }
}

/// Inputs of the K-step descent check (Corollary 1) over the window between two probes.
#[derive(Clone, Copy, Debug)]
pub struct DescentInputs<'a> {
    /// η_j of every step of the window.
    pub lrs: &'a [f64],
    pub start: ProbeSample,
    pub end: ProbeSample,
    /// Standard error of the measured `Ψ(x_{k+K}) − Ψ(x_k)` over the probe batches.
    pub eval_se: f64,
    /// Standard deviations allowed for randomness (0 for a deterministic run).
    pub z: f64,
    /// The floating-point resolution of the measured Ψ difference, added to the tolerance.
    pub rounding: f64,
}

/// The right-hand side of the descent check, in parts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DescentBound {
    /// `−(1−α)·Q̂`, `Q̂ = Σ_j w_j Ĝ_j` from the lower estimates.
    pub opt_term: f64,
    /// `Σ_j η_j σ_j² + (1/α − 1)·Σ_j w_j σ_j²`.
    pub noise_term: f64,
    /// `z·√(Σ_j Var⟨δ_j, d̄_j⟩ + eval_se²) + rounding`.
    pub tolerance: f64,
    /// The Young parameter that minimises `opt_term + noise_term`.
    pub alpha: f64,
    pub step_condition: bool,
}

impl DescentBound {
    /// Whether a measured `Ψ(x_{k+K}) − Ψ(x_k)` satisfies the inequality (false when the
    /// step condition fails: the theorem then implies nothing).
    pub fn holds(&self, lhs: f64) -> bool {
        self.step_condition && lhs <= self.opt_term + self.noise_term + self.tolerance
    }
}

/// Corollary 1 over one window with [`window_steps`]' estimates: Q̂ from the lower side, the
/// noise and L from the upper side, so the predicted descent is never larger than the
/// theorem's and a reported violation is one the theorem would also report. The best α is
/// `√(N/Q̂)` (1 when Q̂ ≤ N), giving `E − (√Q̂ − √N)²`.
pub fn descent_bound(i: &DescentInputs<'_>) -> DescentBound {
    let (mut q, mut n, mut e, mut mart, mut ok) = (0.0, 0.0, 0.0, 0.0, i.eval_se.is_finite());
    for s in window_steps(&i.start, &i.end, i.lrs) {
        let w = s.weight();
        q += w * s.mapping_lower;
        n += w * s.variance;
        e += s.eta * s.variance;
        mart += s.martingale;
        ok &= step_condition(&s);
    }
    if !ok {
        return DescentBound {
            opt_term: f64::NAN,
            noise_term: f64::NAN,
            tolerance: f64::NAN,
            alpha: f64::NAN,
            step_condition: false,
        };
    }
    let (alpha, opt_term, noise_term) = if q <= n {
        (1.0, 0.0, e)
    } else if n == 0.0 {
        (0.0, -q, e)
    } else {
        let a = (n / q).sqrt();
        (a, -(1.0 - a) * q, e + (1.0 / a - 1.0) * n)
    };
    DescentBound {
        opt_term,
        noise_term,
        tolerance: i.z * (mart + i.eval_se * i.eval_se).sqrt() + i.rounding,
        alpha,
        step_condition: true,
    }
}

#[cfg(test)]
#[path = "inequalities_tests.rs"]
mod tests;
