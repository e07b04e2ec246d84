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
use crate::sweep::calibrate::search::SearchStatus;
use crate::sweep::calibrate::{usable_reference, MATCH_TOLERANCE, MIN_REFERENCE};
use anyhow::Result;
use plotters::chart::SeriesLabelPosition;
use std::path::Path;

impl Report<'_> {
    /// The FLOPs reduction the pruning rows of `r`'s data set and model are compared with.
    pub fn reference(&self, r: &RunRecord) -> Option<f64> {
        let ato = self.main_rows().into_iter().find(|m| {
            m.summary.method == "ato"
                && m.summary.dataset == r.summary.dataset
                && m.summary.model == r.summary.model
        });
        let ato_mean = ato
            .and_then(|a| Spread::over(&self.seed_mates(a), |s| s.flops_reduction))
            .map(|s| s.mean);
        match (ato_mean, r.summary.target_flops_reduction) {
            (mean, Some(target)) => Some(usable_reference(mean, target)),
            (mean, None) => mean,
        }
    }

    /// "reference", "matched (+0.4)", "gap −7.6 pt", "cannot reach the budget: gap …",
    /// "no λ or target lands (the response jumps): gap …", "nothing pruned: …" or "–" (dense).
    pub fn match_text(&self, r: &RunRecord) -> String {
        let s = &r.summary;
        if s.method == "dense" {
            return "–".into();
        }
        let Some(reference) = self.reference(r) else {
            return "–".into();
        };
        let Some(achieved) = Spread::over(&self.seed_mates(r), |s| s.flops_reduction) else {
            return "–".into();
        };
        let gap = 100.0 * (achieved.mean - reference);
        let missed = self
            .calibration
            .iter()
            // the same method's search for this reference (another model has another one)
            .filter(|c| c.method == s.method && (c.reference - reference).abs() < 1e-9)
            .find_map(|c| match c.status {
                SearchStatus::Unreachable => Some("cannot reach the budget"),
                SearchStatus::Jump => Some("no λ or target lands (the response jumps)"),
                _ => None,
            });
        let main_ato = s.method == "ato" && self.main_rows().iter().any(|m| std::ptr::eq(*m, r));
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
        match self.fragility(&s.method, reference) {
            Some(spread) => format!("{text}; {spread}"),
            None => text,
        }
    }

    /// "pilots within 0.1% of its λ gave 40.5–56.5%" when the method's search for `reference`
    /// saw its neighbours spread over more than two points: the match rests on the knob's last
    /// digits, and the same method a hair away lands elsewhere.
    fn fragility(&self, method: &str, reference: f64) -> Option<String> {
        let c = self
            .calibration
            .iter()
            .find(|c| c.method == method && (c.reference - reference).abs() < 1e-9)?;
        let (lo, hi) = (c.near_low?, c.near_high?);
        if hi - lo <= 2.0 * MATCH_TOLERANCE {
            return None;
        }
        let within = if c.knob == "oto.lambda" {
            "0.1% of its λ"
        } else {
            "0.001 of its target"
        };
        Some(format!(
            "pilots within {within} gave {:.1}–{:.1}%",
            100.0 * lo,
            100.0 * hi
        ))
    }
}

