//! The half-space step shared by OTO's HSPG, OTOv2's DHSPG and ATO's `half_space` projector
//! (docs/design.md §4, §5).
//!
//! After the base optimiser has moved every group from x_g to x̂_g, each *eligible* group g
//! (λ_g given) that was non-zero before the step takes the trial step and the half-space test
//!
//! ```text
//! x̂_g ← x̂_g − η·λ_g·x_g/‖x_g‖
//! x̂_g ← 0      if ⟨x̂_g, x_g⟩ < ε‖x_g‖²
//! ```
//!
//! and an eligible group that was zero before the step stays exactly zero. Groups that are not
//! eligible are left as the base step put them. A cap on the number of projections keeps the
//! groups deepest in the half-space (smallest `⟨x̂_g,x_g⟩/‖x_g‖²`, then gate, then channel).

use crate::groups::{row_dots, row_sums, GroupSet, GroupSnapshot};
use crate::prox::{row_directions, sub_scaled_rows, zero_rows};
use crate::{OptimError, Result};
use candle_core::Tensor;

/// Rows of the trial point `hat` that fail the half-space test, among the `eligible` rows
/// that were non-zero before the step: `⟨x̂_g, x_g⟩ < ε‖x_g‖²`. Returned as
/// `(⟨x̂_g,x_g⟩/‖x_g‖², g)`, deepest in the half-space first.
pub fn half_space_candidates(
    hat: &Tensor,
    x: &Tensor,
    eligible: &[bool],
    epsilon: f64,
) -> Result<Vec<(f64, usize)>> {
    let dots = row_dots(hat, x)?;
    let norms_sq = row_sums(&x.sqr()?)?;
    let mut candidates: Vec<(f64, usize)> = eligible
        .iter()
        .enumerate()
        .filter(|&(c, &e)| e && norms_sq[c] > 0.0)
        .filter(|&(c, _)| (dots[c] as f64) < epsilon * norms_sq[c] as f64)
        .map(|(c, _)| (dots[c] as f64 / norms_sq[c] as f64, c))
        .collect();
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    Ok(candidates)
}

/// The half-space projection of one gate: the rows found by [`half_space_candidates`] are set
/// to zero. Returns the new trial point and which rows were projected.
pub fn half_space_project(
    hat: &Tensor,
    x: &Tensor,
    eligible: &[bool],
    epsilon: f64,
) -> Result<(Tensor, Vec<bool>)> {
    let mut projected = vec![false; eligible.len()];
    for (_, c) in half_space_candidates(hat, x, eligible, epsilon)? {
        projected[c] = true;
    }
    Ok((zero_rows(hat, &projected)?, projected))
}

/// One half-space step with per-group strengths λ_g (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HalfSpaceStep {
    /// ε of the half-space test, in [0, 1).
    pub epsilon: f64,
}

impl HalfSpaceStep {
    pub fn new(epsilon: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&epsilon) {
            return Err(OptimError::Config(format!(
                "half-space ε = {epsilon} is outside [0, 1)"
            )));
        }
        Ok(Self { epsilon })
    }

    /// Applies the step to `groups` (which hold x̂, the base step's result) with `before` = x.
    ///
    /// `lambdas[ℓ][c]`: `None` leaves group c of gate ℓ alone; `Some(λ)` makes it eligible,
    /// pushes it by `η·λ·x/‖x‖` (λ = 0: projection only, the penalty is already in x̂) and
    /// half-space tests it. At most `limit` groups are projected (deepest first).
    /// Returns which groups were projected to zero, per gate.
    pub fn apply(
        &self,
        groups: &GroupSet,
        before: &GroupSnapshot,
        lambdas: &[Vec<Option<f64>>],
        lr: f64,
        limit: Option<usize>,
    ) -> Result<Vec<Vec<bool>>> {
        if lambdas.len() != groups.len() || before.per_gate.len() != groups.len() {
            return Err(OptimError::Config(format!(
                "half-space step: {} gates, {} λ rows, {} snapshots",
                groups.len(),
                lambdas.len(),
                before.per_gate.len()
            )));
        }
        let mut trial = Vec::with_capacity(groups.len());
        let mut candidates = Vec::new();
        for (l, ((gate, x), lam)) in groups
            .gates()
            .iter()
            .zip(&before.per_gate)
            .zip(lambdas)
            .enumerate()
        {
            if lam.len() != gate.width {
                return Err(OptimError::Config(format!(
                    "gate `{}` has {} groups, {} λ given",
                    gate.name,
                    gate.width,
                    lam.len()
                )));
            }
            let eligible: Vec<bool> = lam.iter().map(Option::is_some).collect();
            if !eligible.iter().any(|&e| e) {
                trial.push(None);
                continue;
            }
            let norms = row_sums(&x.sqr()?)?;
            let coef: Vec<f32> = lam
                .iter()
                .zip(&norms)
                .map(|(l, &n2)| match l {
                    Some(l) if n2 > 0.0 => (lr * l) as f32,
                    _ => 0.0,
                })
                .collect();
            let stay_zero: Vec<bool> = eligible
                .iter()
                .zip(&norms)
                .map(|(&e, &n2)| e && n2 == 0.0)
                .collect();
            let hat = sub_scaled_rows(&gate.values()?, &row_directions(x)?, &coef)?;
            let hat = zero_rows(&hat, &stay_zero)?;
            for (depth, c) in half_space_candidates(&hat, x, &eligible, self.epsilon)? {
                candidates.push((depth, l, c));
            }
            trial.push(Some(hat));
        }
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        if let Some(limit) = limit {
            candidates.truncate(limit);
        }
        let mut projected: Vec<Vec<bool>> = groups
            .gates()
            .iter()
            .map(|g| vec![false; g.width])
            .collect();
        for &(_, l, c) in &candidates {
            projected[l][c] = true;
        }
        for ((gate, hat), p) in groups.gates().iter().zip(trial).zip(&projected) {
            if let Some(hat) = hat {
                gate.set_values(&zero_rows(&hat, p)?)?;
            }
        }
        Ok(projected)
    }
}
