//! PNG plots with plotters: one generic chart (lines and/or points per series) used for
//! accuracy vs FLOPs, the ablation axes, training curves and the convergence ratio, alone or
//! as panels side by side. A series named after a method always has that method's colour
//! ([`method_color`]); seeds are drawn as faint dots beside their mean, missed targets as
//! black crosses, chance as a dashed grey line. Text is drawn with the DejaVu Sans font
//! embedded in the binary, so no system font is needed.

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
    /// Small faint dots, no legend entry: the single seeds behind a mean.
    Seeds,
    /// Black crosses: runs that missed their target (legend "target missed").
    Missed,
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
    /// Top-1 of guessing, drawn as a dashed grey line labelled "chance".
    pub chance: Option<f64>,
    /// Where the legend goes (the corner the data leave free).
    pub legend: SeriesLabelPosition,
}

/// Tick labels: integers without a fraction, values below 10⁻³ or from 10⁶ in scientific
/// notation (a small non-zero tick never reads "0": log axes have no zero), other values with
/// up to 4 decimals.
fn tick(v: &f64) -> String {
    let a = v.abs();
    if *v != 0.0 && !(1e-3..1e6).contains(&a) {
        let s = format!("{v:.1e}");
        s.replace(".0e", "e")
    } else if v.fract() == 0.0 {
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

/// The colour of a method, the same in every figure; `None` for other series names.
pub fn method_color(name: &str) -> Option<RGBColor> {
    // "ato 70%": the method is the first word
    Some(match name.split_whitespace().next().unwrap_or("") {
        "dense" => RGBColor(90, 90, 90),
        "ato" => PALETTE[0],
        "oto" => PALETTE[1],
        "otov2" => PALETTE[2],
        "hesso" => PALETTE[3],
        "magnitude" => PALETTE[4],
        _ => return None,
    })
}

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
        // plotters labels a log axis from its first power of ten: start at one
        (0.99 * 10f64.powf((lo / 1.5).log10().floor()), hi * 1.5)
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
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE)
        .map_err(|e| anyhow!("plot {}: {e}", path.display()))?;
    draw_on(&root, path, chart, series)?;
    root.present()
        .map_err(|e| anyhow!("plot {}: {e}", path.display()))?;
    Ok(())
}

