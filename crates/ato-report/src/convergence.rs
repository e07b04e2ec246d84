//! The report's convergence figures and per-run lines. Every probed run gets one line saying
//! what each check found ([`CheckVerdicts::line`]: the per-step check, the K-step descent
//! check and the averaged bound — where each first failed, or the slack it left, i.e. the
//! smallest defect it could have detected), the theorems' assumptions the run does not
//! satisfy, and whether it is only a reference line (OTO, OTOv2: λ is not a proximal step of
//! the h the probe evaluates). Figures: LHS/RHS of the averaged bound with one line per run,
//! labelled by optimiser, probe mode and injected fault, with gaps where the bound is
//! undefined; and small multiples, one panel per run, of the LHS beside the two RHS terms.

use super::figures::Figure;
use super::plots::{self, Chart, Mark, Series};
use super::selection::Report;
use super::RunRecord;
use anyhow::Result;
use ato_train::{CheckVerdicts, ConvergenceRow, Fault, ProbeMode};
use plotters::chart::SeriesLabelPosition;
use std::path::Path;

/// Panels in the small-multiples figure at most (the theorem-regime runs first).
const MAX_PANELS: usize = 9;

/// Whether the run's step is not a proximal step of its h (OTO, OTOv2, ATO's half-space
/// projector): its curve is a reference line, not a check of a theorem.
pub fn is_reference(rows: &[ConvergenceRow]) -> bool {
    rows.iter()
        .any(|r| r.violated.split(';').any(|v| v == "step_is_prox"))
}

/// One line per run: each check's verdict (the bounds judged only inside the theorems'
/// assumptions, which the line names otherwise) and, for OTO/OTOv2, that its curve is a
/// reference line only.
pub fn bound_line(rows: &[ConvergenceRow], mode: ProbeMode, inject: Fault) -> String {
    let mut line = CheckVerdicts::of(rows).line(mode, inject);
    if is_reference(rows) {
        line += " — reference line only: λ is not a proximal step of h";
    }
    line
}

/// "sgd theorem: ato s0", "adamw exact, inject flip_grad: ato s1" — the optimiser first, so
/// two ATO runs get different colours.
fn label(r: &RunRecord) -> String {
    let p = &r.probing;
    let mode = p.mode.map_or("?", ProbeMode::as_str);
    let inject = if p.inject == Fault::None {
        String::new()
    } else {
        format!(", inject {}", p.inject.as_str())
    };
    let reference = if is_reference(&r.convergence) {
        " (reference)"
    } else {
        ""
    };
    format!(
        "{} {mode}{inject}: {} s{}{reference}",
        p.optimizer,
        r.summary.method.as_str(),
        r.summary.seed
    )
}

/// The probe rows of a run as (step, value), NaN kept so the line breaks there.
fn line_of(r: &RunRecord, name: String, f: fn(&ConvergenceRow) -> f64) -> Series {
    Series {
        name,
        points: r
            .convergence
            .iter()
            .map(|c| {
                (
                    c.step as f64,
                    if c.rhs.is_finite() { f(c) } else { f64::NAN },
                )
            })
            .collect(),
        mark: Mark::LineAndPoints,
        spread: Vec::new(),
    }
}

