//! OTO (Chen et al., NeurIPS 2021): HSPG on the groups (DESIGN.md §5).

use super::{Pruner, StepContext};
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
    fn needs_snapshot(&self, _epoch: usize) -> bool {
        true
    }

    fn after_step(&mut self, ctx: StepContext<'_>) -> Result<(), TrainError> {
        let before = ctx.before.expect("HSPG asks for a snapshot");
        self.hspg
            .after_step(ctx.groups, before, ctx.lr, ctx.epoch >= self.n_p)?;
        Ok(())
    }

    fn penalty(&self, groups: &GroupSet, _epoch: usize) -> Vec<Vec<f64>> {
        let lam = self.hspg.config().lambda;
        groups.gates().iter().map(|g| vec![lam; g.width]).collect()
    }
}
