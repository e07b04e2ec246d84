//! ATO's prox and the shared half-space step on toys whose results are computed by hand.

mod common;

use ato_optim::{GroupProx, HalfSpaceStep, ProxStats};
use ato_zig::Mask;
use common::{assert_close, linear_gates, values, vars};

#[test]
fn gate_ratios_are_zero_counts_over_the_total() {
    let m = Mask::from_keep(vec![
        vec![false, false, true],
        vec![false, true],
        vec![true],
    ]);
    assert_eq!(GroupProx::gate_ratios(&m), vec![2.0 / 3.0, 1.0 / 3.0, 0.0]);
    assert_eq!(
        GroupProx::gate_ratios(&Mask::from_keep(vec![vec![true]])),
        vec![0.0]
    );
}

#[test]
fn prox_shrinks_masked_groups_and_zeroes_small_ones_exactly() {
    // gate a: 3 groups, members a.weight (3×2) and a.bias; gate bb: 2 groups
    let v = vars(&[
        ("a.weight", &[3, 2], &[3.0, 0.0, 0.0, 0.5, 1.0, 1.0]),
        ("a.bias", &[3], &[0.0, 0.0, 1.0]),
        ("bb.weight", &[2, 1], &[2.0, 7.0]),
        ("bb.bias", &[2], &[0.0, 0.0]),
    ]);
    let groups = linear_gates(&[("a", 2, 3), ("bb", 1, 2)], &v);
    // zeros: a has 2, bb has 1 → ratios 2/3, 1/3; λ = 3, η = 0.5 → τ_a = 1, τ_bb = 0.5
    let masks = Mask::from_keep(vec![vec![false, false, true], vec![false, true]]);
    let stats = GroupProx::apply(&groups, &masks, 3.0, 0.5).unwrap();
    assert_eq!(
        stats,
        ProxStats {
            shrunk: 2,
            zeroed: 1
        }
    );
    // a.0: norm 3 → ×2/3; a.1: norm 0.5 ≤ 1 → exactly 0; a.2 kept
    assert_close(
        &values(&v, "a.weight"),
        &[2.0, 0.0, 0.0, 0.0, 1.0, 1.0],
        1e-6,
    );
    assert_eq!(values(&v, "a.weight")[2..4], [0.0, 0.0]);
    assert_eq!(values(&v, "a.bias"), vec![0.0, 0.0, 1.0]);
    // bb.0: norm 2 → ×(2 − 0.5)/2
    assert_close(&values(&v, "bb.weight"), &[1.5, 7.0], 1e-6);
    assert_eq!(groups.count_zero_groups().unwrap(), 1);
}

/// Two gates of groups (w, b): before the step
/// a = [(3, 4), (1, 0), (0, 0)], b = [(0, 2), (6, 8)];
/// the base step moved them to a = [(3, 4), (0.5, 0), (0.3, 0.3)], b = [(0, 1), (6, 8)].
fn two_gates() -> (
    ato_zig::NamedVars,
    ato_optim::GroupSet,
    ato_optim::GroupSnapshot,
) {
    let v = vars(&[
        ("a.weight", &[3, 1], &[3.0, 1.0, 0.0]),
        ("a.bias", &[3], &[4.0, 0.0, 0.0]),
        ("b.weight", &[2, 1], &[0.0, 6.0]),
        ("b.bias", &[2], &[2.0, 8.0]),
    ]);
    let groups = linear_gates(&[("a", 1, 3), ("b", 1, 2)], &v);
    let before = groups.snapshot().unwrap();
    let set = |name: &str, vals: &[f32], shape: &[usize]| {
        let t = candle_core::Tensor::from_slice(vals, shape, &candle_core::Device::Cpu).unwrap();
        v[name].set(&t).unwrap();
    };
    set("a.weight", &[3.0, 0.5, 0.3], &[3, 1]);
    set("a.bias", &[4.0, 0.0, 0.3], &[3]);
    set("b.weight", &[0.0, 6.0], &[2, 1]);
    set("b.bias", &[1.0, 8.0], &[2]);
    (v, groups, before)
}

#[test]
fn half_space_step_with_per_group_lambdas_matches_hand_values() {
    // λ: a = [10, 0, 5], b = [not eligible, 60]; η = 0.1, ε = 0.6
    let lambdas = vec![
        vec![Some(10.0), Some(0.0), Some(5.0)],
        vec![None, Some(60.0)],
    ];
    let step = HalfSpaceStep::new(0.6).unwrap();
    let (v, groups, before) = two_gates();
    let projected = step.apply(&groups, &before, &lambdas, 0.1, None).unwrap();
    // a0: (3,4) − 0.1·10·(0.6,0.8) = (2.4, 3.2); ⟨·,x⟩ = 20 ≥ 0.6·25 → kept
    // a1: no push; ⟨(0.5,0),(1,0)⟩ = 0.5 < 0.6·1 → projected
    // a2: zero before and eligible → stays zero although the base step moved it
    // b0: not eligible → left at (0, 1) although ⟨(0,1),(0,2)⟩ = 2 < 0.6·4
    // b1: (6,8) − 0.1·60·(0.6,0.8) = (2.4, 3.2); ⟨·,x⟩ = 40 < 0.6·100 → projected
    assert_eq!(projected, vec![vec![false, true, false], vec![false, true]]);
    assert_close(&values(&v, "a.weight"), &[2.4, 0.0, 0.0], 1e-5);
    assert_close(&values(&v, "a.bias"), &[3.2, 0.0, 0.0], 1e-5);
    assert_close(&values(&v, "b.weight"), &[0.0, 0.0], 1e-6);
    assert_close(&values(&v, "b.bias"), &[1.0, 0.0], 1e-6);
    assert_eq!(values(&v, "a.weight")[1..], [0.0, 0.0]);
    // Negative controls: treating `None` as eligible projects b0; one λ for all groups moves
    // a0 or b1 elsewhere; dropping "zero stays zero" leaves a2 at (0.3, 0.3).

    // capped at one projection: b1 (⟨x̂,x⟩/‖x‖² = 0.4) is deeper than a1 (0.5)
    let (v, groups, before) = two_gates();
    let projected = step
        .apply(&groups, &before, &lambdas, 0.1, Some(1))
        .unwrap();
    assert_eq!(
        projected,
        vec![vec![false, false, false], vec![false, true]]
    );
    assert_close(&values(&v, "a.weight"), &[2.4, 0.5, 0.0], 1e-5);
    // Negative control: a cap that keeps the first candidates by index projects a1 instead.
}

