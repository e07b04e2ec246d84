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
//! means alone; both say so.

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
    /// The per-seed ratios (seeds with both an ATO and a dense run); `None` without such a seed.
    pub per_seed: Option<SeedRatios>,
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
        let mut ratios: Vec<(u64, f64)> = Vec::new();
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
            per_seed: SeedRatios::of(&ratios.iter().map(|(_, r)| *r).collect::<Vec<_>>()),
        })
    }

    /// The goal's verdict from the per-seed interval, else the one seed's ratio, else the
    /// ratio of means.
    pub fn goal(&self) -> Goal {
        let under = |r: f64| r <= WALL_RATIO_GOAL;
        let Some(p) = self.per_seed else {
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

    /// `1.081× [1.021, 1.144] (n = 5)`, the one seed's ratio, or `–`.
    pub fn per_seed_text(&self) -> String {
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
             dense(s) over the seeds with both (over all budgets, a seed's ATO runs are averaged \
             first), summarised by its geometric mean with the 95% t-interval of the mean log \
             ratio. Goal: ATO ≤ {WALL_RATIO_GOAL}× dense, judged on the interval.\n"
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
        // per-seed ratios 1.0, 1.1, 1.2: logs 0, 0.09531, 0.18232, mean 0.09254, sd 0.09119,
        // t(0.975, 2) = 4.303: exp(0.09254) = 1.09696, exp(0.09254 ∓ 0.22656) = 0.87458, 1.37588
        let dense: Vec<_> = (0..3).map(|s| timed(Method::Dense, s, 10.0, 0.0)).collect();
        let ato: Vec<_> = (0..3)
            .map(|s| timed(Method::Ato, s, 10.0 + s as f64, 0.5))
            .collect();
        let c = WallCost::of(&refs(&ato), &refs(&dense), Some(0.5)).unwrap();
        assert!((c.ratio_of_means - 1.1).abs() < 1e-12);
        let p = c.per_seed.unwrap();
        let (lo, hi) = p.interval.unwrap();
        assert_eq!(p.n, 3);
        // the geometric mean, below the arithmetic 1.1 (a slow dense run does not pull it up)
        assert!((p.geometric_mean - 1.096_961).abs() < 1e-6, "{p:?}");
        assert!(
            (lo - 0.874_583).abs() < 1e-6 && (hi - 1.375_884).abs() < 1e-6,
            "{p:?}"
        );
        assert_eq!(c.per_seed_text(), "1.097× [0.875, 1.376] (n = 3)");
        // the interval holds 1.15: met by the estimate only; with ratios 1.06, 1.16, 1.26
        // (geometric mean 1.157) missed by it
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
        // a seed without a dense partner is not paired: the ratio of means alone, and it says
        // so; no wall time on a side gives no row
        let other = [timed(Method::Ato, 9, 11.0, 0.5)];
        let unpaired = cost(&other, &dense).unwrap();
        assert!(unpaired.per_seed.is_none());
        assert_eq!(unpaired.goal(), Goal::MetUnpaired);
        let far = [timed(Method::Ato, 9, 12.0, 0.5)];
        assert_eq!(cost(&far, &dense).unwrap().goal(), Goal::MissedUnpaired);
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
            // a shorter ATO run is not compared with the dense runs' length
            let mut short = timed(Method::Ato, s, 3.0, 0.9);
            short.summary.epochs = 3;
            runs.push(short);
        }
        let report = Report::new("t", &runs);
        let rows = report.wall_costs();
        let budgets: Vec<_> = rows.iter().map(|r| r.budget).collect();
        assert_eq!(budgets, [Some(0.5), Some(0.7), None]);
        assert!((rows[0].ratio_of_means - 1.01).abs() < 1e-12);
        assert!((rows[1].ratio_of_means - 1.21).abs() < 1e-12);
        // over all: per seed (10 + 0.1s + 12 + 0.1s) / 2 / 10 = 1.10, 1.11, 1.12, geometric
        // mean 1.10997
        let all = rows[2].per_seed.unwrap();
        assert_eq!((all.n, rows[2].ato_runs, rows[2].dense_runs), (3, 6, 3));
        assert!((all.geometric_mean - 1.109_970).abs() < 1e-6, "{all:?}");
    }
}
