//! `convergence.mode = "theorem"` end to end on a tiny synthetic set: ATO probed from T_end
//! (mask frozen, h fixed), momentum 0, probe batches with the training transform. Every row is
//! finite for SGD and for AdamW, SGD's rows are in the regime and hold, and a broken step (the
//! sign of the prox's shrinkage flipped behind the probe's back, `RunOptions::broken_prox`) is
//! reported by the descent check. (Not detectable by the two bounds here: the learning rate
//! ×20, since with BN the loss is scale-invariant in the conv weights and the larger step still
//! descends, and the gradient's sign flipped, since the ascent of f over a window stays within
//! the mini-batch noise term; the per-step check catches both, `tests/fault_injection.rs`.)

mod common;

use ato_train::{read_csv, run, ConvergenceRow, OptimizerName, RunConfig, RunOptions};
use std::path::Path;

/// The probes cover epochs 2 and 3 of [`common::tiny_ato`] (16 steps, a probe every 4 → 5
/// rows).
fn tiny(optimizer: OptimizerName, root: &Path) -> RunConfig {
    common::tiny_ato(optimizer, root)
}

fn rows_of(cfg: &RunConfig, opts: &RunOptions) -> Vec<ConvergenceRow> {
    let out = run(cfg, opts).unwrap();
    read_csv(&out.run_dir.join("convergence.csv")).unwrap()
}

fn assert_finite(rows: &[ConvergenceRow]) {
    assert_eq!(rows.len(), 5, "probes at steps 16, 20, 24, 28, 32");
    assert_eq!(rows[0].step, 16, "the first probe is at T_end");
    for r in rows {
        assert!(
            r.lhs.is_finite() && r.rhs.is_finite() && r.lhs_rhs_ratio.is_finite(),
            "step {}: lhs {} rhs {} ratio {} (violated: {})",
            r.step,
            r.lhs,
            r.rhs,
            r.lhs_rhs_ratio,
            r.violated
        );
        assert!(r.rhs_opt.is_finite() && r.rhs_noise.is_finite(), "{r:?}");
        assert!(!r.violated.contains("regulariser_fixed"), "{r:?}");
        assert!(!r.violated.contains("probe_transform"), "{r:?}");
    }
}

#[test]
fn sgd_rows_are_finite_in_the_regime_and_hold() {
    let dir = tempfile::tempdir().unwrap();
    let rows = rows_of(
        &tiny(OptimizerName::Sgd, dir.path()),
        &RunOptions::default(),
    );
    assert_finite(&rows);
    for r in &rows {
        assert!(r.in_regime, "step {}: violated {}", r.step, r.violated);
        assert!(r.descent_holds && r.lhs_rhs_ratio <= 1.0, "{r:?}");
    }
}

#[test]
fn adamw_rows_are_finite_and_name_what_adamw_violates() {
    let dir = tempfile::tempdir().unwrap();
    let rows = rows_of(
        &tiny(OptimizerName::Adamw, dir.path()),
        &RunOptions::default(),
    );
    assert_finite(&rows);
    for r in &rows {
        assert_eq!(r.theorem, "adaptive_proximal_sgd");
        assert!(r.rho_free.is_finite() && r.rho_free > 0.0, "{r:?}");
        assert!(r.violated.contains("preconditioner_from_past"), "{r:?}");
    }
}

#[test]
fn a_broken_step_is_reported_as_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    let broken = RunOptions {
        broken_prox: true,
        ..RunOptions::default()
    };
    let rows = rows_of(&tiny(OptimizerName::Sgd, dir.path()), &broken);
    let summary: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "step {} ratio {:.3} ΔΨ {:.4} ≤ {:.4} + {:.4} + {:.4}: {} [{}]",
                r.step,
                r.lhs_rhs_ratio,
                r.descent_lhs,
                r.descent_opt_term,
                r.descent_noise_term,
                r.descent_tolerance,
                r.descent_holds,
                r.violated
            )
        })
        .collect();
    // every window after the first probe ascends: the descent check fails on each
    let failed: Vec<u64> = rows
        .iter()
        .filter(|r| r.window_steps > 0 && !r.descent_holds)
        .map(|r| r.step)
        .collect();
    assert_eq!(failed, [20, 24, 28, 32], "{summary:#?}");
}
