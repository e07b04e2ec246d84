//! ATO's group proximal step (docs/design.md §4) and the row operations on `(C, D)` group matrices
//! that the group steps share.
//!
//! For the mask m of the epoch, let z_ℓ be the number of masked (m = 0) groups of gate ℓ and
//! `ratio_ℓ = z_ℓ / Σ_k z_k`. Each masked group is shrunk towards zero,
//!
//! ```text
//! W_g ← W_g · max(0, ‖W_g‖ − λ·ratio_ℓ·η) / ‖W_g‖
//! ```
//!
//! which is the proximal operator of `η·λ·ratio_ℓ·‖W_g‖`; once the threshold exceeds the norm,
//! the group is set to exactly zero (a multiplication by 0.0).

use crate::groups::GroupSet;
use crate::Result;
use ato_zig::Mask;
use candle_core::Tensor;

/// What one proximal step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxStats {
    /// Masked groups shrunk but still non-zero.
    pub shrunk: usize,
    /// Masked groups that are exactly zero after the step.
    pub zeroed: usize,
}

/// ATO's proximal step on the masked groups.
#[derive(Clone, Copy, Debug, Default)]
pub struct GroupProx;

impl GroupProx {
    /// `ratio_ℓ = z_ℓ / Σ z`, z_ℓ the channels `mask` drops in gate ℓ; all zeros when nothing
    /// is dropped.
    pub fn gate_ratios(mask: &Mask) -> Vec<f64> {
        let zeros = mask.dropped_counts();
        let total: usize = zeros.iter().sum();
        zeros
            .iter()
            .map(|&z| {
                if total == 0 {
                    0.0
                } else {
                    z as f64 / total as f64
                }
            })
            .collect()
    }

    /// The shrink factor of a group of norm `norm` under threshold `tau`.
    pub fn factor(norm: f64, tau: f64) -> f64 {
        if norm <= tau || norm == 0.0 {
            0.0
        } else {
            (norm - tau) / norm
        }
    }

    /// One proximal step with strength λ at learning rate η on the groups `mask` drops.
    pub fn apply(groups: &GroupSet, mask: &Mask, lambda: f64, lr: f64) -> Result<ProxStats> {
        let ratios = Self::gate_ratios(mask);
        let mut stats = ProxStats::default();
        for ((gate, mask), ratio) in groups.gates().iter().zip(mask.gates()).zip(ratios) {
            if ratio == 0.0 {
                continue;
            }
            let tau = lambda * ratio * lr;
            let norms = gate.norms_sq()?;
            let factors: Vec<f32> = mask
                .iter()
                .zip(&norms)
                .map(|(&keep, &n2)| {
                    if keep {
                        return 1.0;
                    }
                    let f = Self::factor((n2 as f64).sqrt(), tau);
                    if f == 0.0 {
                        stats.zeroed += 1;
                    } else {
                        stats.shrunk += 1;
                    }
                    f as f32
                })
                .collect();
            gate.scale(&Tensor::from_vec(factors, gate.width, gate.device())?)?;
        }
        Ok(stats)
    }
}

/// Rows of a `(C, D)` matrix multiplied by 0 where `zero[c]`.
pub fn zero_rows(m: &Tensor, zero: &[bool]) -> Result<Tensor> {
    if !zero.iter().any(|&z| z) {
        return Ok(m.clone());
    }
    let keep: Vec<f32> = zero.iter().map(|&z| if z { 0.0 } else { 1.0 }).collect();
    let keep = Tensor::from_vec(keep, (zero.len(), 1), m.device())?.to_dtype(m.dtype())?;
    Ok(m.broadcast_mul(&keep)?)
}

/// `x_g / ‖x_g‖` for every non-zero row of a `(C, D)` matrix (zero rows stay zero): the
/// gradient of `Σ_g ‖x_g‖` where it exists.
pub fn row_directions(x: &Tensor) -> Result<Tensor> {
    row_directions_guarded(x, 0.0)
}

/// `x_g / (‖x_g‖ + guard)` for every non-zero row, zero rows staying zero (OTO's reference
/// adds `guard = 1e-6` to the norm of its penalty term).
pub fn row_directions_guarded(x: &Tensor, guard: f64) -> Result<Tensor> {
    let norms: Vec<f32> = crate::groups::row_sums(&x.sqr()?)?
        .into_iter()
        .map(|n2| {
            if n2 > 0.0 {
                (1.0 / ((n2 as f64).sqrt() + guard)) as f32
            } else {
                0.0
            }
        })
        .collect();
    let inv = Tensor::from_vec(norms, (x.dim(0)?, 1), x.device())?.to_dtype(x.dtype())?;
    Ok(x.broadcast_mul(&inv)?)
}

/// `m − Σ_c coef[c]·dir_c` row-wise: `m_c − coef[c]·dir_c` for a `(C, D)` matrix.
pub fn sub_scaled_rows(m: &Tensor, dir: &Tensor, coef: &[f32]) -> Result<Tensor> {
    let c = Tensor::from_vec(coef.to_vec(), (coef.len(), 1), m.device())?.to_dtype(m.dtype())?;
    Ok((m - dir.broadcast_mul(&c)?)?)
}
