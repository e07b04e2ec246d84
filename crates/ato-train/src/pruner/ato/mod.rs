//! ATO's part of the loop (docs/design.md §4): the controller learns on a seeded subset of the
//! training set, the mask of each epoch drives the group prox, and the mask freezes at T_end.
//!
//! - T_start ≤ e < T_end: controller steps as [`plan::ControllerPlan`] schedules them, each on
//!   a batch of D_c: `J(θ) = CE(f(x; W, y)) + γ·R(r, p)` with the target in eval mode on frozen
//!   weights ([`Model::forward_frozen`]: no weight gradient is computed), the relaxed mask y
//!   in the cross-entropy and r from an independent hard sample (`ato.ce_mask = "hard"`: one
//!   straight-through sample for both), R with the dead band, AdamW on θ only, its lr dropped
//!   at `ato.controller_lr_drop`. The batch size and an lr factor come from the plan
//!   ([`plan::ControllerPlan::batch_size`], [`plan::ControllerPlan::lr_scale`]).
//! - e ≥ T_prox: after every target step, the group prox (or the half-space projector) on the
//!   groups the epoch's mask m_e drops, with λ_e (× lambda_final_mult from the λ switch) and
//!   the step's η. m_e is drawn at the start of the epoch: a hard sample with the controller's
//!   noise (`ato.epoch_mask = "sampled"`, the authors) or 1[z + b ≥ 0] ("deterministic").
//! - The last target step of the window, with `hyper_step = "auto"`: if the mask that would
//!   freeze misses the target by more than `prune.tolerance`, the controller settles — up to
//!   `ato.settle_steps` extra steps at `ato.settle_lr_mult` × the window's lr, the candidate
//!   mask redrawn (a fresh sample of stream
//!   `(seed, T_end − 1, attempt)`, or the deterministic mask) every [`SETTLE_CHUNK`] steps,
//!   until it is within the tolerance. The frozen mask is still one the controller drew.
//! - e ≥ T_end: m_e is the frozen mask — the mask of epoch T_end − 1 when sampled, the
//!   controller's mask at T_end when deterministic. Its MACs reduction is checked against the
//!   target (± `prune.tolerance`); a miss is one warning line and `target_met = false`.
//!
//! With `prune.round_to = N > 1` every mask (sampled, deterministic, hence the frozen one)
//! keeps its gate's kept channels plus the highest-logit dropped ones up to a multiple of N
//! ([`Mask::round_kept_up`] with the logits z as scores), and the FLOPs term counts the
//! rounded widths ([`FlopsRegulariser::with_round_to`]).
//!
//! Randomness comes from counters, not from stream state: controller batch c is batch
//! `c mod B` of the subset's pass `c / B`, its noise is drawn from a ChaCha stream seeded by
//! `(seed, c)` and the epoch mask's from `(seed, e)`, so a resumed run draws exactly what an
//! uninterrupted one would.

mod masks;
pub mod plan;
mod projector;
mod stepper;

use super::{Pruner, PrunerStats, StepContext};
use crate::config::{EpochMask, Projector, RunConfig};
use crate::schedule::AtoSchedule;
use crate::TrainError;
use ato_controller::{Controller, ControllerConfig, FlopsRegulariser};
use ato_data::{mix_seed, Dataset, Loader, LoaderConfig};
use ato_models::Model;
use ato_optim::{
    AdamW, AdamWConfig, DecayRule, GroupProx, GroupSet, Optimizer, ParamSet, StateDict,
};
use ato_zig::{Mask, WidthPolynomial};
use candle_core::Device;
use plan::ControllerPlan;
use std::path::Path;
use stepper::{Lane, StepJob, Stepper};

const CONTROLLER_FILE: &str = "controller.safetensors";
const CONTROLLER_OPT_FILE: &str = "controller_optimizer.safetensors";

