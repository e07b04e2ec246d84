//! What the convergence checks of one run found, from its `convergence.csv` rows: for each of
//! the three checks — the per-step check (no noise term), the K-step descent inequality and
//! the averaged bound — on how much it ran, where it first failed, and how much slack it left
//! where it held (the smallest defect it could have detected). The two bounds are judged only
//! on probes inside the theorems' assumptions: outside them (momentum, AdamW's step, the
//! evaluation transform, a half-space step, …) a bound that fails says nothing about the code,
//! and the line names the assumptions instead. The run's last line and the report's per-run
//! line are [`CheckVerdicts::line`].

use std::collections::BTreeSet;

use crate::config::{Fault, ProbeMode};
use ato_optim::ConvergenceRow;

/// The three checks of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckVerdicts {
    pub probes: usize,
    /// Steps the per-step check verified.
    pub step_checks: usize,
    /// The first step that failed it.
    pub step_failed_at: Option<u64>,
    /// The largest `r/t` over the run.
    pub step_worst_ratio: f64,
    /// The median tolerance t over the probe windows: the smallest detectable defect.
    pub step_tolerance: f64,
    /// Windows the descent check judged with the step condition met.
    pub descent_windows: usize,
    /// The probe (step) closing the first window where it failed.
    pub descent_failed_at: Option<u64>,
    /// The median slack of the windows where it held, in units of Ψ.
    pub descent_slack: f64,
    /// Probes where the averaged bound is defined (finite RHS).
    pub averaged_defined: usize,
    /// The first probe where LHS > RHS.
    pub averaged_failed_at: Option<u64>,
    /// The median LHS/RHS over the defined probes.
    pub averaged_ratio: f64,
    /// The first probe where the step condition η·L̂ < 2 failed (the bounds are undefined).
    pub undefined_at: Option<u64>,
    /// Probes outside the theorems' assumptions (other than the step condition), where the
    /// bounds are not judged.
    pub outside_probes: usize,
    /// The assumptions those probes violate.
    pub outside: BTreeSet<String>,
}

/// The assumptions a row violates, other than the step condition (reported on its own).
fn outside_of(r: &ConvergenceRow) -> impl Iterator<Item = &str> {
    r.violated
        .split(';')
        .filter(|v| !v.is_empty() && *v != "step_condition")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

impl CheckVerdicts {
    pub fn of(rows: &[ConvergenceRow]) -> Self {
        let judged: Vec<&ConvergenceRow> = rows
            .iter()
            .filter(|r| outside_of(r).next().is_none())
            .collect();
        let defined: Vec<&ConvergenceRow> = judged
            .iter()
            .copied()
            .filter(|r| r.rhs.is_finite())
            .collect();
        let windows: Vec<&ConvergenceRow> = judged
            .iter()
            .copied()
            .filter(|r| r.window_steps > 0 && r.step_condition)
            .collect();
        Self {
            probes: rows.len(),
            step_checks: rows.iter().map(|r| r.step_checks).sum(),
            step_failed_at: rows.iter().find_map(|r| r.step_violated_at),
            step_worst_ratio: rows
                .iter()
                .filter_map(|r| r.step_worst_ratio)
                .fold(f64::NAN, f64::max),
            step_tolerance: median(rows.iter().filter_map(|r| r.step_tolerance).collect()),
            descent_windows: windows.len(),
            descent_failed_at: windows.iter().find(|r| !r.descent_holds).map(|r| r.step),
            descent_slack: median(
                windows
                    .iter()
                    .filter(|r| r.descent_holds)
                    .filter_map(|r| r.descent_slack)
                    .collect(),
            ),
            averaged_defined: defined.len(),
            averaged_failed_at: defined
                .iter()
                .find(|r| r.lhs_rhs_ratio > 1.0)
                .map(|r| r.step),
            averaged_ratio: median(defined.iter().map(|r| r.lhs_rhs_ratio).collect()),
            undefined_at: rows.iter().find(|r| !r.step_condition).map(|r| r.step),
            outside_probes: rows.len() - judged.len(),
            outside: rows
                .iter()
                .flat_map(outside_of)
                .map(str::to_string)
                .collect(),
        }
    }

    /// Whether any check failed.
    pub fn caught(&self) -> bool {
        self.step_failed_at.is_some()
            || self.descent_failed_at.is_some()
            || self.averaged_failed_at.is_some()
    }

    /// One line: the mode and fault, then each check's verdict with where it failed or how
    /// much slack it left, e.g. `convergence checks (exact, inject lr_x20): a check FAILED — step check
    /// FAILED at step 150 (…)`.
    pub fn line(&self, mode: ProbeMode, inject: Fault) -> String {
        let fault = if inject == Fault::None {
            String::new()
        } else {
            format!(", inject {}", inject.as_str())
        };
        let head = format!("convergence checks ({}{fault})", mode.as_str());
        if self.probes == 0 {
            return format!("{head}: no probes");
        }
        let step = if self.step_checks == 0 {
            "step check not run (monitor mode, or a step that is not a prox of h)".to_string()
        } else {
            match self.step_failed_at {
                Some(s) => format!(
                    "step check FAILED at step {s} (worst r/t {:.3e} over {} steps)",
                    self.step_worst_ratio, self.step_checks
                ),
                None => format!(
                    "step check held on {} steps (worst r/t {:.2}; smallest detectable defect \
                     t ≈ {:.2e})",
                    self.step_checks, self.step_worst_ratio, self.step_tolerance
                ),
            }
        };
        let descent = match self.descent_failed_at {
            Some(s) => format!("descent FAILED at step {s}"),
            None if self.descent_windows == 0 => "descent: no window judged".to_string(),
            // rows written before the slack was recorded have none
            None if !self.descent_slack.is_finite() => {
                format!("descent held on {} windows", self.descent_windows)
            }
            None => format!(
                "descent held on {} windows (median slack {:.2e} in Ψ)",
                self.descent_windows, self.descent_slack
            ),
        };
        let averaged = match self.averaged_failed_at {
            Some(s) => format!("averaged bound FAILED at step {s}"),
            None if self.averaged_defined == 0 && self.outside_probes == self.probes => {
                "averaged bound not judged".to_string()
            }
            None if self.averaged_defined == 0 => "averaged bound undefined".to_string(),
            None => format!(
                "averaged bound held on {}/{} probes (median LHS/RHS {:.3})",
                self.averaged_defined, self.probes, self.averaged_ratio
            ),
        };
        let undefined = self
            .undefined_at
            .map(|s| format!("; η·L̂ < 2 failed from step {s} (bounds undefined there)"))
            .unwrap_or_default();
        let outside = if self.outside.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = self.outside.iter().map(String::as_str).collect();
            format!(
                "; bounds not judged on {}/{} probes outside the theorems' assumptions ({})",
                self.outside_probes,
                self.probes,
                names.join(", ")
            )
        };
        let judged = self.step_checks + self.descent_windows + self.averaged_defined;
        let verdict = if self.caught() {
            "a check FAILED"
        } else if judged == 0 {
            "no check judged"
        } else {
            "all held"
        };
        format!("{head}: {verdict} — {step}; {descent}; {averaged}{undefined}{outside}")
    }
}
