//! OTOv2's DHSPG: λ bounds, partition scores, the per-gate guard, the per-optimiser defaults and
//! the base direction without AdamW's decoupled decay, on toys computed by hand.

mod common;

use ato_optim::dhspg::group_lambda;
use ato_optim::{
    AdamW, AdamWConfig, DecayRule, DecoupledDecay, Dhspg, DhspgConfig, Optimizer, ParamSet,
};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use common::{assert_close, linear_gates, values, vars};

#[test]
fn dhspg_lambda_respects_lower_and_upper_bounds() {
    // x = [1, 0], d = [−2, 1]: ⟨x,d⟩ = −2, LB = 2, UB = ‖d‖²‖x‖/2 = 2.5
    let base = DhspgConfig::for_sgd(); // λ = 1e-3, amplify 2, hat 10
    assert!((group_lambda(&base, -2.0, 1.0, 5f64.sqrt()) - 0.01).abs() < 1e-15);
    let big = DhspgConfig {
        lambda: 1.0,
        ..base
    };
    // clip(2·LB = 4, 1, 10) = 4 ≥ UB → (LB + UB)/2
    assert!((group_lambda(&big, -2.0, 1.0, 5f64.sqrt()) - 2.25).abs() < 1e-12);
    // ⟨x,d⟩ ≥ 0: the base λ
    assert_eq!(group_lambda(&big, 0.5, 1.0, 1.0), 1.0);
    // with AdamW's defaults (λ 1e-2, amplify 20, hat 1e3): clip(40, 0.01, 10) = 10 ≥ 2.5
    assert!((group_lambda(&DhspgConfig::for_adamw(), -2.0, 1.0, 5f64.sqrt()) - 2.25).abs() < 1e-12);
}

#[test]
fn dhspg_defaults_differ_per_base_optimiser() {
    let (s, a) = (DhspgConfig::for_sgd(), DhspgConfig::for_adamw());
    assert_eq!((s.lambda, s.amplify, s.hat), (1e-3, 2.0, 10.0));
    assert_eq!((a.lambda, a.amplify, a.hat), (1e-2, 20.0, 1e3));
    assert_eq!(
        (a.epsilon, a.target, a.tolerance),
        (s.epsilon, s.target, s.tolerance)
    );
    assert_eq!(DhspgConfig::default(), s);
    // Negative control: a `for_adamw` that returns the SGD values fails the second line.
}

#[test]
fn dhspg_partition_scores_match_hand_values() {
    let dev = Device::Cpu;
    let x = Tensor::new(&[[3f32, 4.0], [1.0, 0.0], [0.0, 0.5]], &dev).unwrap();
    let d = Tensor::new(&[[3f32, 4.0], [-1.0, 0.0], [0.0, 1.0]], &dev).unwrap();
    // cos = [1, −1, 1]; r = 1/(‖x‖/2 + 1e-6) ≈ [0.4, 2, 4]; ‖cos‖ = √3, ‖r‖ = √20.16
    let s = Dhspg::scores(&[x], &[d]).unwrap();
    let (cn, rn) = (3f64.sqrt(), 20.16f64.sqrt());
    let want = [
        0.5 / cn + 0.5 * 0.4 / rn,
        -0.5 / cn + 0.5 * 2.0 / rn,
        0.5 / cn + 0.5 * 4.0 / rn,
    ];
    for (g, w) in s[0].iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "score {g} vs {w}");
    }
    // K = ⌊3·min(0.62 + 0.05, .999)⌋ = 2: the two highest scores
    let mut dh = Dhspg::new(DhspgConfig {
        target: 0.62,
        ..DhspgConfig::default()
    })
    .unwrap();
    dh.partition_by_scores(&s);
    assert_eq!(dh.redundant().unwrap(), &[vec![true, false, true]]);
    // and the partition survives a checkpoint
    let mut back = Dhspg::new(*dh.config()).unwrap();
    back.load_state(&dh.state()).unwrap();
    assert_eq!(back.redundant(), dh.redundant());
}

#[test]
fn dhspg_guard_keeps_one_unpenalised_group_per_gate() {
    // global ranking: c0 .95, a0 .9, a1 .8, a2 .7, b1 .2, b0 .1;
    // K = ⌊6·min(0.62 + 0.05, .999)⌋ = 4 → {c0, a0, a1, a2} before the guard
    let scores = vec![vec![0.9, 0.8, 0.7], vec![0.1, 0.2], vec![0.95]];
    let mut dh = Dhspg::new(DhspgConfig {
        target: 0.62,
        ..DhspgConfig::default()
    })
    .unwrap();
    dh.partition_by_scores(&scores);
    // gate a scored all redundant → keeps its lowest-score group a2; gate c has one group →
    // never penalised
    assert_eq!(
        dh.redundant().unwrap(),
        &[vec![true, true, false], vec![false, false], vec![false]]
    );
    // equal scores: the later group is the one kept
    dh.partition_by_scores(&[vec![0.5, 0.5], vec![0.1, 0.1, 0.1]]);
    assert_eq!(
        dh.redundant().unwrap(),
        &[vec![true, false], vec![true, false, false]]
    );
    // Negative controls: without the guard gate a is [true; 3] and c is [true]; keeping the
    // highest-score group instead gives [false, true, true].
}