/// ATO's controller, regulariser, masks and their schedule.
pub struct Ato {
    schedule: AtoSchedule,
    plan: ControllerPlan,
    projector: Projector,
    epsilon: f64,
    epoch_mask: EpochMask,
    /// ρ and its tolerance, for the check at T_end.
    target: (f64, f64),
    /// `prune.round_to`: kept counts are multiples of this.
    round_to: usize,
    macs: WidthPolynomial,
    seed: u64,
    device: Device,
    /// θ, shared with the stepper; read (masks) only while no step runs.
    controller: Controller,
    /// p, the prunable-MACs ratio the regulariser aims for.
    target_ratio: f64,
    /// |D_c|.
    subset_len: usize,
    /// The steps' optimiser and subset, here or on the worker thread.
    lane: Lane,
    /// Controller steps taken (or queued) so far.
    controller_steps: u64,
    /// The factor on the controller's lr ([`ControllerPlan::lr_scale`]).
    lr_scale: f64,
    /// The cap on settling steps at the end of the window (0 = no settling).
    settle_cap: u64,
    /// `ato.settle_lr_mult`: the factor on the lr of the settling steps.
    settle_lr_mult: f64,
    /// Settling steps taken.
    settled: u64,
    /// m_e, the mask of the current epoch.
    mask: Mask,
    frozen: Option<Mask>,
    /// The current epoch (for error messages).
    epoch: usize,
}

/// Where the epoch mask's noise stream starts.
const EPOCH_MASK_STREAM: u64 = 0xE9;

/// Settling steps between two redraws of the candidate mask.
pub const SETTLE_CHUNK: u64 = 10;

impl Ato {
    /// ATO for a run of `cfg` on `model`, with `steps_per_epoch` target steps per epoch.
    pub fn new(
        cfg: &RunConfig,
        model: &Model,
        train: &Dataset,
        steps_per_epoch: usize,
    ) -> Result<Self, TrainError> {
        let a = &cfg.ato;
        let widths = model.arch().gate_widths();
        let ctrl_cfg = ControllerConfig {
            noise: a.noise,
            shared_norm: a.shared_norm,
            ..ControllerConfig::default()
        };
        let seed = mix_seed(&[cfg.seed, 0xC0_47_01]);
        let controller = Controller::new(&widths, ctrl_cfg, model.device(), seed)
            .map_err(|e| TrainError::Config(format!("controller: {e}")))?;
        let optimizer = AdamW::new(
            ParamSet::new(controller.trainable_vars(), DecayRule::ExcludeBnAndBias),
            AdamWConfig {
                weight_decay: a.controller_weight_decay,
                ..AdamWConfig::default()
            },
        )?;
        let flops = FlopsRegulariser::new(model.arch(), cfg.prune.target_flops_reduction)
            .and_then(|f| f.with_dead_band(a.dead_band))
            .map(|f| f.with_round_to(cfg.prune.round_to))
            .map_err(|e| TrainError::Config(e.to_string()))?;
        let schedule = cfg.schedule();
        let plan = ControllerPlan::new(
            a.hyper_step,
            a.min_controller_steps,
            schedule.t_start,
            schedule.t_end,
            steps_per_epoch,
        );
        let subset = train.subset(a.controller_fraction, mix_seed(&[cfg.seed, 0x5B_5E7]))?;
        let batch = plan.batch_size(subset.len(), cfg.train.batch_size);
        let mut loader_cfg = LoaderConfig::train(batch, seed);
        loader_cfg.workers = 0;
        let subset = Loader::new(&subset, loader_cfg, model.device())?;
        let subset_len = subset.dataset().len();
        let mask = Mask::full(&widths);
        let target_ratio = flops.target();
        let lane = Lane::new(Stepper {
            controller: controller.clone(),
            flops,
            optimizer,
            subset,
            seed: cfg.seed,
            gamma: a.gamma,
            ce_mask: a.ce_mask,
            seconds: 0.0,
            epoch_stats: (0.0, 0.0, 0),
        });
        Ok(Self {
            schedule,
            plan,
            projector: a.projector,
            epsilon: a.epsilon,
            epoch_mask: a.epoch_mask,
            target: (cfg.prune.target_flops_reduction, cfg.prune.tolerance),
            round_to: cfg.prune.round_to,
            macs: WidthPolynomial::macs(model.arch()),
            seed: cfg.seed,
            device: model.device().clone(),
            controller,
            target_ratio,
            subset_len,
            lane,
            controller_steps: 0,
            lr_scale: plan.lr_scale(a.controller_lr, a.controller_lr_sum),
            settle_cap: if plan.is_auto() {
                a.settle_steps as u64
            } else {
                0
            },
            settle_lr_mult: a.settle_lr_mult,
            settled: 0,
            mask,
            frozen: None,
            epoch: 0,
        })
    }

