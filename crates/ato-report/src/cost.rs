//! ATO's wall-time cost against dense training, measured in the same sweep: the paper sells
//! ATO as cheap (a small controller on a small subset), so the report says what it cost here.
//!
//! Per data set, model and budget: the ATO runs at the sweep's central settings and the dense
//! runs of the same group, their mean training wall time (`wall_seconds`), the ratio of the
//! means, and the per-seed ratio `ATO(s) / dense(s)` (the sweep runs the two side by side, seed
//! by seed, so a machine's drift over the sweep falls out) with its 95% t-interval. The goal,
//! [`WALL_RATIO_GOAL`], is judged on that interval: `met` when it lies at or below the goal,
//! `missed` when it lies above; when it holds the goal the seeds cannot tell, and the verdict
//! says which side the estimate (the mean ratio) is on and that the interval does not support
//! it. A row with one seed has no interval and is judged on its ratio alone, and says so.

use super::paired::PairedDifference;
use super::selection::Report;
use super::RunRecord;
use ato_train::Method;

/// ATO's training wall time is at most this multiple of dense training's on the same recipe.
pub const WALL_RATIO_GOAL: f64 = 1.15;

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
    /// The per-seed ratios' mean and 95% interval (seeds with both an ATO and a dense run).
    pub per_seed: Option<PairedDifference>,
}

