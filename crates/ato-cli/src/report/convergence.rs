//! The report's convergence figures and per-run verdicts: LHS/RHS of the averaged bound over
//! the probed steps (one line per method, y = 1 drawn), the LHS beside the two terms of the
//! RHS (optimisation, noise), and one line of text per run saying on how many probes the
//! bound held and where it was violated or undefined. OTO/OTOv2 rows are labelled reference
//! lines: their λ is not a proximal step of the h the probe evaluates.

use super::figures::Figure;
use super::plots::{Chart, Mark, Series};
use super::selection::Report;
use super::RunRecord;
use anyhow::Result;
use ato_train::ConvergenceRow;
use plotters::chart::SeriesLabelPosition;
use std::collections::BTreeSet;
use std::path::Path;

/// What one probe row says about the bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The averaged bound (ratio ≤ 1) and the window's descent inequality hold.
    Held,
    /// One of them fails.
    Violated,
    /// The bound is undefined here (the step condition failed: NaN RHS).
    Undefined,
}

pub fn verdict(r: &ConvergenceRow) -> Verdict {
    if !(r.rhs.is_finite() && r.lhs_rhs_ratio.is_finite()) {
        Verdict::Undefined
    } else if r.lhs_rhs_ratio > 1.0 || (r.window_steps > 0 && !r.descent_holds) {
        Verdict::Violated
    } else {
        Verdict::Held
    }
}

/// Whether the run's step is not a proximal step of its h (OTO, OTOv2, ATO's half-space
/// projector): its curve is a reference line, not a check of a theorem.
pub fn is_reference(rows: &[ConvergenceRow]) -> bool {
    rows.iter()
        .any(|r| r.violated.split(';').any(|v| v == "step_is_prox"))
}

fn steps_list(steps: &[u64]) -> String {
    let shown: Vec<String> = steps.iter().take(5).map(|s| s.to_string()).collect();
    if steps.len() > 5 {
        format!("{} … ({} in all)", shown.join(", "), steps.len())
    } else {
        shown.join(", ")
    }
}

/// One line per run: "bound held on 37/37 probes", "violated at step …", where it was
/// undefined, and the theorems' assumptions the run does not satisfy.
pub fn bound_line(rows: &[ConvergenceRow]) -> String {
    if rows.is_empty() {
        return "no convergence probes".into();
    }
    let of = |v: Verdict| -> Vec<u64> {
        rows.iter()
            .filter(|r| verdict(r) == v)
            .map(|r| r.step)
            .collect()
    };
    let (held, violated, undefined) = (
        of(Verdict::Held),
        of(Verdict::Violated),
        of(Verdict::Undefined),
    );
    let mut line = format!("bound held on {}/{} probes", held.len(), rows.len());
    if !violated.is_empty() {
        line += &format!("; violated at step {}", steps_list(&violated));
    }
    if !undefined.is_empty() {
        line += &format!(
            "; undefined (step condition η·L̂ < 2 failed) at step {}",
            steps_list(&undefined)
        );
    }
    let outside: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.violated.split(';'))
        .filter(|v| !v.is_empty() && *v != "step_condition")
        .collect();
    if !outside.is_empty() {
        let names: Vec<&str> = outside.into_iter().collect();
        line += &format!("; outside the theorems' assumptions: {}", names.join(", "));
    }
    if is_reference(rows) {
        line += " — reference line only: λ is not a proximal step of h";
    }
    line
}

fn label(r: &RunRecord) -> String {
    let theorem = r.convergence.first().map_or("", |c| c.theorem.as_str());
    let reference = if is_reference(&r.convergence) {
        ", reference"
    } else {
        ""
    };
    format!("{} ({theorem}{reference})", r.summary.method)
}