/// Draws panels side by side (each 600×500) into one PNG at `path`.
pub fn draw_panels(path: &Path, panels: &[(Chart<'_>, Vec<Series>)]) -> Result<()> {
    draw_grid(path, panels, panels.len().max(1))
}

/// Draws panels as small multiples, `columns` to a row (each 600×500), into one PNG.
pub fn draw_grid(path: &Path, panels: &[(Chart<'_>, Vec<Series>)], columns: usize) -> Result<()> {
    register_font();
    let columns = columns.clamp(1, panels.len().max(1));
    let rows = panels.len().max(1).div_ceil(columns);
    let root =
        BitMapBackend::new(path, (600 * columns as u32, 500 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)
        .map_err(|e| anyhow!("plot {}: {e}", path.display()))?;
    let areas = root.split_evenly((rows, columns));
    for (area, (chart, series)) in areas.iter().zip(panels) {
        draw_on(area, path, chart, series)?;
    }
    root.present()
        .map_err(|e| anyhow!("plot {}: {e}", path.display()))?;
    Ok(())
}

/// Draws one chart into `root` (`path` names the file in errors).
fn draw_on(
    root: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    path: &Path,
    chart: &Chart<'_>,
    series: &[Series],
) -> Result<()> {
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
    // chance joins the axis only when it lies near the data (within half their range below
    // them): a distant line would squeeze the data into a strip; it is then named in the
    // legend instead
    let (d0, d1) = bounds(ys.iter().copied(), chart.log_y);
    let chance_on_axis = chart
        .chance
        .filter(|&c| c >= d0 - 0.5 * (d1 - d0) && c <= d1);
    ys.extend(chart.reference_y);
    ys.extend(chance_on_axis);
    let (x0, x1) = bounds(all().map(|p| p.0), false);
    let (y0, y1) = bounds(ys.into_iter(), chart.log_y);
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(chart.title, ("sans-serif", 22))
        .margin(18)
        .x_label_area_size(48)
        .y_label_area_size(72);
    macro_rules! finish_chart {
        ($ctx:expr) => {{
            let mut ctx = $ctx;
            ctx.configure_mesh()
                // enough labels that a log axis spanning less than a decade still has some
                .y_labels(12)
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
            if let (Some(c), None) = (chart.chance, chance_on_axis) {
                ctx.draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
                    .map_err(|e| err(&e))?
                    .label(format!(
                        "chance {}% ({} the axis)",
                        tick(&c),
                        if c < d0 { "below" } else { "above" }
                    ))
                    .legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], RGBColor(120, 120, 120))
                    });
            }
            if let Some(c) = chance_on_axis {
                let grey = RGBColor(120, 120, 120);
                let dashes: Vec<PathElement<(f64, f64)>> = (0..40)
                    .filter(|k| k % 2 == 0)
                    .map(|k| {
                        let a = x0 + (x1 - x0) * k as f64 / 40.0;
                        let b = x0 + (x1 - x0) * (k + 1) as f64 / 40.0;
                        PathElement::new(vec![(a, c), (b, c)], grey.stroke_width(2))
                    })
                    .collect();
                ctx.draw_series(dashes)
                    .map_err(|e| err(&e))?
                    .label(format!("chance ({})", tick(&c)))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], grey));
            }
            let mut others = 0;
            for s in series.iter() {
                let color = method_color(&s.name).unwrap_or_else(|| {
                    others += 1;
                    PALETTE[(others + 4) % PALETTE.len()]
                });
                if s.mark == Mark::Seeds {
                    ctx.draw_series(
                        s.points
                            .iter()
                            .map(|&p| Circle::new(p, 3, color.mix(0.45).filled())),
                    )
                    .map_err(|e| err(&e))?;
                    continue;
                }
                if s.mark == Mark::Missed {
                    ctx.draw_series(
                        s.points
                            .iter()
                            .map(|&p| Cross::new(p, 7, BLACK.stroke_width(2))),
                    )
                    .map_err(|e| err(&e))?
                    .label(s.name.clone())
                    .legend(|(x, y)| Cross::new((x + 9, y), 6, BLACK.stroke_width(2)));
                    continue;
                }
                let drawable = |(x, y): &(f64, f64)| {
                    x.is_finite() && y.is_finite() && (!chart.log_y || *y > 0.0)
                };
                let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(drawable).collect();
                if matches!(s.mark, Mark::Line | Mark::LineAndPoints) {
                    // a point that cannot be drawn (NaN: undefined) breaks the line: a gap,
                    // never a bridge
                    let segments = s.points.split(|p| !drawable(p)).filter(|g| !g.is_empty());
                    for (k, seg) in segments.enumerate() {
                        let anno = ctx
                            .draw_series(LineSeries::new(seg.to_vec(), color.stroke_width(2)))
                            .map_err(|e| err(&e))?;
                        if k == 0 {
                            anno.label(s.name.clone()).legend(move |(x, y)| {
                                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                            });
                        }
                    }
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::tick;

    #[test]
    fn ticks_never_print_a_small_value_as_zero() {
        assert_eq!(tick(&0.0), "0");
        assert_eq!(tick(&2.0), "2");
        assert_eq!(tick(&0.25), "0.25");
        assert_eq!(tick(&0.001), "0.001");
        // what the old formatter printed as "0" on a log axis
        assert_eq!(tick(&1e-5), "1e-5");
        assert_eq!(tick(&2.5e-7), "2.5e-7");
        assert_eq!(tick(&3e6), "3e6");
    }
}
