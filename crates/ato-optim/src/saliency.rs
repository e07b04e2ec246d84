//! Group saliency scores for selection-based pruning (higher = more important):
//! HESSO's five criteria and the magnitude baseline's `‖x_g‖/√D_g`, with the ascending order
//! (least important first) both select in.

use crate::groups::{row_dots, row_sums, GroupSet};
use crate::Result;
use candle_core::Tensor;

/// HESSO's safeguard ε in its normalisers and cosine.
const SAFE: f64 = 1e-8;

/// HESSO's default weights of (magnitude, avg magnitude, cosine, Taylor 1, Taylor 2).
pub const HESSO_WEIGHTS: [f64; 5] = [0.2; 5];

/// HESSO's importance of every group from the point `x` and the base step's direction `d` of
/// each gate (`(C, D)` each):
///
/// ```text
/// magnitude ‖x‖,  avg magnitude ‖x‖/(D + 1e-6),  cosine ⟨x,d⟩/((‖x‖+1e-8)(‖d‖+1e-8)) + 1,
/// Taylor-1 |⟨x,d⟩|,  Taylor-2 ½|⟨x,d⟩|²
/// ```
///
/// each divided by `√(1e-8 + Σ_all s²) + 1e-8` over all groups, weighted by 0.2 and summed.
pub fn hesso_saliency(xs: &[Tensor], ds: &[Tensor]) -> Result<Vec<Vec<f64>>> {
    let mut raw: Vec<Vec<[f64; 5]>> = Vec::with_capacity(xs.len());
    for (x, d) in xs.iter().zip(ds) {
        let dim = x.dim(1)? as f64;
        let dots = row_dots(x, d)?;
        let xn = row_sums(&x.sqr()?)?;
        let dn = row_sums(&d.sqr()?)?;
        raw.push(
            (0..dots.len())
                .map(|g| {
                    let (xn, dn, dot) =
                        ((xn[g] as f64).sqrt(), (dn[g] as f64).sqrt(), dots[g] as f64);
                    let t1 = dot.abs();
                    [
                        xn,
                        xn / (dim + 1e-6),
                        dot / (xn + SAFE) / (dn + SAFE) + 1.0,
                        t1,
                        0.5 * t1 * t1,
                    ]
                })
                .collect(),
        );
    }
    let mut denom = [SAFE; 5];
    for s in raw.iter().flatten() {
        for k in 0..5 {
            denom[k] += s[k] * s[k];
        }
    }
    let denom = denom.map(|d| d.sqrt() + SAFE);
    Ok(raw
        .iter()
        .map(|gate| {
            gate.iter()
                .map(|s| (0..5).map(|k| HESSO_WEIGHTS[k] * s[k] / denom[k]).sum())
                .collect()
        })
        .collect())
}

/// The magnitude baseline's importance `‖x_g‖/√D_g` of every group.
pub fn magnitude_importance(groups: &GroupSet) -> Result<Vec<Vec<f64>>> {
    groups
        .gates()
        .iter()
        .map(|g| {
            let dim = (g.group_dim() as f64).sqrt();
            Ok(g.norms_sq()?
                .into_iter()
                .map(|n2| (n2 as f64).sqrt() / dim)
                .collect())
        })
        .collect()
}

/// Every group `(gate, channel)` by ascending score; equal scores by gate, then channel.
pub fn ascending_order(scores: &[Vec<f64>]) -> Vec<(usize, usize)> {
    let mut all: Vec<(f64, usize, usize)> = scores
        .iter()
        .enumerate()
        .flat_map(|(l, s)| s.iter().enumerate().map(move |(c, &v)| (v, l, c)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    all.into_iter().map(|(_, l, c)| (l, c)).collect()
}
