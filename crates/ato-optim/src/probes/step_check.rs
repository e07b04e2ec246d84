//! The per-step check (docs/design.md §6): did the step the optimiser took solve its own proximal
//! subproblem? No noise term enters, so a wrong learning rate, a flipped gradient, a wrong λ,
//! an inverted mask or momentum leaking into a momentum-free run each fail it by a computable
//! margin, at the step where they happen.
//!
//! # What is checked
//!
//! Keep the step's inputs — `x_k`, the mini-batch gradient `g` it used, `η_k`, the weights
//! `λ_g` of `h = Σ λ_g‖x_g‖` and (Adam) the diagonal metric `H = √v̂ + ε` of the step — and
//! recompute in f64 the point the step must reach, for a momentum-free step:
//!
//! ```text
//! SGD:    y = x_k − η(g + wd·x_k)                  (coupled decay on the decayed parameters)
//! AdamW:  y = (1 − η·wd)·x_k − η·H⁻¹g              (decoupled decay; β₁ = 0 so m̂ = g)
//! x*    = argmin_u ½‖u − y‖² + η·h(u)              (group soft-thresholding, groupwise)
//! ```
//!
//! i.e. `x*` is the unique minimiser of the step's subproblem
//! `⟨g̃, u − x_k⟩ + (1/2η)‖u − x_k‖²_D + h(u)` with `D = I` (SGD) and, for AdamW as implemented,
//! the gradient part taken in `H` and the prox in the Euclidean norm (the regime table flags
//! `prox_in_metric` for AdamW; this check verifies the step the code claims to take). The
//! subproblem is `1/η`-strongly convex, so `x*` is its only solution and the distance
//! `r = ‖x_{k+1} − x*‖₂` is zero for an exact step.
//!
//! # The tolerance, and what a pass means
//!
//! The step runs in f32. With `u = 2⁻²⁴` the unit round-off, each coordinate of the base step
//! (at most four rounded operations: decay, sum, scale, subtraction; AdamW's division and
//! bias correction add three) is off by at most `8u(|x_i| + |η·g̃_i|)`. The prox multiplies a
//! group by `1 − τ/‖y_g‖` with `‖y_g‖` from an f32 sum of `D_g` squares (relative error at
//! most `(D_g/2 + 1)u`), which moves coordinate i by at most `(D_g + 4)·u·|y_i − x*_i|` (the
//! shrink itself is `|y_i − x*_i|`). The check's tolerance is the norm of these per-coordinate
//! bounds,
//!
//! ```text
//! t = ‖ u·(8(|x_i| + |η·g̃_i|) + (D_g + 4)·|y_i − x*_i|) ‖₂ ,
//! ```
//!
//! and the step holds when `r ≤ t`. **`t` is the smallest defect the check can detect:** a
//! step that differs from the exact one by a vector δ fails once `‖δ‖ > 2t` (then
//! `r ≥ ‖δ‖ − t > t`). The margins of the documented faults (`convergence.inject`):
//!
//! | fault | `x_{k+1} − x*` ≈ | caught when |
//! |---|---|---|
//! | η ×20 | `−19η·D⁻¹g̃` (and a 20× shrink) | `19η‖D⁻¹g̃‖ > 2t` |
//! | flipped gradient | `+2η·D⁻¹g` | `2η‖D⁻¹g‖ > 2t` |
//! | λ ×10 | `−9ηλ_g·x_g/‖x_g‖` on the shrunk groups | `9η‖λ‖ > 2t` over non-zero penalised groups |
//! | inverted mask | the shrink moved from the masked to the kept groups | `η‖λ‖ > 2t` |
//! | momentum 0.9 leaking | `−0.9η·b_{k−1}` (SGD), `m̂ ≠ g` (AdamW) | `0.9η‖b‖ > 2t` |
//!
//! Since `t/‖η·g̃‖ ≈ 8u·‖x‖/‖ηg̃‖ + …`, a step whose length is above `~10⁻⁵‖x‖` resolves any of
//! them; `ratio = r/t` is reported so a reader sees how far from the edge each step was.

use super::flat::{self, for_each_group, GroupLayout};
use super::mapping::group_prox_in_metric;
use crate::groups::GroupSet;
use crate::params::ParamSet;
use crate::Result;
use candle_core::backprop::GradStore;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// The unit round-off of f32.
const UNIT_ROUNDOFF: f64 = 1.0 / (1u64 << 24) as f64;

/// `x_k` and the gradient of one step, taken just before the optimiser moves.
pub struct StepCapture {
    x: Vec<f32>,
    grad: Vec<f32>,
}

impl StepCapture {
    /// The parameters and the raw loss gradient (no weight decay) the step is about to use.
    pub fn take(params: &ParamSet, grads: &GradStore) -> Result<Self> {
        let x = flat::values(params)?;
        let no_decay = vec![false; x.len()];
        let grad = flat::flatten_grads(params, grads, &x, &no_decay, 0.0)?;
        Ok(Self { x, grad })
    }
}

impl StepCapture {
    /// The Euclidean secant of `∇f = g + wd·x` (decay on the decayed parameters) from this
    /// step's point to `next`'s: `‖∇f(x') − ∇f(x)‖/‖x' − x‖` (NaN when the points coincide).
    /// Meaningful only when both gradients are of the same deterministic f.
    pub fn secant_to(&self, next: &StepCapture, params: &ParamSet, weight_decay: f64) -> f64 {
        let decayed = flat::decay_mask(params);
        let (mut dg, mut dx) = (0f64, 0f64);
        let points = self
            .x
            .iter()
            .zip(&next.x)
            .zip(self.grad.iter().zip(&next.grad));
        for (((&x0, &x1), (&g0, &g1)), &d) in points.zip(&decayed) {
            let (x0, x1) = (x0 as f64, x1 as f64);
            let wd = if d { weight_decay } else { 0.0 };
            let g0 = g0 as f64 + wd * x0;
            let g1 = g1 as f64 + wd * x1;
            dg += (g1 - g0).powi(2);
            dx += (x1 - x0).powi(2);
        }
        if dx == 0.0 {
            f64::NAN
        } else {
            (dg / dx).sqrt()
        }
    }
}

