//! [`EpochMetrics`]: one row of `metrics.csv` per epoch, and its one-line summary.

use serde::{Deserialize, Serialize};

/// One epoch of `metrics.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_top1: f64,
    pub test_loss: f64,
    pub test_top1: f64,
    pub test_top5: f64,
    /// Test top-1 of the model with the epoch's mask applied (equals test_top1 for dense).
    pub masked_top1: f64,
    /// Full-model MACs kept by the epoch's mask, as a fraction.
    pub mask_macs_ratio: f64,
    /// Share of groups whose norm is exactly zero.
    pub group_sparsity: f64,
    pub zero_groups: usize,
    pub controller_loss: f64,
    pub flops_reg: f64,
    /// Controller steps taken in the epoch (ATO).
    pub controller_steps: usize,
    /// Seconds of the training steps (target, controller, pruner) of the epoch.
    pub train_seconds: f64,
    /// Seconds of the whole epoch, evaluation included.
    pub seconds: f64,
}

impl EpochMetrics {
    /// The one line printed after each epoch.
    pub fn summary_line(&self, epochs: usize) -> String {
        let mut line = format!(
            "epoch {:>3}/{epochs}  lr {:.4}  train loss {:.4} top1 {:5.2}%  test loss {:.4} top1 {:5.2}% top5 {:5.2}%",
            self.epoch + 1,
            self.lr,
            self.train_loss,
            100.0 * self.train_top1,
            self.test_loss,
            100.0 * self.test_top1,
            100.0 * self.test_top5,
        );
        if self.masked_top1 != self.test_top1 || self.mask_macs_ratio < 1.0 {
            line += &format!(
                "  masked {:5.2}% at {:4.1}% MACs",
                100.0 * self.masked_top1,
                100.0 * self.mask_macs_ratio
            );
        }
        if self.controller_steps > 0 {
            line += &format!("  ctrl steps {}", self.controller_steps);
        }
        if self.zero_groups > 0 {
            line += &format!("  zero groups {}", self.zero_groups);
        }
        line + &format!("  {:.1}s", self.seconds)
    }
}