    /// p, the prunable-MACs ratio the regulariser aims for.
    pub fn target_ratio(&self) -> f64 {
        self.target_ratio
    }

    /// The controller steps the whole window takes.
    pub fn planned_controller_steps(&self) -> u64 {
        self.plan.total()
    }

    /// Runs steps on a worker thread beside the training (CPU devices; the numbers are the
    /// same either way, see [`stepper`]).
    pub fn with_controller_thread(mut self, on: bool) -> Self {
        self.lane.threaded = on && self.device.is_cpu();
        self
    }

    /// One controller step on the next batch of D_c, on the weights `model` has now, at
    /// `lr_mult` × the window's lr.
    fn controller_step(&mut self, model: &Model, lr_mult: f64) -> Result<(), TrainError> {
        let job = StepJob {
            c: self.controller_steps,
            lr: lr_mult * self.lr_scale * self.schedule.phase(self.epoch).controller_lr,
            epoch: self.epoch,
        };
        self.controller_steps += 1;
        self.lane.submit(job, model)
    }

    /// The controller's objective J(θ) of controller step `c` (its batch of D_c and its noise
    /// are functions of c), differentiable in θ, and the value of R(r, p).
    pub fn controller_objective(
        &self,
        model: &Model,
        c: u64,
    ) -> Result<(candle_core::Tensor, f64), TrainError> {
        self.lane.here()?.objective(&model.frozen_view()?, c)
    }

    /// The controller network (its variables are θ).
    pub fn controller(&self) -> &Controller {
        &self.controller
    }
}

impl Pruner for Ato {
    fn begin_epoch(&mut self, epoch: usize) -> Result<(), TrainError> {
        // θ is read below: every step queued so far has run
        self.lane.here_mut()?.epoch_stats = (0.0, 0.0, 0);
        self.epoch = epoch;
        let phase = self.schedule.phase(epoch);
        if phase.frozen && self.frozen.is_none() {
            let frozen = match self.epoch_mask {
                // the mask of epoch T_end − 1 (restored from the checkpoint after a resume)
                EpochMask::Sampled if epoch > 0 => self.mask.clone(),
                _ => self.current_mask()?,
            };
            self.check_target(&frozen);
            self.frozen = Some(frozen);
        }
        self.mask = match &self.frozen {
            Some(m) => m.clone(),
            None => self.epoch_mask(epoch)?,
        };
        Ok(())
    }

    fn end_epoch(&mut self) -> Result<(), TrainError> {
        self.lane.join()
    }

    fn needs_snapshot(&self, epoch: usize) -> bool {
        self.projector == Projector::HalfSpace && self.schedule.phase(epoch).prox
    }

    fn after_step(&mut self, ctx: StepContext<'_>) -> Result<(), TrainError> {
        let phase = self.schedule.phase(ctx.epoch);
        if phase.prox {
            self.project(&ctx, phase.lambda)?;
        }
        if phase.controller {
            for _ in 0..self.plan.steps_after(ctx.step) {
                self.controller_step(ctx.model, 1.0)?;
            }
            if self.settle_cap > 0 && self.plan.is_window_end(ctx.step) {
                self.settle(ctx.model, ctx.epoch)?;
            }
        }
        Ok(())
    }

