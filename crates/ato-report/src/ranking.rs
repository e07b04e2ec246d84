//! Ranking a baseline against ATO: its runs paired by seed with the ATO runs they were
//! matched to ([`PairedDifference`]), the largest FLOPs gap over those pairs (matched only
//! when every seed is within ±1 point), rows that collapsed (`degenerate`), and the report's
//! opening line on what the sweep can and cannot show.

use super::paired::PairedDifference;
use super::seeds::Spread;
use super::selection::Report;
use super::RunRecord;
use ato_sweep::calibrate::MATCH_TOLERANCE;
use ato_train::Method;

/// A row is degenerate when its mean top-1 is more than this below dense's…
pub const DEGENERATE_BELOW_DENSE: f64 = 0.20;
/// …or within this of chance (one over the classes).
pub const DEGENERATE_NEAR_CHANCE: f64 = 0.05;

/// Top-1 of guessing: one over the data set's classes (`None` for an unknown name).
pub fn chance(dataset: ato_data::DatasetName) -> f64 {
    1.0 / dataset.num_classes() as f64
}

impl<'a> Report<'a> {
    /// `r`'s seed mates with the ATO run each was matched to: (baseline, ATO), at most one pair
    /// per seed (a seed is never counted twice).
    pub fn pairs(&self, r: &RunRecord) -> Vec<(&'a RunRecord, &'a RunRecord)> {
        let mut out: Vec<(&RunRecord, &RunRecord)> = Vec::new();
        for b in self.seed_mates(r) {
            if let Some(a) = self.reference_run(b) {
                if out.iter().all(|(o, _)| o.summary.seed != b.summary.seed) {
                    out.push((b, a));
                }
            }
        }
        out
    }

    /// The Δ cell: the paired difference with its interval, and "k of n seeds paired" when
    /// some of the row's seeds have no ATO run to pair with.
    pub fn paired_text(&self, r: &RunRecord) -> String {
        let Some(p) = self.paired(r) else {
            return "–".into();
        };
        let n = self.seed_mates(r).len();
        if p.n < n {
            format!("{} ({} of {n} seeds paired)", p.text(), p.n)
        } else {
            p.text()
        }
    }

    /// The paired top-1 difference (baseline − ATO) over `r`'s seeds, if it has pairs.
    pub fn paired(&self, r: &RunRecord) -> Option<PairedDifference> {
        let d: Vec<f64> = self
            .pairs(r)
            .iter()
            .filter_map(|(b, a)| Some(b.summary.top1? - a.summary.top1?))
            .collect();
        PairedDifference::of(&d)
    }

    /// The largest |FLOPs↓(baseline) − FLOPs↓(its ATO run)| over `r`'s pairs, signed.
    pub fn largest_gap(&self, r: &RunRecord) -> Option<f64> {
        self.pairs(r)
            .iter()
            .filter_map(|(b, a)| Some(b.summary.flops_reduction? - a.summary.flops_reduction?))
            .max_by(|x, y| x.abs().total_cmp(&y.abs()))
    }

    /// "matched (largest gap +0.4)" when every seed's FLOPs↓ is within ±1 point of its ATO
    /// run's, else "gap up to −3.1 pt (2/5 seeds outside ±1)"; `None` without pairs.
    pub fn per_seed_match_text(&self, r: &RunRecord) -> Option<String> {
        let pairs = self.pairs(r);
        let gap = self.largest_gap(r)?;
        let outside = pairs
            .iter()
            .filter(
                |(b, a)| match (b.summary.flops_reduction, a.summary.flops_reduction) {
                    (Some(x), Some(y)) => (x - y).abs() > MATCH_TOLERANCE + 1e-9,
                    _ => true,
                },
            )
            .count();
        Some(if outside == 0 {
            format!("matched (largest gap {:+.1})", 100.0 * gap)
        } else {
            format!(
                "gap up to {:+.1} pt ({outside}/{} seeds outside ±1)",
                100.0 * gap,
                pairs.len()
            )
        })
    }

    /// Mean top-1 of the dense runs of `r`'s data set and model.
    fn dense_top1(&self, r: &RunRecord) -> Option<f64> {
        let runs = self
            .groups
            .get(&(r.summary.dataset.to_string(), r.summary.model.to_string()))?;
        let dense: Vec<&RunRecord> = runs
            .iter()
            .copied()
            .filter(|o| o.summary.method == Method::Dense)
            .collect();
        Spread::over(&dense, |s| s.top1).map(|s| s.mean)
    }

