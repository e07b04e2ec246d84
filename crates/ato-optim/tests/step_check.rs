//! The per-step check against hand-computed proximal steps (SGD and AdamW), its tolerance
//! from both sides, and each documented fault of `convergence.inject` caught on a tiny model.

mod common;

use ato_optim::{
    check_step, AdamW, AdamWConfig, GroupProx, GroupSet, Optimizer, ParamSet, Sgd, SgdConfig,
    StepCapture, StepRule, StepVerdict,
};
use ato_zig::{Mask, NamedVars};
use candle_core::{Device, Tensor};
use common::{linear_gates, param_set, values, vars};

/// One gate `q` of width 2 on 2 inputs: group c = (row c of q.weight, q.bias[c]), so
/// group 0 = (3, 0, 4) with norm 5 and group 1 = (0.3, 0.4, 0) with norm 0.5.
fn model() -> (NamedVars, GroupSet, ParamSet) {
    let v = vars(&[
        ("q.weight", &[2, 2], &[3.0, 0.0, 0.3, 0.4]),
        ("q.bias", &[2], &[4.0, 0.0]),
    ]);
    let groups = linear_gates(&[("q", 2, 2)], &v);
    let params = param_set(&v);
    (v, groups, params)
}

/// The gradients of the linear loss `⟨c_w, W⟩ + ⟨c_b, b⟩`: c_w = [[1, 2], [0, 0]], c_b = [1, 0]
/// (sign −1 flips them).
fn grads(v: &NamedVars, sign: f64) -> candle_core::backprop::GradStore {
    let cw = Tensor::from_slice(&[1f32, 2.0, 0.0, 0.0], (2, 2), &Device::Cpu).unwrap();
    let cb = Tensor::from_slice(&[1f32, 0.0], 2, &Device::Cpu).unwrap();
    let loss = ((v["q.weight"].as_tensor() * cw).unwrap().sum_all().unwrap()
        + (v["q.bias"].as_tensor() * cb).unwrap().sum_all().unwrap())
    .unwrap()
    .affine(sign, 0.0)
    .unwrap();
    loss.backward().unwrap()
}

/// Both groups masked: ATO's prox with ratio 1, so λ_g = λ on both.
fn all_masked() -> Mask {
    Mask::from_keep(vec![vec![false, false]])
}

const LR: f64 = 0.1;
const LAMBDA: f64 = 1.0;

fn rule<'a>(
    groups: &'a GroupSet,
    penalty: &'a [Vec<f64>],
    pre: Option<&'a [(String, Tensor)]>,
    wd: f64,
) -> StepRule<'a> {
    StepRule {
        lr: LR,
        weight_decay: wd,
        preconditioner: pre,
        decoupled_decay: pre.is_some(),
        groups,
        penalty,
    }
}

/// Sets the flat parameters (q.bias then q.weight: the ParamSet's name order).
fn set(v: &NamedVars, bias: [f64; 2], weight: [f64; 4]) {
    let b: Vec<f32> = bias.iter().map(|&x| x as f32).collect();
    let w: Vec<f32> = weight.iter().map(|&x| x as f32).collect();
    v["q.bias"]
        .set(&Tensor::from_slice(&b, 2, &Device::Cpu).unwrap())
        .unwrap();
    v["q.weight"]
        .set(&Tensor::from_slice(&w, (2, 2), &Device::Cpu).unwrap())
        .unwrap();
}

/// The hand-computed proximal SGD step (η = 0.1, λ = 1, no decay):
/// group 0: y = (3 − 0.1, 0 − 0.2, 4 − 0.1) = (2.9, −0.2, 3.9), ‖y‖ = √23.66, x* = y(1 − 0.1/‖y‖);
/// group 1: zero gradient, y = (0.3, 0.4, 0), ‖y‖ = 0.5, x* = 0.8·y = (0.24, 0.32, 0).
fn sgd_by_hand() -> ([f64; 2], [f64; 4]) {
    let f0 = 1.0 - 0.1 / 23.66f64.sqrt();
    ([3.9 * f0, 0.0], [2.9 * f0, -0.2 * f0, 0.24, 0.32])
}

