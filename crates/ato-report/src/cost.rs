//! ATO's wall-time cost against dense training, measured in the same sweep: the paper sells
//! ATO as cheap (a small controller on a small subset), so the report says what it cost here.
//!
//! Per data set, model and budget: the ATO runs at the sweep's central settings and the dense
//! runs of the same group and length, their mean training wall time (`wall_seconds`), the ratio
//! of the means, and the per-seed ratio `ATO(s) / dense(s)` (a sweep that matches FLOPs runs the
//! two seed by seed, back to back, so a machine's drift over the sweep falls out; otherwise the
//! pairing still removes nothing but the seed). The per-seed ratios are summarised on the log
//! scale — their geometric mean, and the 95% t-interval of the mean log ratio taken back with
//! `exp` — so a dense run that happened to be slow does not pull the estimate up more than a
//! fast one pulls it down. The goal, [`WALL_RATIO_GOAL`], is judged on that interval: `met`
//! when it lies at or below the goal, `missed` when it lies above; when it holds the goal the
//! seeds cannot tell, and the verdict says which side the estimate is on and that the interval
//! does not support it. One paired seed has no interval; no paired seed leaves the ratio of
//! means alone; both say so. A seed is paired only when its ATO and dense runs ran on the same
//! machine (CPU, flags, threads, device from `machine.json`: a sharded sweep may spread them
//! over several); the row counts the seeds left out, and with runs on several machines and no
//! seed paired on one it judges nothing.

use super::paired::PairedDifference;
use super::selection::Report;
use super::RunRecord;
use ato_train::Method;

/// ATO's training wall time is at most this multiple of dense training's on the same recipe.
pub const WALL_RATIO_GOAL: f64 = 1.15;

/// The per-seed ratios ATO(s) / dense(s): geometric mean and 95% interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeedRatios {
    pub n: usize,
    /// exp(mean log ratio).
    pub geometric_mean: f64,
    /// exp of the t-interval of the mean log ratio; `None` for one seed.
    pub interval: Option<(f64, f64)>,
}

impl SeedRatios {
    /// Of the ratios (each > 0); `None` for none.
    pub fn of(ratios: &[f64]) -> Option<Self> {
        let logs: Vec<f64> = ratios.iter().map(|r| r.ln()).collect();
        let p = PairedDifference::of(&logs)?;
        Some(Self {
            n: p.n,
            geometric_mean: p.mean.exp(),
            interval: p.interval.map(|(lo, hi)| (lo.exp(), hi.exp())),
        })
    }
}

/// One row of the cost table.
#[derive(Clone, Debug, PartialEq)]
pub struct WallCost {
    pub dataset: String,
    pub model: String,
    /// The ATO runs' budget; `None` for the row over every budget.
    pub budget: Option<f64>,
    pub ato_seconds: f64,
    pub dense_seconds: f64,
    /// Runs behind the two means.
    pub ato_runs: usize,
    pub dense_runs: usize,
    /// Mean ATO wall time over mean dense wall time.
    pub ratio_of_means: f64,
    /// The per-seed ratios (seeds with both an ATO and a dense run on one machine); `None`
    /// without such a seed.
    pub per_seed: Option<SeedRatios>,
    /// Distinct machines of the runs (runs without `machine.json` not counted).
    pub machines: usize,
    /// Seeds with both runs, but on different machines: left out of the per-seed ratios.
    pub cross_machine_seeds: usize,
}

/// What the ratios say about the goal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    /// The whole interval is at or below the goal.
    Met,
    /// The estimate is at or below the goal; the interval reaches above it.
    MetByEstimate,
    /// The estimate is above the goal; the interval reaches below it.
    MissedByEstimate,
    /// The whole interval is above the goal.
    Missed,
    /// One paired seed: its ratio alone, no interval.
    MetOneSeed,
    MissedOneSeed,
    /// No seed has both an ATO and a dense run: the ratio of means alone.
    MetUnpaired,
    MissedUnpaired,
    /// No seed paired on one machine, and the runs ran on several: nothing to judge.
    NotJudged,
}

