//! The records of matched-FLOPs searches: the cache rows (`calibration.csv`), every pilot
//! (`calibration_pilots.csv`), what a pilot achieved, and the search's settings.

use super::search::SearchStatus;
use ato_train::Method;
use serde::{Deserialize, Serialize};

/// One pilot run of a search (a row of [`super::PILOTS_FILE`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchPilot {
    pub method: Method,
    /// The search's key (as in `calibration.csv`).
    pub key: String,
    /// 1, 2, …: the order of the search's pilots.
    pub pilot: usize,
    /// The knob's value.
    pub value: f64,
    /// OTOv2's λ in this pilot (its search raises it ×4 while a pilot falls short of its own
    /// target, at the same target value); empty for OTO, whose knob is λ.
    pub lambda: Option<f64>,
    /// The pilot's FLOPs reduction.
    pub achieved: f64,
}

/// What a pilot run achieved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PilotOutcome {
    pub flops_reduction: f64,
    /// The share of zero groups (OTOv2's own target measures this).
    pub group_sparsity: Option<f64>,
}

/// How the search runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatchSettings {
    /// Epochs of a pilot run; `None` = the run's own.
    pub pilot_epochs: Option<usize>,
    pub max_pilots: usize,
    /// A pilot within this of the reference ends the search (`match_tolerance`, default
    /// [`super::MATCH_TOLERANCE`]; the report's "matched" is always ±[`super::MATCH_TOLERANCE`]).
    pub tolerance: f64,
}

/// One row of `calibration.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRow {
    pub method: Method,
    /// The run's settings without the knob (a run id, seed included), the pilot epochs and the
    /// budget: `<run id>-p<epochs>-b<budget>`.
    pub key: String,
    /// The config key searched.
    pub knob: String,
    pub value: f64,
    /// The pilot's FLOPs reduction at `value`; by construction, the run's measured reduction
    /// once it has finished ([`super::record_measured`]), the reference until then.
    pub achieved: f64,
    pub reference: f64,
    pub status: SearchStatus,
    pub pilots: usize,
    /// OTOv2's λ when its search raised it (empty otherwise, and in caches written before).
    #[serde(default)]
    pub lambda: Option<f64>,
    /// The lowest and highest FLOPs reduction the search measured within
    /// [`super::search::NEIGHBOURHOOD`] of `value` (0.1% of λ, or 0.001 of a share), when there were
    /// others (empty otherwise, and in caches written before): a result whose neighbours
    /// spread widely rests on the knob's last digits.
    #[serde(default)]
    pub near_low: Option<f64>,
    #[serde(default)]
    pub near_high: Option<f64>,
}