    fn eval_mask(&self) -> Option<&Mask> {
        Some(&self.mask)
    }

    /// The mask of the epoch (the frozen one from T_end on): the groups the prox has been
    /// driving to zero. With T_end = E the mask never freezes and the last epoch's is used.
    fn kept(&self, _groups: &GroupSet) -> Result<Mask, TrainError> {
        Ok(self.frozen.clone().unwrap_or_else(|| self.mask.clone()))
    }

    fn penalty(&self, groups: &GroupSet, epoch: usize) -> Vec<Vec<f64>> {
        let phase = self.schedule.phase(epoch);
        let ratios = GroupProx::gate_ratios(&self.mask);
        groups
            .gates()
            .iter()
            .zip(self.mask.gates())
            .zip(ratios)
            .map(|((_, m), r)| {
                m.iter()
                    .map(|&keep| {
                        if phase.prox && !keep {
                            phase.lambda * r
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// After [`Pruner::end_epoch`]; NaN seconds if steps were still running.
    fn controller_record(&self) -> Option<super::ControllerRecord> {
        Some(super::ControllerRecord {
            steps: self.controller_steps,
            settle_steps: self.settled,
            images: self.subset_len,
            seconds: self.lane.here().map_or(f64::NAN, |s| s.seconds),
        })
    }

    /// After [`Pruner::end_epoch`]; NaN averages if steps were still running.
    fn stats(&self) -> PrunerStats {
        let (loss, reg, n) = self
            .lane
            .here()
            .map_or((f64::NAN, f64::NAN, 0), |s| s.epoch_stats);
        let d = n.max(1) as f64;
        PrunerStats {
            controller_loss: loss / d,
            flops_reg: reg / d,
            controller_steps: n,
        }
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        let mut s = StateDict::new();
        for (name, var) in self.controller.trainable_vars() {
            s.put_tensor(name, var.as_tensor().copy()?);
        }
        s.put_meta("controller_steps", self.controller_steps);
        s.put_meta("settled", self.settled);
        let stepper = self.lane.here()?;
        s.put_meta("controller_seconds", stepper.seconds);
        s.put_meta(
            "epoch_mask",
            serde_json::to_string(&self.mask).expect("bools serialise"),
        );
        if let Some(f) = &self.frozen {
            s.put_meta("frozen", serde_json::to_string(f).expect("bools serialise"));
        }
        s.save(&dir.join(CONTROLLER_FILE))?;
        Ok(stepper
            .optimizer
            .state()
            .and_then(|o| o.save(&dir.join(CONTROLLER_OPT_FILE)))?)
    }

    fn load(&mut self, dir: &Path) -> Result<(), TrainError> {
        let dev = self.device.clone();
        let stepper = self.lane.here_mut()?;
        let s = StateDict::load(&dir.join(CONTROLLER_FILE), &dev)?;
        for (name, var) in self.controller.trainable_vars() {
            var.set(s.tensor(&name)?)?;
        }
        self.controller_steps = s.meta("controller_steps")?;
        self.settled = s.meta("settled").unwrap_or(0);
        stepper.seconds = s.meta("controller_seconds").unwrap_or(0.0);
        if let Some(text) = s.meta.get("epoch_mask") {
            self.mask = serde_json::from_str(text)
                .map_err(|e| TrainError::Io(format!("epoch mask in the checkpoint: {e}")))?;
        }
        self.frozen = match s.meta.get("frozen") {
            None => None,
            Some(text) => Some(
                serde_json::from_str(text)
                    .map_err(|e| TrainError::Io(format!("frozen mask in the checkpoint: {e}")))?,
            ),
        };
        let o = StateDict::load(&dir.join(CONTROLLER_OPT_FILE), &dev)?;
        Ok(stepper.optimizer.load_state(&o)?)
    }
}
