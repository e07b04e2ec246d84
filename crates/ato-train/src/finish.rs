//! The end of every run: round the selection to `prune.round_to`, hard-zero the groups the
//! method drops, compact, check the compact model against the masked one on a test batch,
//! evaluate it, and write `mask.json`, `compact.safetensors` (+ its architecture file) and the
//! `summary.csv` row, with the compact model's latency against the dense one when
//! `bench.after_run` is on.

use crate::config::RunConfig;
use crate::evaluate::{evaluate, evaluate_loader};
use crate::pruner::ControllerRecord;
use crate::records::RunStatus;
use crate::records::{write_csv_atomically, write_text_atomically, EpochMetrics, SummaryRow};
use crate::run_dir::RunDir;
use crate::TrainError;
use ato_data::Loader;
use ato_models::latency::{LatencyOptions, SideBySide};
use ato_models::Model;
use ato_optim::GroupSet;
use ato_zig::{KeptChannels, Mask, WidthPolynomial};
use std::path::PathBuf;

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub summary: SummaryRow,
    pub metrics: Vec<EpochMetrics>,
    /// Largest |logit difference| between the hard-zeroed full model and the compact model on
    /// the first test batch (the zero-invariance check of the run).
    pub compact_max_abs_diff: f32,
    /// The after-run latency of the compact model against the dense one (`[bench]`).
    pub latency: Option<SideBySide>,
    /// What the convergence checks found ([`crate::CheckVerdicts::line`]); `None` without
    /// probes.
    pub convergence: Option<String>,
    /// The rank that returns it: 0 trained and wrote the run; another rank of an MPI job
    /// returns what rank 0 wrote (its `summary.csv` and `metrics.csv`; no latency, no checks).
    pub rank: usize,
}

/// Whether an achieved FLOPs reduction is within ±`tolerance` of the target: the one test
/// behind `target_met`, ATO's settling and its warning at T_end.
pub(crate) fn flops_within(achieved: f64, target: f64, tolerance: f64) -> bool {
    (achieved - target).abs() <= tolerance + 1e-12
}

/// Whether a finished row met its target: the FLOPs reduction within ±`tolerance`, or the
/// group sparsity at least ⌊t·N⌋/N (DHSPG stops at exactly ⌊t·N⌋ zero groups).
fn target_met(row: &SummaryRow, total_groups: usize, tolerance: f64) -> Option<bool> {
    match (row.target_flops_reduction, row.target_group_sparsity) {
        (Some(t), _) => row.flops_reduction.map(|r| flops_within(r, t, tolerance)),
        (None, Some(t)) => {
            let need = (t * total_groups as f64).floor() / total_groups.max(1) as f64;
            row.group_sparsity.map(|s| s >= need - 1e-12)
        }
        (None, None) => None,
    }
}

/// `prune.round_to` on the method's final selection, for every method: each gate's kept count
/// rounded up to a multiple of `n` (capped at its width) by re-admitting the dropped groups
/// of largest norm (ties: lowest index). ATO's masks are rounded already (no change here);
/// for OTO and OTOv2, whose dropped groups are exactly zero, the re-admitted groups are zero
/// channels: the compact model computes the same function at the rounded width, and the
/// MACs count that width.
pub fn round_selection(kept: &Mask, groups: &GroupSet, n: usize) -> Result<Mask, TrainError> {
    if n <= 1 {
        return Ok(kept.clone());
    }
    let norms = groups
        .gates()
        .iter()
        .map(|g| g.norms_sq())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(kept.round_kept_up(&norms, n))
}

/// What training cost: its wall-clock seconds (across resumes) and ATO's controller.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TrainingCost {
    pub seconds: f64,
    pub controller: Option<ControllerRecord>,
}

