//! The report's figures: accuracy vs FLOPs reduction (mean ± std over seeds, every seed a
//! faint dot, missed targets crossed, chance dashed) and vs measured speedup, test accuracy
//! over epochs per budget, one figure per ablation axis with a panel per quantity (top-1 with
//! error bars over seeds, FLOPs↓, params↓) and the convergence figures
//! ([`super::convergence`]), as PNG files beside the report. Each method has one colour in
//! every figure ([`super::plots::method_color`]).

use super::plots::{draw, draw_panels, Chart, Mark, Series};
use super::ranking::chance;
use super::seeds::Spread;
use super::selection::Report;
use super::RunRecord;
use anyhow::Result;
use ato_train::Method;
use plotters::chart::SeriesLabelPosition;
use std::collections::BTreeMap;
use std::path::Path;

/// Mean points and their one-std spreads, in x and y.
type PointsWithSpread = (Vec<(f64, f64)>, Vec<(f64, f64)>);

/// A figure written next to the report.
pub struct Figure {
    pub title: String,
    /// Path relative to the report file.
    pub link: String,
    /// A sentence printed under the figure (e.g. which runs it cannot show).
    pub note: Option<String>,
}

/// One point series per method of (x, test top-1 %), x from `x_of`, for the runs that have
/// both; methods without such a run are left out.
fn by_method(
    runs: &[&RunRecord],
    x_of: impl Fn(&ato_train::SummaryRow) -> Option<f64>,
) -> Vec<Series> {
    let mut points: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for r in runs {
        let s = &r.summary;
        if let (Some(x), Some(t)) = (x_of(s), s.top1) {
            points
                .entry(s.method.as_str())
                .or_default()
                .push((x, 100.0 * t));
        }
    }
    points
        .into_iter()
        .map(|(m, points)| Series {
            name: m.into(),
            points,
            mark: Mark::Points,
            spread: Vec::new(),
        })
        .collect()
}

