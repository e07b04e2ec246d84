//! The run's side of the convergence probes (docs/design.md §6): a fixed set of probe batches
//! (monitor mode: the first training images, evaluation transform; theorem mode: training
//! batches drawn once with the training transform, seeded; exact mode: the one training batch,
//! twice, so σ̂² is exactly 0), the train-mode loss and gradients on them with the BN running
//! statistics restored afterwards, the first probed step ([`crate::probe_regime`]), mask flips
//! between probes, the per-step checks ([`ato_optim::check_step`]) of every step from the first
//! probe on (theorem and exact modes), and the rows of `convergence.csv`.

use crate::config::{ProbeMode, RunConfig};
use crate::objective::cross_entropy;
use crate::pruner::Pruner;
use crate::recipe;
use crate::records::{read_csv, write_csv_atomically};
use crate::run_dir::RunDir;
use crate::TrainError;
use ato_data::{Dataset, Loader, LoaderConfig};
use ato_models::{is_buffer, Model};
use ato_optim::{
    check_step, ConvergenceProbe, ConvergenceRow, GroupSet, Optimizer, ParamSet, ProbeConfig,
    ProbeInputs, RunRegime, StateDict, StepCapture, StepRule, StepWindow,
};
use ato_zig::Mask;
use candle_core::backprop::GradStore;
use candle_core::Tensor;
use std::path::{Path, PathBuf};

const PROBE_FILE: &str = "probe.safetensors";
/// Mixed into the run's seed for the probe batches of theorem mode.
const PROBE_SEED: u64 = 0x5052_4f42_4553;

/// Probes of one run and the rows they wrote.
pub struct RunProbe {
    probe: ConvergenceProbe,
    batches: Vec<(Tensor, Tensor)>,
    params: ParamSet,
    weight_decay: f64,
    label_smoothing: f64,
    rows: Vec<ConvergenceRow>,
    last_kept: Option<Mask>,
    path: PathBuf,
    /// The global step of the first probe (the first step of the first probed epoch).
    first_step: u64,
    /// Whether every step from the first probe on is checked ([`RunConfig::checks_every_step`]).
    checks_steps: bool,
    /// The per-step checks since the previous probe.
    step_window: StepWindow,
    /// AdamW's decay is decoupled; SGD's enters the gradient.
    decoupled_decay: bool,
    /// Exact mode with SGD: every step's gradient is ∇f itself, so consecutive captures give
    /// the secant along each step ([`ConvergenceProbe::record_secant`]).
    secants: bool,
    /// The previous step's capture, for that secant.
    last_capture: Option<(u64, StepCapture)>,
}

impl RunProbe {
    /// The probe of a run of `steps_per_epoch` steps per epoch, or `None` when
    /// `convergence.every = 0`.
    pub fn new(
        cfg: &RunConfig,
        model: &Model,
        train: &Dataset,
        run_dir: &RunDir,
        steps_per_epoch: usize,
    ) -> Result<Option<Self>, TrainError> {
        let c = &cfg.convergence;
        if c.every == 0 {
            return Ok(None);
        }
        // exact mode: the one training batch twice; identical gradients give σ̂² = 0 exactly
        let batches = if c.mode == ProbeMode::Exact {
            2
        } else {
            c.batches
        };
        let probe = ConvergenceProbe::new(
            ProbeConfig {
                every: c.every,
                batches,
                objective_lower_bound: 0.0,
            },
            recipe::theorem(cfg),
        )?;
        let bs = cfg.train.batch_size;
        let loader_config = match c.mode {
            ProbeMode::Monitor => LoaderConfig::eval(bs),
            // the training transform, drawn once: fixed batches of the training distribution
            ProbeMode::Theorem => LoaderConfig {
                workers: 0,
                ..LoaderConfig::train(bs, cfg.seed ^ PROBE_SEED)
            },
            // the training batch itself (the training set is the subset, in order, unaugmented)
            ProbeMode::Exact => LoaderConfig::eval(train.len()),
        };
        let loader = Loader::new(train, loader_config, model.device())?;
        let available = loader.batches_per_epoch();
        if available < c.batches && c.mode != ProbeMode::Exact {
            return Err(TrainError::Config(format!(
                "convergence.batches: {} probe batches asked for, the training set has {available}",
                c.batches
            )));
        }
        let available = if c.mode == ProbeMode::Exact {
            1
        } else {
            batches
        };
        let batches = (0..batches)
            .map(|i| {
                let b = loader.load_batch(0, i % available)?;
                Ok((b.images, b.labels))
            })
            .collect::<Result<_, TrainError>>()?;
        Ok(Some(Self {
            probe,
            batches,
            params: recipe::param_set(cfg, model),
            weight_decay: cfg.optim.weight_decay,
            label_smoothing: cfg.train.label_smoothing,
            rows: Vec::new(),
            last_kept: None,
            path: run_dir.convergence_file(),
            first_step: (cfg.first_probe_epoch() * steps_per_epoch) as u64,
            checks_steps: cfg.checks_every_step(),
            step_window: StepWindow::default(),
            decoupled_decay: cfg.optim.name == crate::config::OptimizerName::Adamw,
            secants: c.mode == ProbeMode::Exact
                && cfg.optim.name == crate::config::OptimizerName::Sgd,
            last_capture: None,
        }))
    }

