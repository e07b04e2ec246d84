//! OTO (Chen et al., NeurIPS 2021): HSPG on the groups (docs/design.md §5), as the authors' code
//! runs it: the group-lasso subgradient enters the gradient before the base step (so momentum
//! carries it), and from `n_p` on the half-space projection follows every step.

use super::{GradContext, Pruner, StepContext};
use crate::config::RunConfig;
use crate::TrainError;
use ato_optim::{GroupSet, Hspg, HspgConfig};

/// OTO: HSPG, subgradient stage before `n_p`, half-space stage from `n_p` on.
pub struct Oto {
    hspg: Hspg,
    n_p: usize,
}

impl Oto {
    pub fn new(cfg: &RunConfig) -> Result<Self, TrainError> {
        let o = &cfg.oto;
        Ok(Self {
            hspg: Hspg::new(HspgConfig {
                lambda: o.lambda,
                epsilon: o.epsilon,
            })?,
            n_p: cfg.oto_n_p(),
        })
    }
}

impl Pruner for Oto {
    fn needs_snapshot(&self, epoch: usize) -> bool {
        epoch >= self.n_p
    }

    /// λ·x/‖x‖ enters the gradient in both stages; the half-space stage starts with a fresh
    /// momentum buffer, as in the reference.
    fn before_step(&mut self, ctx: GradContext<'_>) -> Result<(), TrainError> {
        if ctx.epoch == self.n_p && ctx.first_in_epoch {
            ctx.optimizer.reset_momentum();
        }
        self.hspg.add_penalty_to_grads(ctx.groups, ctx.grads)?;
        Ok(())
    }

    fn after_step(&mut self, ctx: StepContext<'_>) -> Result<(), TrainError> {
        if ctx.epoch >= self.n_p {
            let before = ctx
                .before
                .expect("HSPG's half-space stage asks for a snapshot");
            self.hspg.project(ctx.groups, before)?;
        }
        Ok(())
    }

    fn penalty(&self, groups: &GroupSet, _epoch: usize) -> Vec<Vec<f64>> {
        let lam = self.hspg.config().lambda;
        groups.gates().iter().map(|g| vec![lam; g.width]).collect()
    }
}
