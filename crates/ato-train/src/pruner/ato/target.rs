//! ATO's masks against its budget: `prune.round_to` applied to a mask from the controller's
//! logits, the MACs reduction a mask achieves, and the check of the frozen mask at T_end.

use super::Ato;
use crate::TrainError;
use ato_zig::{KeptChannels, Mask};
use candle_core::Tensor;

impl Ato {
    /// `mask` with every gate's kept count rounded up to a multiple of `prune.round_to`, the
    /// dropped channels with the highest logits `z` re-admitted first; unchanged for 1.
    pub(super) fn rounded(&self, mask: Mask, z: &[Tensor]) -> Result<Mask, TrainError> {
        if self.round_to <= 1 {
            return Ok(mask);
        }
        let scores = z
            .iter()
            .map(|t| t.to_vec1::<f32>())
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(mask.round_kept_up(&scores, self.round_to))
    }

    /// The MACs reduction of `mask` (at least one channel kept per gate, as compaction does).
    pub(super) fn reduction(&self, mask: &Mask) -> f64 {
        let full = self.macs.eval(&mask.widths()) as f64;
        1.0 - self.macs.eval(&KeptChannels::from_mask(mask).widths()) as f64 / full
    }

    /// The budget check at T_end: one warning line when the frozen mask misses the target.
    pub(super) fn check_target(&self, frozen: &Mask) {
        let (rho, tol) = self.target;
        let got = self.reduction(frozen);
        if (got - rho).abs() > tol {
            eprintln!(
                "warning: ATO's mask froze at epoch {} removing {:.1}% of the MACs; the target \
                 is {:.1}% ± {:.1} ({} controller steps were planned; raise \
                 ato.min_controller_steps, ato.controller_lr or ato.gamma)",
                self.epoch,
                100.0 * got,
                100.0 * rho,
                100.0 * tol,
                self.plan.total()
            );
        }
    }
}