    /// Whether step `step` (0-based) is checked: every step from the first probe on, when the
    /// run's step is a prox of its h in a theorem's regime.
    pub fn checks_step(&self, step: u64) -> bool {
        self.checks_steps && step >= self.first_step
    }

    /// Whether step `step` lies in the probed part of the run, where `convergence.inject` acts.
    pub fn in_window(&self, step: u64) -> bool {
        step >= self.first_step
    }

    /// `x_k` and the gradient step `step` is about to use.
    pub fn capture(&self, grads: &GradStore) -> Result<StepCapture, TrainError> {
        Ok(StepCapture::take(&self.params, grads)?)
    }

    /// Checks the step from `capture` to the current parameters against the configured rule:
    /// the scheduled `lr`, the pruner's λ_g, the optimiser's metric after the step.
    pub fn check_step(
        &mut self,
        step: u64,
        capture: &StepCapture,
        (groups, penalty): (&GroupSet, &[Vec<f64>]),
        optimizer: &dyn Optimizer,
        lr: f64,
    ) -> Result<(), TrainError> {
        let pre = optimizer.preconditioner()?;
        let rule = StepRule {
            lr,
            weight_decay: self.weight_decay,
            preconditioner: pre.as_deref(),
            decoupled_decay: self.decoupled_decay,
            groups,
            penalty,
        };
        let verdict = check_step(step, capture, &self.params, &rule)?;
        self.step_window.add(verdict);
        Ok(())
    }

    /// Exact mode: records the secant of ∇f from the previous step's point to this one's and
    /// keeps this capture for the next.
    pub fn keep_for_secant(&mut self, step: u64, capture: StepCapture) {
        if !self.secants {
            return;
        }
        if let Some((prev, last)) = &self.last_capture {
            if *prev + 1 == step {
                let secant = last.secant_to(&capture, &self.params, self.weight_decay);
                self.probe.record_secant(secant);
            }
        }
        self.last_capture = Some((step, capture));
    }

    /// The rows written so far.
    pub fn rows(&self) -> &[ConvergenceRow] {
        &self.rows
    }

    /// Declares the run's regime (the facts of the epoch about to run); rows report against it.
    pub fn set_regime(&mut self, regime: RunRegime) {
        self.probe.set_regime(regime);
    }

    /// Whether the first probe is due now, before the step `steps` (0-based) is taken.
    pub fn starts_at(&self, steps: u64) -> bool {
        steps == self.first_step
    }

    /// Records the learning rate of step `step` (0-based); steps before the first probe are
    /// not covered and not recorded.
    pub fn record_step(&mut self, step: u64, lr: f64) {
        if step >= self.first_step {
            self.probe.record_step(lr);
        }
    }

