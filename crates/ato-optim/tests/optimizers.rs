//! SGD and AdamW steps against values computed by hand, LR schedules, and state round trips.

mod common;

use ato_optim::{
    AdamW, AdamWConfig, Decay, DecayRule, LrSchedule, Optimizer, ParamSet, Sgd, SgdConfig,
    StateDict,
};
use candle_core::{Device, Tensor, Var};
use common::assert_close;

/// x = [1, −2] with the linear loss c·x, c = [0.5, 1]: ∇ = c at every point.
fn linear_problem() -> (Var, Tensor, ParamSet) {
    let x = Var::from_tensor(&Tensor::new(&[1f32, -2.0], &Device::Cpu).unwrap()).unwrap();
    let c = Tensor::new(&[0.5f32, 1.0], &Device::Cpu).unwrap();
    let params = ParamSet::new(vec![("x".into(), x.clone())], DecayRule::All);
    (x, c, params)
}

fn step(opt: &mut dyn Optimizer, x: &Var, c: &Tensor, lr: f64) {
    let loss = (x.as_tensor() * c).unwrap().sum_all().unwrap();
    opt.step(&loss.backward().unwrap(), lr).unwrap();
}

fn get(x: &Var) -> Vec<f32> {
    x.as_tensor().to_vec1().unwrap()
}

#[test]
fn sgd_nesterov_two_steps_match_hand_values() {
    let (x, c, params) = linear_problem();
    let cfg = SgdConfig {
        momentum: 0.9,
        dampening: 0.0,
        nesterov: true,
        weight_decay: 0.1,
    };
    let mut opt = Sgd::new(params, cfg).unwrap();
    // g = c + 0.1x = [0.6, 0.8]; b = g; d = g + 0.9b = [1.14, 1.52]; x −= 0.1d
    step(&mut opt, &x, &c, 0.1);
    assert_close(&get(&x), &[0.886, -2.152], 1e-6);
    // g = [0.5886, 0.7848]; b = 0.9b + g = [1.1286, 1.5048]; d = g + 0.9b
    step(&mut opt, &x, &c, 0.1);
    assert_close(&get(&x), &[0.725566, -2.365912], 1e-6);
}

#[test]
fn sgd_momentum_with_dampening_matches_hand_values() {
    let (x, c, params) = linear_problem();
    let cfg = SgdConfig {
        momentum: 0.5,
        dampening: 0.5,
        nesterov: false,
        weight_decay: 0.0,
    };
    let mut opt = Sgd::new(params, cfg).unwrap();
    step(&mut opt, &x, &c, 1.0); // b = c (first step takes g undamped)
    assert_close(&get(&x), &[0.5, -3.0], 1e-6);
    step(&mut opt, &x, &c, 1.0); // b = 0.5c + 0.5c = c
    assert_close(&get(&x), &[0.0, -4.0], 1e-6);
}

#[test]
fn adamw_two_steps_match_hand_values() {
    let (x, c, params) = linear_problem();
    let cfg = AdamWConfig {
        weight_decay: 0.01,
        ..AdamWConfig::default()
    };
    let mut opt = AdamW::new(params, cfg).unwrap();
    // x·(1 − 0.1·0.01) = [0.999, −1.998]; m̂ = c, v̂ = c², update = 0.1·c/(|c| + 1e-8)
    step(&mut opt, &x, &c, 0.1);
    assert_close(&get(&x), &[0.899, -2.098], 1e-6);
    // bias correction keeps m̂ = c and v̂ = c² for a constant gradient
    step(&mut opt, &x, &c, 0.1);
    assert_close(&get(&x), &[0.798101, -2.195902], 1e-6);
    let pre = opt.preconditioner().unwrap().unwrap();
    assert_close(&pre[0].1.to_vec1::<f32>().unwrap(), &[0.5, 1.0], 1e-6);
}

#[test]
fn adam_with_l2_decay_adds_it_to_the_gradient() {
    let (x, c, params) = linear_problem();
    let cfg = AdamWConfig {
        weight_decay: 0.01,
        decoupled: false,
        ..AdamWConfig::default()
    };
    let mut opt = AdamW::new(params, cfg).unwrap();
    // g = c + 0.01x = [0.51, 0.98] > 0: the first Adam step moves each coordinate by lr
    step(&mut opt, &x, &c, 0.1);
    assert_close(&get(&x), &[0.9, -2.1], 1e-6);
}

