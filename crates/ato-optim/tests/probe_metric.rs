//! The adaptive metric on free coordinates: an explicit preconditioner with a zeroed group,
//! and ρ̂ of a real AdamW run with a dead channel.

mod common;

use ato_optim::bounds::{OptimizerKind, Schedule};
use ato_optim::{
    AdamW, AdamWConfig, ConvergenceProbe, Optimizer, ProbeConfig, ProbeInputs, RunRegime, Theorem,
};
use candle_core::{Device, Tensor};
use common::quadratic::{close, measure, Quadratic};
use common::{linear_gates, param_set, vars};

#[test]
fn adam_metric_on_free_coordinates_with_a_zeroed_group() {
    let v = vars(&[
        ("w.weight", &[3, 1], &[3.0, 0.0, 1.0]),
        ("w.bias", &[3], &[4.0, 0.0, 1.0]),
    ]);
    let groups = linear_gates(&[("w", 1, 3)], &v);
    let params = param_set(&v);
    // f = ⟨c0, g0⟩ + ½‖g2‖² + ⟨c2, g2⟩ ± 0.5·w2 per batch; g1 does not enter (gradient 0)
    //   ∇: g0 (−12, −16), g1 (0, 0), g2 (1, −1) ± (0.5, 0)
    let f = Quadratic {
        terms: vec![
            (
                "w.weight",
                vec![0.0, 0.0, 1.0],
                vec![-12.0, 0.0, 0.0],
                vec![0.0, 0.0, 0.5],
            ),
            (
                "w.bias",
                vec![0.0, 0.0, 1.0],
                vec![-16.0, 0.0, -2.0],
                vec![0.0; 3],
            ),
        ],
    };
    let eps = 1e-8f32;
    let h = Tensor::new(&[2.0f32, eps, 0.5], &Device::Cpu).unwrap();
    let pre = vec![
        ("w.weight".to_string(), h.reshape((3, 1)).unwrap()),
        ("w.bias".to_string(), h.clone()),
    ];
    let cfg = ProbeConfig {
        every: 1,
        batches: 2,
        objective_lower_bound: -1000.0,
    };
    let mut probe = ConvergenceProbe::new(cfg, Theorem::AdaptiveProximalSgd).unwrap();
    let penalty = vec![vec![8.0, 8.0, 0.0]];
    let r = measure(
        &mut probe,
        (&params, &groups, &v),
        &f,
        0,
        0.5,
        &penalty,
        Some(pre),
    );
    // η = 0.5, τ = ηλ = 4.
    //   g0: y = x − ηg/2 = (6, 8); H-prox with h = 2: ×(1 − τ/(2·10)) = 0.8 → (4.8, 6.4);
    //       𝒢 = (−3.6, −4.8), ‖𝒢‖²_H = 2·36 = 72
    //   g2: λ = 0, 𝒢 = g/h = (2, −2), ‖𝒢‖²_H = 0.5·8 = 4
    //   g1: zero, gradient zero → not free, contributes nothing
    assert!(close(r.grad_mapping_sq_metric, 76.0, 1e-5), "{r:?}");
    // Euclidean prox, all coordinates: g0 y = (9, 12) → ×11/15 → 𝒢 = (−7.2, −9.6) = 144; g2 2
    assert!(
        close(r.grad_mapping_sq, 146.0, 1e-5),
        "{}",
        r.grad_mapping_sq
    );
    assert_eq!(r.free_coords, 4);
    // ρ̂: ε over all coordinates (the collapse), 0.5 over the free ones
    assert!(
        close(r.rho_all, eps as f64, 1e-6) && r.rho_free == 0.5,
        "{r:?}"
    );
    // σ̂² of one batch (m = 2, batches differ by ±0.5 in w2): 2·0.25 = 0.5; in H⁻¹: 0.5/0.5 = 1
    assert!(
        close(r.variance, 0.5, 1e-6) && close(r.variance_metric, 1.0, 1e-6),
        "{r:?}"
    );
    // secant along the step u = d̄ = (1.8, 2.4 | 0, 0 | −1, 1): Δ∇f = (0, 0 | 0, 0 | −1, 1);
    //   L̂_H = √((2/0.5)/(2·9 + 0.5·2)) = √(4/19), L̂ = √(2/(9 + 2))
    assert!(
        close(r.smoothness_metric, (4.0f64 / 19.0).sqrt(), 1e-5),
        "{r:?}"
    );
    assert!(close(r.smoothness, (2.0f64 / 11.0).sqrt(), 1e-5), "{r:?}");
    // with ρ̂ = ε the classical step condition η < 2ρ/L would fail and the old bound was NaN;
    // in the H-norm the bound is finite from the first probe
    assert!(0.5 * r.smoothness >= 2.0 * r.rho_all);
    assert!(r.step_condition && r.rhs.is_finite() && r.lhs_rhs_ratio.is_finite());
}

