//! The train-once loop: epochs of target steps, evaluation, metrics, a checkpoint every
//! epoch, and at the end hard zeroing, compaction and evaluation of the compact model.

use crate::checkpoint::{CheckpointDir, RunState};
use crate::config::RunConfig;
use crate::device::select_device;
use crate::evaluate::evaluate;
use crate::objective::{cross_entropy, finite_loss, Tally};
use crate::records::{
    read_csv, write_csv_atomically, write_text_atomically, EpochMetrics, SummaryRow,
};
use crate::stats::{full_mask, GroupSparsity};
use crate::update::TargetUpdate;
use crate::TrainError;
use ato_data::{Dataset, DatasetSpec, Loader, LoaderConfig, Split};
use ato_models::Model;
use ato_zig::{zero_groups, KeptChannels, WidthPolynomial};
use candle_core::Device;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How a run reports and where it may stop early.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Draw a progress bar and print one summary line per epoch.
    pub progress: bool,
    /// Stop (as if killed) after this many epochs have been checkpointed; for resume tests.
    pub stop_after_epochs: Option<usize>,
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub summary: SummaryRow,
    pub metrics: Vec<EpochMetrics>,
    /// Largest |logit difference| between the masked full model and the compact model on a
    /// test batch (the zero-invariance check of the run).
    pub compact_max_abs_diff: f32,
}

fn data_err(e: ato_data::DataError) -> TrainError {
    TrainError::Data(e.to_string())
}

/// The training and test loaders of a config.
pub fn open_data(cfg: &RunConfig, device: &Device) -> Result<(Loader, Loader), TrainError> {
    let name: ato_data::DatasetName = cfg.dataset.name.as_str().parse().map_err(data_err)?;
    let mut spec = DatasetSpec::new(name, &cfg.dataset.root);
    spec.download = cfg.dataset.download;
    let train = Dataset::open(&spec, Split::Train).map_err(data_err)?;
    let test = Dataset::open(&spec, Split::Test).map_err(data_err)?;
    let bs = cfg.train.batch_size;
    let train = Loader::new(&train, LoaderConfig::train(bs, cfg.seed), device).map_err(data_err)?;
    let test = Loader::new(&test, LoaderConfig::eval(bs), device).map_err(data_err)?;
    Ok((train, test))
}

/// Runs (or resumes) the run of `cfg` into its run folder.
pub fn run<F>(cfg: &RunConfig, make_update: F, opts: &RunOptions) -> Result<RunOutcome, TrainError>
where
    F: FnOnce(&Model, usize) -> Result<Box<dyn TargetUpdate>, TrainError>,
{
    cfg.validate()?;
    let device = select_device(&cfg.device)?;
    let run_dir = cfg.run_dir();
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| TrainError::Io(format!("{}: {e}", run_dir.display())))?;
    write_text_atomically(&run_dir.join("config.toml"), &cfg.to_toml())?;
    let (train, test) = open_data(cfg, &device)?;
    let model = Model::new(&cfg.model_config(), &device, cfg.seed)?;
    let steps_per_epoch = train.batches_per_epoch();
    let mut update = make_update(&model, steps_per_epoch)?;

    let checkpoint = CheckpointDir::new(&run_dir);
    let metrics_path = run_dir.join("metrics.csv");
    let mut state = RunState {
        epochs_done: 0,
        global_step: 0,
        rngs: vec![],
        frozen_mask: None,
        seconds: 0.0,
    };
    let mut metrics: Vec<EpochMetrics> = Vec::new();
    if let Some((dir, saved)) = checkpoint.latest()? {
        restore_tensors(&model, &dir.join("model.safetensors"))?;
        update.load(&dir)?;
        metrics = read_csv(&metrics_path)?;
        metrics.truncate(saved.epochs_done);
        state = saved;
    }

    let epochs = cfg.train.epochs;
    for epoch in state.epochs_done..epochs {
        let started = Instant::now();
        let bar = progress_bar(opts.progress, steps_per_epoch, epoch, epochs);
        let mut tally = Tally::default();
        let mut lr = update.lr(state.global_step);
        for (i, batch) in train.epoch(epoch as u64).enumerate() {
            let batch = batch.map_err(data_err)?;
            lr = update.lr(state.global_step);
            let logits = model.forward_t(&batch.images, None, true)?;
            let loss = cross_entropy(&logits, &batch.labels, cfg.train.label_smoothing)?;
            let value = finite_loss(&loss, epoch, i)?;
            let grads = loss.backward()?;
            update.step(&grads, lr, epoch)?;
            tally.add(&logits.detach(), &batch.labels, value)?;
            state.global_step += 1;
            if let Some(b) = &bar {
                b.inc(1);
                b.set_message(format!("loss {:.3}", tally.mean_loss()));
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let eval = evaluate(
            &model,
            test.epoch(0)
                .map(|b| b.map(|b| (b.images, b.labels)).map_err(to_candle)),
            None,
        )?;
        let sparsity = GroupSparsity::of(&model)?;
        state.seconds += started.elapsed().as_secs_f64();
        let row = EpochMetrics {
            epoch,
            lr,
            train_loss: tally.mean_loss(),
            train_top1: tally.top1(),
            test_loss: eval.mean_loss(),
            test_top1: eval.top1(),
            test_top5: eval.top5(),
            masked_top1: eval.top1(),
            mask_macs_ratio: 1.0,
            group_sparsity: sparsity.ratio(),
            zero_groups: sparsity.zero_groups,
            controller_loss: 0.0,
            flops_reg: 0.0,
            seconds: started.elapsed().as_secs_f64(),
        };
        if opts.progress {
            println!(
                "epoch {:>3}/{epochs}  lr {:.4}  train loss {:.4} top1 {:5.2}%  test loss {:.4} top1 {:5.2}% top5 {:5.2}%  zero groups {}  {:.1}s",
                epoch + 1,
                row.lr,
                row.train_loss,
                100.0 * row.train_top1,
                row.test_loss,
                100.0 * row.test_top1,
                100.0 * row.test_top5,
                row.zero_groups,
                row.seconds
            );
        }
        metrics.push(row);
        write_csv_atomically(&metrics_path, &metrics)?;
        state.epochs_done = epoch + 1;
        checkpoint.save(&state, |dir| {
            save_tensors(&model, &dir.join("model.safetensors"))?;
            update.save(dir)
        })?;
        if opts.stop_after_epochs == Some(state.epochs_done) && state.epochs_done < epochs {
            return Err(TrainError::Stopped(state.epochs_done));
        }
    }

    let mask = state
        .frozen_mask
        .clone()
        .unwrap_or_else(|| full_mask(&model));
    let outcome = finish(cfg, &model, &mask, &test, &run_dir, &metrics, state.seconds)?;
    Ok(RunOutcome { metrics, ..outcome })
}

fn to_candle(e: ato_data::DataError) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
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
            "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({eta})",
        )
        .expect("template")
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

