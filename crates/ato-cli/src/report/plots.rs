//! PNG plots with plotters: one generic chart (lines and/or points per series) used for
//! accuracy vs FLOPs, the ablation axes, training curves and the convergence ratio. Text is
//! drawn with the DejaVu Sans font embedded in the binary, so no system font is needed.

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::Once;

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Line,
    Points,
    LineAndPoints,
}

/// A named set of (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub mark: Mark,
    /// Per point, one std in x and in y, drawn as error bars (empty: none).
    pub spread: Vec<(f64, f64)>,
}

/// A chart's labels and axis scales.
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub log_y: bool,
    /// A horizontal reference line (e.g. LHS/RHS = 1).
    pub reference_y: Option<f64>,
    /// Where the legend goes (the corner the data leave free).
    pub legend: SeriesLabelPosition,
}

/// Tick labels: integers without a fraction, other values with up to 4 significant digits.
fn tick(v: &f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0');
        s.trim_end_matches('.').to_string()
    }
}

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // the embedded font is a valid TTF; a failure would only leave text undrawn
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn bounds(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let v: Vec<f64> = values
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .collect();
    if v.is_empty() {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    if log {
        (lo / 1.5, hi * 1.5)
    } else if hi - lo < 1e-12 {
        (lo - 1.0, hi + 1.0)
    } else {
        let pad = 0.06 * (hi - lo);
        (lo - pad, hi + pad)
    }
}

/// Draws `series` into a 900×600 PNG at `path`.
pub fn draw(path: &Path, chart: &Chart<'_>, series: &[Series]) -> Result<()> {
    register_font();
    let err = |e: &dyn std::fmt::Display| anyhow!("plot {}: {e}", path.display());
    // the error bars' ends count towards the axes
    let all = || {
        series.iter().flat_map(|s| {
            let spread = s
                .spread
                .iter()
                .copied()
                .chain(std::iter::repeat((0.0, 0.0)));
            s.points
                .iter()
                .zip(spread)
                .flat_map(|(&(x, y), (sx, sy))| [(x, y), (x - sx, y - sy), (x + sx, y + sy)])
        })
    };
    let mut ys: Vec<f64> = all().map(|p| p.1).collect();
    ys.extend(chart.reference_y);
    let (x0, x1) = bounds(all().map(|p| p.0), false);
    let (y0, y1) = bounds(ys.into_iter(), chart.log_y);
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(chart.title, ("sans-serif", 22))
        .margin(18)
        .x_label_area_size(48)
        .y_label_area_size(72);
    macro_rules! finish_chart {
        ($ctx:expr) => {{
            let mut ctx = $ctx;
            ctx.configure_mesh()
                .x_label_formatter(&tick)
                .y_label_formatter(&tick)
                .x_desc(chart.x_label)
                .y_desc(chart.y_label)
                .label_style(("sans-serif", 15))
                .draw()
                .map_err(|e| err(&e))?;
            if let Some(r) = chart.reference_y {
                ctx.draw_series(LineSeries::new(
                    vec![(x0, r), (x1, r)],
                    BLACK.mix(0.5).stroke_width(1),
                ))
                .map_err(|e| err(&e))?
                .label(format!("y = {}", tick(&r)))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.mix(0.5)));
            }
            for (i, s) in series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                let pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite() && (!chart.log_y || *y > 0.0))
                    .collect();
                if matches!(s.mark, Mark::Line | Mark::LineAndPoints) {
                    ctx.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                        .map_err(|e| err(&e))?
                        .label(s.name.clone())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                        });
                }
                for (&(x, y), &(sx, sy)) in s.points.iter().zip(&s.spread) {
                    if sy > 0.0 {
                        ctx.draw_series(std::iter::once(PathElement::new(
                            vec![(x, y - sy), (x, y + sy)],
                            color.stroke_width(1),
                        )))
                        .map_err(|e| err(&e))?;
                    }
                    if sx > 0.0 {
                        ctx.draw_series(std::iter::once(PathElement::new(
                            vec![(x - sx, y), (x + sx, y)],
                            color.stroke_width(1),
                        )))
                        .map_err(|e| err(&e))?;
                    }
                }
                if matches!(s.mark, Mark::Points | Mark::LineAndPoints) {
                    let anno = ctx
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 5, color.filled())))
                        .map_err(|e| err(&e))?;
                    if s.mark == Mark::Points {
                        anno.label(s.name.clone())
                            .legend(move |(x, y)| Circle::new((x + 9, y), 5, color.filled()));
                    }
                }
            }
            ctx.configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .label_font(("sans-serif", 15))
                .position(chart.legend.clone())
                .draw()
                .map_err(|e| err(&e))?;
        }};
    }
    if chart.log_y {
        finish_chart!(builder
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(|e| err(&e))?);
    } else {
        finish_chart!(builder
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(&e))?);
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
