//! [`Pruner`]: what a method does around the target's optimiser step, one module per method:
//! [`dense`] does nothing, [`oto`] runs HSPG and [`otov2`] DHSPG on the groups, [`hesso`]
//! shrinks the least salient groups to a MACs target, [`magnitude`] drops the lowest-norm
//! groups once, [`ato`] trains its controller and applies the group prox. All of them prune the same gates and end with
//! the same compaction.

pub mod ato;
pub mod dense;
pub mod hesso;
pub mod magnitude;
pub mod oto;
pub mod otov2;

use crate::config::{Fault, Method, RunConfig};
use crate::TrainError;
use ato_models::Model;
use ato_optim::{GroupSet, GroupSnapshot, Optimizer};
use ato_zig::Mask;
use candle_core::backprop::GradStore;
use std::path::Path;

/// The moment of a step, as a pruner sees it.
pub struct StepContext<'a> {
    pub model: &'a Model,
    pub groups: &'a GroupSet,
    /// The groups before the base step, when [`Pruner::needs_snapshot`] asked for them.
    pub before: Option<&'a GroupSnapshot>,
    /// η of the step just taken.
    pub lr: f64,
    pub epoch: usize,
    /// 0-based index of the step just taken.
    pub step: u64,
    /// The fault injected into this step (`convergence.inject`; [`Fault::None`] outside its
    /// window): ATO's prox reads `lambda_x10` and `invert_mask`.
    pub fault: Fault,
}

/// The moment between the backward pass and the base optimiser step.
pub struct GradContext<'a> {
    pub groups: &'a GroupSet,
    /// The gradients the base step is about to take; a pruner may add to them.
    pub grads: &'a mut GradStore,
    pub optimizer: &'a mut dyn Optimizer,
    pub epoch: usize,
    /// Whether this is the first step of the epoch.
    pub first_in_epoch: bool,
}

/// What ATO's controller cost over the run (the `summary.csv` columns of an ATO row).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ControllerRecord {
    /// Controller steps taken, settling included.
    pub steps: u64,
    /// Of those, the extra steps of settling at the end of the window.
    pub settle_steps: u64,
    /// Images of the controller's subset D_c.
    pub images: usize,
    /// Wall-clock seconds spent in controller steps (across resumes).
    pub seconds: f64,
}

/// Per-epoch statistics of a pruner (controller loss and FLOPs regulariser for ATO).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PrunerStats {
    pub controller_loss: f64,
    pub flops_reg: f64,
    /// Controller steps taken in the epoch.
    pub controller_steps: usize,
}

/// A pruning method's part of the loop.
pub trait Pruner {
    /// Called before the first step of every epoch (also after a resume).
    fn begin_epoch(&mut self, _epoch: usize) -> Result<(), TrainError> {
        Ok(())
    }

    /// Called after the epoch's last step and its evaluation, before [`Pruner::stats`],
    /// [`Pruner::kept`] and [`Pruner::save`] read the pruner: work left running in the
    /// background (ATO's controller steps) finishes here.
    fn end_epoch(&mut self) -> Result<(), TrainError> {
        Ok(())
    }

    /// Whether [`Pruner::after_step`] needs the groups as they were before the step.
    fn needs_snapshot(&self, _epoch: usize) -> bool {
        false
    }

    /// Runs before every optimiser step of the target, on its gradients: a method whose
    /// regulariser enters the gradient (HSPG, so that momentum carries it) adds it here.
    fn before_step(&mut self, _ctx: GradContext<'_>) -> Result<(), TrainError> {
        Ok(())
    }

    /// Runs after every optimiser step of the target.
    fn after_step(&mut self, _ctx: StepContext<'_>) -> Result<(), TrainError> {
        Ok(())
    }

    /// The mask to multiply into the gated channels when measuring `masked_top1` (ATO's mask
    /// of the epoch); `None` when the model's own zeros are the mask.
    fn eval_mask(&self) -> Option<&Mask> {
        None
    }

    /// The channels kept if training ended now (1 = keep): ATO's mask, the non-zero groups
    /// for OTO/OTOv2, everything for dense.
    fn kept(&self, groups: &GroupSet) -> Result<Mask, TrainError> {
        Ok(groups.nonzero_mask()?)
    }

    /// λ_g of every group in the regulariser h the method is minimising (for the probes).
    fn penalty(&self, groups: &GroupSet, _epoch: usize) -> Vec<Vec<f64>> {
        no_penalty(groups)
    }

    /// ATO's controller cost over the run; `None` for the other methods.
    fn controller_record(&self) -> Option<ControllerRecord> {
        None
    }

    /// Statistics of the epoch so far.
    fn stats(&self) -> PrunerStats {
        PrunerStats::default()
    }

    /// Writes the pruner's state into the checkpoint folder.
    fn save(&self, _dir: &Path) -> Result<(), TrainError> {
        Ok(())
    }

    /// Restores the state written by [`Pruner::save`].
    fn load(&mut self, _dir: &Path) -> Result<(), TrainError> {
        Ok(())
    }
}

/// λ_g = 0 for every group: no regulariser.
pub(crate) fn no_penalty(groups: &GroupSet) -> Vec<Vec<f64>> {
    groups.gates().iter().map(|g| vec![0.0; g.width]).collect()
}

/// The pruner of `cfg.method`; `controller_thread`: ATO's controller steps run beside the
/// training on a CPU device (the same numbers, see `ato::stepper`).
pub fn for_method(
    cfg: &RunConfig,
    model: &Model,
    train: &ato_data::Dataset,
    steps_per_epoch: usize,
    controller_thread: bool,
) -> Result<Box<dyn Pruner>, TrainError> {
    Ok(match cfg.method {
        Method::Dense => Box::new(dense::Dense),
        Method::Oto => Box::new(oto::Oto::new(cfg)?),
        Method::Otov2 => Box::new(otov2::Otov2::new(cfg, model)?),
        Method::Ato => Box::new(
            ato::Ato::new(cfg, model, train, steps_per_epoch)?
                .with_controller_thread(controller_thread),
        ),
        Method::Hesso => Box::new(hesso::HessoPruner::new(cfg, model, steps_per_epoch)?),
        Method::Magnitude => Box::new(magnitude::Magnitude::new(cfg, model, cfg.round_to())?),
    })
}
