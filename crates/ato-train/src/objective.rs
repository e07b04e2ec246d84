//! The target network's objective and its bookkeeping: label-smoothed cross-entropy, mixup,
//! top-k counts, and the guard that stops a run on a non-finite loss.

use crate::TrainError;
use candle_core::{DType, Tensor, D};
use candle_nn::ops::log_softmax;

/// Cross-entropy of `logits` (N, K) against integer `labels` (N,) with label smoothing ε:
/// the target puts 1 − ε on the label and ε/K on every class (PyTorch's convention).
pub fn cross_entropy(
    logits: &Tensor,
    labels: &Tensor,
    smoothing: f64,
) -> candle_core::Result<Tensor> {
    let logp = log_softmax(logits, D::Minus1)?;
    let nll = logp
        .gather(&labels.to_dtype(DType::U32)?.unsqueeze(1)?, 1)?
        .squeeze(1)?
        .neg()?;
    if smoothing == 0.0 {
        return nll.mean_all();
    }
    let uniform = logp.mean(D::Minus1)?.neg()?; // −(1/K) Σ_c log p_c
    (nll.affine(1.0 - smoothing, 0.0)? + uniform.affine(smoothing, 0.0)?)?.mean_all()
}

/// Cross-entropy against a mixup of two label sets: `w · CE(y_a) + (1 − w) · CE(y_b)`.
pub fn mixup_cross_entropy(
    logits: &Tensor,
    labels_a: &Tensor,
    labels_b: &Tensor,
    weight_a: f64,
    smoothing: f64,
) -> candle_core::Result<Tensor> {
    let a = cross_entropy(logits, labels_a, smoothing)?;
    let b = cross_entropy(logits, labels_b, smoothing)?;
    a.affine(weight_a, 0.0)? + b.affine(1.0 - weight_a, 0.0)?
}

/// Number of rows whose label is among the `k` largest logits (ties count as hits only when
/// strictly fewer than k logits are larger). A row with a non-finite logit is a miss.
pub fn topk_correct(logits: &Tensor, labels: &Tensor, k: usize) -> candle_core::Result<usize> {
    let logits: Vec<Vec<f32>> = logits.to_dtype(DType::F32)?.to_vec2()?;
    let labels: Vec<u32> = labels.to_dtype(DType::U32)?.to_vec1()?;
    Ok(logits
        .iter()
        .zip(&labels)
        .filter(|(row, &y)| {
            let v = row[y as usize];
            row.iter().all(|x| x.is_finite()) && row.iter().filter(|&&x| x > v).count() < k
        })
        .count())
}

/// The loss value, or an error naming the step if it is NaN or infinite.
pub fn finite_loss(loss: &Tensor, epoch: usize, step: usize) -> Result<f64, TrainError> {
    let v = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(TrainError::NonFinite {
            value: v,
            epoch,
            step,
        })
    }
}

/// Running sums for loss and top-1/top-5 over an epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    pub samples: usize,
    pub loss_sum: f64,
    pub top1: usize,
    pub top5: usize,
}

impl Tally {
    /// Adds a batch whose mean loss is `loss`.
    pub fn add(&mut self, logits: &Tensor, labels: &Tensor, loss: f64) -> candle_core::Result<()> {
        let n = labels.dim(0)?;
        let k5 = logits.dim(D::Minus1)?.min(5);
        self.samples += n;
        self.loss_sum += loss * n as f64;
        self.top1 += topk_correct(logits, labels, 1)?;
        self.top5 += topk_correct(logits, labels, k5)?;
        Ok(())
    }

    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.samples.max(1) as f64
    }
    pub fn top1(&self) -> f64 {
        self.top1 as f64 / self.samples.max(1) as f64
    }
    pub fn top5(&self) -> f64 {
        self.top5 as f64 / self.samples.max(1) as f64
    }
}