/// The rule the step claims to follow.
pub struct StepRule<'a> {
    /// η_k as configured (the schedule's value).
    pub lr: f64,
    /// Weight decay on the decayed parameters.
    pub weight_decay: f64,
    /// AdamW's diagonal metric `√v̂ + ε` of this step, per parameter name; `None` for SGD.
    pub preconditioner: Option<&'a [(String, Tensor)]>,
    /// Whether the decay is decoupled (AdamW) rather than added to the gradient.
    pub decoupled_decay: bool,
    pub groups: &'a GroupSet,
    /// λ_g of h for every group of every gate (0 where h does not act).
    pub penalty: &'a [Vec<f64>],
}

/// The verdict on one step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepVerdict {
    /// 0-based index of the step.
    pub step: u64,
    /// `r = ‖x_{k+1} − x*‖₂`.
    pub residual: f64,
    /// `t`, the f32 rounding allowance: the smallest detectable defect.
    pub tolerance: f64,
    /// `‖x_{k+1} − x_k‖₂`, the length of the step taken.
    pub step_length: f64,
}

impl StepVerdict {
    /// `r / t` (≤ 1: the step solved its subproblem).
    pub fn ratio(&self) -> f64 {
        self.residual / self.tolerance.max(f64::MIN_POSITIVE)
    }

    pub fn holds(&self) -> bool {
        self.residual <= self.tolerance
    }
}

/// Checks the step from `capture` to the parameters' current values against `rule`.
pub fn check_step(
    step: u64,
    capture: &StepCapture,
    params: &ParamSet,
    rule: &StepRule<'_>,
) -> Result<StepVerdict> {
    let after = flat::values(params)?;
    let decayed = flat::decay_mask(params);
    let metric = match rule.preconditioner {
        Some(pre) if !pre.is_empty() => Some(flat::flatten_preconditioner(params, pre)?),
        _ => None,
    };
    let layout = flat::group_layout(params, rule.groups)?;
    let (base, y) = base_step(capture, &decayed, metric.as_deref(), rule);
    let exact = prox(&y, rule, &layout);
    let mut group_dim = vec![1usize; y.len()];
    for_each_group(&layout, rule.groups, rule.penalty, |idx, _| {
        let d = idx.len();
        for i in idx {
            group_dim[i] = d;
        }
    });
    let (mut r2, mut t2, mut s2) = (0f64, 0f64, 0f64);
    for i in 0..y.len() {
        let x = capture.x[i] as f64;
        let e = after[i] as f64 - exact[i];
        let shrink = (y[i] - exact[i]).abs();
        let t = UNIT_ROUNDOFF
            * (8.0 * (x.abs() + base[i].abs()) + (group_dim[i] as f64 + 4.0) * shrink);
        r2 += e * e;
        t2 += t * t;
        s2 += (after[i] as f64 - x).powi(2);
    }
    Ok(StepVerdict {
        step,
        residual: r2.sqrt(),
        tolerance: t2.sqrt(),
        step_length: s2.sqrt(),
    })
}

/// The base step `η·g̃` (per coordinate, as subtracted from x) and the point `y` it reaches.
fn base_step(
    capture: &StepCapture,
    decayed: &[bool],
    metric: Option<&[f64]>,
    rule: &StepRule<'_>,
) -> (Vec<f64>, Vec<f64>) {
    let (eta, wd) = (rule.lr, rule.weight_decay);
    let n = capture.x.len();
    let mut base = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let x = capture.x[i] as f64;
        let g = capture.grad[i] as f64;
        let decay = if decayed[i] { wd * x } else { 0.0 };
        let h = metric.map_or(1.0, |m| m[i]);
        let (coupled, decoupled) = if rule.decoupled_decay {
            (0.0, decay)
        } else {
            (decay, 0.0)
        };
        let step = eta * ((g + coupled) / h + decoupled);
        base.push(step);
        y.push(x - step);
    }
    (base, y)
}

/// The Euclidean group prox of `η·h` at `y`.
fn prox(y: &[f64], rule: &StepRule<'_>, layout: &GroupLayout) -> Vec<f64> {
    let mut out = y.to_vec();
    for_each_group(layout, rule.groups, rule.penalty, |idx, lam| {
        if lam == 0.0 {
            return;
        }
        let hy: Vec<(f64, f64)> = idx.iter().map(|&i| (1.0, y[i])).collect();
        for (&i, v) in idx.iter().zip(group_prox_in_metric(&hy, rule.lr * lam)) {
            out[i] = v;
        }
    });
    out
}

/// The step checks of one probe window: how many steps, the worst one and the first that
/// failed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepWindow {
    pub checked: usize,
    /// The step with the largest `r/t`.
    pub worst: Option<StepVerdict>,
    /// The first step with `r > t`.
    pub first_violation: Option<StepVerdict>,
}

impl StepWindow {
    pub fn add(&mut self, v: StepVerdict) {
        self.checked += 1;
        if self.worst.is_none_or(|w| v.ratio() > w.ratio()) {
            self.worst = Some(v);
        }
        if !v.holds() && self.first_violation.is_none() {
            self.first_violation = Some(v);
        }
    }
}
