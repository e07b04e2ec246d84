//! Selection against a MACs budget: drop groups in a given order (least important first) until
//! the model's cost has fallen by a fraction of its full cost. One greedy routine serves HESSO's
//! FLOPs target and the magnitude baseline; [`round_kept`] adds "kept widths are multiples of
//! N" on top of it.
//!
//! A gate never loses its last group, so a selection is always a valid architecture; the
//! reduction reached overshoots the goal by less than the cost of the last group dropped
//! (less than one rounding step of one gate with [`round_kept`]).

use ato_zig::{Mask, WidthPolynomial};

/// The cost (MACs) of the model with `widths[ℓ]` channels kept in gate ℓ.
pub trait WidthCost {
    fn cost(&self, widths: &[usize]) -> u64;
}

/// The whole model's MACs, [`WidthPolynomial::eval`].
impl WidthCost for WidthPolynomial {
    fn cost(&self, widths: &[usize]) -> u64 {
        self.eval(widths)
    }
}

impl<F: Fn(&[usize]) -> u64> WidthCost for F {
    fn cost(&self, widths: &[usize]) -> u64 {
        self(widths)
    }
}

/// The cost reduction of `mask` as a share of the full model's cost.
pub fn reduction(cost: &dyn WidthCost, mask: &Mask) -> f64 {
    let full = cost.cost(&mask.widths());
    if full == 0 {
        return 0.0;
    }
    (full - cost.cost(&mask.kept_counts()).min(full)) as f64 / full as f64
}

/// Starting from `start` (whose dropped groups stay dropped), drops the groups
/// `(gate, channel)` of `order` one by one until the cost reduction is at least `fraction` of
/// the full cost, skipping a group that is its gate's last kept one.
pub fn drop_in_order(
    cost: &dyn WidthCost,
    start: &Mask,
    order: &[(usize, usize)],
    fraction: f64,
) -> Mask {
    let mut dropped = start.dropped();
    let mut kept = start.kept_counts();
    let full = cost.cost(&start.widths()) as f64;
    let goal = fraction * full;
    for &(l, c) in order {
        if full - cost.cost(&kept) as f64 >= goal {
            break;
        }
        if dropped[l][c] || kept[l] <= 1 {
            continue;
        }
        dropped[l][c] = true;
        kept[l] -= 1;
    }
    Mask::from_dropped(&dropped)
}

/// Kept counts allowed with `round_to = n` in a gate of `width`: multiples of n, or the full
/// width. The smallest allowed count ≥ `k`.
fn round_up(k: usize, n: usize, width: usize) -> usize {
    (k.div_ceil(n) * n).min(width)
}

/// The largest allowed count < `k`, if any.
fn step_down(k: usize, n: usize, width: usize) -> Option<usize> {
    let below = if k == width && !k.is_multiple_of(n) {
        k / n * n
    } else {
        k.saturating_sub(n)
    };
    (below >= n).then_some(below)
}

/// Rounds the kept count of every gate of `mask` (a selection made with `order`, e.g. by
/// [`drop_in_order`]) up to a multiple of `round_to` (or the full width), keeping each gate's
/// latest groups in `order`; then, walking `order` again, lowers the gate of each still-kept
/// group by one step of `round_to` until the reduction is at least `fraction` again. `order`
/// must list every group once.
pub fn round_kept(
    cost: &dyn WidthCost,
    mask: &Mask,
    order: &[(usize, usize)],
    fraction: f64,
    round_to: usize,
) -> Mask {
    let n = round_to.max(1);
    let widths = mask.widths();
    // rank[l][c]: position of group c among its gate's groups in `order`
    let mut rank: Vec<Vec<usize>> = widths.iter().map(|&w| vec![usize::MAX; w]).collect();
    let mut seen = vec![0usize; widths.len()];
    for &(l, c) in order {
        rank[l][c] = seen[l];
        seen[l] += 1;
    }
    debug_assert!(seen == widths, "`order` lists every group once");
    let mut kept: Vec<usize> = mask
        .kept_counts()
        .iter()
        .zip(&widths)
        .map(|(&k, &w)| round_up(k.max(1), n, w))
        .collect();
    let full = cost.cost(&widths) as f64;
    let goal = fraction * full;
    for &(l, c) in order {
        if full - cost.cost(&kept) as f64 >= goal {
            break;
        }
        if rank[l][c] < widths[l] - kept[l] {
            continue; // already dropped
        }
        if let Some(k) = step_down(kept[l], n, widths[l]) {
            kept[l] = k;
        }
    }
    Mask::from_keep(
        rank.iter()
            .zip(&kept)
            .zip(&widths)
            .map(|((r, &k), &w)| r.iter().map(|&p| p >= w - k).collect())
            .collect(),
    )
}
