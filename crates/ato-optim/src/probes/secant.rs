//! Smoothness estimates: secants `‖∇f(y) − ∇f(x)‖_{H⁻¹}/‖y − x‖_H` on the probe batches (both
//! gradients on the same batches, so the batch noise cancels to first order). Every secant is a
//! lower bound of the true L (of L_H in the metric), measured on the free coordinates.

use super::flat::{self, BatchStats};
use crate::params::ParamSet;
use crate::Result;
use candle_core::backprop::GradStore;
use candle_core::Tensor;

/// A Euclidean and a metric smoothness estimate (equal when H = I).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Smoothness {
    pub euclid: f64,
    pub metric: f64,
}

impl Smoothness {
    pub fn max(self, o: Smoothness) -> Smoothness {
        Smoothness {
            euclid: self.euclid.max(o.euclid),
            metric: self.metric.max(o.metric),
        }
    }
}

/// `(Σ Δg²/h, Σ h·Δx², Σ Δg², Σ Δx²)` over the coordinates in `keep` → the two ratios.
fn ratio(
    dg: impl Fn(usize) -> f64,
    dx: impl Fn(usize) -> f64,
    keep: impl Fn(usize) -> bool,
    metric: &[f64],
) -> Option<Smoothness> {
    let (mut g_m, mut x_m, mut g_e, mut x_e) = (0f64, 0f64, 0f64, 0f64);
    for (i, &h) in metric.iter().enumerate() {
        if !keep(i) {
            continue;
        }
        let (g, x) = (dg(i), dx(i));
        g_m += g * g / h;
        x_m += h * x * x;
        g_e += g * g;
        x_e += x * x;
    }
    (x_e > 0.0).then(|| Smoothness {
        euclid: (g_e / x_e).sqrt(),
        metric: (g_m / x_m).sqrt(),
    })
}

/// The secant from x to `y = x + u`, u the deterministic proximal step on the free
/// coordinates (or `−ηH⁻¹∇f` there when that step is zero): the curvature along the direction
/// the descent lemma is applied to, available at every probe including the first. The
/// parameters are set to y, `loss_and_grads` runs on the same batches, and the parameters are
/// restored exactly (copies of the original tensors).
///
/// The same pass returns `Var_b⟨g_b(y), u⟩`, the spread of the batch gradients along the
/// step: the martingale variance `E⟨δ, d̄⟩²` of one step, measured one step away from x (the
/// noise changes little over one step; measuring it at x would need every batch gradient kept).
pub(crate) fn along_step<F>(
    params: &ParamSet,
    x: &[f32],
    at_x: &BatchStats,
    step: &[f64],
    (eta, free, metric): (f64, &[bool], &[f64]),
    (decayed, wd): (&[bool], f64),
    loss_and_grads: &mut F,
) -> Result<(Smoothness, f64)>
where
    F: FnMut(usize) -> Result<(f64, GradStore)>,
{
    let mut u: Vec<f64> = step.to_vec();
    if u.iter().all(|&v| v == 0.0) {
        u = (0..x.len())
            .map(|i| {
                if free[i] {
                    -eta * at_x.mean[i] / metric[i]
                } else {
                    0.0
                }
            })
            .collect();
    }
    let y: Vec<f32> = x
        .iter()
        .zip(&u)
        .map(|(&a, &d)| (a as f64 + d) as f32)
        .collect();
    if y == x {
        return Ok((Smoothness::default(), 0.0));
    }
    let saved: Vec<Tensor> = params
        .iter()
        .map(|p| p.var.as_tensor().copy())
        .collect::<candle_core::Result<_>>()?;
    flat::set_values(params, &y)?;
    let at_y = flat::values(params).and_then(|y| {
        let s = flat::batch_stats(
            at_x.losses.len(),
            params,
            &y,
            (decayed, wd),
            (metric, Some(&u)),
            loss_and_grads,
        )?;
        Ok((y, s))
    });
    for (p, t) in params.iter().zip(&saved) {
        p.var.set(t)?;
    }
    let (y, at_y) = at_y?;
    let l = ratio(
        |i| at_y.mean[i] - at_x.mean[i],
        |i| y[i] as f64 - x[i] as f64,
        |i| free[i],
        metric,
    )
    .unwrap_or_default();
    Ok((l, at_y.projection_variance()))
}

/// The secant between the previous probe point and this one, on the coordinates that are not
/// exactly zero at both (the displacement lies in that subspace).
pub(crate) fn between(
    prev_x: &[f32],
    prev_grad: &[f32],
    x: &[f32],
    grad: &[f64],
    metric: &[f64],
) -> Smoothness {
    ratio(
        |i| grad[i] - prev_grad[i] as f64,
        |i| x[i] as f64 - prev_x[i] as f64,
        |i| !(x[i] == 0.0 && prev_x[i] == 0.0),
        metric,
    )
    .unwrap_or_default()
}
