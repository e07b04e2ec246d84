//! The regulariser h and the deterministic proximal step `x̄⁺ − x` whose scaled norm is the
//! gradient mapping, in the Euclidean metric or a diagonal one.

use super::flat::{for_each_group, GroupLayout};
use crate::groups::GroupSet;

/// `h(x) = Σ_g λ_g‖x_g‖`.
pub(crate) fn group_norm_sum(
    x: &[f32],
    layout: &GroupLayout,
    groups: &GroupSet,
    penalty: &[Vec<f64>],
) -> f64 {
    let mut h = 0.0;
    for_each_group(layout, groups, penalty, |idx, lam| {
        if lam != 0.0 {
            h += lam
                * idx
                    .iter()
                    .map(|&i| (x[i] as f64).powi(2))
                    .sum::<f64>()
                    .sqrt();
        }
    });
    h
}

/// The step `d̄ = prox^H_{ηh}(x − ηH⁻¹g) − x` (H = I when `metric` is `None`), so that the
/// gradient mapping is `𝒢 = −d̄/η`.
pub(crate) fn prox_step(
    x: &[f32],
    grad: &[f64],
    eta: f64,
    metric: Option<&[f64]>,
    (layout, groups, penalty): (&GroupLayout, &GroupSet, &[Vec<f64>]),
) -> Vec<f64> {
    let h = |i: usize| metric.map_or(1.0, |m| m[i]);
    let mut y: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| v as f64 - eta * grad[i] / h(i))
        .collect();
    for_each_group(layout, groups, penalty, |idx, lam| {
        if lam == 0.0 {
            return;
        }
        let hy: Vec<(f64, f64)> = idx.iter().map(|&i| (h(i), y[i])).collect();
        for (&i, v) in idx.iter().zip(group_prox_in_metric(&hy, eta * lam)) {
            y[i] = v;
        }
    });
    y.iter().zip(x).map(|(&p, &v)| p - v as f64).collect()
}

/// `argmin_u τ‖u‖ + ½ Σ h_i (u_i − y_i)²` for one group given `(h_i, y_i)`: zero when
/// `‖Hy‖ ≤ τ`; otherwise `u_i = h_i y_i / (h_i + s)` with s > 0 solving
/// `Σ (s·h_i y_i/(h_i + s))² = τ²` (monotone in s; bisection). With all `h_i` equal to c this
/// is `y·max(0, 1 − τ/(c‖y‖))`, computed in closed form.
pub fn group_prox_in_metric(hy: &[(f64, f64)], tau: f64) -> Vec<f64> {
    let norm_hy = hy.iter().map(|(h, y)| (h * y).powi(2)).sum::<f64>().sqrt();
    if norm_hy <= tau {
        return vec![0.0; hy.len()];
    }
    if tau == 0.0 {
        return hy.iter().map(|&(_, y)| y).collect();
    }
    if let Some(&(c, _)) = hy.first() {
        if hy.iter().all(|&(h, _)| h == c) {
            let factor = 1.0 - tau / norm_hy;
            return hy.iter().map(|&(_, y)| y * factor).collect();
        }
    }
    let phi = |s: f64| -> f64 {
        hy.iter()
            .map(|&(h, y)| (s * h * y / (h + s)).powi(2))
            .sum::<f64>()
    };
    let target = tau * tau;
    let (mut lo, mut hi) = (0.0, 1.0);
    while phi(hi) < target {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if phi(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let s = 0.5 * (lo + hi);
    hy.iter().map(|&(h, y)| h * y / (h + s)).collect()
}
