//! Mixup (Zhang et al., 2018) of a training batch: `x = w·x_a + (1 − w)·x_b` with `w ~ Beta(α, α)`
//! and `x_b` a permutation of the batch, drawn from a stream seeded by `(seed, step)` so a
//! resumed run mixes exactly as an uninterrupted one.

use crate::TrainError;
use ato_data::seeded_rng;
use candle_core::Tensor;
use rand::seq::SliceRandom;
use rand_distr::{Beta, Distribution};

/// A mixed batch: the images, the permuted labels and the weight of the original ones.
pub struct MixedBatch {
    pub images: Tensor,
    pub labels_b: Tensor,
    pub weight_a: f64,
}

/// Mixes `images` with a permutation of themselves for step `step` of a run seeded `seed`.
pub fn mix(
    images: &Tensor,
    labels: &Tensor,
    alpha: f64,
    seed: u64,
    step: u64,
) -> Result<MixedBatch, TrainError> {
    let mut rng = seeded_rng(&[seed, 0x3113, step]);
    let w: f64 = Beta::new(alpha, alpha)
        .map_err(|e| TrainError::Config(format!("train.mixup: {e}")))?
        .sample(&mut rng);
    let n = labels.dim(0)?;
    let mut perm: Vec<u32> = (0..n as u32).collect();
    perm.shuffle(&mut rng);
    let perm = Tensor::from_vec(perm, n, images.device())?;
    let mixed = (images.affine(w, 0.0)? + images.index_select(&perm, 0)?.affine(1.0 - w, 0.0)?)?;
    Ok(MixedBatch {
        images: mixed,
        labels_b: labels.index_select(&perm, 0)?,
        weight_a: w,
    })
}
