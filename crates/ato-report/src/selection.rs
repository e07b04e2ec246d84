//! Which runs go in which table: the finished runs per (data set, model), the main rows at
//! the sweep's central ATO settings, and one ablation per axis the sweep varies.

use super::RunRecord;
use ato_train::Method;
use std::collections::BTreeMap;

/// The ATO settings an ablation can vary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    Lambda,
    Gamma,
    TStart,
    TEnd,
    /// `ato.hyper_step`, with "auto" as 0.
    HyperStep,
    /// `ato.settle_steps`.
    SettleSteps,
    /// `ato.settle_lr_mult`.
    SettleLrMult,
}

impl Axis {
    pub const ALL: [Axis; 7] = [
        Axis::Lambda,
        Axis::Gamma,
        Axis::TStart,
        Axis::TEnd,
        Axis::HyperStep,
        Axis::SettleSteps,
        Axis::SettleLrMult,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Axis::Lambda => "λ (ato.lambda)",
            Axis::Gamma => "γ (ato.gamma)",
            Axis::TStart => "T_start (epoch)",
            Axis::TEnd => "T_end (epoch)",
            Axis::HyperStep => "hyper_step (0 = auto)",
            Axis::SettleSteps => "settle_steps (cap)",
            Axis::SettleLrMult => "settle_lr_mult (× the window's lr)",
        }
    }

    pub(super) fn slug(self) -> &'static str {
        match self {
            Axis::Lambda => "lambda",
            Axis::Gamma => "gamma",
            Axis::TStart => "t_start",
            Axis::TEnd => "t_end",
            Axis::HyperStep => "hyper_step",
            Axis::SettleSteps => "settle_steps",
            Axis::SettleLrMult => "settle_lr_mult",
        }
    }

    pub(super) fn value(self, r: &RunRecord) -> Option<f64> {
        let s = &r.summary;
        match self {
            Axis::Lambda => s.lambda,
            Axis::Gamma => s.gamma,
            Axis::TStart => s.t_start.map(|v| v as f64),
            Axis::TEnd => s.t_end.map(|v| v as f64),
            Axis::HyperStep => r.controller.map(|c| c.hyper_step.unwrap_or(0) as f64),
            Axis::SettleSteps => r.controller.map(|c| c.settle_steps as f64),
            Axis::SettleLrMult => r.controller.map(|c| c.settle_lr_mult),
        }
    }
}

/// An ablation table: ATO runs of one model where only `axis` moves.
pub struct Ablation<'a> {
    pub dataset: String,
    pub model: String,
    pub axis: Axis,
    pub runs: Vec<&'a RunRecord>,
}

/// The runs of a sweep, arranged for tables and plots.
pub struct Report<'a> {
    pub(super) name: &'a str,
    pub(super) all: &'a [RunRecord],
    /// Finished runs per (data set, model), in sweep order, without those probed in the
    /// theorems' regime.
    pub(super) groups: BTreeMap<(String, String), Vec<&'a RunRecord>>,
    /// Finished runs probed in the theorems' regime, per (data set, model).
    pub(super) theorem_runs: BTreeMap<(String, String), Vec<&'a RunRecord>>,
    /// The sweep's matched-FLOPs searches (`calibration.csv`), if any.
    pub(super) calibration: Vec<ato_sweep::calibrate::CalibrationRow>,
    /// Their pilot runs in search order (`calibration_pilots.csv`), if any.
    pub(super) pilots: Vec<ato_sweep::calibrate::SearchPilot>,
}

/// The most common value (first seen wins ties), ignoring runs without one.
fn mode(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut counts: Vec<(f64, usize)> = Vec::new();
    for v in values.flatten() {
        match counts.iter_mut().find(|(x, _)| *x == v) {
            Some((_, c)) => *c += 1,
            None => counts.push((v, 1)),
        }
    }
    let best = counts.iter().map(|c| c.1).max()?;
    counts.into_iter().find(|c| c.1 == best).map(|c| c.0)
}

impl<'a> Report<'a> {
    pub fn new(name: &'a str, all: &'a [RunRecord]) -> Self {
        let mut groups: BTreeMap<(String, String), Vec<&RunRecord>> = BTreeMap::new();
        let mut theorem_runs: BTreeMap<(String, String), Vec<&RunRecord>> = BTreeMap::new();
        for r in all.iter().filter(|r| r.summary.is_finished()) {
            let into = if r.theorem_regime {
                &mut theorem_runs
            } else {
                &mut groups
            };
            into.entry((r.summary.dataset.to_string(), r.summary.model.to_string()))
                .or_default()
                .push(r);
        }
        Self {
            name,
            all,
            groups,
            theorem_runs,
            calibration: Vec::new(),
            pilots: Vec::new(),
        }
    }

    /// The central ATO settings of a group: the most common value of each axis.
    pub(super) fn center(runs: &[&RunRecord]) -> Vec<Option<f64>> {
        let ato: Vec<&&RunRecord> = runs
            .iter()
            .filter(|r| r.summary.method == Method::Ato)
            .collect();
        Axis::ALL
            .iter()
            .map(|a| mode(ato.iter().map(|r| a.value(r))))
            .collect()
    }

    pub(super) fn at_center(r: &RunRecord, center: &[Option<f64>], free: Option<Axis>) -> bool {
        Axis::ALL
            .iter()
            .zip(center)
            .all(|(&a, c)| Some(a) == free || a.value(r) == *c)
    }

