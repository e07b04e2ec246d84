//! `convergence.inject` end to end on a tiny synthetic set: ATO (ResNet-20 at base width 4)
//! probed from T_end in the theorem and the exact regime. Every documented fault is caught by
//! the per-step check at the first step it acts on, the correct run passes every check, and the
//! key is refused where no check could catch it.

mod common;

use ato_train::{
    read_csv, run, CheckVerdicts, ConvergenceRow, Fault, Method, OptimizerName, ProbeMode,
    RunConfig, RunOptions,
};
use std::path::Path;

/// [`common::tiny_ato`] for 3 epochs of 8 steps, T_end = 2: probes at steps 16, 20, 24 and the
/// per-step check on steps 16..24. Exact mode: 64 images as one batch, 12 epochs of 1 step,
/// T_end = 8: probes at steps 8, 10, 12.
fn tiny(mode: ProbeMode, optimizer: OptimizerName, fault: Fault, root: &Path) -> RunConfig {
    let exact = mode == ProbeMode::Exact;
    let mut cfg = common::tiny_ato(optimizer, root);
    cfg.name = "faults".into();
    cfg.train.epochs = 3;
    cfg.convergence.mode = mode;
    cfg.convergence.inject = fault;
    if exact {
        cfg.train.epochs = 12;
        cfg.train.batch_size = 64;
        cfg.convergence.every = 2;
        cfg.ato.t_prox = Some(ato_train::EpochSpec::Epoch(4));
        cfg.ato.t_end = Some(ato_train::EpochSpec::Epoch(8));
        cfg.ato.lambda_switch = Some(ato_train::EpochSpec::Epoch(8));
        cfg.ato.hyper_step = ato_train::config::HyperStep::Every(1);
    }
    cfg
}

fn rows(cfg: &RunConfig) -> (Vec<ConvergenceRow>, String) {
    let out = run(cfg, &RunOptions::default()).unwrap();
    let line = out.convergence.expect("probes ran");
    (
        read_csv(&out.run_dir.join("convergence.csv")).unwrap(),
        line,
    )
}

/// The first step the per-step check caught, and the run's last line.
fn caught(mode: ProbeMode, optimizer: OptimizerName, fault: Fault) -> (Option<u64>, String) {
    let dir = tempfile::tempdir().unwrap();
    let (rows, line) = rows(&tiny(mode, optimizer, fault, dir.path()));
    let v = CheckVerdicts::of(&rows);
    assert!(v.step_checks > 0, "{line}");
    (v.step_failed_at, line)
}

#[test]
fn theorem_mode_sgd_catches_every_fault_at_its_first_step_and_passes_without_one() {
    let (none, line) = caught(ProbeMode::Theorem, OptimizerName::Sgd, Fault::None);
    assert_eq!(none, None, "{line}");
    assert!(line.contains("all held"), "{line}");
    for fault in [
        Fault::LrX20,
        Fault::FlipGrad,
        Fault::LambdaX10,
        Fault::InvertMask,
        Fault::MomentumLeak,
    ] {
        let (at, line) = caught(ProbeMode::Theorem, OptimizerName::Sgd, fault);
        assert_eq!(at, Some(16), "{fault:?}: {line}");
        assert!(
            line.contains("step check FAILED at step 16") && line.contains(fault.as_str()),
            "{line}"
        );
    }
}

#[test]
fn theorem_mode_adamw_catches_a_momentum_leak_and_a_flipped_gradient() {
    let (none, line) = caught(ProbeMode::Theorem, OptimizerName::Adamw, Fault::None);
    assert_eq!(none, None, "{line}");
    for fault in [Fault::MomentumLeak, Fault::FlipGrad] {
        let (at, line) = caught(ProbeMode::Theorem, OptimizerName::Adamw, fault);
        assert_eq!(at, Some(16), "{fault:?}: {line}");
    }
}

#[test]
fn exact_mode_has_no_noise_holds_without_a_fault_and_catches_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny(
        ProbeMode::Exact,
        OptimizerName::Sgd,
        Fault::None,
        dir.path(),
    );
    let (rows, line) = rows(&cfg);
    assert_eq!(
        rows.iter().map(|r| r.step).collect::<Vec<_>>(),
        [8, 10, 12],
        "{line}"
    );
    for r in &rows {
        // the one batch twice: identical gradients, so no noise term at all
        assert_eq!(r.variance, 0.0, "{r:?}");
        assert_eq!(r.rhs_noise, 0.0, "{r:?}");
        assert!(r.in_regime, "{r:?}");
    }
    let v = CheckVerdicts::of(&rows);
    assert!(!v.caught() && v.step_checks == 4, "{line}");
    let (at, line) = caught(ProbeMode::Exact, OptimizerName::Sgd, Fault::LrX20);
    assert_eq!(at, Some(8), "{line}");
}

#[test]
fn inject_is_refused_where_no_check_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(
        ProbeMode::Monitor,
        OptimizerName::Sgd,
        Fault::FlipGrad,
        dir.path(),
    );
    cfg.optim.momentum = 0.9;
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("convergence.inject") && !e.contains('\n'), "{e}");
    cfg.convergence.mode = ProbeMode::Theorem;
    cfg.optim.momentum = 0.0;
    cfg.validate().unwrap();
    cfg.convergence.every = 0;
    assert!(cfg.validate().is_err());
    let mut dense = tiny(
        ProbeMode::Theorem,
        OptimizerName::Sgd,
        Fault::LambdaX10,
        dir.path(),
    );
    dense.method = Method::Dense;
    let e = dense.validate().unwrap_err().to_string();
    assert!(e.contains("ATO's prox"), "{e}");
    dense.convergence.inject = Fault::LrX20;
    dense.validate().unwrap();
}
