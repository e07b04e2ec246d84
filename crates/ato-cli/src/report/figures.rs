//! The report's figures: accuracy vs FLOPs reduction (mean ± std over seeds) and vs measured
//! speedup, test accuracy over epochs, one plot per ablation axis and the convergence figures
//! ([`super::convergence`]), as PNG files beside the report.

use super::plots::{draw, Chart, Mark, Series};
use super::seeds::{same_but_seed, Spread};
use super::selection::Report;
use super::RunRecord;
use anyhow::Result;
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
            points.entry(&s.method).or_default().push((x, 100.0 * t));
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
            for r in runs {
                if seen.iter().any(|o| same_but_seed(&o.summary, &r.summary)) {
                    continue;
                }
                seen.push(r);
                let mates = self.seed_mates(r);
                let f = Spread::over(&mates, |s| s.flops_reduction);
                let t = Spread::over(&mates, |s| s.top1);
                if let (Some(f), Some(t)) = (f, t) {
                    let entry = per_method.entry(&r.summary.method).or_default();
                    entry.0.push((100.0 * f.mean, 100.0 * t.mean));
                    entry.1.push((100.0 * f.std, 100.0 * t.std));
                }
            }
            let series: Vec<Series> = per_method
                .into_iter()
                .map(|(m, (points, spread))| Series {
                    name: m.into(),
                    points,
                    mark: Mark::Points,
                    spread,
                })
                .collect();
            let file = format!("accuracy_vs_flops_{tag}.png");
            let title = format!("{model} on {dataset}: top-1 vs FLOPs reduction");
            figs.push(self.figure(
                dir,
                &file,
                Chart {
                    title: &title,
                    x_label: "FLOPs reduction (%)",
                    y_label: "test top-1 (%)",
                    log_y: false,
                    reference_y: None,
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
                .filter(|r| r.summary.dataset == *dataset && r.summary.model == *model)
                .collect();
            let curves: Vec<Series> = shown
                .iter()
                .map(|r| Series {
                    name: r.summary.method.clone(),
                    points: r
                        .metrics
                        .iter()
                        .map(|m| ((m.epoch + 1) as f64, 100.0 * m.masked_top1))
                        .collect(),
                    mark: Mark::Line,
                    spread: Vec::new(),
                })
                .collect();
            let file = format!("curves_{tag}.png");
            let title = format!("{model} on {dataset}: test top-1 (masked) per epoch");
            figs.push(self.figure(
                dir,
                &file,
                Chart {
                    title: &title,
                    x_label: "epoch",
                    y_label: "test top-1 (%)",
                    log_y: false,
                    reference_y: None,
                    legend: SeriesLabelPosition::LowerRight,
                },
                &curves,
            )?);

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
            let pts = |f: fn(&RunRecord) -> Option<f64>| -> Vec<(f64, f64)> {
                ab.runs
                    .iter()
                    .filter_map(|r| Some((ab.axis.value(r)?, 100.0 * f(r)?)))
                    .collect()
            };
            let series = vec![
                Series {
                    name: "top-1 (%)".into(),
                    points: pts(|r| r.summary.top1),
                    mark: Mark::LineAndPoints,
                    spread: Vec::new(),
                },
                Series {
                    name: "FLOPs reduction (%)".into(),
                    points: pts(|r| r.summary.flops_reduction),
                    mark: Mark::LineAndPoints,
                    spread: Vec::new(),
                },
            ];
            let file = format!(
                "ablation_{}_{}_{}.png",
                ab.dataset,
                ab.model,
                ab.axis.slug()
            );
            let title = format!(
                "{} on {}: ATO, {} varied",
                ab.model,
                ab.dataset,
                ab.axis.label()
            );
            figs.push(self.figure(
                dir,
                &file,
                Chart {
                    title: &title,
                    x_label: ab.axis.label(),
                    y_label: "%",
                    log_y: false,
                    reference_y: None,
                    legend: SeriesLabelPosition::MiddleRight,
                },
                &series,
            )?);
        }
        Ok(figs)
    }
}