impl Report<'_> {
    /// The ratio figure and the RHS-terms figure of one data set and model, the per-run lines
    /// under the first. Runs without probes are left out.
    pub(super) fn convergence_figures(
        &self,
        dir: &Path,
        tag: &str,
        (model, dataset): (&str, &str),
        shown: &[&&RunRecord],
    ) -> Result<Vec<Figure>> {
        let probed: Vec<&RunRecord> = shown
            .iter()
            .map(|r| **r)
            .filter(|r| !r.convergence.is_empty())
            .collect();
        if probed.is_empty() {
            return Ok(Vec::new());
        }
        let line = |r: &RunRecord, name: String, f: fn(&ConvergenceRow) -> f64| Series {
            name,
            points: r
                .convergence
                .iter()
                .map(|c| (c.step as f64, f(c)))
                .filter(|p| p.1.is_finite())
                .collect(),
            mark: Mark::Line,
            spread: Vec::new(),
        };
        let ratio: Vec<Series> = probed
            .iter()
            .map(|r| line(r, label(r), |c| c.lhs_rhs_ratio))
            .filter(|s| !s.points.is_empty())
            .collect();
        let lines: Vec<String> = probed
            .iter()
            .map(|r| {
                format!(
                    "- {} `{}`: {}",
                    label(r),
                    r.summary.run_id,
                    bound_line(&r.convergence)
                )
            })
            .collect();
        let note = format!(
            "LHS/RHS of the averaged bound (Corollary 2 of `ato_optim::bounds`) at every probe; \
             below 1 the bound holds. Per run:\n\n{}",
            lines.join("\n")
        );
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

        let terms: Vec<Series> = probed
            .iter()
            .flat_map(|r| {
                let m = &r.summary.method;
                [
                    line(r, format!("{m}: LHS"), |c| c.lhs),
                    line(r, format!("{m}: RHS optimisation term"), |c| c.rhs_opt),
                    line(r, format!("{m}: RHS noise term"), |c| c.rhs_noise),
                ]
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        let title = format!("{model} on {dataset}: LHS and the two RHS terms");
        let mut fig = self.figure(
            dir,
            &format!("convergence_terms_{tag}.png"),
            Chart {
                title: &title,
                x_label: "optimiser step",
                y_label: "averaged ||G||^2 and its bound",
                log_y: true,
                reference_y: None,
                chance: None,
                legend: SeriesLabelPosition::UpperRight,
            },
            &terms,
        )?;
        fig.note = Some(
            "RHS = optimisation term (Ψ₀ − Ψ_low)/Σw + noise term (what the mini-batch \
             variance adds); the LHS stays below their sum where the bound holds."
                .into(),
        );
        figs.push(fig);
        Ok(figs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made `convergence.csv`: the header the probe writes and rows that hold, one
    /// averaged-bound violation, one descent violation and one undefined row.
    fn rows(body: &[&str]) -> Vec<ConvergenceRow> {
        let header = "step,epoch,lr,loss,objective,grad_mapping_sq,grad_mapping_sq_metric,\
free_coords,rho_all,rho_free,smoothness,smoothness_metric,variance,variance_metric,mask_flips,\
theorem,lhs,rhs,rhs_opt,rhs_noise,lhs_rhs_ratio,step_condition,window_steps,descent_lhs,\
descent_opt_term,descent_noise_term,descent_tolerance,descent_holds,free_set_held,in_regime,\
violated";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("convergence.csv");
        std::fs::write(&path, format!("{header}\n{}\n", body.join("\n"))).unwrap();
        ato_train::read_csv(&path).unwrap()
    }

    /// A row at `step` with LHS/RHS = `lhs`/`rhs`, the window's descent verdict and the
    /// violated assumptions.
    fn row(step: u64, lhs: f64, rhs: &str, holds: bool, violated: &str) -> String {
        let ratio = rhs.parse::<f64>().map_or(f64::NAN, |r| lhs / r);
        format!(
            "{step},0,0.1,1.0,1.0,1.0,1.0,10,1,1,1,1,0.1,0.1,0,proximal_sgd,{lhs},{rhs},0.5,0.5,\
{ratio},true,10,-0.1,-0.2,0.1,0.01,{holds},true,{},{violated}",
            violated.is_empty()
        )
    }

    #[test]
    fn every_probe_held() {
        let r = rows(&[
            &row(0, 0.5, "2", true, ""),
            &row(10, 0.4, "1", true, ""),
            &row(20, 0.3, "1", true, ""),
        ]);
        assert_eq!(bound_line(&r), "bound held on 3/3 probes");
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
            bound_line(&r),
            "bound held on 1/4 probes; violated at step 10, 20; undefined (step condition \
             η·L̂ < 2 failed) at step 30"
        );
    }

    #[test]
    fn oto_rows_are_reference_lines_and_name_their_assumptions() {
        let r = rows(&[
            &row(0, 0.5, "2", true, "step_is_prox;momentum_zero"),
            &row(10, 0.5, "2", true, "step_is_prox;momentum_zero"),
        ]);
        assert!(is_reference(&r));
        assert_eq!(
            bound_line(&r),
            "bound held on 2/2 probes; outside the theorems' assumptions: momentum_zero, \
             step_is_prox — reference line only: λ is not a proximal step of h"
        );
    }
}
