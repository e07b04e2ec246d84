//! The FLOPs regulariser R(r, p) = log(max(r, p) / min(r, p)) = |log r − log p|, with the
//! authors' dead band: r is clamped out of (p − δ, p + δ) on the side it lies, so inside the
//! band the penalty is a constant `log((p+δ)/p)` or `log(p/(p−δ))` and its gradient is zero —
//! the FLOPs term switches off at the target and lets the cross-entropy decide there
//! (`utils.py`, `Flops_constraint_resnet*`, δ = 0.005). δ = 0 is the plain |log r − log p|.
//!
//! r is the prunable MACs kept by a mask over the prunable MACs of the full model; p is the
//! ratio that meets the user's target FLOPs reduction ρ once the non-prunable MACs are counted:
//! `p = ((1 − ρ) · F_total − F_nonprunable) / F_prunable`.
//!
//! With `prune.round_to = N > 1` ([`FlopsRegulariser::with_round_to`]) r counts each gate's
//! rounded width, the width its compact model will have: the polynomial is evaluated at
//! [`Mask::rounded_count`]`(⌈Σ m_ℓ⌉, N, C_ℓ)` = ⌈Σ m_ℓ / N⌉·N capped at C_ℓ (N when Σ m_ℓ = 0)
//! instead of Σ m_ℓ, with a straight-through gradient (the value of the rounded width, the
//! gradient of Σ m_ℓ), so the controller pays for the channels the rounding adds back.

use crate::ControllerError;
use ato_zig::{Arch, Mask, WidthPolynomial};
use candle_core::Tensor;

/// The smallest kept-MACs ratio the penalty takes the logarithm of.
pub const MIN_RATIO: f64 = 1e-6;

/// R(r, p) on plain numbers.
pub fn log_ratio_penalty(r: f64, p: f64) -> f64 {
    (r.max(p) / r.min(p)).ln()
}

/// The prunable-MACs ratio target p for a FLOPs reduction ρ.
pub fn target_ratio(
    macs: &WidthPolynomial,
    full_widths: &[usize],
    rho: f64,
) -> Result<f64, ControllerError> {
    if !(rho > 0.0 && rho < 1.0) {
        return Err(ControllerError::Target(format!(
            "prune.target_flops_reduction = {rho} is outside (0, 1)"
        )));
    }
    let prunable = macs.prunable(full_widths) as f64;
    let total = macs.eval(full_widths) as f64;
    let fixed = macs.constant as f64;
    let p = ((1.0 - rho) * total - fixed) / prunable;
    if p <= 0.0 {
        return Err(ControllerError::Target(format!(
            "prune.target_flops_reduction = {rho} is unreachable: {:.1}% of the MACs are not prunable",
            100.0 * fixed / total
        )));
    }
    Ok(p)
}

/// γ · R(r, p) for masks over the gates of an architecture.
#[derive(Clone, Debug)]
pub struct FlopsRegulariser {
    macs: WidthPolynomial,
    full_prunable: f64,
    target: f64,
    dead_band: f64,
    round_to: usize,
}

impl FlopsRegulariser {
    /// The regulariser for `arch` (at its full widths) and target reduction ρ.
    pub fn new(arch: &Arch, rho: f64) -> Result<Self, ControllerError> {
        let macs = WidthPolynomial::macs(arch);
        let widths = arch.gate_widths();
        let target = target_ratio(&macs, &widths, rho)?;
        Ok(Self {
            full_prunable: macs.prunable(&widths) as f64,
            macs,
            target,
            dead_band: 0.0,
            round_to: 1,
        })
    }

    /// The same regulariser counting widths rounded up to multiples of `n` (see the module
    /// docs); `n` ≤ 1 counts the widths as they are.
    pub fn with_round_to(mut self, n: usize) -> Self {
        self.round_to = n.max(1);
        self
    }

    /// The same regulariser with a dead band of half-width δ around p (see the module docs).
    pub fn with_dead_band(mut self, delta: f64) -> Result<Self, ControllerError> {
        if !(delta >= 0.0 && delta < self.target) {
            return Err(ControllerError::Target(format!(
                "ato.dead_band = {delta} must be in [0, p) with p = {:.4}",
                self.target
            )));
        }
        self.dead_band = delta;
        Ok(self)
    }

    /// δ, the half-width of the dead band.
    pub fn dead_band(&self) -> f64 {
        self.dead_band
    }

    /// p, the prunable-MACs ratio to reach.
    pub fn target(&self) -> f64 {
        self.target
    }

    /// r for (soft or straight-through hard) masks, differentiable: the polynomial evaluated
    /// at the mask sums.
    pub fn ratio(&self, masks: &[Tensor]) -> Result<Tensor, ControllerError> {
        let widths: Vec<Tensor> = masks
            .iter()
            .map(|m| {
                let sum = m.sum_all()?;
                if self.round_to <= 1 {
                    return Ok(sum);
                }
                let kept = sum.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
                let whole = (kept - 1e-4).ceil().max(0.0) as usize;
                let rounded = Mask::rounded_count(whole, self.round_to, m.dim(0)?) as f64;
                // value of the rounded width, gradient of the sum
                sum.affine(1.0, rounded - kept)
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(self
            .macs
            .prunable_tensor(&widths)?
            .affine(1.0 / self.full_prunable, 0.0)?)
    }

    /// R(r, p), differentiable in the masks, with the dead band. r is clamped to at least
    /// [`MIN_RATIO`], so a sample that masks every gated channel gives a large but finite
    /// penalty (and a finite gradient) instead of −log 0.
    pub fn penalty(&self, masks: &[Tensor]) -> Result<Tensor, ControllerError> {
        let r = self.ratio(masks)?;
        let (p, d) = (self.target, self.dead_band);
        let above = r.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()? > p;
        Ok(if above {
            // log(max(r, p + δ) / p)
            r.clamp(p + d, f64::INFINITY)?.log()?.affine(1.0, -p.ln())?
        } else {
            // log(p / min(r, p − δ))
            r.clamp(MIN_RATIO, (p - d).max(MIN_RATIO))?
                .log()?
                .affine(-1.0, p.ln())?
        })
    }

    /// r for a boolean mask, exactly.
    pub fn ratio_of(&self, mask: &Mask) -> f64 {
        let kept: Vec<usize> = if self.round_to <= 1 {
            mask.kept_counts()
        } else {
            mask.kept_counts()
                .iter()
                .zip(mask.widths())
                .map(|(&k, w)| Mask::rounded_count(k, self.round_to, w))
                .collect()
        };
        self.macs.prunable(&kept) as f64 / self.full_prunable
    }
}
