//! Whether a main row sits at the sweep's FLOPs budget: the reference of a data set and model is
//! the mean FLOPs reduction of its main ATO row (over seeds) when ATO pruned at least 1%, else
//! the row's own target (the rule of `calibrate::usable_reference`); a
//! pruning row is "matched" only within ±1 point of it, otherwise the gap is shown, and a
//! method whose search could not reach the budget (`calibration.csv`) says so.

use super::figures::Figure;
use super::plots::{Chart, Mark, Series};
use super::seeds::Spread;
use super::selection::Report;
use super::RunRecord;
use anyhow::Result;
use ato_sweep::calibrate::search::SearchStatus;
use ato_sweep::calibrate::{usable_reference, CalibrationRow, MATCH_TOLERANCE, MIN_REFERENCE};
use ato_train::Method;
use plotters::chart::SeriesLabelPosition;
use std::path::Path;

impl Report<'_> {
    /// The FLOPs reduction the pruning rows of `r`'s data set and model are compared with.
    pub fn reference(&self, r: &RunRecord) -> Option<f64> {
        // the main ATO row of the same budget, or the only one (older sweeps recorded no
        // reference run, and their matched targets are measured reductions)
        let candidates: Vec<&RunRecord> = self
            .main_rows()
            .into_iter()
            .filter(|m| {
                m.summary.method == Method::Ato
                    && m.summary.dataset == r.summary.dataset
                    && m.summary.model == r.summary.model
            })
            .collect();
        let ato = candidates
            .iter()
            .find(|m| self.budget_of(m) == self.budget_of(r))
            .or(match candidates.as_slice() {
                [only] => Some(only),
                _ => None,
            })
            .copied();
        let ato_mean = ato
            .and_then(|a| Spread::over(&self.seed_mates(a), |s| s.flops_reduction))
            .map(|s| s.mean);
        match (ato_mean, r.summary.target_flops_reduction) {
            (mean, Some(target)) => Some(usable_reference(mean, target)),
            (mean, None) => mean,
        }
    }

    /// The search that set `r`'s knob (`calibration.csv`): the row named by the run's
    /// `calibration_key`; for a summary written before that column, the same method and
    /// reference, this model's key (a run id: method-model-…) and the knob value `r` ran at.
    /// `None` for a run that was not searched (HESSO, magnitude, ATO) and for rows of settings
    /// the sweep no longer runs.
    fn search_of(&self, r: &RunRecord, reference: f64) -> Option<&CalibrationRow> {
        let s = &r.summary;
        let knob = s.searched_knob()?;
        // a row the sweep wrote names its search: join on it, never on a look-alike
        if let Some(key) = &s.calibration_key {
            return self.calibration.iter().find(|c| &c.key == key);
        }
        let prefix = format!("{}-{}-", s.method.as_str(), s.model);
        self.calibration.iter().find(|c| {
            c.method == s.method
                && (c.reference - reference).abs() < 1e-9
                && c.key.starts_with(&prefix)
                && (c.value - knob).abs() <= 1e-9 * knob.abs()
        })
    }

    /// "reference", "matched (+0.4)", "gap −7.6 pt", "cannot reach the budget: gap …",
    /// "no λ tried lands (the response jumps or scatters): gap …", "nothing pruned: …" or "–"
    /// (dense), followed by the spread of the search's neighbouring pilots when it is wide.
    pub fn match_text(&self, r: &RunRecord) -> String {
        let s = &r.summary;
        if s.method == Method::Dense {
            return "–".into();
        }
        if let Some(text) = self.per_seed_match_text(r) {
            // the searches' own conclusions, seed by seed (a budget the knob cannot reach,
            // a response that jumps, or a result resting on the knob's last digits)
            let mut notes: Vec<String> = Vec::new();
            for m in self.seed_mates(r) {
                let Some(t) = m.summary.target_flops_reduction else {
                    continue;
                };
                let Some(c) = self.search_of(m, t) else {
                    continue;
                };
                let note = match c.status {
                    SearchStatus::Unreachable => Some("cannot reach the budget".to_string()),
                    SearchStatus::Jump => Some(format!(
                        "no {} tried lands (the response jumps or scatters)",
                        knob_word(c)
                    )),
                    _ => [reused(c, t), fragility(c)]
                        .into_iter()
                        .flatten()
                        .reduce(|a, b| format!("{a}, {b}")),
                };
                if let Some(n) = note {
                    notes.push(format!("seed {}: {n}", m.summary.seed));
                }
            }
            return if notes.is_empty() {
                text
            } else {
                format!("{text}; {}", notes.join("; "))
            };
        }
        let Some(reference) = self.reference(r) else {
            return "–".into();
        };
        let Some(achieved) = Spread::over(&self.seed_mates(r), |s| s.flops_reduction) else {
            return "–".into();
        };
        let gap = 100.0 * (achieved.mean - reference);
        let search = self.search_of(r, reference);
        let missed = search.and_then(|c| match c.status {
            SearchStatus::Unreachable => Some("cannot reach the budget".to_string()),
            SearchStatus::Jump => Some(format!(
                "no {} tried lands (the response jumps or scatters)",
                knob_word(c)
            )),
            _ => None,
        });
        let main_ato =
            s.method == Method::Ato && self.main_rows().iter().any(|m| std::ptr::eq(*m, r));
        let text = if main_ato && achieved.mean >= MIN_REFERENCE {
            "reference".to_string()
        } else if gap.abs() <= 100.0 * MATCH_TOLERANCE + 1e-9 {
            format!("matched ({gap:+.1})")
        } else {
            format!("gap {gap:+.1} pt")
        };
        let nothing = achieved.mean < 0.005;
        let text = match (missed, nothing) {
            (Some(why), _) => format!("{why}: {text}"),
            (None, true) => format!("nothing pruned: {text}"),
            _ => text,
        };
        let text = match search.and_then(|c| reused(c, reference)) {
            Some(note) => format!("{text}; {note}"),
            None => text,
        };
        match search.and_then(fragility) {
            Some(spread) => format!("{text}; {spread}"),
            None => text,
        }
    }
}