#[test]
fn decay_rule_excludes_bn_and_bias() {
    let dev = Device::Cpu;
    let w = Var::zeros((2, 2), candle_core::DType::F32, &dev).unwrap();
    let b = Var::zeros(2, candle_core::DType::F32, &dev).unwrap();
    let set = ParamSet::new(
        vec![("fc.weight".into(), w), ("bn.bias".into(), b)],
        DecayRule::ExcludeBnAndBias,
    );
    assert!(set.get("fc.weight").unwrap().decay);
    assert!(!set.get("bn.bias").unwrap().decay);
    assert_eq!(set.iter().next().unwrap().name, "bn.bias", "sorted by name");
}

#[test]
fn lr_schedules_follow_their_formulas() {
    let cos = LrSchedule::new(1.0, 4, 104, Decay::Cosine);
    assert_eq!(cos.lr(0), 0.25);
    assert_eq!(cos.lr(3), 1.0);
    assert!((cos.lr(4) - 1.0).abs() < 1e-12);
    assert!(
        (cos.lr(54) - 0.5).abs() < 1e-12,
        "half way through the cosine"
    );
    assert!(cos.lr(103) < 1e-3);
    let ms = LrSchedule::per_epoch(
        0.1,
        0,
        100,
        10,
        LrSchedule::half_and_three_quarters(100, 10),
    );
    assert_eq!(ms.lr(499), 0.1);
    assert!((ms.lr(500) - 0.01).abs() < 1e-15);
    assert!((ms.lr(750) - 0.001).abs() < 1e-15);
    assert_eq!(LrSchedule::new(0.3, 0, 10, Decay::Constant).lr(9), 0.3);
}

/// Runs `n` steps of the optimiser made by `make`, saving and restoring its state (through a
/// file) after `split` steps into a fresh optimiser; returns the final values.
fn run_with_restart<O: Optimizer>(
    make: &dyn Fn(ParamSet) -> O,
    n: usize,
    split: Option<usize>,
) -> Vec<f32> {
    let (x, c, params) = linear_problem();
    let mut opt = make(params.clone());
    let dir = tempfile::tempdir().unwrap();
    for i in 0..n {
        if Some(i) == split {
            let path = dir.path().join("opt.safetensors");
            opt.state().unwrap().save(&path).unwrap();
            opt = make(params.clone());
            opt.load_state(&StateDict::load(&path, &Device::Cpu).unwrap())
                .unwrap();
        }
        // a gradient that changes along the way
        let loss = (x.as_tensor().sqr().unwrap() * &c)
            .unwrap()
            .sum_all()
            .unwrap();
        opt.step(&loss.backward().unwrap(), 0.05).unwrap();
    }
    get(&x)
}

#[test]
fn restored_state_continues_bit_exactly() {
    let sgd = |p| {
        Sgd::new(
            p,
            SgdConfig {
                momentum: 0.9,
                nesterov: true,
                weight_decay: 1e-3,
                ..SgdConfig::default()
            },
        )
        .unwrap()
    };
    assert_eq!(
        run_with_restart(&sgd, 7, None),
        run_with_restart(&sgd, 7, Some(3))
    );
    let adam = |p| AdamW::new(p, AdamWConfig::default()).unwrap();
    assert_eq!(
        run_with_restart(&adam, 7, None),
        run_with_restart(&adam, 7, Some(4))
    );
}

#[test]
fn optimiser_state_holds_no_graph_across_steps() {
    // candle's own ops give gradients an op history; a momentum buffer built from them would
    // keep every step's graph alive (memory grows without bound)
    let (x, c, params) = linear_problem();
    let mut sgd = Sgd::new(params.clone(), SgdConfig::default()).unwrap();
    let mut adam = AdamW::new(params, AdamWConfig::default()).unwrap();
    for _ in 0..3 {
        let loss = (x.as_tensor().sqr().unwrap().exp().unwrap() * &c)
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        assert!(
            grads.get(x.as_tensor()).unwrap().track_op(),
            "the gradient has history"
        );
        sgd.step(&grads, 1e-3).unwrap();
        adam.step(&grads, 1e-3).unwrap();
    }
    for state in [sgd.state().unwrap(), adam.state().unwrap()] {
        assert!(!state.tensors.is_empty());
        for (name, t) in &state.tensors {
            assert!(!t.track_op(), "`{name}` keeps a graph");
        }
    }
}

#[test]
fn bad_settings_and_mismatched_state_are_errors() {
    let (_, _, params) = linear_problem();
    let bad = SgdConfig {
        nesterov: true,
        momentum: 0.0,
        ..SgdConfig::default()
    };
    let e = Sgd::new(params.clone(), bad).err().unwrap().to_string();
    assert!(e.contains("Nesterov"), "{e}");
    let adam = AdamW::new(params.clone(), AdamWConfig::default()).unwrap();
    let mut sgd = Sgd::new(params, SgdConfig::default()).unwrap();
    let e = sgd
        .load_state(&adam.state().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("adamw"), "{e}");
}