#[test]
fn half_space_step_rejects_bad_epsilon_and_shapes() {
    assert!(HalfSpaceStep::new(1.0).is_err());
    assert!(HalfSpaceStep::new(-0.1).is_err());
    let (_, groups, before) = two_gates();
    let short = vec![vec![Some(1.0); 3]];
    assert!(HalfSpaceStep::new(0.0)
        .unwrap()
        .apply(&groups, &before, &short, 0.1, None)
        .is_err());
}

#[test]
fn zero_where_dropped_is_true_only_when_every_dropped_group_is_exactly_zero() {
    // a = [(0, 0), (1, 0), (0, 0)], bb = [(0, 0), (2, 0)]: the zero groups are a.0, a.2, bb.0
    let v = vars(&[
        ("a.weight", &[3, 1], &[0.0, 1.0, 0.0]),
        ("a.bias", &[3], &[0.0, 0.0, 0.0]),
        ("bb.weight", &[2, 1], &[0.0, 2.0]),
        ("bb.bias", &[2], &[0.0, 0.0]),
    ]);
    let groups = linear_gates(&[("a", 1, 3), ("bb", 1, 2)], &v);
    let drops = |a: [bool; 3], b: [bool; 2]| {
        Mask::from_keep(vec![a.map(|d| !d).to_vec(), b.map(|d| !d).to_vec()])
    };
    assert!(groups
        .zero_where_dropped(&drops([true, false, true], [true, false]))
        .unwrap());
    assert!(groups
        .zero_where_dropped(&drops([false; 3], [false; 2]))
        .unwrap());
    // negative controls: a dropped group with a non-zero weight, then with only a non-zero bias
    assert!(!groups
        .zero_where_dropped(&drops([true, true, false], [false; 2]))
        .unwrap());
    let bias = candle_core::Tensor::from_slice(&[0.0f32, 0.0, 1e-30], 3, &candle_core::Device::Cpu)
        .unwrap();
    v["a.bias"].set(&bias).unwrap();
    assert!(!groups
        .zero_where_dropped(&drops([true, false, true], [true, false]))
        .unwrap());
}

#[test]
fn with_dropped_zeroed_zeroes_only_inside_and_restores_every_bit() {
    let v = vars(&[
        ("a.weight", &[3, 2], &[0.5, -1.25, 3.0, -0.1, 1e-30, 7.0]),
        ("a.bias", &[3], &[0.25, -2.0, 1.5]),
        ("bb.weight", &[2, 1], &[-4.0, 2.0]),
        ("bb.bias", &[2], &[1.0, -1.0]),
    ]);
    let groups = linear_gates(&[("a", 2, 3), ("bb", 1, 2)], &v);
    let bits = |name: &str| -> Vec<u32> {
        let t = v[name].as_tensor().flatten_all().unwrap();
        t.to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect()
    };
    let names = ["a.weight", "a.bias", "bb.weight", "bb.bias"];
    let before: Vec<_> = names.iter().map(|n| bits(n)).collect();
    // drop a.1 and a.2; gate bb keeps everything
    let mask = Mask::from_keep(vec![vec![true, false, false], vec![true, true]]);
    let inside = groups
        .with_dropped_zeroed(&mask, || {
            assert!(groups.zero_where_dropped(&mask).unwrap());
            names.iter().map(|n| bits(n)).collect::<Vec<_>>()
        })
        .unwrap();
    assert_eq!(inside[0][..2], before[0][..2], "kept group a.0 untouched");
    assert!(inside[0][2..].iter().all(|&b| f32::from_bits(b) == 0.0));
    assert_eq!(inside[1][0], before[1][0]);
    assert!(inside[1][1..].iter().all(|&b| f32::from_bits(b) == 0.0));
    assert_eq!(
        inside[2..],
        before[2..],
        "a gate with nothing dropped is untouched"
    );
    let after: Vec<_> = names.iter().map(|n| bits(n)).collect();
    assert_eq!(
        after, before,
        "every member restored bit for bit (1e-30 included)"
    );
    // negative control: the groups are non-zero again outside
    assert!(!groups.zero_where_dropped(&mask).unwrap());
}