    /// Whether a probe is due after `steps` steps: every `convergence.every` steps counted
    /// from the first probe.
    pub fn due(&self, steps: u64) -> bool {
        steps > self.first_step && self.probe.due(steps - self.first_step)
    }

    /// Measures now and rewrites `convergence.csv`.
    #[allow(clippy::too_many_arguments)]
    pub fn measure(
        &mut self,
        model: &Model,
        groups: &GroupSet,
        pruner: &dyn Pruner,
        optimizer: &dyn Optimizer,
        lr: f64,
        steps: u64,
        epoch: usize,
    ) -> Result<(), TrainError> {
        let kept = pruner.kept(groups)?;
        let flips = self.last_kept.as_ref().map_or(0, |prev| prev.flips(&kept));
        let buffers = buffer_snapshot(model)?;
        let penalty = pruner.penalty(groups, epoch);
        let inputs = ProbeInputs {
            step: steps,
            epoch,
            lr,
            params: &self.params,
            weight_decay: self.weight_decay,
            groups,
            penalty: &penalty,
            preconditioner: optimizer.preconditioner()?,
            mask_flips: flips,
        };
        let (batches, smoothing) = (&self.batches, self.label_smoothing);
        // f is the training loss (label smoothing included; mixup, a data augmentation, is not)
        let row = self.probe.measure(inputs, |i| {
            let (x, y) = &batches[i];
            let loss = cross_entropy(&model.forward_t(x, None, true)?, y, smoothing)?;
            Ok((loss.to_scalar::<f32>()? as f64, loss.backward()?))
        });
        restore_buffers(model, &buffers)?;
        let mut row = row?;
        row.set_step_window(&self.step_window);
        self.step_window = StepWindow::default();
        self.rows.push(row);
        self.last_kept = Some(kept);
        write_csv_atomically(&self.path, &self.rows)
    }

    /// Writes the probe state into a checkpoint folder.
    pub fn save(&self, dir: &Path, model: &Model) -> Result<(), TrainError> {
        let mut s = self.probe.state(model.device())?;
        if let Some(k) = &self.last_kept {
            s.put_meta(
                "last_kept",
                serde_json::to_string(k).expect("bools serialise"),
            );
        }
        s.put_meta(
            "step_window",
            serde_json::to_string(&self.step_window).expect("numbers serialise"),
        );
        Ok(s.save(&dir.join(PROBE_FILE))?)
    }

    /// Restores the probe state and the rows written up to `steps`.
    pub fn load(&mut self, dir: &Path, model: &Model, steps: u64) -> Result<(), TrainError> {
        let s = StateDict::load(&dir.join(PROBE_FILE), model.device())?;
        self.probe.load_state(&s)?;
        self.last_kept = match s.meta.get("last_kept") {
            None => None,
            Some(t) => Some(
                serde_json::from_str(t)
                    .map_err(|e| TrainError::Io(format!("probe state `last_kept`: {e}")))?,
            ),
        };
        self.step_window = match s.meta.get("step_window") {
            None => StepWindow::default(),
            Some(t) => serde_json::from_str(t)
                .map_err(|e| TrainError::Io(format!("probe state `step_window`: {e}")))?,
        };
        let mut rows: Vec<ConvergenceRow> = read_csv(&self.path)?;
        rows.retain(|r| r.step <= steps);
        self.rows = rows;
        Ok(())
    }
}

/// Copies of the BN running statistics, which a train-mode forward updates.
fn buffer_snapshot(model: &Model) -> Result<Vec<(String, Tensor)>, TrainError> {
    model
        .named_vars()
        .into_iter()
        .filter(|(n, _)| is_buffer(n))
        .map(|(n, v)| Ok((n, v.as_tensor().copy()?)))
        .collect()
}

fn restore_buffers(model: &Model, saved: &[(String, Tensor)]) -> Result<(), TrainError> {
    let vars = model.named_vars();
    for (n, t) in saved {
        vars[n].set(t)?;
    }
    Ok(())
}
