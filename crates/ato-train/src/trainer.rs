//! The train-once loop, the same for every method: epochs of target steps (base optimiser
//! step, then the method's [`Pruner`]), evaluation and one `metrics.csv` row per epoch, a
//! checkpoint every epoch, convergence probes every K steps, and at the end hard zeroing,
//! compaction and evaluation of the compact model ([`crate::finish`]).

use crate::checkpoint::{CheckpointDir, RunState};
use crate::config::RunConfig;
use crate::device::select_device;
use crate::evaluate::evaluate;
use crate::finish::{finish, RunOutcome};
use crate::objective::{cross_entropy, finite_loss, mixup_cross_entropy, Tally};
use crate::probe::RunProbe;
use crate::pruner::{optim_err, Pruner, StepContext};
use crate::records::{read_csv, write_csv_atomically, write_text_atomically, EpochMetrics};
use crate::stats::{mask_macs_ratio, GroupSparsity};
use crate::{recipe, TrainError};
use ato_data::{seeded_rng, Batch, Dataset, DatasetSpec, Loader, LoaderConfig, Split};
use ato_models::Model;
use ato_optim::{GroupSet, Optimizer, StateDict};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand_distr::{Beta, Distribution};
use std::path::Path;
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
}

/// The data of a run.
pub struct RunData {
    pub train_set: Dataset,
    pub train: Loader,
    pub test: Loader,
}

fn data_err(e: ato_data::DataError) -> TrainError {
    TrainError::Data(e.to_string())
}

impl RunData {
    /// Opens (generating the synthetic set on first use) the training and test splits.
    pub fn open(cfg: &RunConfig, device: &Device) -> Result<Self, TrainError> {
        let name: ato_data::DatasetName = cfg.dataset.name.as_str().parse().map_err(data_err)?;
        let mut spec = DatasetSpec::new(name, &cfg.dataset.root);
        spec.download = cfg.dataset.download;
        let d = &cfg.dataset;
        if d.synth_train.is_some() || d.synth_test.is_some() {
            let default = ato_data::SynthSize::default_for(name.num_classes());
            spec.synth_size = Some(ato_data::SynthSize {
                train: d.synth_train.unwrap_or(default.train),
                test: d.synth_test.unwrap_or(default.test),
            });
        }
        spec.imagenet.color_jitter = d.color_jitter.map(|s| ato_data::ColorJitter {
            brightness: s as f32,
            contrast: s as f32,
            saturation: s as f32,
        });
        let train_set = Dataset::open(&spec, Split::Train).map_err(data_err)?;
        let test_set = Dataset::open(&spec, Split::Test).map_err(data_err)?;
        let bs = cfg.train.batch_size;
        if train_set.len() < bs {
            return Err(TrainError::Config(format!(
                "train.batch_size: {bs} is larger than the training set ({} images)",
                train_set.len()
            )));
        }
        let train =
            Loader::new(&train_set, LoaderConfig::train(bs, cfg.seed), device).map_err(data_err)?;
        let test = Loader::new(&test_set, LoaderConfig::eval(bs), device).map_err(data_err)?;
        Ok(Self {
            train_set,
            train,
            test,
        })
    }
}

/// One (c,) f32 vector per gate from a boolean mask.
pub fn mask_tensors(mask: &[Vec<bool>], device: &Device) -> candle_core::Result<Vec<Tensor>> {
    mask.iter()
        .map(|m| {
            let v: Vec<f32> = m.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
            Tensor::from_vec(v, m.len(), device)
        })
        .collect()
}

/// Loss and top-k of `model` on the test loader, with `mask` multiplied into the gates.
pub fn evaluate_loader(
    model: &Model,
    test: &Loader,
    mask: Option<&[Vec<bool>]>,
) -> Result<Tally, TrainError> {
    let gates = mask.map(|m| mask_tensors(m, model.device())).transpose()?;
    let batches = test.epoch(0).map(|b| {
        b.map(|b| (b.images, b.labels))
            .map_err(|e| candle_core::Error::Msg(e.to_string()))
    });
    Ok(evaluate(model, batches, gates.as_deref())?)
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
}

