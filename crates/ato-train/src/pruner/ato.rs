//! ATO's part of the loop (DESIGN.md §4): the controller learns on a seeded subset of the
//! training set, its deterministic mask of the epoch drives the group prox, and the mask
//! freezes at T_end.
//!
//! - T_start ≤ e < T_end: every `hyper_step` target steps, one controller step on a batch of
//!   D_c: `J(θ) = CE(f(x; W, m)) + γ·R(r, p)` with the target in eval mode on frozen weights
//!   ([`Model::forward_frozen`]: no weight gradient is computed), the hard sample m
//!   (straight-through) multiplied into the gated channels, and AdamW on θ only.
//! - e ≥ T_prox: after every target step, the group prox (or the half-space projector) on the
//!   groups masked by `m_e`, the mask sampled deterministically at the start of epoch e, with
//!   λ_e and the step's η.
//! - e ≥ T_end: `m_e` is the frozen mask.
//!
//! Randomness comes from counters, not from stream state: controller batch c is batch
//! `c mod B` of the subset's pass `c / B`, and its noise is drawn from a ChaCha stream seeded
//! by `(seed, c)`, so a resumed run draws exactly what an uninterrupted one would.

use super::{Pruner, PrunerStats, StepContext};
use crate::config::{Projector, RunConfig};
use crate::objective::cross_entropy;
use crate::schedule::AtoSchedule;
use crate::TrainError;
use ato_controller::{eval_masks, sample_masks, Controller, ControllerConfig, FlopsRegulariser};
use ato_data::{mix_seed, Dataset, Loader, LoaderConfig};
use ato_models::Model;
use ato_optim::{
    AdamW, AdamWConfig, DecayRule, GroupProx, GroupSet, HalfSpaceStep, Optimizer, ParamSet,
    StateDict,
};
use ato_zig::Mask;
use candle_core::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

const CONTROLLER_FILE: &str = "controller.safetensors";
const CONTROLLER_OPT_FILE: &str = "controller_optimizer.safetensors";

/// ATO's controller, regulariser, masks and their schedule.
pub struct Ato {
    schedule: AtoSchedule,
    gamma: f64,
    hyper_step: usize,
    projector: Projector,
    epsilon: f64,
    controller_lr: f64,
    seed: u64,
    device: Device,
    controller: Controller,
    optimizer: AdamW,
    flops: FlopsRegulariser,
    subset: Loader,
    /// Controller steps taken so far.
    controller_steps: u64,
    /// m_e, the mask of the current epoch.
    mask: Mask,
    frozen: Option<Mask>,
    stats: (f64, f64, usize),
    /// The current epoch (for error messages).
    epoch: usize,
}

impl Ato {
    pub fn new(cfg: &RunConfig, model: &Model, train: &Dataset) -> Result<Self, TrainError> {
        let a = &cfg.ato;
        let widths = model.arch().gate_widths();
        let ctrl_cfg = ControllerConfig {
            noise: a.noise,
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
            .map_err(|e| TrainError::Config(e.to_string()))?;
        let subset = train.subset(a.controller_fraction, mix_seed(&[cfg.seed, 0x5B_5E7]))?;
        let mut loader_cfg = LoaderConfig::train(cfg.train.batch_size.min(subset.len()), seed);
        loader_cfg.workers = 0;
        let subset = Loader::new(&subset, loader_cfg, model.device())?;
        let mask = Mask::full(&widths);
        Ok(Self {
            schedule: cfg.schedule(),
            gamma: a.gamma,
            hyper_step: a.hyper_step,
            projector: a.projector,
            epsilon: a.epsilon,
            controller_lr: a.controller_lr,
            seed: cfg.seed,
            device: model.device().clone(),
            controller,
            optimizer,
            flops,
            subset,
            controller_steps: 0,
            mask,
            frozen: None,
            stats: (0.0, 0.0, 0),
            epoch: 0,
        })
    }

    /// p, the prunable-MACs ratio the regulariser aims for.
    pub fn target_ratio(&self) -> f64 {
        self.flops.target()
    }

    /// The controller's deterministic mask now.
    pub fn current_mask(&self) -> Result<Mask, TrainError> {
        let z = self.controller.logits()?;
        Ok(eval_masks(&z, self.controller.config())?)
    }

    /// The frozen mask, once T_end has passed.
    pub fn frozen_mask(&self) -> Option<&Mask> {
        self.frozen.as_ref()
    }

    /// One controller step on the next batch of D_c.
    fn controller_step(&mut self, model: &Model) -> Result<(), TrainError> {
        let c = self.controller_steps;
        let per_pass = self.subset.batches_per_epoch().max(1) as u64;
        let batch = self
            .subset
            .load_batch(c / per_pass, (c % per_pass) as usize)?;
        let logits = self.controller.logits()?;
        let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(&[self.seed, 0xA70, c]));
        let sample = sample_masks(&logits, self.controller.config(), &mut rng)?;
        let out = model.forward_frozen(&batch.images, Some(&sample.hard))?;
        let ce = cross_entropy(&out, &batch.labels, 0.0)?;
        let reg = self.flops.penalty(&sample.hard)?;
        let j = (&ce + reg.affine(self.gamma, 0.0)?)?;
        let value = j.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        if !value.is_finite() {
            return Err(TrainError::NonFiniteController {
                value,
                epoch: self.epoch,
                step: c,
            });
        }
        let grads = j.backward()?;
        self.optimizer.step(&grads, self.controller_lr)?;
        self.controller_steps += 1;
        self.stats.0 += value;
        self.stats.1 += reg.to_scalar::<f32>()? as f64;
        self.stats.2 += 1;
        Ok(())
    }

