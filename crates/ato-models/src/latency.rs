//! Side-by-side latency of a compact (pruned) model and the dense model of the same
//! architecture: what `ato bench RUN_DIR` prints and what a run measures after compaction.
//!
//! Both models run in one process on the same random batch with the same threads: first
//! `warmup` untimed steps of each, then `repeats` rounds in which each model runs `iters`
//! timed steps, the order alternating every round (dense first, then compact first, …), so a
//! shared machine's load hits both alike. A model's figure is the median over the rounds of its
//! mean milliseconds per step; the speedup is `dense_ms / compact_ms`.

use crate::{Model, ModelConfig, ModelError};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, SGD};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::time::Instant;

/// What one timed step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// Eval-mode forward.
    Infer,
    /// Train-mode forward, cross-entropy, backward and a plain SGD update.
    Train,
}

/// How to time the two models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyOptions {
    pub kind: StepKind,
    /// Images per step.
    pub batch: usize,
    /// Untimed steps of each model before timing.
    pub warmup: usize,
    /// Interleaved rounds; each model's figure is the median over them.
    pub repeats: usize,
    /// Timed steps of each model per round.
    pub iters: usize,
}

impl LatencyOptions {
    /// Inference at `batch`, 1 warm-up step, `repeats` rounds of 1 step.
    pub fn infer(batch: usize, repeats: usize) -> Self {
        Self {
            kind: StepKind::Infer,
            batch,
            warmup: 1,
            repeats,
            iters: 1,
        }
    }
}

/// The two figures and their ratio.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SideBySide {
    pub kind: StepKind,
    pub batch: usize,
    pub threads: usize,
    pub repeats: usize,
    pub iters: usize,
    /// Median over the rounds of the dense model's mean ms per step.
    pub dense_ms: f64,
    /// The same for the compact model.
    pub compact_ms: f64,
    /// `dense_ms / compact_ms`.
    pub speedup: f64,
    /// Conv + linear multiply-accumulates of one image, dense and compact.
    pub dense_macs: u64,
    pub compact_macs: u64,
    /// `dense_macs / compact_macs`: the speedup the MACs promise.
    pub macs_ratio: f64,
}

/// The dense model with `compact`'s architecture at full width (its `widths` unset), freshly
/// initialised from `seed` on `compact`'s device (the weights' values do not change the time).
pub fn dense_twin(compact: &Model, seed: u64) -> Result<Model, ModelError> {
    let config = ModelConfig {
        widths: None,
        ..compact.config().clone()
    };
    Model::new(&config, compact.device(), seed)
}

/// Times `dense` and `compact` side by side (see the module doc). Both must take the same
/// input size and class count.
pub fn compare(
    dense: &Model,
    compact: &Model,
    opts: &LatencyOptions,
) -> Result<SideBySide, ModelError> {
    let (dc, cc) = (dense.config(), compact.config());
    if dc.input_size != cc.input_size
        || dc.num_classes != cc.num_classes
        || dc.in_channels != cc.in_channels
    {
        return Err(ModelError::InvalidConfig(format!(
            "the dense model takes {}-pixel images into {} classes, the compact one {} into {}",
            dc.input_size, dc.num_classes, cc.input_size, cc.num_classes
        )));
    }
    if opts.batch == 0 || opts.repeats == 0 || opts.iters == 0 {
        return Err(ModelError::InvalidConfig(
            "latency: batch, repeats and iters must be positive".into(),
        ));
    }
    let (x, y) = random_batch(
        (dc.in_channels, dc.input_size),
        dc.num_classes,
        opts.batch,
        dense.device(),
    )?;
    let mut steps = [
        step_of(dense, &x, &y, opts.kind)?,
        step_of(compact, &x, &y, opts.kind)?,
    ];
    for step in steps.iter_mut() {
        for _ in 0..opts.warmup {
            step()?;
        }
    }
    let mut ms = [Vec::new(), Vec::new()];
    for round in 0..opts.repeats {
        for k in 0..2 {
            let i = (k + round) % 2;
            let start = Instant::now();
            for _ in 0..opts.iters {
                steps[i]()?;
            }
            ms[i].push(start.elapsed().as_secs_f64() * 1e3 / opts.iters as f64);
        }
    }
    let [dense_ms, compact_ms] = ms.map(median);
    let (dense_macs, compact_macs) = (dense.macs(), compact.macs());
    Ok(SideBySide {
        kind: opts.kind,
        batch: opts.batch,
        threads: candle_core::utils::get_num_threads(),
        repeats: opts.repeats,
        iters: opts.iters,
        dense_ms,
        compact_ms,
        speedup: dense_ms / compact_ms,
        dense_macs,
        compact_macs,
        macs_ratio: dense_macs as f64 / compact_macs.max(1) as f64,
    })
}

/// The median of a non-empty list (the upper one of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

type Step<'a> = Box<dyn FnMut() -> Result<(), ModelError> + 'a>;

/// One step of `model` on `(x, y)`: an eval forward whose result is read back, or a training
/// step with its own SGD.
fn step_of<'a>(
    model: &'a Model,
    x: &'a Tensor,
    y: &'a Tensor,
    kind: StepKind,
) -> Result<Step<'a>, ModelError> {
    Ok(match kind {
        StepKind::Infer => Box::new(move || -> Result<(), ModelError> {
            let logits = model.forward_t(x, None, false)?;
            // Materialise the result before the clock stops.
            let _ = logits.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()?;
            Ok(())
        }),
        StepKind::Train => {
            let vars = model.trainable_vars().into_iter().map(|(_, v)| v).collect();
            let mut sgd = SGD::new(vars, 0.01)?;
            Box::new(move || -> Result<(), ModelError> {
                let logits = model.forward_t(x, None, true)?;
                let loss = candle_nn::loss::cross_entropy(&logits, y)?;
                sgd.backward_step(&loss)?;
                model.device().synchronize()?;
                Ok(())
            })
        }
    })
}

/// A seeded batch of uniform pixels in [-1, 1) and random labels.
fn random_batch(
    (channels, side): (usize, usize),
    classes: usize,
    batch: usize,
    device: &Device,
) -> Result<(Tensor, Tensor), ModelError> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let pixels: Vec<f32> = (0..batch * channels * side * side)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let labels: Vec<u32> = (0..batch)
        .map(|_| rng.random_range(0..classes as u32))
        .collect();
    Ok((
        Tensor::from_vec(pixels, (batch, channels, side, side), device)?,
        Tensor::from_vec(labels, batch, device)?,
    ))
}
