//! The train-once loop, the same for every method: epochs of target steps (base optimiser
//! step, then the method's [`Pruner`]), evaluation and one `metrics.csv` row per epoch, a
//! checkpoint every epoch, convergence probes every K steps, and at the end hard zeroing,
//! compaction and evaluation of the compact model ([`crate::finish`]).

use crate::checkpoint::RunState;

mod resume;
mod run_rank;

use crate::config::{Fault, RunConfig};
use crate::data::RunData;
use crate::evaluate::evaluate_loader;
use crate::mixup::mix;
use crate::objective::{cross_entropy, finite_loss, mixup_cross_entropy, Tally};
use crate::parallel::DataParallel;
use crate::probe::RunProbe;
use crate::pruner::{GradContext, Pruner, StepContext};
use crate::records::EpochMetrics;
use crate::run_dir::RunDir;
use crate::stats::{mask_macs_ratio, GroupSparsity};
use crate::{recipe, TrainError};
use ato_data::Batch;
use ato_models::Model;
use ato_optim::{GroupSet, Optimizer};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
pub(crate) use run_rank::run_rank;
use std::time::Instant;

/// How a run reports and where it may stop early.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Draw a progress bar and print one summary line per epoch.
    pub progress: bool,
    /// Stop (as if killed) once this many epochs are checkpointed.
    pub stop_after_epochs: Option<usize>,
    /// Stop (as if killed mid-epoch, nothing saved) when this many steps are done.
    pub stop_at_step: Option<u64>,
    /// With `stop_at_step` on `dist.world_size` ranks: only this rank stops (a rank that
    /// dies); the others must stop at their next collective.
    pub stop_rank: Option<usize>,
    /// Negative control of the convergence checks (tests only): the sign of the group prox's
    /// shrinkage is flipped after every step ([`crate::probe_regime::flip_prox_sign`]), so the
    /// step is not the one the theorems analyse and the checks must report it.
    pub broken_prox: bool,
    /// Run ATO's controller steps on a worker thread beside the training (CPU devices), not
    /// on the training thread. The numbers are the same (tests compare the two); the thread
    /// pays off only where the training leaves cores idle: on 2 cores it competes with the
    /// training's own threads and the demo's ATO runs take longer (docs/performance.md).
    pub controller_thread: bool,
    /// Tests only: train with BatchNorm in eval mode (running statistics), so that a step
    /// does not depend on how its batch is split over `dist.world_size` ranks.
    pub batchnorm_eval: bool,
}

/// Everything a running loop holds.
struct Loop<'a> {
    cfg: &'a RunConfig,
    model: Model,
    groups: GroupSet,
    optimizer: Box<dyn Optimizer>,
    lr: ato_optim::LrSchedule,
    pruner: Box<dyn Pruner>,
    probe: Option<RunProbe>,
    state: RunState,
    /// [`RunOptions::broken_prox`].
    broken_prox: bool,
    /// [`RunOptions::batchnorm_eval`].
    batchnorm_eval: bool,
    /// This rank's link to the others, with the variables it reduces (trainable, then
    /// BatchNorm buffers, both by name); `None` on one rank.
    ranks: Option<(DataParallel, Vec<Var>, Vec<Var>)>,
}

impl<'a> Loop<'a> {
    /// A fresh loop: the model initialised from the seed, the method's pruner, the probes.
    fn new(
        cfg: &'a RunConfig,
        data: &RunData,
        device: &Device,
        run_dir: &RunDir,
        opts: &RunOptions,
        ranks: Option<DataParallel>,
    ) -> Result<Self, TrainError> {
        let model = cfg.initial_model(device)?;
        let groups = GroupSet::new(model.gates(), &model.named_vars())?;
        let ranks = ranks.map(|dp| {
            let vars = model.trainable_vars().into_iter().map(|(_, v)| v).collect();
            let mut buffers: Vec<(String, Var)> = model
                .named_vars()
                .into_iter()
                .filter(|(n, _)| ato_models::is_buffer(n))
                .collect();
            buffers.sort_by(|a, b| a.0.cmp(&b.0));
            (dp, vars, buffers.into_iter().map(|(_, v)| v).collect())
        });
        Ok(Self {
            cfg,
            optimizer: recipe::target_optimizer(cfg, &model)?,
            lr: recipe::lr_schedule(cfg, data.train.batches_per_epoch()),
            pruner: crate::pruner::for_method(
                cfg,
                &model,
                &data.train_set,
                data.train.batches_per_epoch(),
                opts.controller_thread,
            )?,
            probe: RunProbe::new(
                cfg,
                &model,
                &data.train_set,
                run_dir,
                data.train.batches_per_epoch(),
            )?,
            groups,
            model,
            state: RunState {
                epochs_done: 0,
                global_step: 0,
                seconds: 0.0,
            },
            broken_prox: opts.broken_prox,
            batchnorm_eval: opts.batchnorm_eval,
            ranks,
        })
    }

