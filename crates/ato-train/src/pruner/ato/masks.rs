//! The masks of ATO: each epoch's mask drawn from the controller (rounded to `prune.round_to`),
//! the settling steps at the end of the window, and the budget check of the mask that freezes.

use super::{Ato, EPOCH_MASK_STREAM, SETTLE_CHUNK};
use crate::config::EpochMask;
use crate::finish::flops_within;
use crate::TrainError;
use ato_controller::{eval_masks, sample_masks};
use ato_data::mix_seed;
use ato_models::Model;
use ato_zig::{KeptChannels, Mask};
use candle_core::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

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

    /// The controller's deterministic mask now.
    pub fn current_mask(&self) -> Result<Mask, TrainError> {
        let z = self.controller.logits()?;
        self.rounded(eval_masks(&z, self.controller.config())?, &z)
    }

    /// The mask of epoch `epoch` as `ato.epoch_mask` draws it from the controller now.
    pub fn epoch_mask(&self, epoch: usize) -> Result<Mask, TrainError> {
        self.draw_mask(epoch, 0)
    }

    /// Draw `attempt` of the mask of epoch `epoch` (attempt 0 is the epoch's own mask; later
    /// ones are the settling redraws).
    pub(super) fn draw_mask(&self, epoch: usize, attempt: u64) -> Result<Mask, TrainError> {
        match self.epoch_mask {
            EpochMask::Deterministic => self.current_mask(),
            EpochMask::Sampled => {
                let z = self.controller.logits()?;
                let mut stream = vec![self.seed, EPOCH_MASK_STREAM, epoch as u64];
                if attempt > 0 {
                    stream.push(attempt);
                }
                let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(&stream));
                let mask = sample_masks(&z, self.controller.config(), &mut rng)?.hard_mask()?;
                self.rounded(mask, &z)
            }
        }
    }

    /// Settling at the end of the window: extra controller steps until the mask that will
    /// freeze is within the tolerance of the target, or the cap is reached.
    pub(super) fn settle(&mut self, model: &Model, epoch: usize) -> Result<(), TrainError> {
        let (rho, tol) = self.target;
        let misses = |ato: &Self, m: &Mask| !flops_within(ato.reduction(m), rho, tol);
        // θ is read after every chunk: each waits for its steps
        self.lane.join()?;
        let mut candidate = match self.epoch_mask {
            EpochMask::Sampled => self.mask.clone(),
            EpochMask::Deterministic => self.current_mask()?,
        };
        let mut attempt = 0;
        while misses(self, &candidate) && self.settled < self.settle_cap {
            let chunk = SETTLE_CHUNK.min(self.settle_cap - self.settled);
            for _ in 0..chunk {
                self.controller_step(model, self.settle_lr_mult)?;
            }
            self.lane.join()?;
            self.settled += chunk;
            attempt += 1;
            candidate = self.draw_mask(epoch, attempt)?;
        }
        if self.epoch_mask == EpochMask::Sampled {
            self.mask = candidate;
        }
        Ok(())
    }

    /// The MACs reduction of `mask` (at least one channel kept per gate, as compaction does).
    pub(super) fn reduction(&self, mask: &Mask) -> f64 {
        let full = self.macs.eval(&mask.widths()) as f64;
        1.0 - self.macs.eval(&KeptChannels::from_mask(mask).widths()) as f64 / full
    }

    /// The frozen mask, once T_end has passed.
    pub fn frozen_mask(&self) -> Option<&Mask> {
        self.frozen.as_ref()
    }

    /// The budget check at T_end: one warning line when the frozen mask misses the target.
    pub(super) fn check_target(&self, frozen: &Mask) {
        let (rho, tol) = self.target;
        let got = self.reduction(frozen);
        if !flops_within(got, rho, tol) {
            eprintln!(
                "warning: ATO's mask froze at epoch {} removing {:.1}% of the MACs; the target \
                 is {:.1}% ± {:.1} ({} controller steps were planned, {} settling steps taken; \
                 raise ato.min_controller_steps, ato.settle_steps, ato.controller_lr or \
                 ato.gamma)",
                self.epoch,
                100.0 * got,
                100.0 * rho,
                100.0 * tol,
                self.plan.total(),
                self.settled
            );
        }
    }
}
