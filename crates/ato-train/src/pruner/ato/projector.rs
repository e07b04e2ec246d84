//! ATO's projection of the masked groups after every target step: the group prox (or HSPG's
//! half-space step with ATO's per-gate weights), and the documented faults of
//! `convergence.inject` that act on it.

use super::Ato;
use crate::config::{Fault, Projector};
use crate::pruner::StepContext;
use crate::TrainError;
use ato_optim::{GroupProx, HalfSpaceStep};
use ato_zig::Mask;

impl Ato {
    /// The prox (or half-space projector) on the groups masked by `m_e`.
    pub(super) fn project(&self, ctx: &StepContext<'_>, lambda: f64) -> Result<(), TrainError> {
        match self.projector {
            Projector::Prox => {
                // the negative controls of the convergence checks (`convergence.inject`)
                // (only the inverted mask is built; every other step uses the epoch's own)
                let inverted;
                let (mask, lambda) = match ctx.fault {
                    Fault::LambdaX10 => (&self.mask, 10.0 * lambda),
                    Fault::InvertMask => {
                        inverted = Mask::from_dropped(self.mask.gates());
                        (&inverted, lambda)
                    }
                    _ => (&self.mask, lambda),
                };
                GroupProx::apply(ctx.groups, mask, lambda, ctx.lr)?;
            }
            Projector::HalfSpace => {
                let before = ctx
                    .before
                    .expect("the half-space projector asks for a snapshot");
                // HSPG's trial step and half-space test on the masked groups, with ATO's
                // per-gate weights λ·ratio_ℓ; masked groups that were zero stay zero
                let ratios = GroupProx::gate_ratios(&self.mask);
                let lambdas: Vec<Vec<Option<f64>>> = self
                    .mask
                    .gates()
                    .iter()
                    .zip(ratios)
                    .map(|(keep, r)| keep.iter().map(|&k| (!k).then_some(lambda * r)).collect())
                    .collect();
                HalfSpaceStep::new(self.epsilon)?
                    .apply(ctx.groups, before, &lambdas, ctx.lr, None)?;
            }
        }
        Ok(())
    }
}
