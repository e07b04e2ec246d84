//! The report's content: which runs go in which table, the Markdown, and the figures.

use super::plots::{draw, Chart, Mark, Series};
use super::published::matching;
use super::RunRecord;
use anyhow::Result;
use plotters::chart::SeriesLabelPosition;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// The ATO settings an ablation can vary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    Lambda,
    Gamma,
    TStart,
    TEnd,
}

impl Axis {
    pub const ALL: [Axis; 4] = [Axis::Lambda, Axis::Gamma, Axis::TStart, Axis::TEnd];

    pub fn label(self) -> &'static str {
        match self {
            Axis::Lambda => "λ (ato.lambda)",
            Axis::Gamma => "γ (ato.gamma)",
            Axis::TStart => "T_start (epoch)",
            Axis::TEnd => "T_end (epoch)",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Axis::Lambda => "lambda",
            Axis::Gamma => "gamma",
            Axis::TStart => "t_start",
            Axis::TEnd => "t_end",
        }
    }

    fn value(self, r: &RunRecord) -> Option<f64> {
        let s = &r.summary;
        match self {
            Axis::Lambda => s.lambda,
            Axis::Gamma => s.gamma,
            Axis::TStart => s.t_start.map(|v| v as f64),
            Axis::TEnd => s.t_end.map(|v| v as f64),
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

/// A figure written next to the report.
pub struct Figure {
    pub title: String,
    /// Path relative to the report file.
    pub link: String,
    /// A sentence printed under the figure (e.g. which runs it cannot show).
    pub note: Option<String>,
}

/// The runs of a sweep, arranged for tables and plots.
pub struct Report<'a> {
    name: &'a str,
    all: &'a [RunRecord],
    /// Finished runs per (data set, model), in sweep order.
    groups: BTreeMap<(String, String), Vec<&'a RunRecord>>,
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.2}", 100.0 * v))
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e6 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
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
        for r in all.iter().filter(|r| r.summary.is_finished()) {
            groups
                .entry((r.summary.dataset.clone(), r.summary.model.clone()))
                .or_default()
                .push(r);
        }
        Self { name, all, groups }
    }

    /// The central ATO settings of a group: the most common value of each axis.
    fn center(runs: &[&RunRecord]) -> Vec<Option<f64>> {
        let ato: Vec<&&RunRecord> = runs.iter().filter(|r| r.summary.method == "ato").collect();
        Axis::ALL
            .iter()
            .map(|a| mode(ato.iter().map(|r| a.value(r))))
            .collect()
    }

    fn at_center(r: &RunRecord, center: &[Option<f64>], free: Option<Axis>) -> bool {
        Axis::ALL
            .iter()
            .zip(center)
            .all(|(&a, c)| Some(a) == free || a.value(r) == *c)
    }

    /// Per group and method, the run at the central settings (or the method's first run).
    pub fn main_rows(&self) -> Vec<&'a RunRecord> {
        let mut out = Vec::new();
        for runs in self.groups.values() {
            let center = Self::center(runs);
            let mut methods: Vec<&str> = Vec::new();
            for r in runs {
                if !methods.contains(&r.summary.method.as_str()) {
                    methods.push(&r.summary.method);
                }
            }
            for m in methods {
                let of: Vec<&&RunRecord> = runs.iter().filter(|r| r.summary.method == m).collect();
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
                        r.summary.method == "ato" && Self::at_center(r, &center, Some(axis))
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

    /// Draws one figure into `dir/file` and returns it with its link relative to the report.
    fn figure(
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
            let mut by_method: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
            for r in runs {
                let s = &r.summary;
                if let (Some(f), Some(t)) = (s.flops_reduction, s.top1) {
                    by_method
                        .entry(&s.method)
                        .or_default()
                        .push((100.0 * f, 100.0 * t));
                }
            }
            let series: Vec<Series> = by_method
                .into_iter()
                .map(|(m, points)| Series {
                    name: m.into(),
                    points,
                    mark: Mark::Points,
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

            let ratio: Vec<Series> = shown
                .iter()
                .filter(|r| r.convergence.iter().any(|c| c.lhs_rhs_ratio.is_finite()))
                .map(|r| Series {
                    name: format!("{} ({})", r.summary.method, r.convergence[0].theorem),
                    points: r
                        .convergence
                        .iter()
                        .map(|c| (c.step as f64, c.lhs_rhs_ratio))
                        .collect(),
                    mark: Mark::LineAndPoints,
                })
                .collect();
            // where the bound stops saying anything: the first probe (after the start) whose
            // step condition η < 2ρ/L̂ fails
            let undefined: Vec<String> = shown
                .iter()
                .filter_map(|r| {
                    let c = r
                        .convergence
                        .iter()
                        .skip(1)
                        .find(|c| !c.lhs_rhs_ratio.is_finite())?;
                    Some(format!("{} from step {}", r.summary.method, c.step))
                })
                .collect();
            let note = (!undefined.is_empty()).then(|| {
                format!(
                    "LHS/RHS is undefined where the step condition η < 2ρ/L̂ fails or the \
                     regulariser just changed (the bound restarts): {}. For Adam-type runs \
                     ρ̂ = min √v̂ + ε is small, so the adaptive bound often says nothing \
                     (see `ato_optim::bounds`).",
                    undefined.join(", ")
                )
            });
            let title = format!("{model} on {dataset}: LHS/RHS of the convergence bound");
            if ratio.is_empty() {
                if let Some(note) = note {
                    figs.push(Figure {
                        title,
                        link: String::new(),
                        note: Some(note),
                    });
                }
            } else {
                let file = format!("convergence_{tag}.png");
                let mut fig = self.figure(
                    dir,
                    &file,
                    Chart {
                        title: &title,
                        x_label: "optimiser step",
                        y_label: "LHS / RHS",
                        log_y: true,
                        reference_y: Some(1.0),
                        legend: SeriesLabelPosition::UpperRight,
                    },
                    &ratio,
                )?;
                fig.note = note;
                figs.push(fig);
            }
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
                },
                Series {
                    name: "FLOPs reduction (%)".into(),
                    points: pts(|r| r.summary.flops_reduction),
                    mark: Mark::LineAndPoints,
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

    /// The Markdown report.
    pub fn markdown(&self, source: &str, figures: &[Figure]) -> String {
        let mut md = String::new();
        let finished = self.all.iter().filter(|r| r.summary.is_finished()).count();
        let _ = writeln!(md, "# Sweep `{}`\n", self.name);
        let _ = writeln!(
            md,
            "Generated by `ato report {source}` from `{source}/summary.csv`: {finished} finished run(s) of {}. \
             FLOPs are conv + fc multiply-accumulates; top-1 is the test accuracy of the pruned \
             model (hard-zeroed, equal to the compact model's, column `compact`). Regenerate with \
             the same command after the sweep changes.\n",
            self.all.len()
        );
        let _ = writeln!(md, "## Main results\n");
        let _ = writeln!(md, "One run per data set, model and method; for ATO the run at the sweep's central settings (the most common value of each of λ, γ, T_start, T_end). Published numbers are those of `paper/README.md` for the same data set, model and method.\n");
        let _ = writeln!(md, "| data set | model | method | top-1 (%) | top-5 (%) | compact top-1 (%) | FLOPs↓ (%) | params↓ (%) | epochs | settings | published top-1 @ FLOPs↓ |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
        for r in self.main_rows() {
            let s = &r.summary;
            let settings = settings(s);
            let published: Vec<String> = matching(&s.dataset, &s.model, &s.method)
                .iter()
                .map(|p| format!("{:.2} @ {:.1}", p.top1, p.flops_reduction))
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s.dataset,
                s.model,
                s.method,
                pct(s.top1),
                pct(s.top5),
                pct(s.compact_top1),
                pct(s.flops_reduction),
                pct(s.params_reduction),
                s.epochs,
                settings,
                if published.is_empty() {
                    "–".into()
                } else {
                    published.join("; ")
                }
            );
        }
        let cited: Vec<String> = self
            .main_rows()
            .iter()
            .flat_map(|r| matching(&r.summary.dataset, &r.summary.model, &r.summary.method))
            .map(|p| {
                format!(
                    "- {} {} {}: {:.2} @ {:.1}% — {}",
                    p.dataset, p.model, p.method, p.top1, p.flops_reduction, p.source
                )
            })
            .collect();
        if !cited.is_empty() {
            let _ = writeln!(md, "\nPublished numbers:\n\n{}", cited.join("\n"));
        }
        let ablations = self.ablations();
        if !ablations.is_empty() {
            let _ = writeln!(md, "\n## Ablations\n");
            let _ = writeln!(
                md,
                "ATO runs that differ from the central settings in one axis only.\n"
            );
        }
        for ab in &ablations {
            let _ = writeln!(
                md,
                "### {} on {}: {}\n",
                ab.model,
                ab.dataset,
                ab.axis.label()
            );
            let _ = writeln!(
                md,
                "| {} | top-1 (%) | FLOPs↓ (%) | params↓ (%) | run |",
                ab.axis.label()
            );
            let _ = writeln!(md, "|---|---|---|---|---|");
            for r in &ab.runs {
                let s = &r.summary;
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | `{}` |",
                    ab.axis.value(r).map_or("–".into(), num),
                    pct(s.top1),
                    pct(s.flops_reduction),
                    pct(s.params_reduction),
                    s.run_id
                );
            }
            let _ = writeln!(md);
        }
        if !figures.is_empty() {
            let _ = writeln!(md, "\n## Figures\n");
            for f in figures {
                let _ = writeln!(md, "**{}**\n", f.title);
                if !f.link.is_empty() {
                    let _ = writeln!(md, "![{}]({})\n", f.title, f.link);
                }
                if let Some(note) = &f.note {
                    let _ = writeln!(md, "{note}\n");
                }
            }
        }
        let _ = writeln!(md, "## All runs\n");
        let _ = writeln!(md, "| run | status | data set | model | method | settings | top-1 (%) | FLOPs↓ (%) | params↓ (%) | seconds |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
        for r in self.all {
            let s = &r.summary;
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s.run_id,
                s.status,
                s.dataset,
                s.model,
                s.method,
                settings(s),
                pct(s.top1),
                pct(s.flops_reduction),
                pct(s.params_reduction),
                s.wall_seconds.map_or("–".into(), |w| format!("{w:.0}"))
            );
        }
        md
    }
}

/// The method's settings in a few words.
fn settings(s: &ato_train::SummaryRow) -> String {
    let mut parts = Vec::new();
    if let Some(l) = s.lambda {
        parts.push(format!("λ={}", num(l)));
    }
    if let Some(g) = s.gamma {
        parts.push(format!("γ={}", num(g)));
    }
    if let (Some(a), Some(b)) = (s.t_start, s.t_end) {
        parts.push(format!("T={a}..{b}"));
    }
    if let Some(r) = s.target_flops_reduction {
        parts.push(format!("ρ={}", num(r)));
    }
    if parts.is_empty() {
        "–".into()
    } else {
        parts.join(", ")
    }
}
