//! The restart when h changes and exact resumption from a checkpoint.

mod common;

use ato_optim::{
    ConvergenceProbe, ConvergenceRow, GroupProx, Optimizer, ProbeConfig, ProbeInputs, RunRegime,
    Sgd, SgdConfig, StateDict, Theorem,
};
use ato_zig::Mask;
use candle_core::Device;
use common::quadratic::{two_groups, Quadratic};

#[test]
fn a_change_of_h_restarts_both_checks_without_nan_and_checkpoints_resume_exactly() {
    let (v, groups, params) = two_groups();
    // f = Σ (1 + i)·(w² + b²)/2 on batch i: batches differ, so σ̂² > 0
    let f = |i: usize| {
        let s = 1.0 + i as f32;
        let q = vec![s; 2];
        Quadratic {
            terms: vec![
                ("w.weight", q.clone(), vec![0.0; 2], vec![0.0; 2]),
                ("w.bias", q, vec![0.0; 2], vec![0.0; 2]),
            ],
        }
    };
    let cfg = ProbeConfig {
        every: 1,
        batches: 2,
        objective_lower_bound: 0.0,
    };
    let run = |probe: &mut ConvergenceProbe, step: u64, lam: f64| {
        let penalty = vec![vec![lam, 0.0]];
        let inputs = ProbeInputs {
            step,
            epoch: 0,
            lr: 0.1,
            params: &params,
            weight_decay: 0.0,
            groups: &groups,
            penalty: &penalty,
            preconditioner: None,
            mask_flips: 0,
        };
        probe
            .measure(inputs, |i| {
                let loss = f(i).loss(&v, 0);
                Ok((loss.to_scalar::<f32>()? as f64, loss.backward()?))
            })
            .unwrap()
    };
    let mut opt = Sgd::new(
        params.clone(),
        SgdConfig {
            momentum: 0.0,
            ..SgdConfig::default()
        },
    )
    .unwrap();
    let mut step = |probe: &mut ConvergenceProbe, lam: f64| {
        opt.step(&f(0).loss(&v, 0).backward().unwrap(), 0.1)
            .unwrap();
        GroupProx::apply(&groups, &Mask::from_keep(vec![vec![false, true]]), lam, 0.1).unwrap();
        probe.record_step(0.1);
    };
    let mut probe = ConvergenceProbe::new(cfg, Theorem::ProximalSgd).unwrap();
    probe.set_regime(RunRegime::proximal_sgd());
    let finite = |r: &ConvergenceRow| {
        [
            r.lhs,
            r.rhs,
            r.rhs_opt,
            r.rhs_noise,
            r.lhs_rhs_ratio,
            r.smoothness,
        ]
        .iter()
        .chain(&[r.descent_lhs, r.descent_opt_term, r.descent_noise_term])
        .all(|x| x.is_finite())
    };
    let first = run(&mut probe, 0, 0.5);
    assert!(
        finite(&first) && first.in_regime && first.variance > 0.0,
        "{first:?}"
    );
    step(&mut probe, 0.5);
    let second = run(&mut probe, 1, 0.5);
    assert!(finite(&second) && second.window_steps == 1 && second.in_regime);
    step(&mut probe, 0.5);
    // h changes: both checks restart here, finite, and the row says the regime was left
    let changed = run(&mut probe, 2, 2.0);
    assert!(finite(&changed) && changed.window_steps == 0, "{changed:?}");
    assert_eq!(changed.violated, "regulariser_fixed");
    // a restart is a fresh start: a new probe measuring at this point agrees
    let mut fresh = ConvergenceProbe::new(cfg, Theorem::ProximalSgd).unwrap();
    fresh.set_regime(RunRegime::proximal_sgd());
    let f_row = run(&mut fresh, 2, 2.0);
    assert_eq!((changed.lhs, changed.rhs), (f_row.lhs, f_row.rhs));
    step(&mut probe, 2.0);
    let after = run(&mut probe, 3, 2.0);
    assert!(finite(&after) && after.in_regime && after.window_steps == 1);
    step(&mut probe, 2.0);

    // the state survives a checkpoint: a restored probe measures exactly what this one does
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.safetensors");
    probe.state(&Device::Cpu).unwrap().save(&path).unwrap();
    let mut restored = ConvergenceProbe::new(cfg, Theorem::ProximalSgd).unwrap();
    restored.set_regime(RunRegime::proximal_sgd());
    restored
        .load_state(&StateDict::load(&path, &Device::Cpu).unwrap())
        .unwrap();
    let (a, b) = (run(&mut probe, 4, 2.0), run(&mut restored, 4, 2.0));
    assert!(finite(&a) && a.window_steps == 1);
    assert_eq!(a, b);
}
