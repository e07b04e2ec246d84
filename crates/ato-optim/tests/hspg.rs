//! OTO's HSPG as the reference runs it: the penalty enters the gradient (so momentum carries
//! it) and stage 2 projects the base step's trial point. Values computed by hand.

mod common;

use ato_optim::{Hspg, HspgConfig, Optimizer, Sgd, SgdConfig};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use common::{assert_close, linear_gates, param_set, values, vars};

fn t(vals: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(vals, shape, &Device::Cpu).unwrap()
}

#[test]
fn hspg_penalty_rides_the_momentum_buffer_over_two_steps() {
    // one gate, groups (w, b): g0 = (3, 4) with ∇ = (0.6, 0.8), g1 = (0, 0) with ∇ = 0
    let v = vars(&[
        ("g.weight", &[2, 1], &[3.0, 0.0]),
        ("g.bias", &[2], &[4.0, 0.0]),
    ]);
    let groups = linear_gates(&[("g", 1, 2)], &v);
    let hspg = Hspg::new(HspgConfig {
        lambda: 4.0,
        epsilon: 0.0,
    })
    .unwrap();
    let mut sgd = Sgd::new(
        param_set(&v),
        SgdConfig {
            momentum: 0.9,
            ..SgdConfig::default()
        },
    )
    .unwrap();
    let step = |sgd: &mut Sgd| {
        let mut grads = GradStore::default();
        grads.insert(v["g.weight"].as_tensor(), t(&[0.6, 0.0], &[2, 1]));
        grads.insert(v["g.bias"].as_tensor(), t(&[0.8, 0.0], &[2]));
        hspg.add_penalty_to_grads(&groups, &mut grads).unwrap();
        sgd.step(&grads, 0.1).unwrap();
    };
    // step 1: ψ_0 = (0.6,0.8) + 4·(3,4)/5 = (3, 4); b = ψ; x_0 = (3,4) − 0.1·(3,4) = (2.7, 3.6)
    step(&mut sgd);
    assert_close(&values(&v, "g.weight"), &[2.7, 0.0], 1e-5);
    assert_close(&values(&v, "g.bias"), &[3.6, 0.0], 1e-5);
    // step 2: ψ_0 = (3, 4) again; b = 0.9·(3,4) + (3,4) = (5.7, 7.6); x_0 = (2.13, 2.84)
    step(&mut sgd);
    let (w, b) = (values(&v, "g.weight"), values(&v, "g.bias"));
    assert_close(&w, &[2.13, 0.0], 1e-5);
    assert_close(&b, &[2.84, 0.0], 1e-5);
    let buf = sgd.state().unwrap();
    let buf: Vec<f32> = buf.tensors["momentum.g.weight"]
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_close(&buf, &[5.7, 0.0], 1e-5);
    // the zero group gets no penalty (and no NaN): its gradient is 0, so it stays exactly 0
    assert_eq!((w[1], b[1]), (0.0, 0.0));
    // the old after-step form (SGD on ∇ alone, then x̂ −= ηλ·x/‖x‖) gives, by hand,
    // x_1 = (2.94, 3.92) − (0.24, 0.32) = (2.7, 3.6) and x_2 = (2.586, 3.448) − (0.24, 0.32)
    // = (2.346, 3.128): the momentum buffer does not carry the penalty there
    assert!((w[0] - 2.346).abs() > 0.2 && (b[0] - 3.128).abs() > 0.2);
    // Negative controls: the penalty pushed after the step gives (2.346, 3.128); replacing
    // the gradient instead of adding to it gives x_1 = (2.76, 3.68); x/‖x‖ without the guard
    // on a zero group gives NaN in g1.
}