    /// Forward, loss (label smoothing, mixup), backward and the base step; then the pruner.
    fn step(
        &mut self,
        batch: Batch,
        epoch: usize,
        i: usize,
        tally: &mut Tally,
    ) -> Result<f64, TrainError> {
        let t = self.state.global_step;
        let lr = self.lr.lr(t);
        let before = if self.pruner.needs_snapshot(epoch) {
            Some(self.groups.snapshot()?)
        } else {
            None
        };
        let (logits, loss) = self.forward_loss(&batch, t)?;
        let value = finite_loss(&loss, epoch, i)?;
        let mut grads = loss.backward()?;
        drop(loss);
        if let Some((dp, vars, buffers)) = &self.ranks {
            dp.reduce_step(&mut grads, vars, buffers)?;
        }
        self.pruner.before_step(GradContext {
            groups: &self.groups,
            grads: &mut grads,
            optimizer: self.optimizer.as_mut(),
            epoch,
            first_in_epoch: i == 0,
        })?;
        let capture = match &self.probe {
            Some(p) if p.checks_step(t) => Some(p.capture(&grads)?),
            _ => None,
        };
        let fault = self.fault_at(t);
        if fault == Fault::FlipGrad {
            negate(&mut grads, self.optimizer.params())?;
        }
        // what the step really uses; the checks judge it against the scheduled `lr`
        let step_lr = if fault == Fault::LrX20 { 20.0 * lr } else { lr };
        self.optimizer.step(&grads, step_lr)?;
        drop(grads);
        self.pruner.after_step(StepContext {
            model: &self.model,
            groups: &self.groups,
            before: before.as_ref(),
            lr: step_lr,
            epoch,
            step: t,
            fault,
        })?;
        if let (Some(c), Some(p)) = (capture, &mut self.probe) {
            let penalty = self.pruner.penalty(&self.groups, epoch);
            p.check_step(t, &c, (&self.groups, &penalty), self.optimizer.as_ref(), lr)?;
            p.keep_for_secant(t, c);
        }
        if self.broken_prox {
            let penalty = self.pruner.penalty(&self.groups, epoch);
            crate::probe_regime::flip_prox_sign(&self.groups, &penalty, lr)?;
        }
        tally.add(&logits.detach(), &batch.labels, value)?;
        self.state.global_step += 1;
        let due = self.probe.as_mut().is_some_and(|p| {
            p.record_step(t, lr);
            p.due(self.state.global_step)
        });
        if due {
            self.measure_probe(lr, epoch)?;
        }
        Ok(lr)
    }

    /// The fault `convergence.inject` puts into step `t`: from the first probed step on
    /// (momentum_leak is built into the optimiser and acts from the start).
    fn fault_at(&self, t: u64) -> Fault {
        let f = self.cfg.convergence.inject;
        match &self.probe {
            Some(p) if f != Fault::MomentumLeak && p.in_window(t) => f,
            _ => Fault::None,
        }
    }

    /// Train-mode logits and the loss of step `t` (mixed when `train.mixup > 0`).
    fn forward_loss(&self, batch: &Batch, t: u64) -> Result<(Tensor, Tensor), TrainError> {
        let smoothing = self.cfg.train.label_smoothing;
        if self.cfg.train.mixup > 0.0 {
            let m = mix(
                &batch.images,
                &batch.labels,
                self.cfg.train.mixup,
                self.cfg.seed,
                t,
            )?;
            let logits = self
                .model
                .forward_t(&m.images, None, !self.batchnorm_eval)?;
            let loss =
                mixup_cross_entropy(&logits, &batch.labels, &m.labels_b, m.weight_a, smoothing)?;
            Ok((logits, loss))
        } else {
            let logits = self
                .model
                .forward_t(&batch.images, None, !self.batchnorm_eval)?;
            let loss = cross_entropy(&logits, &batch.labels, smoothing)?;
            Ok((logits, loss))
        }
    }