impl Report<'_> {
    /// The pilots of the searches that matched `runs` (one data set and model) to their
    /// reference, in search order, one series per method, the reference as a line; `None`
    /// when nothing was searched (no `calibration_pilots.csv`, or HESSO and magnitude only).
    pub(super) fn search_figure(
        &self,
        dir: &Path,
        tag: &str,
        (model, dataset): (&str, &str),
        runs: &[&RunRecord],
    ) -> Result<Option<Figure>> {
        let Some(reference) = runs
            .iter()
            .filter(|r| r.summary.method != "dense")
            .find_map(|r| self.reference(r))
        else {
            return Ok(None);
        };
        let series: Vec<Series> = self
            .calibration
            .iter()
            // this model's searches for this reference (the key is a run id: method-model-…)
            .filter(|c| {
                (c.reference - reference).abs() < 1e-9 && c.key.contains(&format!("-{model}-"))
            })
            .map(|c| Series {
                name: c.method.clone(),
                points: self
                    .pilots
                    .iter()
                    .filter(|p| p.key == c.key)
                    .map(|p| (p.pilot as f64, 100.0 * p.achieved))
                    .collect(),
                mark: Mark::LineAndPoints,
                spread: Vec::new(),
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        if series.is_empty() {
            return Ok(None);
        }
        let title = format!("{model} on {dataset}: the matched-FLOPs searches");
        let mut fig = self.figure(
            dir,
            &format!("searches_{tag}.png"),
            Chart {
                title: &title,
                x_label: "pilot run (search order)",
                y_label: "FLOPs reduction of the pilot (%)",
                log_y: false,
                reference_y: Some(100.0 * reference),
                legend: SeriesLabelPosition::LowerRight,
            },
            &series,
        )?;
        fig.note = Some(format!(
            "Every pilot run of the searches that put the baselines at the reference \
             ({:.2}%, the line), in the order they ran; `calibration_pilots.csv` lists their \
             knob values. A search that lands converges onto the line; one that scatters \
             around it has no value of its knob that controls the budget.",
            100.0 * reference
        ));
        Ok(Some(fig))
    }
}

#[cfg(test)]
mod tests {
    use super::super::markdown::tests::run;
    use super::*;
    use crate::sweep::calibrate::CalibrationRow;

    fn searched(status: SearchStatus) -> CalibrationRow {
        CalibrationRow {
            method: "oto".into(),
            key: "oto-resnet20-s0-00000000-p15".into(),
            knob: "oto.lambda".into(),
            value: 0.20956,
            achieved: 0.586,
            reference: 0.51,
            status,
            pilots: 15,
            lambda: None,
            near_low: None,
            near_high: None,
        }
    }

    #[test]
    fn a_search_that_cannot_land_says_why_beside_the_gap() {
        let mut ato = run("ato-a", Some(true));
        ato.summary.flops_reduction = Some(0.51);
        let mut oto = run("oto-a", Some(false));
        oto.summary.method = "oto".into();
        oto.summary.flops_reduction = Some(0.586);
        let runs = [ato, oto];
        let mut report = Report::new("t", &runs);
        assert_eq!(report.match_text(&runs[0]), "reference");
        // out of pilots: the gap alone
        report.calibration = vec![searched(SearchStatus::Closest)];
        assert_eq!(report.match_text(&runs[1]), "gap +7.6 pt");
        report.calibration = vec![searched(SearchStatus::Jump)];
        assert_eq!(
            report.match_text(&runs[1]),
            "no λ or target lands (the response jumps): gap +7.6 pt"
        );
        report.calibration = vec![searched(SearchStatus::Unreachable)];
        assert_eq!(
            report.match_text(&runs[1]),
            "cannot reach the budget: gap +7.6 pt"
        );
        // a search for another reference (another model's) says nothing about this row
        let mut other = searched(SearchStatus::Jump);
        other.reference = 0.45;
        report.calibration = vec![other];
        assert_eq!(report.match_text(&runs[1]), "gap +7.6 pt");
    }

    #[test]
    fn a_match_whose_neighbours_spread_says_so() {
        let mut ato = run("ato-a", Some(true));
        ato.summary.flops_reduction = Some(0.51);
        let mut oto = run("oto-a", Some(true));
        oto.summary.method = "oto".into();
        oto.summary.flops_reduction = Some(0.513);
        let runs = [ato, oto];
        let mut report = Report::new("t", &runs);
        let mut row = searched(SearchStatus::Matched);
        (row.near_low, row.near_high) = (Some(0.405), Some(0.565));
        report.calibration = vec![row.clone()];
        assert_eq!(
            report.match_text(&runs[1]),
            "matched (+0.3); pilots within 0.1% of its λ gave 40.5–56.5%"
        );
        // negative controls: neighbours within two points, or none, add nothing
        (row.near_low, row.near_high) = (Some(0.505), Some(0.52));
        report.calibration = vec![row.clone()];
        assert_eq!(report.match_text(&runs[1]), "matched (+0.3)");
        (row.near_low, row.near_high) = (None, None);
        report.calibration = vec![row];
        assert_eq!(report.match_text(&runs[1]), "matched (+0.3)");
    }

    #[test]
    fn the_search_figure_shows_this_models_searches_only() {
        use crate::sweep::calibrate::SearchPilot;
        let mut ato = run("ato-a", Some(true));
        ato.summary.flops_reduction = Some(0.51);
        let mut oto = run("oto-a", Some(true));
        oto.summary.method = "oto".into();
        oto.summary.flops_reduction = Some(0.513);
        let runs = [ato, oto];
        let mut report = Report::new("t", &runs);
        let row = searched(SearchStatus::Matched);
        let pilot = |key: &str, pilot: usize, achieved: f64| SearchPilot {
            method: "oto".into(),
            key: key.into(),
            pilot,
            value: 0.1 * pilot as f64,
            achieved,
        };
        report.calibration = vec![row.clone()];
        let dir = tempfile::tempdir().unwrap();
        let group: Vec<&RunRecord> = runs.iter().collect();
        let draw = |report: &Report<'_>| {
            report
                .search_figure(dir.path(), "tag", ("resnet20", "synth10"), &group)
                .unwrap()
        };
        // no pilots recorded (a cache written before the file): no figure
        assert!(draw(&report).is_none());
        report.pilots = vec![pilot(&row.key, 1, 0.2), pilot(&row.key, 2, 0.513)];
        let fig = draw(&report).expect("a figure");
        assert_eq!(fig.link, "figures/t/searches_tag.png");
        assert!(dir.path().join("searches_tag.png").is_file());
        assert!(fig.note.unwrap().contains("(51.00%, the line)"));
        // negative control: the same pilots under another model's key are not this figure's
        let mut other = row.clone();
        other.key = "oto-resnet56-s0-00000000-p15".into();
        report.calibration = vec![other.clone()];
        report.pilots = vec![pilot(&other.key, 1, 0.2)];
        assert!(draw(&report).is_none());
    }
}