/// Hard-zeroes, compacts, evaluates and writes the run's final files.
pub fn finish(
    cfg: &RunConfig,
    model: &Model,
    groups: &GroupSet,
    kept: &Mask,
    test: &Loader,
    run_dir: &RunDir,
    cost: TrainingCost,
) -> Result<RunOutcome, TrainError> {
    let rounded = round_selection(kept, groups, cfg.prune.round_to)?;
    let kept = &rounded;
    groups.zero_dropped(kept)?;
    let channels = KeptChannels::from_mask(kept);
    let compact = model.compact(&channels)?;
    let first = test.load_batch(0, 0)?;
    let full_logits = model.forward_t(&first.images, None, false)?;
    let small_logits = compact.forward_t(&first.images, None, false)?;
    let diff = (full_logits - small_logits)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    let full = evaluate_loader(model, test, None)?;
    let batches = test.epoch(0).map(|b| {
        b.map(|b| (b.images, b.labels))
            .map_err(|e| candle_core::Error::Msg(e.to_string()))
    });
    let small = evaluate(&compact, batches, None)?;
    write_text_atomically(
        &run_dir.mask_file(),
        &serde_json::to_string(kept).expect("a mask serialises"),
    )?;
    compact.save(&run_dir.compact_model_file())?;

    let params = WidthPolynomial::params(model.arch());
    let macs = WidthPolynomial::macs(model.arch());
    let kept_w = channels.widths();
    let mut summary = SummaryRow::planned(cfg, RunStatus::Finished)?;
    let (pruned_params, pruned_macs) = (params.eval(&kept_w), macs.eval(&kept_w));
    summary.pruned_params = Some(pruned_params);
    summary.params_reduction = Some(1.0 - pruned_params as f64 / summary.base_params as f64);
    summary.pruned_macs = Some(pruned_macs);
    summary.flops_reduction = Some(1.0 - pruned_macs as f64 / summary.base_macs as f64);
    summary.top1 = Some(full.top1());
    summary.top5 = Some(full.top5());
    summary.compact_top1 = Some(small.top1());
    summary.wall_seconds = Some(cost.seconds);
    let total_groups: usize = kept.widths().iter().sum();
    let sparsity = kept.dropped_count() as f64 / total_groups.max(1) as f64;
    summary.group_sparsity = Some(sparsity);
    summary.target_met = target_met(&summary, total_groups, cfg.prune.tolerance);
    if let Some(c) = cost.controller {
        summary.controller_steps = Some(c.steps);
        summary.settle_steps = Some(c.settle_steps);
        summary.controller_images = Some(c.images);
        summary.controller_seconds = Some(c.seconds);
    }
    let latency = if cfg.bench.after_run {
        // The trained full model is the dense twin: same architecture, full widths.
        let opts = LatencyOptions::infer(cfg.bench.batch, cfg.bench.repeats);
        Some(ato_models::latency::compare(model, &compact, &opts)?)
    } else {
        None
    };
    if let Some(t) = &latency {
        summary.dense_ms = Some(t.dense_ms);
        summary.compact_ms = Some(t.compact_ms);
        summary.speedup = Some(t.speedup);
    }
    write_csv_atomically(&run_dir.summary_file(), std::slice::from_ref(&summary))?;
    Ok(RunOutcome {
        run_dir: run_dir.path().to_path_buf(),
        summary,
        metrics: vec![],
        compact_max_abs_diff: diff,
        latency,
        convergence: None,
        rank: 0,
    })
}

impl RunOutcome {
    /// What rank `rank` of an MPI job reports once rank 0 has finished the run: the run's
    /// files as rank 0 wrote them.
    pub fn written(run_dir: &crate::RunDir, rank: usize) -> Result<Self, TrainError> {
        let summary = run_dir.summary().ok_or_else(|| {
            TrainError::Ranks(format!(
                "rank {rank}: rank 0 finished without {}",
                run_dir.summary_file().display()
            ))
        })?;
        Ok(RunOutcome {
            run_dir: run_dir.path().to_path_buf(),
            summary,
            metrics: crate::records::read_csv(&run_dir.metrics_file())?,
            compact_max_abs_diff: f32::NAN,
            latency: None,
            convergence: None,
            rank,
        })
    }
}