impl Report<'_> {
    /// The ratio figure and the small multiples of one data set and model, the per-run lines
    /// under the first. Runs without probes are left out.
    pub(super) fn convergence_figures(
        &self,
        dir: &Path,
        tag: &str,
        (model, dataset): (&str, &str),
        shown: &[&&RunRecord],
    ) -> Result<Vec<Figure>> {
        let mut probed: Vec<&RunRecord> = shown
            .iter()
            .map(|r| **r)
            .filter(|r| !r.convergence.is_empty())
            .collect();
        if probed.is_empty() {
            return Ok(Vec::new());
        }
        // the theorem-regime runs first: they are what the checks are for
        probed.sort_by_key(|r| !r.theorem_regime);
        let lines: Vec<String> = probed
            .iter()
            .map(|r| {
                let mode = r.probing.mode.unwrap_or(ProbeMode::Monitor);
                format!(
                    "- {} `{}`: {}",
                    label(r),
                    r.summary.run_id,
                    bound_line(&r.convergence, mode, r.probing.inject)
                )
            })
            .collect();
        let drawn = &probed[..probed.len().min(MAX_PANELS)];
        let left_out = if probed.len() > drawn.len() {
            format!(
                " The figures draw the first {} of {} probed runs.",
                drawn.len(),
                probed.len()
            )
        } else {
            String::new()
        };
        let note = format!(
            "LHS/RHS of the averaged bound (Corollary 2 of `ato_optim::bounds`) at every probe; \
             below 1 the bound holds; a gap is a probe where it is undefined (η·L̂ ≥ 2).{left_out} \
             A check that held is not a proof of correctness: each line gives the smallest \
             defect each check could have detected (the per-step check's t, the descent \
             check's slack). Per run:\n\n{}",
            lines.join("\n")
        );
        let ratio: Vec<Series> = drawn
            .iter()
            .map(|r| line_of(r, label(r), |c| c.lhs_rhs_ratio))
            .filter(|s| s.points.iter().any(|p| p.1.is_finite()))
            .collect();
        let title = format!("{model} on {dataset}: LHS/RHS of the convergence bound");
        let mut figs = Vec::new();
        if ratio.is_empty() {
            figs.push(Figure {
                title,
                link: String::new(),
                note: Some(note),
            });
            return Ok(figs);
        }
        let mut fig = self.figure(
            dir,
            &format!("convergence_{tag}.png"),
            Chart {
                title: &title,
                x_label: "optimiser step",
                y_label: "LHS / RHS",
                log_y: true,
                reference_y: Some(1.0),
                chance: None,
                legend: SeriesLabelPosition::UpperRight,
            },
            &ratio,
        )?;
        fig.note = Some(note);
        figs.push(fig);

        let titles: Vec<String> = drawn.iter().map(|r| label(r)).collect();
        let panels: Vec<(Chart<'_>, Vec<Series>)> = drawn
            .iter()
            .zip(&titles)
            .map(|(r, title)| {
                let series = vec![
                    line_of(r, "LHS".into(), |c| c.lhs),
                    line_of(r, "RHS optimisation term".into(), |c| c.rhs_opt),
                    line_of(r, "RHS noise term".into(), |c| c.rhs_noise),
                ];
                let chart = Chart {
                    title,
                    x_label: "optimiser step",
                    y_label: "averaged ||G||^2 and its bound",
                    log_y: true,
                    reference_y: None,
                    chance: None,
                    legend: SeriesLabelPosition::UpperRight,
                };
                (chart, series)
            })
            .collect();
        let file = format!("convergence_terms_{tag}.png");
        plots::draw_grid(&dir.join(&file), &panels, 3)?;
        figs.push(Figure {
            title: format!("{model} on {dataset}: LHS and the two RHS terms, one panel per run"),
            link: format!("figures/{}/{file}", self.name),
            note: Some(
                "RHS = optimisation term (Ψ₀ − Ψ_low)/Σw + noise term (what the mini-batch \
                 variance adds; 0 in the exact mode, drawn only where positive); the LHS stays \
                 below their sum where the bound holds."
                    .into(),
            ),
        });
        Ok(figs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "step,epoch,lr,loss,objective,grad_mapping_sq,grad_mapping_sq_metric,\
free_coords,rho_all,rho_free,smoothness,smoothness_metric,variance,variance_metric,mask_flips,\
theorem,lhs,rhs,rhs_opt,rhs_noise,lhs_rhs_ratio,step_condition,window_steps,descent_lhs,\
descent_opt_term,descent_noise_term,descent_tolerance,descent_holds,free_set_held,in_regime,\
violated";

    /// A hand-made `convergence.csv` with the columns the probe wrote before the per-step check
    /// existed (`extra` adds columns): rows that hold, one averaged-bound violation, one descent
    /// violation and one undefined row.
    fn rows_with(extra: &str, body: &[&str]) -> Vec<ConvergenceRow> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("convergence.csv");
        std::fs::write(&path, format!("{HEADER}{extra}\n{}\n", body.join("\n"))).unwrap();
        ato_train::read_csv(&path).unwrap()
    }

    fn rows(body: &[&str]) -> Vec<ConvergenceRow> {
        rows_with("", body)
    }

    /// A row at `step` with LHS/RHS = `lhs`/`rhs` (NaN: the step condition failed), the
    /// window's descent verdict and the violated assumptions.
    fn row(step: u64, lhs: f64, rhs: &str, holds: bool, violated: &str) -> String {
        let ratio = rhs.parse::<f64>().map_or(f64::NAN, |r| lhs / r);
        format!(
            "{step},0,0.1,1.0,1.0,1.0,1.0,10,1,1,1,1,0.1,0.1,0,proximal_sgd,{lhs},{rhs},0.5,0.5,\
{ratio},{},10,-0.1,-0.2,0.1,0.01,{holds},true,{},{violated}",
            ratio.is_finite(),
            violated.is_empty()
        )
    }

    const NOT_RUN: &str = "step check not run (monitor mode, or a step that is not a prox of h)";

    #[test]
    fn every_probe_held() {
        let r = rows(&[
            &row(0, 0.5, "2", true, ""),
            &row(10, 0.4, "1", true, ""),
            &row(20, 0.3, "1", true, ""),
        ]);
        assert_eq!(
            bound_line(&r, ProbeMode::Theorem, Fault::None),
            format!(
                "convergence checks (theorem): all held — {NOT_RUN}; descent held on 3 windows; \
                 averaged bound held on 3/3 probes (median LHS/RHS 0.300)"
            )
        );
        assert!(!is_reference(&r));
    }

    #[test]
    fn violations_and_undefined_rows_are_named_by_step() {
        let r = rows(&[
            &row(0, 0.5, "2", true, ""),
            // averaged bound violated: ratio 1.5
            &row(10, 1.5, "1", true, ""),
            // descent violated with the ratio below 1
            &row(20, 0.3, "1", false, ""),
            // NaN RHS: the step condition failed
            &row(30, 0.3, "NaN", false, "step_condition"),
        ]);
        assert_eq!(
            bound_line(&r, ProbeMode::Theorem, Fault::None),
            format!(
                "convergence checks (theorem): a check FAILED — {NOT_RUN}; descent FAILED at \
                 step 20; averaged bound FAILED at step 10; η·L̂ < 2 failed from step 30 (bounds \
                 undefined there)"
            )
        );
    }

    #[test]
    fn the_per_step_check_names_its_first_failure_or_its_smallest_detectable_defect() {
        let extra = ",step_checks,step_worst_ratio,step_tolerance,step_violated_at";
        let held = rows_with(
            extra,
            &[
                &format!("{},0,,,", row(0, 0.5, "2", true, "")),
                &format!("{},10,0.05,2e-6,", row(10, 0.4, "1", true, "")),
                &format!("{},10,0.07,4e-6,", row(20, 0.3, "1", true, "")),
            ],
        );
        let line = bound_line(&held, ProbeMode::Exact, Fault::None);
        assert!(
            line.contains(
                "all held — step check held on 20 steps (worst r/t 0.07; smallest \
                 detectable defect t ≈ 3.00e-6)"
            ),
            "{line}"
        );
        let caught = rows_with(
            extra,
            &[
                &format!("{},0,,,", row(0, 0.5, "2", true, "")),
                &format!("{},10,4.2e5,2e-6,1", row(10, 0.4, "1", true, "")),
            ],
        );
        let line = bound_line(&caught, ProbeMode::Exact, Fault::LrX20);
        assert!(
            line.starts_with(
                "convergence checks (exact, inject lr_x20): a check FAILED — step check FAILED \
                 at step 1 (worst r/t 4.200e5 over 10 steps)"
            ),
            "{line}"
        );
    }

    #[test]
    fn oto_rows_are_reference_lines_and_name_their_assumptions() {
        let r = rows(&[
            &row(0, 0.5, "2", true, "step_is_prox;momentum_zero"),
            // outside the assumptions a failing bound is not a finding
            &row(10, 1.5, "1", false, "step_is_prox;momentum_zero"),
        ]);
        assert!(is_reference(&r));
        assert_eq!(
            bound_line(&r, ProbeMode::Monitor, Fault::None),
            format!(
                "convergence checks (monitor): no check judged — {NOT_RUN}; descent: no window \
                 judged; averaged bound not judged; bounds not judged on 2/2 probes outside the \
                 theorems' assumptions (momentum_zero, step_is_prox) — reference line only: λ is \
                 not a proximal step of h"
            )
        );
    }
}