#[test]
fn adamw_rho_on_free_coordinates_ignores_a_dead_channel() {
    // hidden = h(x) with 3 units; unit 1 and the output weight reading it are zero, so every
    // coordinate of group 1 and out.weight[0, 1] get an exactly zero gradient: v̂ = 0 there
    let v = vars(&[
        ("h.weight", &[3, 2], &[0.5, -0.3, 0.0, 0.0, 0.2, 0.4]),
        ("h.bias", &[3], &[0.1, 0.0, -0.1]),
        ("out.weight", &[1, 3], &[0.7, 0.0, -0.5]),
    ]);
    let groups = linear_gates(&[("h", 2, 3)], &v);
    let params = param_set(&v);
    let x = Tensor::new(
        &[[1.0f32, 2.0], [-1.0, 0.5], [0.3, -0.7], [2.0, 1.0]],
        &Device::Cpu,
    )
    .unwrap();
    let y = Tensor::new(&[1.0f32, -0.5, 0.2, 0.8], &Device::Cpu).unwrap();
    let loss = |b: usize| {
        let (xb, yb) = (
            x.narrow(0, 2 * b, 2).unwrap(),
            y.narrow(0, 2 * b, 2).unwrap(),
        );
        let h = xb
            .matmul(&v["h.weight"].as_tensor().t().unwrap())
            .unwrap()
            .broadcast_add(v["h.bias"].as_tensor())
            .unwrap();
        let out = h.matmul(&v["out.weight"].as_tensor().t().unwrap()).unwrap();
        (out.squeeze(1).unwrap() - yb)
            .unwrap()
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap()
    };
    let cfg = AdamWConfig {
        weight_decay: 0.0,
        ..AdamWConfig::default()
    };
    let mut opt = AdamW::new(params.clone(), cfg).unwrap();
    for t in 0..5 {
        opt.step(&loss(t % 2).backward().unwrap(), 1e-2).unwrap();
    }
    let mut probe = ConvergenceProbe::new(
        ProbeConfig {
            every: 1,
            batches: 2,
            objective_lower_bound: 0.0,
        },
        Theorem::AdaptiveProximalSgd,
    )
    .unwrap();
    // the trainer's AdamW is out of Theorem B's regime, and the row says why
    probe.set_regime(RunRegime {
        optimizer: OptimizerKind::Adam,
        momentum: cfg.beta1,
        decoupled_weight_decay: false,
        preconditioner_from_past: false,
        prox_in_metric: false,
        schedule: Schedule::Constant,
        ..RunRegime::proximal_sgd()
    });
    let penalty = vec![vec![0.0; 3]];
    let inputs = ProbeInputs {
        step: 5,
        epoch: 0,
        lr: 1e-2,
        params: &params,
        weight_decay: 0.0,
        groups: &groups,
        penalty: &penalty,
        preconditioner: opt.preconditioner().unwrap(),
        mask_flips: 0,
    };
    let r = probe
        .measure(inputs, |i| {
            let l = loss(i);
            Ok((l.to_scalar::<f32>()? as f64, l.backward()?))
        })
        .unwrap();
    assert!(
        close(r.rho_all, 1e-8, 1e-3),
        "ε on the dead coordinates: {r:?}"
    );
    assert!(r.rho_free > 1e-4, "ρ̂ over the live coordinates: {r:?}");
    // 12 coordinates; dead: h.weight[1, :], h.bias[1], out.weight[0, 1]
    assert_eq!(r.free_coords, 12 - 4);
    assert!(!r.in_regime);
    assert_eq!(
        r.violated,
        "momentum_zero;preconditioner_from_past;prox_in_metric"
    );
}