impl Loop<'_> {
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
            Some(self.groups.snapshot().map_err(optim_err)?)
        } else {
            None
        };
        let smoothing = self.cfg.train.label_smoothing;
        let (logits, loss) = if self.cfg.train.mixup > 0.0 {
            let mut rng = seeded_rng(&[self.cfg.seed, 0x3113, t]);
            let a = self.cfg.train.mixup;
            let w: f64 = Beta::new(a, a)
                .map_err(|e| TrainError::Config(format!("train.mixup: {e}")))?
                .sample(&mut rng);
            let n = batch.labels.dim(0)?;
            let mut perm: Vec<u32> = (0..n as u32).collect();
            perm.shuffle(&mut rng);
            let perm = Tensor::from_vec(perm, n, batch.images.device())?;
            let x = (batch.images.affine(w, 0.0)?
                + batch.images.index_select(&perm, 0)?.affine(1.0 - w, 0.0)?)?;
            let yb = batch.labels.index_select(&perm, 0)?;
            let logits = self.model.forward_t(&x, None, true)?;
            let loss = mixup_cross_entropy(&logits, &batch.labels, &yb, w, smoothing)?;
            (logits, loss)
        } else {
            let logits = self.model.forward_t(&batch.images, None, true)?;
            let loss = cross_entropy(&logits, &batch.labels, smoothing)?;
            (logits, loss)
        };
        let value = finite_loss(&loss, epoch, i)?;
        let grads = loss.backward()?;
        drop(loss);
        self.optimizer.step(&grads, lr).map_err(optim_err)?;
        drop(grads);
        self.pruner.after_step(StepContext {
            model: &self.model,
            groups: &self.groups,
            before: before.as_ref(),
            lr,
            epoch,
            step: t,
        })?;
        tally.add(&logits.detach(), &batch.labels, value)?;
        self.state.global_step += 1;
        let due = self.probe.as_mut().is_some_and(|p| {
            p.record_step(lr);
            p.due(self.state.global_step)
        });
        if due {
            self.measure_probe(lr, epoch)?;
        }
        Ok(lr)
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

    fn save_checkpoint(&self, checkpoint: &CheckpointDir) -> Result<(), TrainError> {
        checkpoint.save(&self.state, |dir| {
            save_tensors(&self.model, &dir.join("model.safetensors"))?;
            self.optimizer
                .state()
                .and_then(|s| s.save(&dir.join("optimizer.safetensors")))
                .map_err(optim_err)?;
            self.pruner.save(dir)?;
            if let Some(p) = &self.probe {
                p.save(dir, &self.model)?;
            }
            Ok(())
        })
    }

    fn load_checkpoint(&mut self, dir: &Path, saved: RunState) -> Result<(), TrainError> {
        restore_tensors(&self.model, &dir.join("model.safetensors"))?;
        let s = StateDict::load(&dir.join("optimizer.safetensors"), self.model.device())
            .map_err(optim_err)?;
        self.optimizer.load_state(&s).map_err(optim_err)?;
        self.pruner.load(dir)?;
        if let Some(p) = &mut self.probe {
            p.load(dir, &self.model, saved.global_step)?;
        }
        self.state = saved;
        Ok(())
    }
}

