//! The controller's steps, on the training thread or beside it.
//!
//! A [`Stepper`] owns what a controller step changes (AdamW's state on θ, the totals) and what
//! it reads (the subset D_c, the FLOPs regulariser); θ itself is shared with [`super::Ato`]'s
//! controller, which reads it only when no step is running. Step c is a pure function of θ, the
//! optimiser state, c and the network's weights after the target step that scheduled it: its
//! batch and noise are drawn from counters, not stream state.
//!
//! By default the steps run inline, on the training thread, with all its cores. With
//! `RunOptions::controller_thread` on a CPU device the [`Lane`] runs them on a worker thread:
//! each step is queued with a copy of the weights it must see ([`Model::frozen_copy`]), the
//! steps run in order, and the lane is joined (the stepper comes home) before anything reads
//! θ — the epoch's mask, the settling at the window's end, a checkpoint. The worker computes
//! the same numbers as the training thread would: candle's and `ato-kernels`' CPU loops split
//! their work by its size, not by the threads that happen to be free (a second caller of the
//! kernels' pool runs its loop inline), which `the_controller_thread_changes_no_number` in
//! `tests/train_once.rs` checks bit for bit on a whole run. The thread pays off only where the
//! training leaves cores idle; on 2 cores it competes with the training's threads and ATO's
//! runs on the demo take longer than inline (docs/performance.md). On a GPU the steps stay
//! inline: its kernels already run asynchronously.

use crate::config::CeMask;
use crate::objective::cross_entropy;
use crate::TrainError;
use ato_controller::{sample_masks, Controller, FlopsRegulariser};
use ato_data::{mix_seed, Loader};
use ato_models::{FrozenModel, Model};
use ato_optim::{AdamW, Optimizer};
use candle_core::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

/// Steps that may wait for the worker, each holding a copy of the weights.
const QUEUE: usize = 2;

/// What a controller step needs and changes.
pub(super) struct Stepper {
    /// Shares θ with [`super::Ato`]'s controller.
    pub controller: Controller,
    pub optimizer: AdamW,
    pub flops: FlopsRegulariser,
    pub subset: Loader,
    pub seed: u64,
    pub gamma: f64,
    pub ce_mask: CeMask,
    /// Wall-clock seconds of every step so far.
    pub seconds: f64,
    /// Σ J, Σ R and the count of this epoch's steps.
    pub epoch_stats: (f64, f64, usize),
}

/// Controller step `c` at learning rate `lr`, scheduled in `epoch`.
pub(super) struct StepJob {
    pub c: u64,
    pub lr: f64,
    pub epoch: usize,
}

impl Stepper {
    /// J(θ) of controller step `c` on `net` (differentiable in θ) and the value of R(r, p).
    pub fn objective(&self, net: &FrozenModel, c: u64) -> Result<(Tensor, f64), TrainError> {
        let per_pass = self.subset.batches_per_epoch().max(1) as u64;
        let batch = self
            .subset
            .load_batch(c / per_pass, (c % per_pass) as usize)?;
        let logits = self.controller.logits()?;
        let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(&[self.seed, 0xA70, c]));
        let sample = sample_masks(&logits, self.controller.config(), &mut rng)?;
        let (ce_gates, flops_gates) = match self.ce_mask {
            CeMask::Hard => (sample.hard.clone(), sample.hard),
            // the authors: the relaxed y in the network, an independent hard sample for r
            CeMask::Relaxed => {
                let other = sample_masks(&logits, self.controller.config(), &mut rng)?;
                (sample.relaxed, other.hard)
            }
        };
        let out = net.forward(&batch.images, Some(&ce_gates))?;
        let ce = cross_entropy(&out, &batch.labels, 0.0)?;
        let reg = self.flops.penalty(&flops_gates)?;
        let j = (&ce + reg.affine(self.gamma, 0.0)?)?;
        let reg = reg.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        Ok((j, reg))
    }

    /// One AdamW step on θ.
    pub fn step(&mut self, net: &FrozenModel, job: StepJob) -> Result<(), TrainError> {
        let started = std::time::Instant::now();
        let (j, reg) = self.objective(net, job.c)?;
        let value = j.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        if !value.is_finite() {
            return Err(TrainError::NonFiniteController {
                value,
                epoch: job.epoch,
                step: job.c,
            });
        }
        let grads = j.backward()?;
        self.optimizer.step(&grads, job.lr)?;
        self.seconds += started.elapsed().as_secs_f64();
        self.epoch_stats.0 += value;
        self.epoch_stats.1 += reg;
        self.epoch_stats.2 += 1;
        Ok(())
    }
}