#[test]
fn sgd_prox_step_matches_the_hand_computed_point_and_the_check_holds() {
    let (v, groups, params) = model();
    let penalty = vec![vec![LAMBDA; 2]];
    let g = grads(&v, 1.0);
    let capture = StepCapture::take(&params, &g).unwrap();
    let mut sgd = Sgd::new(
        params.clone(),
        SgdConfig {
            momentum: 0.0,
            weight_decay: 0.0,
            ..SgdConfig::default()
        },
    )
    .unwrap();
    sgd.step(&g, LR).unwrap();
    GroupProx::apply(&groups, &all_masked(), LAMBDA, LR).unwrap();
    let (b, w) = sgd_by_hand();
    for (got, want) in values(&v, "q.weight").iter().zip(w) {
        assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
    }
    for (got, want) in values(&v, "q.bias").iter().zip(b) {
        assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
    }
    let verdict = check_step(7, &capture, &params, &rule(&groups, &penalty, None, 0.0)).unwrap();
    assert!(verdict.holds(), "{verdict:?}");
    assert_eq!(verdict.step, 7);
    assert!(
        verdict.tolerance > 0.0 && verdict.tolerance < 1e-5,
        "{verdict:?}"
    );
}

#[test]
fn the_tolerance_is_the_smallest_detectable_defect_from_both_sides() {
    let (v, groups, params) = model();
    let penalty = vec![vec![LAMBDA; 2]];
    let capture = StepCapture::take(&params, &grads(&v, 1.0)).unwrap();
    let (b, w) = sgd_by_hand();
    let at = |delta: f64| -> StepVerdict {
        // the hand-computed point, moved by δ on one coordinate (q.bias[0] = 3.78…)
        set(&v, [b[0] + delta, b[1]], w);
        check_step(0, &capture, &params, &rule(&groups, &penalty, None, 0.0)).unwrap()
    };
    let t = at(0.0).tolerance;
    assert!(at(0.0).holds());
    // a defect far below t passes, one at 4t fails; the verdict's residual is the defect
    assert!(at(t / 4.0).holds(), "{:?}", at(t / 4.0));
    let off = at(4.0 * t);
    assert!(!off.holds() && off.ratio() > 2.0, "{off:?}");
    assert!((off.residual - 4.0 * t).abs() < 1e-6, "{off:?}");
}

/// AdamW (β₁ = 0, decoupled decay 0.5) after one step: v̂ = g², H = |g| + ε, so
/// y = 0.95·x − 0.1·g/(|g| + ε): group 0 → (2.75, −0.1, 3.7), group 1 (g = 0) → 0.95·(0.3, 0.4, 0);
/// then the Euclidean group prox with τ = 0.1.
#[test]
fn adamw_step_in_its_metric_matches_the_hand_computed_point_and_the_check_holds() {
    let (v, groups, params) = model();
    let penalty = vec![vec![LAMBDA; 2]];
    let g = grads(&v, 1.0);
    let capture = StepCapture::take(&params, &g).unwrap();
    let cfg = AdamWConfig {
        beta1: 0.0,
        weight_decay: 0.5,
        ..AdamWConfig::default()
    };
    let mut adam = AdamW::new(params.clone(), cfg).unwrap();
    adam.step(&g, LR).unwrap();
    GroupProx::apply(&groups, &all_masked(), LAMBDA, LR).unwrap();
    let y0 = [2.75, -0.1, 3.7];
    let n0 = y0.iter().map(|x: &f64| x * x).sum::<f64>().sqrt();
    let f0 = 1.0 - 0.1 / n0;
    let f1 = 1.0 - 0.1 / (0.95 * 0.5);
    let want_w = [y0[0] * f0, y0[1] * f0, 0.95 * 0.3 * f1, 0.95 * 0.4 * f1];
    for (got, want) in values(&v, "q.weight").iter().zip(want_w) {
        assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
    }
    assert!((values(&v, "q.bias")[0] as f64 - y0[2] * f0).abs() < 1e-6);
    let pre = adam.preconditioner().unwrap().unwrap();
    let verdict = check_step(
        0,
        &capture,
        &params,
        &rule(&groups, &penalty, Some(&pre), 0.5),
    )
    .unwrap();
    assert!(verdict.holds(), "{verdict:?}");
    // the same step judged as plain SGD (no metric) is far off: the metric matters
    let euclid = check_step(0, &capture, &params, &rule(&groups, &penalty, None, 0.5)).unwrap();
    assert!(!euclid.holds(), "{euclid:?}");
}