/// Runs (or resumes from its checkpoint) the run of `cfg` into `<out_dir>/<name>/<run-id>/`.
pub fn run(cfg: &RunConfig, opts: &RunOptions) -> Result<RunOutcome, TrainError> {
    cfg.validate()?;
    let device = select_device(&cfg.device)?;
    let data = RunData::open(cfg, &device)?;
    let model = Model::new(&cfg.model_config(), &device, cfg.seed)?;
    let groups = GroupSet::new(model.gates(), &model.named_vars()).map_err(optim_err)?;
    let steps_per_epoch = data.train.batches_per_epoch();
    let run_dir = cfg.run_dir();
    let mut lp = Loop {
        cfg,
        optimizer: recipe::target_optimizer(cfg, &model)?,
        lr: recipe::lr_schedule(cfg, steps_per_epoch),
        pruner: crate::pruner::for_method(cfg, &model, &data.train_set)?,
        probe: RunProbe::new(cfg, &model, &data.train_set, &run_dir)?,
        groups,
        model,
        state: RunState {
            epochs_done: 0,
            global_step: 0,
            seconds: 0.0,
        },
    };
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| TrainError::Io(format!("{}: {e}", run_dir.display())))?;
    write_text_atomically(&run_dir.join("config.toml"), &cfg.to_toml())?;
    let checkpoint = CheckpointDir::new(&run_dir);
    let metrics_path = run_dir.join("metrics.csv");
    let mut metrics: Vec<EpochMetrics> = Vec::new();
    if let Some((dir, saved)) = checkpoint.latest()? {
        metrics = read_csv(&metrics_path)?;
        metrics.truncate(saved.epochs_done);
        lp.load_checkpoint(&dir, saved)?;
    }

    let epochs = cfg.train.epochs;
    for epoch in lp.state.epochs_done..epochs {
        let started = Instant::now();
        lp.pruner.begin_epoch(epoch)?;
        if lp.state.global_step == 0 {
            let lr0 = lp.lr.lr(0);
            lp.measure_probe(lr0, 0)?;
        }
        let bar = progress_bar(opts.progress, steps_per_epoch, epoch, epochs);
        let mut tally = Tally::default();
        let mut lr = lp.lr.lr(lp.state.global_step);
        for (i, batch) in data.train.epoch(epoch as u64).enumerate() {
            if opts.stop_at_step == Some(lp.state.global_step) {
                return Err(TrainError::Stopped(lp.state.epochs_done));
            }
            lr = lp.step(batch.map_err(data_err)?, epoch, i, &mut tally)?;
            if let Some(b) = &bar {
                b.inc(1);
                b.set_message(format!("loss {:.3}", tally.mean_loss()));
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let train_seconds = started.elapsed().as_secs_f64();
        let eval = evaluate_loader(&lp.model, &data.test, None)?;
        let mask = lp
            .pruner
            .eval_mask()
            .filter(|m| m.iter().flatten().any(|&k| !k));
        let masked_top1 = match mask {
            Some(m) => evaluate_loader(&lp.model, &data.test, Some(m))?.top1(),
            None => eval.top1(),
        };
        let kept = lp.pruner.kept(&lp.groups)?;
        let sparsity = GroupSparsity::of(&lp.model)?;
        let stats = lp.pruner.stats();
        let seconds = started.elapsed().as_secs_f64();
        lp.state.seconds += seconds;
        let row = EpochMetrics {
            epoch,
            lr,
            train_loss: tally.mean_loss(),
            train_top1: tally.top1(),
            test_loss: eval.mean_loss(),
            test_top1: eval.top1(),
            test_top5: eval.top5(),
            masked_top1,
            mask_macs_ratio: mask_macs_ratio(&lp.model, &kept),
            group_sparsity: sparsity.ratio(),
            zero_groups: sparsity.zero_groups,
            controller_loss: stats.controller_loss,
            flops_reg: stats.flops_reg,
            train_seconds,
            seconds,
        };
        if opts.progress {
            println!("{}", row.summary_line(epochs));
        }
        metrics.push(row);
        write_csv_atomically(&metrics_path, &metrics)?;
        lp.state.epochs_done = epoch + 1;
        lp.save_checkpoint(&checkpoint)?;
        if opts.stop_after_epochs == Some(lp.state.epochs_done) && lp.state.epochs_done < epochs {
            return Err(TrainError::Stopped(lp.state.epochs_done));
        }
    }
    let kept = lp.pruner.kept(&lp.groups)?;
    let outcome = finish(
        cfg,
        &lp.model,
        &lp.groups,
        &kept,
        &data.test,
        &run_dir,
        lp.state.seconds,
    )?;
    Ok(RunOutcome { metrics, ..outcome })
}

fn progress_bar(
    on: bool,
    len: usize,
    epoch: usize,
    epochs: usize,
) -> Option<indicatif::ProgressBar> {
    if !on {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed} < {eta})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}/{epochs}", epoch + 1));
    Some(bar)
}

fn save_tensors(model: &Model, path: &Path) -> Result<(), TrainError> {
    candle_core::safetensors::save(&model.tensors(), path)
        .map_err(|e| TrainError::Io(format!("{}: {e}", path.display())))
}

fn restore_tensors(model: &Model, path: &Path) -> Result<(), TrainError> {
    let saved = candle_core::safetensors::load(path, model.device())
        .map_err(|e| TrainError::Io(format!("{}: {e}", path.display())))?;
    for (name, var) in model.named_vars() {
        let t = saved.get(&name).ok_or_else(|| {
            TrainError::Io(format!("{}: tensor `{name}` is missing", path.display()))
        })?;
        var.set(t)?;
    }
    Ok(())
}
