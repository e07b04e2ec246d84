//! [`SummaryRow`]: the one row of `summary.csv` a run ends with (docs/design.md §7 columns, then
//! what the run was asked and whether it met it), and [`RunStatus`].

use crate::config::Method;
use crate::TrainError;
use ato_data::DatasetName;
use ato_models::ModelName;
use serde::{Deserialize, Serialize};

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

/// One row of `summary.csv` (docs/design.md §7 columns, in order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub run_id: String,
    /// finished | failed
    pub status: RunStatus,
    pub dataset: DatasetName,
    pub model: ModelName,
    pub method: Method,
    pub seed: u64,
    /// λ of the method (ato.lambda, oto.lambda or otov2.lambda); empty for dense.
    pub lambda: Option<f64>,
    /// γ (ATO only).
    pub gamma: Option<f64>,
    /// T_start and T_end (ATO only).
    pub t_start: Option<usize>,
    pub t_end: Option<usize>,
    /// ρ, the FLOPs reduction the run was asked for (`prune.target_flops_reduction`, every
    /// pruning method; OTO and OTOv2 reach it through their knobs); empty for dense.
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
    /// The share of zero groups asked for (OTOv2; HESSO with `hesso.target_group_sparsity`).
    pub target_group_sparsity: Option<f64>,
    /// The share of groups dropped by the final mask.
    pub group_sparsity: Option<f64>,
    /// Whether the run met what it was asked: its FLOPs reduction within ±`prune.tolerance`
    /// of the FLOPs target (every pruning method); empty for dense.
    pub target_met: Option<bool>,
    /// Median ms of one eval-mode forward of the dense model at `bench.batch` images, timed
    /// side by side with the compact model after the run (empty when `bench.after_run` is
    /// off; files from before the column read as empty).
    #[serde(default)]
    pub dense_ms: Option<f64>,
    /// The same for the compact model.
    #[serde(default)]
    pub compact_ms: Option<f64>,
    /// `dense_ms / compact_ms`: how much faster the compact model runs.
    #[serde(default)]
    pub speedup: Option<f64>,
    /// The ATO run this run was matched to (`prune.reference_run`: a baseline of a sweep with
    /// `match_flops`, paired with the ATO run of its seed and budget); empty otherwise.
    #[serde(default)]
    pub reference_run: Option<String>,
    /// The budget a matched run belongs to: the FLOPs↓ target its sweep planned for it, before
    /// matching replaced the target by the reference (written by the sweep; empty otherwise).
    #[serde(default)]
    pub budget: Option<f64>,
    /// ATO: controller steps over the run, settling included (empty for other methods).
    #[serde(default)]
    pub controller_steps: Option<u64>,
    /// ATO: of those, the extra steps of settling at the end of the window (0: none needed).
    #[serde(default)]
    pub settle_steps: Option<u64>,
    /// ATO: images of the controller's subset D_c (`ato.controller_fraction` of the training
    /// split).
    #[serde(default)]
    pub controller_images: Option<usize>,
    /// ATO: wall-clock seconds spent in controller steps (part of `wall_seconds`).
    #[serde(default)]
    pub controller_seconds: Option<f64>,
    /// The key of the matched-FLOPs search that set this run's knob (a row of the sweep's
    /// `calibration.csv`; written by the sweep, empty otherwise): what the report joins on.
    #[serde(default)]
    pub calibration_key: Option<String>,
}

impl SummaryRow {
    /// The row of a run that has not finished: its identity and the full model's counts.
    pub fn planned(cfg: &crate::RunConfig, status: RunStatus) -> Result<Self, TrainError> {
        let arch = ato_models::describe(&cfg.model_config()?)?;
        let widths = arch.gate_widths();
        let schedule = cfg.schedule();
        let ato = cfg.method == Method::Ato;
        Ok(Self {
            run_id: cfg.run_id(),
            status,
            dataset: cfg.dataset.name,
            model: cfg.model_name(),
            method: cfg.method,
            seed: cfg.seed,
            lambda: match cfg.method {
                Method::Dense | Method::Hesso | Method::Magnitude => None,
                Method::Ato => Some(cfg.ato.lambda),
                Method::Oto => Some(cfg.oto.lambda),
                Method::Otov2 => Some(cfg.otov2_lambda()),
            },
            gamma: ato.then_some(cfg.ato.gamma),
            t_start: ato.then_some(schedule.t_start),
            t_end: ato.then_some(schedule.t_end),
            target_flops_reduction: cfg.flops_target(),
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
            target_group_sparsity: match cfg.method {
                Method::Otov2 => Some(cfg.otov2.target_group_sparsity),
                Method::Hesso => cfg.hesso.target_group_sparsity,
                _ => None,
            },
            group_sparsity: None,
            target_met: None,
            dense_ms: None,
            compact_ms: None,
            speedup: None,
            reference_run: cfg.prune.reference_run.clone(),
            budget: None,
            controller_steps: None,
            settle_steps: None,
            controller_images: None,
            controller_seconds: None,
            calibration_key: None,
        })
    }

    /// The verdict on the target, for the headline: "met", "MISSED" or nothing.
    pub fn target_text(&self) -> String {
        let asked = match (self.target_flops_reduction, self.target_group_sparsity) {
            (Some(t), _) => format!("FLOPs target −{:.1}%", 100.0 * t),
            (None, Some(t)) => format!("group-sparsity target {:.1}%", 100.0 * t),
            (None, None) => return String::new(),
        };
        match self.target_met {
            Some(true) => format!(", {asked}: met"),
            Some(false) => format!(", {asked}: MISSED"),
            None => String::new(),
        }
    }

    /// Judges the row's FLOPs reduction against `target` (±`tolerance`): a matched run's folder
    /// may have been trained for an earlier reference (a pilot of the same knob value), and the
    /// sweep reports it against today's.
    pub fn judge_against(&mut self, target: f64, tolerance: f64) {
        self.target_flops_reduction = Some(target);
        if self.is_finished() {
            self.target_met = self
                .flops_reduction
                .map(|r| crate::finish::flops_within(r, target, tolerance));
        }
    }

    /// The value of the knob a matched run's search set: OTO's λ, OTOv2's or HESSO's
    /// group-sparsity target (HESSO's only with the reference's group-count target); `None`
    /// for every other run.
    pub fn searched_knob(&self) -> Option<f64> {
        match self.method {
            Method::Oto => self.lambda,
            Method::Otov2 | Method::Hesso => self.target_group_sparsity,
            Method::Dense | Method::Ato | Method::Magnitude => None,
        }
    }

    pub fn is_finished(&self) -> bool {
        self.status == RunStatus::Finished
    }

    /// One line for the terminal: accuracy, reductions and time.
    pub fn headline(&self) -> String {
        let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.2}%", 100.0 * v));
        format!(
            "{} {}: top-1 {} (compact {}), FLOPs −{}, params −{}{}{}, {:.0}s",
            self.run_id,
            self.status,
            pct(self.top1),
            pct(self.compact_top1),
            pct(self.flops_reduction),
            pct(self.params_reduction),
            self.target_text(),
            self.speedup
                .map_or(String::new(), |s| format!(", {s:.2}x faster")),
            self.wall_seconds.unwrap_or(0.0)
        )
    }
}