#[test]
fn hspg_penalty_creates_missing_gradients_with_the_reference_guard() {
    // g0 = (0.3, 0.4): ‖x‖ = 0.5; only the weight has a gradient
    let v = vars(&[
        ("g.weight", &[2, 1], &[0.3, 0.0]),
        ("g.bias", &[2], &[0.4, 0.0]),
    ]);
    let groups = linear_gates(&[("g", 1, 2)], &v);
    let hspg = Hspg::new(HspgConfig {
        lambda: 2.0,
        epsilon: 0.0,
    })
    .unwrap();
    let mut grads = GradStore::default();
    grads.insert(v["g.weight"].as_tensor(), t(&[1.0, 1.0], &[2, 1]));
    hspg.add_penalty_to_grads(&groups, &mut grads).unwrap();
    let get = |name: &str| -> Vec<f32> {
        grads
            .get(v[name].as_tensor())
            .expect("a gradient entry")
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    // λ·x/(‖x‖ + 1e-6) = 2·(0.3, 0.4)/0.500001; the zero group adds 0
    let k = 2.0 / 0.500001;
    assert_close(&get("g.weight"), &[1.0 + 0.3 * k, 1.0], 1e-6);
    assert_close(&get("g.bias"), &[0.4 * k, 0.0], 1e-6);
    // Negative controls: skipping members without a gradient leaves no `g.bias` entry (the
    // `expect` fails); dropping the 1e-6 guard moves the values by 2.4e-6·k > 1e-6.
}

#[test]
fn hspg_stage_two_projects_the_trial_point_and_keeps_zero_groups_zero() {
    // before the step: x = [(1, 0), (0.1, 0), (0, 0)]
    let v = vars(&[
        ("g.weight", &[3, 1], &[1.0, 0.1, 0.0]),
        ("g.bias", &[3], &[0.0, 0.0, 0.0]),
    ]);
    let groups = linear_gates(&[("g", 1, 3)], &v);
    let before = groups.snapshot().unwrap();
    let moved = |v: &ato_zig::NamedVars| {
        // the base step (penalty included) moved them to x̂ = [(0.9, 0.1), (−0.05, 0), (0.3, 0.3)]
        v["g.weight"].set(&t(&[0.9, -0.05, 0.3], &[3, 1])).unwrap();
        v["g.bias"].set(&t(&[0.1, 0.0, 0.3], &[3])).unwrap();
    };
    moved(&v);
    let hspg = |epsilon| {
        Hspg::new(HspgConfig {
            lambda: 0.1,
            epsilon,
        })
        .unwrap()
    };
    // ⟨x̂_1, x_1⟩ = −0.005 < 0 → projected; ⟨x̂_0, x_0⟩ = 0.9 ≥ 0 → kept as the base step left
    // it (no second push); the zero group stays zero
    assert_eq!(hspg(0.0).project(&groups, &before).unwrap(), 1);
    assert_close(&values(&v, "g.weight"), &[0.9, 0.0, 0.0], 1e-6);
    assert_close(&values(&v, "g.bias"), &[0.1, 0.0, 0.0], 1e-6);
    // with ε = 0.95 the first group fails too: 0.9 < 0.95·‖x_0‖²
    moved(&v);
    assert_eq!(hspg(0.95).project(&groups, &before).unwrap(), 2);
    assert_eq!(groups.count_zero_groups().unwrap(), 3);
    // Negative controls: a projection that lets zero groups move leaves (0.3, 0.3) in g2; one
    // that treats λ_g = 0 as "not eligible" (so stage 2 needs a push) projects nothing here.
}

#[test]
fn sgd_reset_momentum_restarts_the_buffer() {
    let v = vars(&[("x", &[1], &[1.0])]);
    let mut sgd = Sgd::new(param_set(&v), SgdConfig::default()).unwrap();
    let mut grads = GradStore::default();
    grads.insert(v["x"].as_tensor(), t(&[1.0], &[1]));
    sgd.step(&grads, 0.1).unwrap(); // b = 1, x = 0.9
    sgd.reset_momentum();
    sgd.step(&grads, 0.1).unwrap(); // b = 1 again (not 1.9), x = 0.8
    assert_close(&values(&v, "x"), &[0.8], 1e-6);
    // Negative control: without the reset b = 1.9 and x = 0.71.
}
