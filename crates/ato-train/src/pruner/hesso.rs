//! HESSO (OTOv3, Chen et al. 2023) on the groups: the least salient groups are shrunk to exact
//! zeros over `hesso.periods` periods from `hesso.start_epoch`, until the model's MACs have
//! fallen by `prune.target_flops_reduction` ([`ato_optim::Hesso`] with a MACs target, so the
//! target is reached by construction).

use super::{Pruner, StepContext};
use crate::config::{OptimizerName, RunConfig};
use crate::{recipe, TrainError};
use ato_models::Model;
use ato_optim::{DecoupledDecay, GroupSet, Hesso, HessoConfig, HessoTarget, StateDict};
use ato_zig::{Mask, WidthPolynomial};
use std::path::Path;
use std::sync::Arc;

const HESSO_FILE: &str = "hesso.safetensors";

/// HESSO after the base step of every target step.
pub struct HessoPruner {
    hesso: Hesso,
    /// AdamW's decoupled decay, taken out of the saliency's direction (as in the reference).
    decay: DecoupledDecay,
}

impl HessoPruner {
    /// HESSO for a run of `cfg` on `model` with `steps_per_epoch` steps per epoch. HESSO itself
    /// keeps any width; with `prune.round_to` > 1 the run's final selection is rounded up after
    /// training (exactly-zero groups re-admitted, see `finish`), which costs FLOPs↓.
    pub fn new(cfg: &RunConfig, model: &Model, steps_per_epoch: usize) -> Result<Self, TrainError> {
        let per_epoch = steps_per_epoch as u64;
        let config = HessoConfig {
            start_step: cfg.hesso_start() as u64 * per_epoch,
            pruning_steps: cfg.hesso_pruning_epochs() as u64 * per_epoch,
            periods: cfg.hesso.periods,
        };
        if config.pruning_steps < config.periods as u64 {
            return Err(TrainError::Config(format!(
                "hesso.periods: {} periods need at least as many steps, the pruning epochs have {}",
                config.periods, config.pruning_steps
            )));
        }
        let target = match cfg.hesso.target_group_sparsity {
            Some(share) => HessoTarget::GroupSparsity(share),
            None => HessoTarget::Macs {
                reduction: cfg.prune.target_flops_reduction,
                cost: Arc::new(WidthPolynomial::macs(model.arch())),
            },
        };
        let decoupled = match cfg.optim.name {
            OptimizerName::Sgd => 0.0,
            OptimizerName::Adamw => cfg.optim.weight_decay,
        };
        Ok(Self {
            hesso: Hesso::new(config, target, &model.arch().gate_widths())?
                .with_last_group(cfg.hesso.last_group)
                .map_err(|e| TrainError::Config(format!("hesso.last_group: {e}")))?,
            decay: DecoupledDecay::new(&recipe::param_set(cfg, model), decoupled),
        })
    }
}

impl Pruner for HessoPruner {
    fn needs_snapshot(&self, _epoch: usize) -> bool {
        self.hesso.needs_snapshot()
    }

    fn after_step(&mut self, ctx: StepContext<'_>) -> Result<(), TrainError> {
        self.hesso
            .after_step(ctx.groups, ctx.before, ctx.lr, &self.decay)?;
        Ok(())
    }

    /// The groups neither pruned nor being shrunk: a run that ends mid-period drops the
    /// active groups too, so the final mask always meets the periods' goal so far.
    fn kept(&self, _groups: &GroupSet) -> Result<Mask, TrainError> {
        Ok(self.hesso.kept())
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        Ok(self.hesso.state().save(&dir.join(HESSO_FILE))?)
    }

    fn load(&mut self, dir: &Path) -> Result<(), TrainError> {
        let s = StateDict::load(&dir.join(HESSO_FILE), &candle_core::Device::Cpu)?;
        Ok(self.hesso.load_state(&s)?)
    }
}