    /// Why `r`'s row is degenerate (its seeds' mean top-1 more than 20 points below dense's,
    /// or within 5 points of chance), or `None`. Dense rows are never degenerate.
    pub fn degenerate(&self, r: &RunRecord) -> Option<String> {
        if r.summary.method == Method::Dense {
            return None;
        }
        let top1 = Spread::over(&self.seed_mates(r), |s| s.top1)?.mean;
        let c = chance(r.summary.dataset);
        if top1 < c + DEGENERATE_NEAR_CHANCE {
            return Some(format!(
                "degenerate: top-1 {:.1}% is within {:.0} points of chance ({:.1}%)",
                100.0 * top1,
                100.0 * DEGENERATE_NEAR_CHANCE,
                100.0 * c
            ));
        }
        let dense = self.dense_top1(r)?;
        (top1 < dense - DEGENERATE_BELOW_DENSE).then(|| {
            format!(
                "degenerate: top-1 {:.1}% is {:.1} points below dense ({:.1}%)",
                100.0 * top1,
                100.0 * (dense - top1),
                100.0 * dense
            )
        })
    }

    /// The verdict cell: the ranking word (or why there is none), marked when the row is
    /// degenerate or off its budget.
    pub fn verdict_text(&self, r: &RunRecord) -> String {
        if matches!(r.summary.method, Method::Dense | Method::Ato) {
            return "–".into();
        }
        let Some(p) = self.paired(r) else {
            return "no paired ATO runs".into();
        };
        let mut text = match p.verdict() {
            Some(v) => v.word().to_string(),
            None if p.n < 2 => "none (one seed)".into(),
            None => "none (the same difference on every seed: no spread to test)".into(),
        };
        if let Some(why) = self.degenerate(r) {
            text = format!("{text}; **{why}**");
        }
        let off = self
            .largest_gap(r)
            .is_some_and(|g| g.abs() > MATCH_TOLERANCE + 1e-9);
        if off {
            text = format!("{text}; **not at matched FLOPs**");
        }
        text
    }

    /// The report's first statement: what the sweep can show. A comparison needs pairs of
    /// at least two seeds, a dense model below 99% and above chance + 5 points.
    pub fn scope_line(&self) -> String {
        let rows = self.main_rows();
        let dense: Vec<f64> = rows
            .iter()
            .filter(|r| r.summary.method == Method::Dense)
            .filter_map(|r| self.dense_top1(r))
            .collect();
        let baselines: Vec<&&RunRecord> = rows
            .iter()
            .filter(|r| !matches!(r.summary.method, Method::Dense | Method::Ato))
            .collect();
        let min_pairs = baselines
            .iter()
            .map(|r| self.paired(r).map_or(0, |p| p.n))
            .min();
        let mut limits = Vec::new();
        if dense.iter().any(|&d| d >= 0.99) {
            limits.push("dense is at the ceiling (≥ 99% top-1), so methods cannot be told apart");
        }
        let near_chance = rows.iter().any(|r| {
            r.summary.method == Method::Dense
                && self
                    .dense_top1(r)
                    .is_some_and(|d| d < chance(r.summary.dataset) + DEGENERATE_NEAR_CHANCE)
        });
        if near_chance {
            limits.push("dense is at chance, so nothing was learnt to compare");
        }
        if min_pairs.is_none() && limits.is_empty() && !self.ablations().is_empty() {
            return "**What this sweep shows: ATO's ablations.** Each axis is moved with the \
                    others at their central values, mean ± std over the seeds of each value; no \
                    baseline is compared, so nothing is ranked."
                .into();
        }
        match min_pairs {
            None => limits.push("there is no baseline to rank"),
            Some(n) if n < 2 => limits
                .push("some baseline has fewer than two seeds paired with ATO, so no interval"),
            _ => {}
        }
        if limits.is_empty() {
            format!(
                "**What this sweep shows: a comparison.** Every baseline is paired seed by seed \
                 with the ATO run it was matched to (at least {} seeds); the verdicts below \
                 rest on 95% t-intervals of the paired top-1 differences and claim a ranking \
                 only where the interval excludes 0.",
                min_pairs.unwrap_or(0)
            )
        } else {
            format!(
                "**What this sweep shows: a pipeline check, not a comparison.** {}.",
                capitalise(&limits.join("; "))
            )
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
#[path = "ranking_tests.rs"]
mod tests;