/// What the per-seed ratios say about the goal.
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
    /// One seed: the ratio alone, no interval.
    MetOneSeed,
    MissedOneSeed,
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
        let mut ratios = Vec::new();
        for r in dense {
            let (Some(dw), seed) = (r.summary.wall_seconds, r.summary.seed) else {
                continue;
            };
            let mine: Vec<f64> = ato
                .iter()
                .filter(|o| o.summary.seed == seed)
                .filter_map(wall)
                .collect();
            if !mine.is_empty() && dw > 0.0 && !ratios.iter().any(|(s, _)| *s == seed) {
                ratios.push((seed, mean(&mine) / dw));
            }
        }
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
            per_seed: PairedDifference::of(&ratios.iter().map(|(_, r)| *r).collect::<Vec<_>>()),
        })
    }

    /// The goal's verdict from the per-seed ratios: their interval, and their mean (the ratio
    /// of means without pairs) when the interval holds the goal or there is none.
    pub fn goal(&self) -> Goal {
        let estimate = self.per_seed.map_or(self.ratio_of_means, |p| p.mean);
        let under = estimate <= WALL_RATIO_GOAL;
        match self.per_seed.and_then(|p| p.interval) {
            Some((_, hi)) if hi <= WALL_RATIO_GOAL => Goal::Met,
            Some((lo, _)) if lo > WALL_RATIO_GOAL => Goal::Missed,
            Some(_) if under => Goal::MetByEstimate,
            Some(_) => Goal::MissedByEstimate,
            None if under => Goal::MetOneSeed,
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

    /// `1.08× [1.02, 1.14] (n = 5)`, or the ratio alone.
    pub fn per_seed_text(&self) -> String {
        match self.per_seed {
            Some(p) => match p.interval {
                Some((lo, hi)) => format!("{:.3}× [{lo:.3}, {hi:.3}] (n = {})", p.mean, p.n),
                None => format!("{:.3}× (n = 1)", p.mean),
            },
            None => "–".into(),
        }
    }
}

impl<'a> Report<'a> {
    /// The cost rows: per group, one per ATO budget and, with several budgets, one over all.
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
            let dense = self.seed_mates(dense);
            let atos: Vec<&RunRecord> = mains
                .iter()
                .filter(in_group)
                .filter(|r| r.summary.method == Method::Ato)
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
             of the same data set and model, measured in this sweep (run side by side, seed by \
             seed). Per-seed ratio: mean of ATO(s) / dense(s) over the seeds with both, with its \
             95% t-interval (over all budgets, a seed's ATO runs are averaged first). Goal: \
             ATO ≤ {WALL_RATIO_GOAL}× dense, judged on the interval.\n"
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
mod tests {
    use super::super::markdown::tests::run;
    use super::*;

    fn timed(method: Method, seed: u64, wall: f64, budget: f64) -> RunRecord {
        let mut r = run(&format!("{method}-{budget}-s{seed}"), Some(true));
        r.summary.method = method;
        r.summary.seed = seed;
        r.summary.wall_seconds = Some(wall);
        r.summary.target_flops_reduction = (method == Method::Ato).then_some(budget);
        r
    }

    fn refs(v: &[RunRecord]) -> Vec<&RunRecord> {
        v.iter().collect()
    }

    #[test]
    fn ratios_by_hand_and_the_goal_judged_on_the_interval() {
        // per-seed ratios 1.0, 1.1, 1.2: mean 1.1, std 0.1, t(0.975, 2) = 4.303
        let dense: Vec<_> = (0..3).map(|s| timed(Method::Dense, s, 10.0, 0.0)).collect();
        let ato: Vec<_> = (0..3)
            .map(|s| timed(Method::Ato, s, 10.0 + s as f64, 0.5))
            .collect();
        let c = WallCost::of(&refs(&ato), &refs(&dense), Some(0.5)).unwrap();
        assert!((c.ratio_of_means - 1.1).abs() < 1e-12);
        let p = c.per_seed.unwrap();
        let half = 4.303 * 0.1 / 3f64.sqrt();
        let (lo, hi) = p.interval.unwrap();
        assert!((p.mean - 1.1).abs() < 1e-12);
        assert!((lo - (1.1 - half)).abs() < 1e-9 && (hi - (1.1 + half)).abs() < 1e-9);
        // the interval [0.85, 1.35] holds 1.15: met by the estimate only; 0.1 dearer per run,
        // missed by it
        assert_eq!(c.goal(), Goal::MetByEstimate);
        let dearer: Vec<_> = (0..3)
            .map(|s| timed(Method::Ato, s, 10.6 + s as f64, 0.5))
            .collect();
        let c = WallCost::of(&refs(&dearer), &refs(&dense), Some(0.5)).unwrap();
        assert_eq!(c.goal(), Goal::MissedByEstimate);
    }

    #[test]
    fn a_tight_interval_meets_or_misses_and_one_seed_says_it_has_none() {
        let dense: Vec<_> = (0..4).map(|s| timed(Method::Dense, s, 10.0, 0.0)).collect();
        let at = |base: f64| -> Vec<RunRecord> {
            (0..4)
                .map(|s| timed(Method::Ato, s, base + 0.01 * s as f64, 0.5))
                .collect()
        };
        let (cheap, dear) = (at(10.5), at(12.5));
        let cost = |a: &[RunRecord], d: &[RunRecord]| WallCost::of(&refs(a), &refs(d), None);
        assert_eq!(cost(&cheap, &dense).unwrap().goal(), Goal::Met);
        // negative control: the same runs 2 s dearer miss
        assert_eq!(cost(&dear, &dense).unwrap().goal(), Goal::Missed);
        let one = cost(&dear[..1], &dense[..1]).unwrap();
        assert_eq!(one.goal(), Goal::MissedOneSeed);
        assert_eq!(one.per_seed_text(), "1.250× (n = 1)");
        assert_eq!(
            one.line(),
            "ATO/dense wall time, synth10 resnet20, all budgets: 1.250× (n = 1), ratio of \
             means 1.250×; ≤ 1.15×: missed (one seed, no interval)"
        );
        // a seed without a dense partner is not paired; no wall time on a side gives no row
        let other = [timed(Method::Ato, 9, 11.0, 0.5)];
        assert!(cost(&other, &dense).unwrap().per_seed.is_none());
        let mut blank = timed(Method::Dense, 0, 1.0, 0.0);
        blank.summary.wall_seconds = None;
        assert!(cost(&cheap, &[blank]).is_none());
    }

    #[test]
    fn the_report_gives_a_row_per_budget_and_one_over_all() {
        let mut runs = Vec::new();
        for s in 0..3 {
            runs.push(timed(Method::Dense, s, 10.0, 0.0));
            runs.push(timed(Method::Ato, s, 10.0 + 0.1 * s as f64, 0.5));
            runs.push(timed(Method::Ato, s, 12.0 + 0.1 * s as f64, 0.7));
        }
        let report = Report::new("t", &runs);
        let rows = report.wall_costs();
        let budgets: Vec<_> = rows.iter().map(|r| r.budget).collect();
        assert_eq!(budgets, [Some(0.5), Some(0.7), None]);
        assert!((rows[0].ratio_of_means - 1.01).abs() < 1e-12);
        assert!((rows[1].ratio_of_means - 1.21).abs() < 1e-12);
        // over all: per seed (10 + 0.1s + 12 + 0.1s) / 2 / 10 = 1.1 + 0.01s
        let all = rows[2].per_seed.unwrap();
        assert_eq!((all.n, rows[2].ato_runs, rows[2].dense_runs), (3, 6, 3));
        assert!((all.mean - 1.11).abs() < 1e-12);
    }
}
