//! The magnitude-pruning baseline's selection: which groups to drop to reach a FLOPs (MACs)
//! reduction, by importance `‖x_g‖/√D_g` ([`crate::saliency::magnitude_importance`]).
//!
//! - [`MagnitudeScope::Global`]: groups are dropped by ascending importance across gates.
//! - [`MagnitudeScope::PerGate`]: every gate keeps the same share of its groups, rounded: with
//!   gate ℓ's groups ranked by ascending importance, its (j+1)-th drop happens when the common
//!   keep ratio r falls below `1 − (j + ½)/w_ℓ` (where `round(r·w_ℓ)` steps down), so the drops
//!   of all gates interleave by `(j + ½)/w_ℓ` (equal keys: gate, then rank).
//!
//! Both run the shared greedy [`drop_in_order`] (≥ 1 group kept per gate); `round_to = N > 1`
//! then makes every kept width a multiple of N or the full width ([`round_kept`]).

use crate::budget::{drop_in_order, round_kept, WidthCost};
use crate::groups::GroupSet;
use crate::saliency::{ascending_order, magnitude_importance};
use crate::{OptimError, Result};
use ato_zig::Mask;
use std::cmp::Ordering;

/// Where importances are compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MagnitudeScope {
    #[default]
    Global,
    PerGate,
}

/// A magnitude selection: the MACs reduction to reach (a share of the full model's cost), the
/// scope and the kept-width granularity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MagnitudeSelection {
    /// Target reduction of the cost, in [0, 1).
    pub reduction: f64,
    pub scope: MagnitudeScope,
    /// Kept widths are multiples of this (or the full width); 1 = any width.
    pub round_to: usize,
}

impl Default for MagnitudeSelection {
    fn default() -> Self {
        Self {
            reduction: 0.5,
            scope: MagnitudeScope::Global,
            round_to: 1,
        }
    }
}

/// The drop order of [`MagnitudeScope::PerGate`] for `importance` per gate.
pub fn per_gate_order(importance: &[Vec<f64>]) -> Vec<(usize, usize)> {
    // (gate, rank j, channel), the channel being the gate's j-th least important
    let mut all: Vec<(usize, usize, usize)> = Vec::new();
    for (l, imp) in importance.iter().enumerate() {
        for (j, (_, c)) in ascending_order(std::slice::from_ref(imp))
            .into_iter()
            .enumerate()
        {
            all.push((l, j, c));
        }
    }
    let w = |l: usize| importance[l].len() as u128;
    // (j + ½)/w_l compared exactly: (2j + 1)·w_m vs (2i + 1)·w_l
    all.sort_by(|a, b| {
        let ka = (2 * a.1 as u128 + 1) * w(b.0);
        let kb = (2 * b.1 as u128 + 1) * w(a.0);
        match ka.cmp(&kb) {
            Ordering::Equal => (a.0, a.1).cmp(&(b.0, b.1)),
            o => o,
        }
    });
    all.into_iter().map(|(l, _, c)| (l, c)).collect()
}

impl MagnitudeSelection {
    fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.reduction) || self.round_to == 0 {
            return Err(OptimError::Config(format!(
                "magnitude selection needs a reduction in [0, 1) and round_to ≥ 1 (got {self:?})"
            )));
        }
        Ok(())
    }

    /// The keep mask (`true` = keep) of the groups' current values.
    pub fn select(&self, groups: &GroupSet, cost: &dyn WidthCost) -> Result<Mask> {
        self.select_by_importance(&magnitude_importance(groups)?, cost)
    }

    /// The keep mask for the given importance per gate.
    pub fn select_by_importance(
        &self,
        importance: &[Vec<f64>],
        cost: &dyn WidthCost,
    ) -> Result<Mask> {
        self.validate()?;
        let order = match self.scope {
            MagnitudeScope::Global => ascending_order(importance),
            MagnitudeScope::PerGate => per_gate_order(importance),
        };
        let full = Mask::full(&importance.iter().map(Vec::len).collect::<Vec<_>>());
        let mut mask = drop_in_order(cost, &full, &order, self.reduction);
        if self.round_to > 1 {
            mask = round_kept(cost, &mask, &order, self.reduction, self.round_to);
        }
        Ok(mask)
    }
}