/// What a worker hands back: the stepper and the first error of its steps.
type Returned = (Box<Stepper>, Result<(), TrainError>);

/// A worker thread running queued steps in order.
struct Worker {
    jobs: Option<SyncSender<(StepJob, FrozenModel)>>,
    handle: Option<JoinHandle<Returned>>,
}

impl Worker {
    fn spawn(mut stepper: Box<Stepper>) -> Result<Self, TrainError> {
        let (jobs, queue) = sync_channel::<(StepJob, FrozenModel)>(QUEUE);
        let handle = std::thread::Builder::new()
            .name("ato-controller".into())
            .spawn(move || {
                let mut result = Ok(());
                for (job, net) in queue {
                    // after an error the rest is drained unrun: the run stops at the join
                    if result.is_ok() {
                        result = stepper.step(&net, job);
                    }
                }
                (stepper, result)
            })
            .map_err(|e| TrainError::ControllerThread(format!("cannot start it: {e}")))?;
        Ok(Self {
            jobs: Some(jobs),
            handle: Some(handle),
        })
    }

    /// Waits for the queued steps; the stepper and their first error.
    fn join(mut self) -> Result<Returned, TrainError> {
        drop(self.jobs.take());
        let handle = self.handle.take();
        handle
            .map(JoinHandle::join)
            .and_then(Result::ok)
            .ok_or_else(|| TrainError::ControllerThread("it panicked".into()))
    }
}

impl Drop for Worker {
    /// A run that stops early (an error, a kill in a test) still waits for its steps.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Where the stepper is: here, or on a worker running its queued steps.
pub(super) struct Lane {
    here: Option<Box<Stepper>>,
    away: Option<Worker>,
    /// Queue steps on a worker thread (else run them at once, here).
    pub threaded: bool,
}

impl Lane {
    pub fn new(stepper: Stepper) -> Self {
        Self {
            here: Some(Box::new(stepper)),
            away: None,
            threaded: false,
        }
    }

    /// The stepper, when no step is queued or running (after [`Lane::join`]).
    pub fn here(&self) -> Result<&Stepper, TrainError> {
        self.here
            .as_deref()
            .ok_or_else(|| TrainError::ControllerThread("read while its steps run".into()))
    }

    /// The stepper, after every queued step has run.
    pub fn here_mut(&mut self) -> Result<&mut Stepper, TrainError> {
        self.join()?;
        self.here
            .as_deref_mut()
            .ok_or_else(|| TrainError::ControllerThread("lost after a panic".into()))
    }

    /// Waits for every queued step; the first error among them.
    pub fn join(&mut self) -> Result<(), TrainError> {
        match self.away.take() {
            None => Ok(()),
            Some(worker) => {
                let (stepper, result) = worker.join()?;
                self.here = Some(stepper);
                result
            }
        }
    }

    /// Runs step `job` on the weights `model` has now: at once, or queued on the worker.
    pub fn submit(&mut self, job: StepJob, model: &Model) -> Result<(), TrainError> {
        if !self.threaded {
            let net = model.frozen_view()?;
            return self.here_mut()?.step(&net, job);
        }
        if self.away.is_none() {
            let stepper = self
                .here
                .take()
                .ok_or_else(|| TrainError::ControllerThread("lost after a panic".into()))?;
            self.away = Some(Worker::spawn(stepper)?);
        }
        let net = model.frozen_copy()?;
        let sent = self
            .away
            .as_ref()
            .and_then(|w| w.jobs.as_ref())
            .map(|jobs| jobs.send((job, net)).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // the worker is gone: its error (or panic) says why
        self.join()?;
        Err(TrainError::ControllerThread("stopped taking steps".into()))
    }
}