/// One gate, groups (w, b): g0 = (1, 0), g1 = (10, 1); AdamW (wd 2, decoupled) decays the
/// weights only; ∇w = [−1, 1], ∇b = 0. After one step at η = 0.1 (update = η·sign(∇)):
/// w = [1, 10]·0.8 − 0.1·[−1, 1] = [0.9, 7.9], b = [0, 1].
fn adamw_toy() -> (
    ato_zig::NamedVars,
    ato_optim::GroupSet,
    ato_optim::GroupSnapshot,
    AdamW,
) {
    let v = vars(&[
        ("g.weight", &[2, 1], &[1.0, 10.0]),
        ("g.bias", &[2], &[0.0, 1.0]),
    ]);
    let groups = linear_gates(&[("g", 1, 2)], &v);
    let params = ParamSet::new(
        v.iter().map(|(n, v)| (n.clone(), v.clone())).collect(),
        DecayRule::ExcludeBnAndBias,
    );
    let mut opt = AdamW::new(
        params,
        AdamWConfig {
            weight_decay: 2.0,
            ..AdamWConfig::default()
        },
    )
    .unwrap();
    let before = groups.snapshot().unwrap();
    let mut grads = GradStore::default();
    let dev = Device::Cpu;
    grads.insert(
        v["g.weight"].as_tensor(),
        Tensor::from_slice(&[-1f32, 1.0], (2, 1), &dev).unwrap(),
    );
    grads.insert(
        v["g.bias"].as_tensor(),
        Tensor::from_slice(&[0f32, 0.0], 2, &dev).unwrap(),
    );
    opt.step(&grads, 0.1).unwrap();
    (v, groups, before, opt)
}

#[test]
fn dhspg_direction_excludes_adamw_decoupled_decay() {
    let (v, groups, before, opt) = adamw_toy();
    assert_close(&values(&v, "g.weight"), &[0.9, 7.9], 1e-5);
    // d = (x − x̂)/η − wd·x on the weight: [1, 21] − 2·[1, 10] = [−1, 1]; the bias is not
    // decayed: d_b = 0 (not −2·[0, 1])
    let decay = DecoupledDecay::of(&opt);
    assert_eq!((decay.coef("g.weight"), decay.coef("g.bias")), (2.0, 0.0));
    let d = decay.directions(&groups, &before, 0.1).unwrap();
    let d: Vec<f32> = d[0].flatten_all().unwrap().to_vec1().unwrap();
    assert_close(&d, &[-1.0, 0.0, 1.0, 0.0], 1e-4);
    // Negative controls: without the correction d = [(1, 0), (21, 0)]; applying the decay to
    // every member gives d_b = −2 for g1.

    // The partition sees it. With d: cos = [−1, 10/√101], r = [2, 2/√101]; s_0 ≈ 0.143 <
    // s_1 ≈ 0.402 → g1 redundant. With the decay in d, cos = [1, 0.995] and g0 (s ≈ 0.85).
    // K = ⌊2·0.55⌋ = 1, target ⌊2·0.5⌋ = 1 zero group; ε = 0
    let cfg = DhspgConfig {
        epsilon: 0.0,
        ..DhspgConfig::for_adamw()
    };
    let mut dh = Dhspg::new(cfg).unwrap();
    assert_eq!(
        dh.after_step(&groups, &before, 0.1, true, &decay).unwrap(),
        0
    );
    assert_eq!(dh.redundant().unwrap(), &[vec![false, true]]);
    // g1: ⟨x,d⟩ = 10 > 0 → λ_g = λ = 0.01; x̂_1 −= 0.1·0.01·(10, 1)/√101; g0 untouched
    let push = 0.001 / 101f64.sqrt();
    assert_close(&values(&v, "g.weight"), &[0.9, 7.9 - 10.0 * push], 1e-5);
    assert_close(&values(&v, "g.bias"), &[0.0, 1.0 - push], 1e-6);

    let (v, groups, before, _) = adamw_toy();
    let mut old = Dhspg::new(cfg).unwrap();
    old.after_step(&groups, &before, 0.1, true, &DecoupledDecay::none())
        .unwrap();
    assert_eq!(old.redundant().unwrap(), &[vec![true, false]]);
    assert_close(&values(&v, "g.weight"), &[0.899, 7.9], 1e-5);
}