impl Goal {
    pub fn word(self) -> &'static str {
        match self {
            Goal::Met => "met",
            Goal::MetByEstimate => "met by the estimate, not by the interval",
            Goal::MissedByEstimate => "missed by the estimate, not by the interval",
            Goal::Missed => "missed",
            Goal::MetOneSeed => "met (one seed, no interval)",
            Goal::MissedOneSeed => "missed (one seed, no interval)",
            Goal::MetUnpaired => "met by the ratio of means (no seed paired, no interval)",
            Goal::MissedUnpaired => "missed by the ratio of means (no seed paired, no interval)",
            Goal::NotJudged => "not judged (runs on several machines, no seed paired on one)",
        }
    }
}

impl WallCost {
    /// Of `ato` and `dense` runs of one group: `None` without a wall time on either side.
    pub fn of(ato: &[&RunRecord], dense: &[&RunRecord], budget: Option<f64>) -> Option<Self> {
        let wall = |r: &&RunRecord| r.summary.wall_seconds;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let a: Vec<f64> = ato.iter().filter_map(wall).collect();
        let d: Vec<f64> = dense.iter().filter_map(wall).collect();
        if a.is_empty() || d.is_empty() {
            return None;
        }
        // per seed: the mean of the seed's ATO runs (one per budget in the all-budgets row)
        // over its dense run's
        // a run without machine.json is taken to share any machine
        let same = |a: &RunRecord, b: &RunRecord| match (&a.machine, &b.machine) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        };
        let mut ratios: Vec<(u64, f64)> = Vec::new();
        let mut cross_machine: Vec<u64> = Vec::new();
        for r in dense {
            let (Some(dw), seed) = (r.summary.wall_seconds, r.summary.seed) else {
                continue;
            };
            let seed_runs: Vec<&&RunRecord> = ato
                .iter()
                .filter(|o| o.summary.seed == seed && o.summary.wall_seconds.is_some())
                .collect();
            let done = |s: &u64| *s == seed;
            if seed_runs.is_empty() || dw <= 0.0 || ratios.iter().any(|(s, _)| done(s)) {
                continue;
            }
            if !seed_runs.iter().all(|o| same(o, r)) {
                if !cross_machine.iter().any(done) {
                    cross_machine.push(seed);
                }
                continue;
            }
            let mine: Vec<f64> = seed_runs.iter().copied().filter_map(wall).collect();
            ratios.push((seed, mean(&mine) / dw));
        }
        // a seed paired through another of its dense runs is not also counted as left out
        cross_machine.retain(|s| !ratios.iter().any(|(r, _)| r == s));
        let mut machines: Vec<&String> = ato
            .iter()
            .chain(dense)
            .filter_map(|r| r.machine.as_ref())
            .collect();
        machines.sort();
        machines.dedup();
        let first = ato.first().or(dense.first())?;
        Some(Self {
            dataset: first.summary.dataset.to_string(),
            model: first.summary.model.to_string(),
            budget,
            ato_seconds: mean(&a),
            dense_seconds: mean(&d),
            ato_runs: a.len(),
            dense_runs: d.len(),
            ratio_of_means: mean(&a) / mean(&d),
            per_seed: SeedRatios::of(&ratios.iter().map(|(_, r)| *r).collect::<Vec<_>>()),
            machines: machines.len(),
            cross_machine_seeds: cross_machine.len(),
        })
    }

    /// The goal's verdict from the per-seed interval, else the one seed's ratio, else the
    /// ratio of means.
    pub fn goal(&self) -> Goal {
        let under = |r: f64| r <= WALL_RATIO_GOAL;
        let Some(p) = self.per_seed else {
            if self.machines > 1 {
                return Goal::NotJudged;
            }
            return match under(self.ratio_of_means) {
                true => Goal::MetUnpaired,
                false => Goal::MissedUnpaired,
            };
        };
        match p.interval {
            Some((_, hi)) if under(hi) => Goal::Met,
            Some((lo, _)) if !under(lo) => Goal::Missed,
            Some(_) if under(p.geometric_mean) => Goal::MetByEstimate,
            Some(_) => Goal::MissedByEstimate,
            None if under(p.geometric_mean) => Goal::MetOneSeed,
            None => Goal::MissedOneSeed,
        }
    }

    /// The row as one line of output: `ATO/dense wall time, digits resnet20, 50%: 1.069×
    /// [0.998, 1.140] (n = 5), ratio of means 1.067×; ≤ 1.15×: met`.
    pub fn line(&self) -> String {
        format!(
            "ATO/dense wall time, {} {}, {}: {}, ratio of means {:.3}×; ≤ {WALL_RATIO_GOAL}×: {}",
            self.dataset,
            self.model,
            self.budget
                .map_or("all budgets".into(), |b| format!("{:.0}%", 100.0 * b)),
            self.per_seed_text(),
            self.ratio_of_means,
            self.goal().word()
        )
    }

    /// `1.081× [1.021, 1.144] (n = 5)`, the one seed's ratio, or `–`; then how many seeds
    /// were left out for their runs' machines, if any.
    pub fn per_seed_text(&self) -> String {
        let text = self.paired_text();
        match self.cross_machine_seeds {
            0 => text,
            k => format!("{text}, {k} seed(s) left out: ATO and dense on different machines"),
        }
    }

    fn paired_text(&self) -> String {
        match self.per_seed {
            Some(p) => match p.interval {
                Some((lo, hi)) => {
                    format!("{:.3}× [{lo:.3}, {hi:.3}] (n = {})", p.geometric_mean, p.n)
                }
                None => format!("{:.3}× (n = 1)", p.geometric_mean),
            },
            None => "–".into(),
        }
    }
}

