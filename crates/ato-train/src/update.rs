//! [`TargetUpdate`]: how the loop updates the target network after each backward pass.
//!
//! Implemented by the optimisers of `ato-optim` (SGD, AdamW, and HSPG/DHSPG, which prune while
//! they step); the loop only needs a step, the learning rate of a step, and state it can
//! checkpoint.

use crate::TrainError;
use candle_core::backprop::GradStore;
use std::path::Path;

/// The target network's update rule.
pub trait TargetUpdate {
    /// Learning rate η_t of global step `step` (the schedule lives with the optimiser).
    fn lr(&self, step: u64) -> f64;
    /// Applies one update with `grads` at learning rate `lr`, during epoch `epoch`.
    fn step(&mut self, grads: &GradStore, lr: f64, epoch: usize) -> Result<(), TrainError>;
    /// Writes the optimiser state into the checkpoint folder `dir`.
    fn save(&self, dir: &Path) -> Result<(), TrainError>;
    /// Restores the state written by [`TargetUpdate::save`].
    fn load(&mut self, dir: &Path) -> Result<(), TrainError>;
}