impl Report<'_> {
    /// Draws one figure into `dir/file` and returns it with its link relative to the report.
    pub(super) fn figure(
        &self,
        dir: &Path,
        file: &str,
        chart: Chart<'_>,
        series: &[Series],
    ) -> Result<Figure> {
        draw(&dir.join(file), &chart, series)?;
        Ok(Figure {
            title: chart.title.to_string(),
            link: format!("figures/{}/{file}", self.name),
            note: None,
        })
    }

    /// Draws every figure into `dir` and returns them with links relative to the report.
    pub fn draw_figures(&self, dir: &Path) -> Result<Vec<Figure>> {
        let mut figs = Vec::new();
        let main = self.main_rows();
        for ((dataset, model), runs) in &self.groups {
            let tag = format!("{dataset}_{model}");
            // one point per setting: the mean over its seeds, error bars of one std
            let mut per_method: BTreeMap<&str, PointsWithSpread> = BTreeMap::new();
            let mut seen: Vec<&RunRecord> = Vec::new();
            let mut seeds: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
            let mut missed: Vec<(f64, f64)> = Vec::new();
            for r in runs {
                if let (Some(f), Some(t)) = (r.summary.flops_reduction, r.summary.top1) {
                    let at = (100.0 * f, 100.0 * t);
                    seeds.entry(r.summary.method.as_str()).or_default().push(at);
                    if r.summary.target_met == Some(false) {
                        missed.push(at);
                    }
                }
                if seen.iter().any(|o| std::ptr::eq(*o, *r)) {
                    continue;
                }
                let mates = self.seed_mates(r);
                seen.extend(mates.iter().copied());
                let f = Spread::over(&mates, |s| s.flops_reduction);
                let t = Spread::over(&mates, |s| s.top1);
                if let (Some(f), Some(t)) = (f, t) {
                    let entry = per_method.entry(r.summary.method.as_str()).or_default();
                    entry.0.push((100.0 * f.mean, 100.0 * t.mean));
                    entry.1.push((100.0 * f.std, 100.0 * t.std));
                }
            }
            let mut series: Vec<Series> = per_method
                .into_iter()
                .map(|(m, (points, spread))| Series {
                    name: m.into(),
                    points,
                    mark: Mark::Points,
                    spread,
                })
                .collect();
            series.extend(seeds.into_iter().map(|(m, points)| Series {
                name: m.into(),
                points,
                mark: Mark::Seeds,
                spread: Vec::new(),
            }));
            if !missed.is_empty() {
                series.push(Series {
                    name: "target missed".into(),
                    points: missed,
                    mark: Mark::Missed,
                    spread: Vec::new(),
                });
            }
            let chance_pct = dataset.parse().ok().map(|d| 100.0 * chance(d));
            let file = format!("accuracy_vs_flops_{tag}.png");
            let title = format!("{model} on {dataset}: top-1 vs FLOPs reduction");
            figs.push(self.figure(
                dir,
                &file,
                Chart {
                    title: &title,
                    x_label: "FLOPs reduction (%)",
                    y_label: "test top-1 (%) — mean ± std over seeds, dots: seeds",
                    log_y: false,
                    reference_y: None,
                    chance: chance_pct,
                    legend: SeriesLabelPosition::LowerLeft,
                },
                &series,
            )?);
            let speedups = by_method(runs, |s| s.speedup);
            if !speedups.is_empty() {
                let file = format!("accuracy_vs_speedup_{tag}.png");
                let title = format!("{model} on {dataset}: top-1 vs measured speedup");
                let mut fig = self.figure(
                    dir,
                    &file,
                    Chart {
                        title: &title,
                        x_label: "speedup of the compact model (×, measured)",
                        y_label: "test top-1 (%)",
                        log_y: false,
                        reference_y: None,
                        chance: None,
                        legend: SeriesLabelPosition::LowerLeft,
                    },
                    &speedups,
                )?;
                fig.note = Some(
                    "Eval-mode forward of the compact model against the dense one, timed side \
                     by side after each run (`[bench]` batch and repeats; `summary.csv` columns \
                     dense_ms, compact_ms, speedup)."
                        .into(),
                );
                figs.push(fig);
            }

            let shown: Vec<&&RunRecord> = main
                .iter()
                .filter(|r| {
                    r.summary.dataset.as_str() == dataset && r.summary.model.as_str() == model
                })
                .collect();
            // one curve figure per budget (dense in each), the seed of each main row
            let mut budgets: Vec<Option<f64>> = Vec::new();
            for r in &shown {
                let b = self
                    .budget_of(r)
                    .filter(|_| r.summary.method != Method::Dense);
                if b.is_some() && !budgets.contains(&b) {
                    budgets.push(b);
                }
            }
            if budgets.is_empty() {
                budgets.push(None);
            }
            for budget in budgets {
                let curves: Vec<Series> = shown
                    .iter()
                    .filter(|r| r.summary.method == Method::Dense || self.budget_of(r) == budget)
                    .map(|r| Series {
                        name: r.summary.method.as_str().to_string(),
                        points: r
                            .metrics
                            .iter()
                            .map(|m| ((m.epoch + 1) as f64, 100.0 * m.masked_top1))
                            .collect(),
                        mark: Mark::Line,
                        spread: Vec::new(),
                    })
                    .collect();
                let (file, title) = match budget {
                    Some(b) => (
                        format!("curves_{tag}_{:.0}.png", 1000.0 * b),
                        format!(
                            "{model} on {dataset}, {:.0}% FLOPs↓: test top-1 (masked) per epoch",
                            100.0 * b
                        ),
                    ),
                    None => (
                        format!("curves_{tag}.png"),
                        format!("{model} on {dataset}: test top-1 (masked) per epoch"),
                    ),
                };
                figs.push(self.figure(
                    dir,
                    &file,
                    Chart {
                        title: &title,
                        x_label: "epoch",
                        y_label: "test top-1 (%)",
                        log_y: false,
                        reference_y: None,
                        chance: chance_pct,
                        legend: SeriesLabelPosition::LowerRight,
                    },
                    &curves,
                )?);
            }

            figs.extend(self.search_figure(dir, &tag, (model, dataset), runs)?);
            figs.extend(self.convergence_figures(
                dir,
                &tag,
                (model.as_str(), dataset.as_str()),
                &shown,
            )?);
        }
        for ((dataset, model), runs) in &self.theorem_runs {
            let tag = format!("theorem_{dataset}_{model}");
            let shown: Vec<&&RunRecord> = runs.iter().collect();
            figs.extend(self.convergence_figures(
                dir,
                &tag,
                (model.as_str(), &format!("{dataset}, theorem regime")),
                &shown,
            )?);
        }
        for ab in self.ablations() {
            figs.push(self.ablation_figure(dir, &ab)?);
        }
        Ok(figs)
    }

    /// One ablation as three panels: top-1 (mean ± one std over seeds, every seed a dot),
    /// FLOPs↓ and params↓ against the axis (λ on a log10 scale), ranges fitted to the data.
    fn ablation_figure(&self, dir: &Path, ab: &super::selection::Ablation<'_>) -> Result<Figure> {
        let log = ab.axis == super::selection::Axis::Lambda;
        let x_of = |r: &RunRecord| ab.axis.value(r).map(|v| if log { v.log10() } else { v });
        let panel = |f: fn(&ato_train::SummaryRow) -> Option<f64>| -> Vec<Series> {
            let (mut points, mut spread, mut seeds) = (Vec::new(), Vec::new(), Vec::new());
            for r in &ab.runs {
                let Some(x) = x_of(r) else { continue };
                let mates = self.seed_mates(r);
                if let Some(m) = Spread::over(&mates, f) {
                    points.push((x, 100.0 * m.mean));
                    spread.push((0.0, 100.0 * m.std));
                }
                seeds.extend(
                    mates
                        .iter()
                        .filter_map(|o| Some((x, 100.0 * f(&o.summary)?))),
                );
            }
            vec![
                Series {
                    name: "ato".into(),
                    points,
                    mark: Mark::LineAndPoints,
                    spread,
                },
                Series {
                    name: "ato".into(),
                    points: seeds,
                    mark: Mark::Seeds,
                    spread: Vec::new(),
                },
            ]
        };
        let x_label = if log {
            "log10 λ (ato.lambda)"
        } else {
            ab.axis.label()
        };
        let chart = |title, y_label| Chart {
            title,
            x_label,
            y_label,
            log_y: false,
            reference_y: None,
            chance: None,
            legend: SeriesLabelPosition::LowerRight,
        };
        let mut missed: Vec<Series> = Vec::new();
        let crosses: Vec<(f64, f64)> = ab
            .runs
            .iter()
            .flat_map(|r| self.seed_mates(r))
            .filter(|r| r.summary.target_met == Some(false))
            .filter_map(|r| Some((x_of(r)?, 100.0 * r.summary.flops_reduction?)))
            .collect();
        if !crosses.is_empty() {
            missed.push(Series {
                name: "target missed".into(),
                points: crosses,
                mark: Mark::Missed,
                spread: Vec::new(),
            });
        }
        let mut flops = panel(|s| s.flops_reduction);
        flops.extend(missed);
        // the FLOPs panel draws the target the runs were asked for
        let target = ab
            .runs
            .first()
            .and_then(|r| r.summary.target_flops_reduction);
        let panels = vec![
            (
                chart("top-1", "test top-1 (%), mean ± std"),
                panel(|s| s.top1),
            ),
            (
                Chart {
                    reference_y: target.map(|t| 100.0 * t),
                    ..chart("FLOPs reduction (line: the target)", "FLOPs↓ (%)")
                },
                flops,
            ),
            (
                chart("params reduction", "params↓ (%)"),
                panel(|s| s.params_reduction),
            ),
        ];
        let file = format!(
            "ablation_{}_{}_{}.png",
            ab.dataset,
            ab.model,
            ab.axis.slug()
        );
        draw_panels(&dir.join(&file), &panels)?;
        Ok(Figure {
            title: format!(
                "{} on {}: ATO, {} varied (n seeds per point as in the table)",
                ab.model,
                ab.dataset,
                ab.axis.label()
            ),
            link: format!("figures/{}/{file}", self.name),
            note: None,
        })
    }
}