    /// A convergence probe at the current step, when probes are on.
    fn measure_probe(&mut self, lr: f64, epoch: usize) -> Result<(), TrainError> {
        if let Some(p) = &mut self.probe {
            p.measure(
                &self.model,
                &self.groups,
                self.pruner.as_ref(),
                self.optimizer.as_ref(),
                lr,
                self.state.global_step,
                epoch,
            )?;
        }
        Ok(())
    }

    /// One epoch of steps, then its evaluation as a `metrics.csv` row (on rank 0 only).
    fn epoch(
        &mut self,
        data: &RunData,
        epoch: usize,
        opts: &RunOptions,
    ) -> Result<Option<EpochMetrics>, TrainError> {
        let started = Instant::now();
        let epochs = self.cfg.train.epochs;
        self.pruner.begin_epoch(epoch)?;
        let t = self.state.global_step;
        let starts = self.probe.as_mut().is_some_and(|p| {
            p.set_regime(crate::probe_regime::run_regime(self.cfg, epoch));
            p.starts_at(t)
        });
        if starts {
            self.measure_probe(self.lr.lr(t), epoch)?;
        }
        let bar = crate::progress::epoch_bar(
            opts.progress,
            data.train.batches_per_epoch(),
            epoch,
            epochs,
        );
        let mut tally = Tally::default();
        let mut lr = self.lr.lr(self.state.global_step);
        for (i, batch) in data.train.epoch(epoch as u64).enumerate() {
            let rank = self.ranks.as_ref().map_or(0, |(dp, _, _)| dp.rank());
            if opts.stop_at_step == Some(self.state.global_step)
                && opts.stop_rank.is_none_or(|r| r == rank)
            {
                return Err(TrainError::Stopped(self.state.epochs_done));
            }
            lr = self.step(batch?, epoch, i, &mut tally)?;
            if let Some(b) = &bar {
                b.inc(1);
                b.set_message(format!("loss {:.3}", tally.mean_loss()));
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let train_seconds = started.elapsed().as_secs_f64();
        if let Some((dp, _, _)) = &self.ranks {
            tally = dp.reduce_tally(&tally)?;
            if dp.rank() != 0 {
                // only rank 0 evaluates and writes; the others keep step with the pruner
                self.pruner.end_epoch()?;
                self.state.seconds += started.elapsed().as_secs_f64();
                return Ok(None);
            }
        }
        let eval = evaluate_loader(&self.model, &data.test, None)?;
        // the masked model is evaluated only while it differs from the model: once every
        // group the mask drops is exactly zero, the two forwards are the same; before, it is
        // the model with those groups zeroed for the evaluation (the same logits, bitwise,
        // without the gate products)
        let masked_top1 = match self.pruner.eval_mask().filter(|m| !m.is_full()) {
            Some(m) if !self.groups.zero_where_dropped(m)? => self
                .groups
                .with_dropped_zeroed(m, || evaluate_loader(&self.model, &data.test, None))??
                .top1(),
            _ => eval.top1(),
        };
        self.pruner.end_epoch()?;
        let kept = self.pruner.kept(&self.groups)?;
        let sparsity = GroupSparsity::of(&self.model)?;
        let stats = self.pruner.stats();
        let seconds = started.elapsed().as_secs_f64();
        self.state.seconds += seconds;
        Ok(Some(EpochMetrics {
            epoch,
            lr,
            train_loss: tally.mean_loss(),
            train_top1: tally.top1(),
            test_loss: eval.mean_loss(),
            test_top1: eval.top1(),
            test_top5: eval.top5(),
            masked_top1,
            mask_macs_ratio: mask_macs_ratio(&self.model, &kept),
            group_sparsity: sparsity.ratio(),
            zero_groups: sparsity.zero_groups,
            controller_loss: stats.controller_loss,
            flops_reg: stats.flops_reg,
            controller_steps: stats.controller_steps,
            train_seconds,
            seconds,
        }))
    }
}

/// `g ← −g` for every parameter (the `flip_grad` fault).
fn negate(grads: &mut GradStore, params: &ato_optim::ParamSet) -> Result<(), TrainError> {
    for p in params {
        if let Some(g) = grads.remove(p.var.as_tensor()) {
            grads.insert(p.var.as_tensor(), g.neg()?);
        }
    }
    Ok(())
}