/// Hard-zeroes the masked groups, compacts, checks the compact model against the masked one,
/// evaluates it and writes `mask.json`, `compact.safetensors` and `summary.csv`.
fn finish(
    cfg: &RunConfig,
    model: &Model,
    mask: &[Vec<bool>],
    test: &Loader,
    run_dir: &Path,
    metrics: &[EpochMetrics],
    seconds: f64,
) -> Result<RunOutcome, TrainError> {
    for (g, m) in model.gates().iter().zip(mask) {
        zero_groups(g, &model.named_vars(), m)?;
    }
    let kept = KeptChannels::from_masks(mask);
    let compact = model.compact(&kept)?;
    // zero-invariance on a real batch: masked full model vs compact model
    let first = test
        .epoch(0)
        .next()
        .ok_or_else(|| TrainError::Data("the test set is empty".into()))?;
    let first = first.map_err(data_err)?;
    let full_logits = model.forward_t(&first.images, None, false)?;
    let small_logits = compact.forward_t(&first.images, None, false)?;
    let diff = (full_logits - small_logits)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    let eval = evaluate(
        &compact,
        test.epoch(0)
            .map(|b| b.map(|b| (b.images, b.labels)).map_err(to_candle)),
        None,
    )?;
    write_text_atomically(
        &run_dir.join("mask.json"),
        &serde_json::to_string(mask).expect("mask serialises"),
    )?;
    compact.save(&run_dir.join("compact.safetensors"))?;

    let params = WidthPolynomial::params(model.arch());
    let macs = WidthPolynomial::macs(model.arch());
    let full_w = model.arch().gate_widths();
    let kept_w = kept.widths();
    let (base_params, pruned_params) = (params.eval(&full_w), params.eval(&kept_w));
    let (base_macs, pruned_macs) = (macs.eval(&full_w), macs.eval(&kept_w));
    let last = metrics.last();
    let schedule = cfg.schedule();
    let summary = SummaryRow {
        run_id: cfg.run_id(),
        status: "finished".into(),
        dataset: cfg.dataset.name.to_string(),
        model: cfg.model.name.to_string(),
        method: cfg.method.as_str().into(),
        seed: cfg.seed,
        lambda: cfg.ato.lambda,
        gamma: cfg.ato.gamma,
        t_start: schedule.t_start,
        t_end: schedule.t_end,
        target_flops_reduction: cfg.prune.target_flops_reduction,
        epochs: cfg.train.epochs,
        base_params,
        pruned_params,
        params_reduction: 1.0 - pruned_params as f64 / base_params as f64,
        base_macs,
        pruned_macs,
        flops_reduction: 1.0 - pruned_macs as f64 / base_macs as f64,
        top1: last.map_or(0.0, |m| m.masked_top1),
        top5: last.map_or(0.0, |m| m.test_top5),
        compact_top1: eval.top1(),
        wall_seconds: seconds,
    };
    write_csv_atomically(&run_dir.join("summary.csv"), std::slice::from_ref(&summary))?;
    Ok(RunOutcome {
        run_dir: run_dir.to_path_buf(),
        summary,
        metrics: vec![],
        compact_max_abs_diff: diff,
    })
}