impl<'a> Report<'a> {
    /// The cost rows: per group, one per ATO budget and, with several budgets, one over all;
    /// only ATO runs as long as the dense runs (same epochs) are compared.
    pub fn wall_costs(&self) -> Vec<WallCost> {
        let mains = self.main_rows();
        let mut out = Vec::new();
        for (key, _) in self.groups.iter() {
            let in_group = |r: &&&RunRecord| {
                (r.summary.dataset.to_string(), r.summary.model.to_string()) == *key
            };
            let Some(dense) = mains
                .iter()
                .filter(in_group)
                .find(|r| r.summary.method == Method::Dense)
            else {
                continue;
            };
            let epochs = dense.summary.epochs;
            let dense = self.seed_mates(dense);
            let atos: Vec<&RunRecord> = mains
                .iter()
                .filter(in_group)
                .filter(|r| r.summary.method == Method::Ato && r.summary.epochs == epochs)
                .copied()
                .collect();
            let mut all = Vec::new();
            for a in &atos {
                let mates = self.seed_mates(a);
                out.extend(WallCost::of(&mates, &dense, self.budget_of(a)));
                all.extend(mates);
            }
            if atos.len() > 1 {
                out.extend(WallCost::of(&all, &dense, None));
            }
        }
        out
    }
}

impl Report<'_> {
    /// The "ATO's cost" section of the Markdown report (nothing without dense and ATO runs).
    pub fn cost_section(&self, md: &mut String) {
        use std::fmt::Write;
        let rows = self.wall_costs();
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(md, "\n## ATO's cost\n");
        let _ = writeln!(
            md,
            "Training wall time of the ATO runs at the central settings against the dense runs \
             of the same data set, model and length, measured in this sweep (a sweep that \
             matches FLOPs runs them seed by seed, back to back). Per-seed ratio: ATO(s) / \
             dense(s) over the seeds with both on one machine (`machine.json`; over all \
             budgets, a seed's ATO runs are averaged first), summarised by its geometric mean \
             with the 95% t-interval of the mean log ratio. Goal: ATO ≤ {WALL_RATIO_GOAL}× \
             dense, judged on the interval.\n"
        );
        let _ = writeln!(
            md,
            "| data set | model | budget | ATO s (runs) | dense s (runs) | ratio of means | \
             per-seed ratio (95% CI) | ≤ {WALL_RATIO_GOAL}× |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
        for c in rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.2} ({}) | {:.2} ({}) | {:.3}× | {} | {} |",
                c.dataset,
                c.model,
                c.budget
                    .map_or("all".into(), |b| format!("{:.0}%", 100.0 * b)),
                c.ato_seconds,
                c.ato_runs,
                c.dense_seconds,
                c.dense_runs,
                c.ratio_of_means,
                c.per_seed_text(),
                c.goal().word()
            );
        }
    }
}

#[cfg(test)]
#[path = "cost_tests.rs"]
mod tests;
