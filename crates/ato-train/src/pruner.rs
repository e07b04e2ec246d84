//! [`Pruner`]: what a method does around the target's optimiser step. Dense does nothing,
//! OTO runs HSPG and OTOv2 runs DHSPG on the groups, ATO (see [`crate::ato`]) trains its
//! controller and applies the group prox. All of them prune the same gates and end with the
//! same compaction.

use crate::config::{Method, RunConfig};
use crate::TrainError;
use ato_models::Model;
use ato_optim::{Dhspg, DhspgConfig, GroupSet, GroupSnapshot, Hspg, HspgConfig, StateDict};
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
}

/// Per-epoch statistics of a pruner (controller loss and FLOPs regulariser for ATO).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PrunerStats {
    pub controller_loss: f64,
    pub flops_reg: f64,
}

/// A pruning method's part of the loop.
pub trait Pruner {
    /// Called before the first step of every epoch (also after a resume).
    fn begin_epoch(&mut self, _epoch: usize) -> Result<(), TrainError> {
        Ok(())
    }

    /// Whether [`Pruner::after_step`] needs the groups as they were before the step.
    fn needs_snapshot(&self, _epoch: usize) -> bool {
        false
    }

    /// Runs after every optimiser step of the target.
    fn after_step(&mut self, _ctx: StepContext<'_>) -> Result<(), TrainError> {
        Ok(())
    }

    /// The mask to multiply into the gated channels when measuring `masked_top1` (ATO's mask
    /// of the epoch); `None` when the model's own zeros are the mask.
    fn eval_mask(&self) -> Option<&[Vec<bool>]> {
        None
    }

    /// The channels kept if training ended now (1 = keep): ATO's mask, the non-zero groups
    /// for OTO/OTOv2, everything for dense.
    fn kept(&self, groups: &GroupSet) -> Result<Vec<Vec<bool>>, TrainError> {
        nonzero(groups)
    }

    /// λ_g of every group in the regulariser h the method is minimising (for the probes).
    fn penalty(&self, groups: &GroupSet, _epoch: usize) -> Vec<Vec<f64>> {
        zeros(groups)
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

fn zeros(groups: &GroupSet) -> Vec<Vec<f64>> {
    groups.gates().iter().map(|g| vec![0.0; g.width]).collect()
}

fn nonzero(groups: &GroupSet) -> Result<Vec<Vec<bool>>, TrainError> {
    Ok(groups
        .zero_groups()
        .map_err(optim_err)?
        .into_iter()
        .map(|z| z.into_iter().map(|z| !z).collect())
        .collect())
}

pub(crate) fn optim_err(e: ato_optim::OptimError) -> TrainError {
    match e {
        ato_optim::OptimError::Candle(e) => TrainError::Candle(e),
        ato_optim::OptimError::Zig(e) => TrainError::Zig(e),
        ato_optim::OptimError::Config(m) => TrainError::Config(m),
        other => TrainError::Io(other.to_string()),
    }
}

/// The dense baseline: nothing is pruned.
pub struct Dense;

impl Pruner for Dense {
    fn kept(&self, groups: &GroupSet) -> Result<Vec<Vec<bool>>, TrainError> {
        Ok(groups.gates().iter().map(|g| vec![true; g.width]).collect())
    }
}

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
            })
            .map_err(optim_err)?,
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
            .after_step(ctx.groups, before, ctx.lr, ctx.epoch >= self.n_p)
            .map_err(optim_err)?;
        Ok(())
    }

    fn penalty(&self, groups: &GroupSet, _epoch: usize) -> Vec<Vec<f64>> {
        let lam = self.hspg.config().lambda;
        groups.gates().iter().map(|g| vec![lam; g.width]).collect()
    }
}

/// OTOv2: DHSPG with the partition at `start_pruning`.
pub struct Otov2 {
    dhspg: Dhspg,
    start: usize,
}

const DHSPG_FILE: &str = "dhspg.safetensors";

impl Otov2 {
    pub fn new(cfg: &RunConfig) -> Result<Self, TrainError> {
        let o = &cfg.otov2;
        Ok(Self {
            dhspg: Dhspg::new(DhspgConfig {
                lambda: o.lambda,
                epsilon: o.epsilon,
                target: o.target_group_sparsity,
                ..DhspgConfig::default()
            })
            .map_err(optim_err)?,
            start: cfg.otov2_start(),
        })
    }
}

impl Pruner for Otov2 {
    fn needs_snapshot(&self, _epoch: usize) -> bool {
        true
    }

    fn after_step(&mut self, ctx: StepContext<'_>) -> Result<(), TrainError> {
        let before = ctx.before.expect("DHSPG asks for a snapshot");
        self.dhspg
            .after_step(ctx.groups, before, ctx.lr, ctx.epoch >= self.start)
            .map_err(optim_err)?;
        Ok(())
    }

    fn penalty(&self, groups: &GroupSet, _epoch: usize) -> Vec<Vec<f64>> {
        let lam = self.dhspg.config().lambda;
        let target = (self.dhspg.config().target * groups.total_groups() as f64).floor() as usize;
        // once the target sparsity is reached DHSPG stops regularising: h = 0
        let reached = groups.count_zero_groups().is_ok_and(|z| z >= target);
        match self.dhspg.redundant() {
            Some(_) if reached => zeros(groups),
            Some(r) => r
                .iter()
                .map(|g| g.iter().map(|&red| if red { lam } else { 0.0 }).collect())
                .collect(),
            None => zeros(groups),
        }
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        self.dhspg
            .state()
            .save(&dir.join(DHSPG_FILE))
            .map_err(optim_err)
    }

    fn load(&mut self, dir: &Path) -> Result<(), TrainError> {
        let s =
            StateDict::load(&dir.join(DHSPG_FILE), &candle_core::Device::Cpu).map_err(optim_err)?;
        self.dhspg.load_state(&s).map_err(optim_err)
    }
}

/// The pruner of `cfg.method`.
pub fn for_method(
    cfg: &RunConfig,
    model: &Model,
    train: &ato_data::Dataset,
) -> Result<Box<dyn Pruner>, TrainError> {
    Ok(match cfg.method {
        Method::Dense => Box::new(Dense),
        Method::Oto => Box::new(Oto::new(cfg)?),
        Method::Otov2 => Box::new(Otov2::new(cfg)?),
        Method::Ato => Box::new(crate::ato::Ato::new(cfg, model, train)?),
    })
}