/// "λ searched at −50.00%, reused" when the cached match that set a run's knob was found for
/// another reference within the matching band (the sweep reuses it without a pilot).
fn reused(c: &CalibrationRow, reference: f64) -> Option<String> {
    ((c.reference - reference).abs() > 1e-9 && c.status == SearchStatus::Matched).then(|| {
        format!(
            "{} searched at −{:.2}%, reused",
            knob_word(c),
            100.0 * c.reference
        )
    })
}

/// "λ" or "target": what a search moved.
fn knob_word(c: &CalibrationRow) -> &'static str {
    if c.knob == "oto.lambda" {
        "λ"
    } else {
        "target"
    }
}

/// "pilots within 0.1% of λ = 0.2095387955 gave 34.6–56.7%" when the search's own pilots near
/// its result spread over more than two points: the result rests on the knob's last digits.
/// Pilots the search did not run cannot show it, so no text is no proof of the opposite.
fn fragility(c: &CalibrationRow) -> Option<String> {
    let (lo, hi) = (c.near_low?, c.near_high?);
    if hi - lo <= 2.0 * MATCH_TOLERANCE {
        return None;
    }
    let within = if c.knob == "oto.lambda" {
        format!("0.1% of λ = {:.10}", c.value)
    } else {
        format!("0.001 of the group-sparsity target {:.4}", c.value)
    };
    Some(format!(
        "pilots within {within} gave {:.1}–{:.1}%",
        100.0 * lo,
        100.0 * hi
    ))
}

impl Report<'_> {
    /// The pilots of the searches that set the knobs of `runs` (one data set and model), in
    /// search order, one series per search, its reference as a line; `None` when nothing was
    /// searched (no `calibration_pilots.csv`, or HESSO and magnitude only).
    pub(super) fn search_figure(
        &self,
        dir: &Path,
        tag: &str,
        (model, dataset): (&str, &str),
        runs: &[&RunRecord],
    ) -> Result<Option<Figure>> {
        // every search once, labelled by the seed and budget of the run it set
        let mut searches: Vec<(String, &CalibrationRow)> = Vec::new();
        for r in runs {
            let Some(c) = self
                .reference(r)
                .and_then(|reference| self.search_of(r, reference))
            else {
                continue;
            };
            if !searches.iter().any(|(_, o)| o.key == c.key) {
                let budget = r
                    .summary
                    .budget
                    .map_or(String::new(), |b| format!(" · {:.0}%", 100.0 * b));
                searches.push((format!("s{}{budget}", r.summary.seed), c));
            }
        }
        // one panel per method; a pilot is drawn as its distance to its own search's reference
        let mut methods: Vec<&str> = Vec::new();
        for (_, c) in &searches {
            if !methods.contains(&c.method.as_str()) {
                methods.push(c.method.as_str());
            }
        }
        let titles: Vec<String> = methods
            .iter()
            .map(|m| format!("{model} on {dataset}: {m}'s searches"))
            .collect();
        let panels: Vec<(Chart<'_>, Vec<Series>)> = methods
            .iter()
            .zip(&titles)
            .map(|(m, title)| {
                let series: Vec<Series> = searches
                    .iter()
                    .filter(|(_, c)| c.method.as_str() == *m)
                    .map(|(label, c)| Series {
                        name: label.clone(),
                        points: self
                            .pilots
                            .iter()
                            .filter(|p| p.key == c.key)
                            .map(|p| (p.pilot as f64, 100.0 * (p.achieved - c.reference)))
                            .collect(),
                        mark: Mark::LineAndPoints,
                        spread: Vec::new(),
                    })
                    .filter(|s| !s.points.is_empty())
                    .collect();
                let chart = Chart {
                    title,
                    x_label: "pilot run (search order)",
                    y_label: "pilot FLOPs↓ − its reference (points)",
                    log_y: false,
                    reference_y: Some(0.0),
                    chance: None,
                    legend: SeriesLabelPosition::LowerRight,
                };
                (chart, series)
            })
            .filter(|(_, series)| !series.is_empty())
            .collect();
        if panels.is_empty() {
            return Ok(None);
        }
        let file = format!("searches_{tag}.png");
        super::plots::draw_panels(&dir.join(&file), &panels)?;
        let fig = Figure {
            title: format!("{model} on {dataset}: the matched-FLOPs searches"),
            link: format!("figures/{}/{file}", self.name),
            note: Some(format!(
                "Every pilot run of the searches that set the baselines' knobs, in the order they \
                 ran, one line per search (seed · budget), drawn as the pilot's FLOPs reduction \
                 minus the reference its search aimed at (y = 0; matched within ±{:.0} point). \
                 `calibration_pilots.csv` lists each pilot's knob value, and for OTOv2 its λ: \
                 while a pilot falls short of its own group-sparsity target, OTOv2's search raises \
                 λ ×4 at the same target before it moves the target.",
                100.0 * MATCH_TOLERANCE
            )),
        };
        Ok(Some(fig))
    }
}

#[cfg(test)]
#[path = "matched_tests.rs"]
mod tests;