    /// The prox (or half-space projector) on the groups masked by `m_e`.
    fn project(&self, ctx: &StepContext<'_>, lambda: f64) -> Result<(), TrainError> {
        match self.projector {
            Projector::Prox => {
                GroupProx::apply(ctx.groups, &self.mask, lambda, ctx.lr)?;
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

impl Pruner for Ato {
    fn begin_epoch(&mut self, epoch: usize) -> Result<(), TrainError> {
        self.epoch = epoch;
        let phase = self.schedule.phase(epoch);
        if phase.frozen && self.frozen.is_none() {
            self.frozen = Some(self.current_mask()?);
        }
        self.mask = match &self.frozen {
            Some(m) => m.clone(),
            None => self.current_mask()?,
        };
        self.stats = (0.0, 0.0, 0);
        Ok(())
    }

    fn needs_snapshot(&self, epoch: usize) -> bool {
        self.projector == Projector::HalfSpace && self.schedule.phase(epoch).prox
    }

    fn after_step(&mut self, ctx: StepContext<'_>) -> Result<(), TrainError> {
        let phase = self.schedule.phase(ctx.epoch);
        if phase.prox {
            self.project(&ctx, phase.lambda)?;
        }
        if phase.controller && (ctx.step + 1).is_multiple_of(self.hyper_step as u64) {
            self.controller_step(ctx.model)?;
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

    fn stats(&self) -> PrunerStats {
        let n = self.stats.2.max(1) as f64;
        PrunerStats {
            controller_loss: self.stats.0 / n,
            flops_reg: self.stats.1 / n,
        }
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        let mut s = StateDict::new();
        for (name, var) in self.controller.trainable_vars() {
            s.put_tensor(name, var.as_tensor().copy()?);
        }
        s.put_meta("controller_steps", self.controller_steps);
        if let Some(f) = &self.frozen {
            s.put_meta("frozen", serde_json::to_string(f).expect("bools serialise"));
        }
        s.save(&dir.join(CONTROLLER_FILE))?;
        Ok(self
            .optimizer
            .state()
            .and_then(|o| o.save(&dir.join(CONTROLLER_OPT_FILE)))?)
    }

    fn load(&mut self, dir: &Path) -> Result<(), TrainError> {
        let dev = self.device.clone();
        let s = StateDict::load(&dir.join(CONTROLLER_FILE), &dev)?;
        for (name, var) in self.controller.trainable_vars() {
            var.set(s.tensor(&name)?)?;
        }
        self.controller_steps = s.meta("controller_steps")?;
        self.frozen = match s.meta.get("frozen") {
            None => None,
            Some(text) => Some(
                serde_json::from_str(text)
                    .map_err(|e| TrainError::Io(format!("frozen mask in the checkpoint: {e}")))?,
            ),
        };
        let o = StateDict::load(&dir.join(CONTROLLER_OPT_FILE), &dev)?;
        Ok(self.optimizer.load_state(&o)?)
    }
}