    /// The ATO run a matched run was paired with (`reference_run` in `summary.csv`), if it is
    /// among the finished runs.
    pub fn reference_run(&self, r: &RunRecord) -> Option<&'a RunRecord> {
        let id = r.summary.reference_run.as_deref()?;
        self.all
            .iter()
            .find(|o| o.summary.run_id == id && o.summary.is_finished())
    }

    /// The budget a run belongs to: the one its sweep recorded (`budget`), else a matched
    /// run's reference run's FLOPs target, else the run's own target (none for dense).
    pub fn budget_of(&self, r: &RunRecord) -> Option<f64> {
        if r.summary.method == Method::Dense {
            return None;
        }
        r.summary
            .budget
            .or_else(|| self.reference_run(r)?.summary.target_flops_reduction)
            .or(r.summary.target_flops_reduction)
    }

    /// Whether `r` is a baseline of a matched sweep (it records its budget or its ATO run):
    /// its seeds differ in knob and target, and it is grouped by method and budget.
    pub fn is_matched_baseline(&self, r: &RunRecord) -> bool {
        !matches!(r.summary.method, Method::Dense | Method::Ato)
            && (r.summary.budget.is_some() || self.reference_run(r).is_some())
    }

    /// Per group, method and budget, the run at the central settings (or the first run).
    pub fn main_rows(&self) -> Vec<&'a RunRecord> {
        let mut out = Vec::new();
        for runs in self.groups.values() {
            let center = Self::center(runs);
            let mut rows: Vec<(&str, Option<f64>)> = Vec::new();
            for r in runs {
                let key = (r.summary.method.as_str(), self.budget_of(r));
                if !rows.contains(&key) {
                    rows.push(key);
                }
            }
            for (m, budget) in rows {
                let of: Vec<&&RunRecord> = runs
                    .iter()
                    .filter(|r| r.summary.method.as_str() == m && self.budget_of(r) == budget)
                    .collect();
                let pick = of
                    .iter()
                    .find(|r| m != "ato" || Self::at_center(r, &center, None))
                    .unwrap_or(&of[0]);
                out.push(**pick);
            }
        }
        out
    }

    /// Every axis along which the ATO runs of a group vary with the others at the center.
    pub fn ablations(&self) -> Vec<Ablation<'a>> {
        let mut out = Vec::new();
        for ((dataset, model), runs) in &self.groups {
            let center = Self::center(runs);
            for axis in Axis::ALL {
                let mut line: Vec<&RunRecord> = runs
                    .iter()
                    .copied()
                    .filter(|r| {
                        r.summary.method == Method::Ato && Self::at_center(r, &center, Some(axis))
                    })
                    .collect();
                line.sort_by(|a, b| {
                    axis.value(a)
                        .partial_cmp(&axis.value(b))
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                line.dedup_by(|a, b| axis.value(a) == axis.value(b));
                if line.len() >= 2 {
                    out.push(Ablation {
                        dataset: dataset.clone(),
                        model: model.clone(),
                        axis,
                        runs: line,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::markdown::tests::run;
    use super::super::{ControllerSettings, RunRecord};
    use super::{Axis, Report};

    fn ato(id: &str, hyper_step: Option<usize>, settle_steps: usize) -> RunRecord {
        settling(id, hyper_step, settle_steps, 10.0)
    }

    fn settling(id: &str, hyper_step: Option<usize>, steps: usize, lr_mult: f64) -> RunRecord {
        let mut r = run(id, Some(true));
        r.controller = Some(ControllerSettings {
            hyper_step,
            settle_steps: steps,
            settle_lr_mult: lr_mult,
        });
        r
    }

    #[test]
    fn the_controller_schedule_is_an_ablation_axis() {
        let runs = [
            ato("centre-a", None, 100),
            ato("centre-b", None, 100),
            ato("authors-rate", Some(20), 100),
            ato("no-settling", None, 0),
            settling("window-lr", None, 100, 1.0),
        ];
        let report = Report::new("t", &runs);
        let ablations = report.ablations();
        let ids = |axis: Axis| -> Vec<String> {
            ablations
                .iter()
                .filter(|a| a.axis == axis)
                .flat_map(|a| a.runs.iter().map(|r| r.summary.run_id.clone()))
                .collect()
        };
        // each line holds the centre and the one run that moves only that axis
        assert_eq!(ids(Axis::HyperStep), ["centre-a", "authors-rate"]);
        assert_eq!(ids(Axis::SettleSteps), ["no-settling", "centre-a"]);
        assert_eq!(ids(Axis::SettleLrMult), ["window-lr", "centre-a"]);
        // and a point's seed mates share its schedule: the centre has two, the others one
        let mates = |id: &str| {
            let r = runs.iter().find(|r| r.summary.run_id == id).unwrap();
            report.seed_mates(r).len()
        };
        assert_eq!(
            (
                mates("centre-a"),
                mates("authors-rate"),
                mates("no-settling"),
                mates("window-lr")
            ),
            (2, 1, 1, 1)
        );
        // negative control: a run that moves both axes is on neither line
        let runs = [
            ato("centre-a", None, 100),
            ato("centre-b", None, 100),
            ato("both", Some(20), 0),
        ];
        let report = Report::new("t", &runs);
        assert!(report.ablations().is_empty());
    }
}
