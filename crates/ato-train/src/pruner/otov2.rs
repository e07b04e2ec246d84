//! OTOv2 (Chen et al., ICLR 2023): DHSPG on the groups (docs/design.md §5).

use super::{no_penalty, Pruner, StepContext};
use crate::config::{OptimizerName, RunConfig};
use crate::{recipe, TrainError};
use ato_models::Model;
use ato_optim::{DecoupledDecay, Dhspg, DhspgConfig, GroupSet, StateDict};
use std::path::Path;

/// OTOv2: DHSPG with the partition at `start_pruning`.
pub struct Otov2 {
    dhspg: Dhspg,
    start: usize,
    /// AdamW's decoupled decay, taken out of the base step's direction.
    decay: DecoupledDecay,
}

const DHSPG_FILE: &str = "dhspg.safetensors";

impl Otov2 {
    /// DHSPG with the reference's defaults for the run's base optimiser (SGD: λ 1e-3,
    /// amplify 2, hat 10; AdamW: λ 1e-2, amplify 20, hat 1e3), `otov2.*` keys on top.
    pub fn new(cfg: &RunConfig, model: &Model) -> Result<Self, TrainError> {
        let o = &cfg.otov2;
        let (defaults, decoupled) = match cfg.optim.name {
            OptimizerName::Sgd => (DhspgConfig::for_sgd(), 0.0),
            OptimizerName::Adamw => (DhspgConfig::for_adamw(), cfg.optim.weight_decay),
        };
        Ok(Self {
            dhspg: Dhspg::new(DhspgConfig {
                lambda: cfg.otov2_lambda(),
                epsilon: o.epsilon,
                target: o.target_group_sparsity,
                ..defaults
            })?,
            start: cfg.otov2_start(),
            decay: DecoupledDecay::new(&recipe::param_set(cfg, model), decoupled),
        })
    }
}

impl Pruner for Otov2 {
    fn needs_snapshot(&self, _epoch: usize) -> bool {
        true
    }

    fn after_step(&mut self, ctx: StepContext<'_>) -> Result<(), TrainError> {
        let before = ctx.before.expect("DHSPG asks for a snapshot");
        self.dhspg.after_step(
            ctx.groups,
            before,
            ctx.lr,
            ctx.epoch >= self.start,
            &self.decay,
        )?;
        Ok(())
    }

    fn penalty(&self, groups: &GroupSet, _epoch: usize) -> Vec<Vec<f64>> {
        let lam = self.dhspg.config().lambda;
        let target = (self.dhspg.config().target * groups.total_groups() as f64).floor() as usize;
        // once the target sparsity is reached DHSPG stops regularising: h = 0
        let reached = groups.count_zero_groups().is_ok_and(|z| z >= target);
        match self.dhspg.redundant() {
            Some(_) if reached => no_penalty(groups),
            Some(r) => r
                .iter()
                .map(|g| g.iter().map(|&red| if red { lam } else { 0.0 }).collect())
                .collect(),
            None => no_penalty(groups),
        }
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        Ok(self.dhspg.state().save(&dir.join(DHSPG_FILE))?)
    }

    fn load(&mut self, dir: &Path) -> Result<(), TrainError> {
        let s = StateDict::load(&dir.join(DHSPG_FILE), &candle_core::Device::Cpu)?;
        Ok(self.dhspg.load_state(&s)?)
    }
}
