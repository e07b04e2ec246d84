//! What a run writes, row by row: `metrics.csv` (one row per epoch) and the `summary.csv` row
//! of DESIGN.md §7. Files are rewritten whole through a temporary file and a rename, so a
//! killed run never leaves a partial CSV behind.

use crate::TrainError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::Path;

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
        if self.zero_groups > 0 {
            line += &format!("  zero groups {}", self.zero_groups);
        }
        line + &format!("  {:.1}s", self.seconds)
    }
}

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Trained, compacted and evaluated: `summary.csv` holds its results.
    Finished,
    /// Stopped by an error (`error.txt` says which); running it again retries it.
    Failed,
    /// Killed mid-run: a checkpoint exists and running it again resumes from it.
    Interrupted,
    /// Not started.
    Pending,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Pending => "pending",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `summary.csv` (DESIGN.md §7 columns, in order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub run_id: String,
    /// finished | failed
    pub status: RunStatus,
    pub dataset: String,
    pub model: String,
    pub method: String,
    pub seed: u64,
    /// λ of the method (ato.lambda, oto.lambda or otov2.lambda); empty for dense.
    pub lambda: Option<f64>,
    /// γ (ATO only).
    pub gamma: Option<f64>,
    /// T_start and T_end (ATO only).
    pub t_start: Option<usize>,
    pub t_end: Option<usize>,
    /// ρ (ATO only; OTOv2 targets a group sparsity instead).
    pub target_flops_reduction: Option<f64>,
    pub epochs: usize,
    pub base_params: u64,
    /// Results: empty until the run finishes (and for failed runs).
    pub pruned_params: Option<u64>,
    pub params_reduction: Option<f64>,
    pub base_macs: u64,
    pub pruned_macs: Option<u64>,
    pub flops_reduction: Option<f64>,
    /// Test top-1/top-5 of the full model with the dropped groups hard-zeroed.
    pub top1: Option<f64>,
    pub top5: Option<f64>,
    /// Test top-1 of the compact model (equal to `top1` by zero-invariance).
    pub compact_top1: Option<f64>,
    /// Seconds of training (across resumes), or until the failure.
    pub wall_seconds: Option<f64>,
}

impl SummaryRow {
    /// The row of a run that has not finished: its identity and the full model's counts.
    pub fn planned(cfg: &crate::RunConfig, status: RunStatus) -> Result<Self, TrainError> {
        use crate::config::Method;
        let arch = ato_models::describe(&cfg.model_config())?;
        let widths = arch.gate_widths();
        let schedule = cfg.schedule();
        let ato = cfg.method == Method::Ato;
        Ok(Self {
            run_id: cfg.run_id(),
            status,
            dataset: cfg.dataset.name.to_string(),
            model: cfg.model.name.to_string(),
            method: cfg.method.as_str().into(),
            seed: cfg.seed,
            lambda: match cfg.method {
                Method::Dense => None,
                Method::Ato => Some(cfg.ato.lambda),
                Method::Oto => Some(cfg.oto.lambda),
                Method::Otov2 => Some(cfg.otov2_lambda()),
            },
            gamma: ato.then_some(cfg.ato.gamma),
            t_start: ato.then_some(schedule.t_start),
            t_end: ato.then_some(schedule.t_end),
            target_flops_reduction: ato.then_some(cfg.prune.target_flops_reduction),
            epochs: cfg.train.epochs,
            base_params: ato_zig::WidthPolynomial::params(&arch).eval(&widths),
            pruned_params: None,
            params_reduction: None,
            base_macs: ato_zig::WidthPolynomial::macs(&arch).eval(&widths),
            pruned_macs: None,
            flops_reduction: None,
            top1: None,
            top5: None,
            compact_top1: None,
            wall_seconds: None,
        })
    }

    pub fn is_finished(&self) -> bool {
        self.status == RunStatus::Finished
    }

    /// One line for the terminal: accuracy, reductions and time.
    pub fn headline(&self) -> String {
        let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.2}%", 100.0 * v));
        format!(
            "{} {}: top-1 {} (compact {}), FLOPs −{}, params −{}, {:.0}s",
            self.run_id,
            self.status,
            pct(self.top1),
            pct(self.compact_top1),
            pct(self.flops_reduction),
            pct(self.params_reduction),
            self.wall_seconds.unwrap_or(0.0)
        )
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io(format!("{}: {e}", path.display()))
}

/// Writes `rows` as a CSV with a header to `path`, atomically (temporary file + rename).
pub fn write_csv_atomically<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), TrainError> {
    ato_files::write_atomically(path, |tmp| {
        let mut w = csv::Writer::from_path(tmp)?;
        for r in rows {
            w.serialize(r)?;
        }
        Ok(w.flush()?)
    })
    .map_err(|e| TrainError::Io(e.to_string()))
}

/// Reads every row of a CSV written by [`write_csv_atomically`]; a missing file is empty.
pub fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, TrainError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut r = csv::Reader::from_path(path).map_err(|e| io(path, e))?;
    r.deserialize()
        .enumerate()
        .map(|(i, row)| row.map_err(|e| io(path, format!("row {}: {e}", i + 1))))
        .collect()
}

/// Writes a text file atomically (temporary file + rename).
pub fn write_text_atomically(path: &Path, text: &str) -> Result<(), TrainError> {
    ato_files::write_text(path, text).map_err(|e| TrainError::Io(e.to_string()))
}