/// The documented faults, one SGD step each from the same point, judged against the rule the
/// config states (η = 0.1, λ = 1 on both groups, no momentum).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    LrX20,
    FlipGrad,
    LambdaX10,
    InvertMask,
    MomentumLeak,
}

fn faulty_step(fault: Fault) -> StepVerdict {
    let (v, groups, params) = model();
    // a mask that keeps group 1 and drops group 0: λ_g = (1, 0)
    let mask = Mask::from_keep(vec![vec![false, true]]);
    let penalty_of_mask = vec![vec![LAMBDA, 0.0]];
    let momentum = if fault == Fault::MomentumLeak {
        0.9
    } else {
        0.0
    };
    let mut sgd = Sgd::new(
        params.clone(),
        SgdConfig {
            momentum,
            weight_decay: 0.0,
            ..SgdConfig::default()
        },
    )
    .unwrap();
    // a first, correct-looking step fills the momentum buffer
    sgd.step(&grads(&v, 1.0), LR).unwrap();
    let g = grads(&v, 1.0);
    let capture = StepCapture::take(&params, &g).unwrap();
    let (lr, lambda) = match fault {
        Fault::LrX20 => (20.0 * LR, LAMBDA),
        Fault::LambdaX10 => (LR, 10.0 * LAMBDA),
        _ => (LR, LAMBDA),
    };
    let used = if fault == Fault::FlipGrad {
        grads(&v, -1.0)
    } else {
        g
    };
    sgd.step(&used, lr).unwrap();
    let applied = if fault == Fault::InvertMask {
        Mask::from_dropped(mask.gates())
    } else {
        mask
    };
    GroupProx::apply(&groups, &applied, lambda, lr).unwrap();
    check_step(
        1,
        &capture,
        &params,
        &rule(&groups, &penalty_of_mask, None, 0.0),
    )
    .unwrap()
}

#[test]
fn each_fault_fails_the_check_and_the_correct_step_holds() {
    assert!(
        faulty_step(Fault::None).holds(),
        "{:?}",
        faulty_step(Fault::None)
    );
    for fault in [
        Fault::LrX20,
        Fault::FlipGrad,
        Fault::LambdaX10,
        Fault::InvertMask,
        Fault::MomentumLeak,
    ] {
        let v = faulty_step(fault);
        assert!(!v.holds(), "{fault:?} passed: {v:?}");
        // by a wide margin: the smallest of these defects is η·λ = 0.1 against t ≈ 1e-6
        assert!(v.ratio() > 1e3, "{fault:?}: {v:?}");
    }
}

/// The secant along a step of f = 1.5·‖x‖² (∇f = 3x) is 3 whatever the step; with weight
/// decay 0.5 on every parameter it is 3.5.
#[test]
fn the_secant_between_two_captures_is_the_curvature_along_the_step() {
    let (v, _, params) = model();
    let grads_of_quadratic = |v: &NamedVars| {
        let w = v["q.weight"].as_tensor();
        let b = v["q.bias"].as_tensor();
        ((w.sqr().unwrap().sum_all().unwrap() + b.sqr().unwrap().sum_all().unwrap()).unwrap() * 1.5)
            .unwrap()
            .backward()
            .unwrap()
    };
    let first = StepCapture::take(&params, &grads_of_quadratic(&v)).unwrap();
    set(&v, [1.0, -2.0], [0.5, 0.25, 3.0, -1.0]);
    let second = StepCapture::take(&params, &grads_of_quadratic(&v)).unwrap();
    assert!((first.secant_to(&second, &params, 0.0) - 3.0).abs() < 1e-5);
    assert!((first.secant_to(&second, &params, 0.5) - 3.5).abs() < 1e-5);
    // no move, no secant
    assert!(first.secant_to(&first, &params, 0.0).is_nan());
}
