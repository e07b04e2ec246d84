//! ATO's prox, HSPG's half-space rule and DHSPG's partition and λ bounds on toys whose
//! results are computed by hand.

mod common;

use ato_optim::dhspg::group_lambda;
use ato_optim::{Dhspg, DhspgConfig, GroupProx, Hspg, HspgConfig, ProxStats};
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

fn hspg_toy() -> (
    ato_zig::NamedVars,
    ato_optim::GroupSet,
    ato_optim::GroupSnapshot,
) {
    // before the step: x = [[1, 0], [0.1, 0], [0, 0]] (biases zero)
    let v = vars(&[
        ("g.weight", &[3, 2], &[1.0, 0.0, 0.1, 0.0, 0.0, 0.0]),
        ("g.bias", &[3], &[0.0, 0.0, 0.0]),
    ]);
    let groups = linear_gates(&[("g", 2, 3)], &v);
    let before = groups.snapshot().unwrap();
    // the base step moved them to x̂ = [[0.9, 0.1], [−0.05, 0], [0.3, 0.3]]
    let moved = candle_core::Tensor::new(
        &[0.9f32, 0.1, -0.05, 0.0, 0.3, 0.3],
        &candle_core::Device::Cpu,
    )
    .unwrap()
    .reshape((3, 2))
    .unwrap();
    v["g.weight"].set(&moved).unwrap();
    (v, groups, before)
}

#[test]
fn hspg_subgradient_stage_and_half_space_stage() {
    let hspg = Hspg::new(HspgConfig {
        lambda: 0.1,
        epsilon: 0.0,
    })
    .unwrap();
    // stage 1: x̂_g −= αλ·x_g/‖x_g‖ (α = 1); the zero group gets no penalty term, so the
    // base step's move stands
    let (v, groups, before) = hspg_toy();
    assert_eq!(hspg.after_step(&groups, &before, 1.0, false).unwrap(), 0);
    assert_close(
        &values(&v, "g.weight"),
        &[0.8, 0.1, -0.15, 0.0, 0.3, 0.3],
        1e-6,
    );
    // stage 2: ⟨x̂_1, x_1⟩ = −0.015 < 0 → projected; ⟨x̂_0, x_0⟩ = 0.8 ≥ 0 → kept; the zero
    // group stays zero
    let (v, groups, before) = hspg_toy();
    assert_eq!(hspg.after_step(&groups, &before, 1.0, true).unwrap(), 1);
    assert_close(
        &values(&v, "g.weight"),
        &[0.8, 0.1, 0.0, 0.0, 0.0, 0.0],
        1e-6,
    );
    assert_eq!(groups.count_zero_groups().unwrap(), 2);
    // with ε = 0.9 the first group fails too: 0.8 < 0.9·‖x_0‖² = 0.9
    let strict = Hspg::new(HspgConfig {
        lambda: 0.1,
        epsilon: 0.9,
    })
    .unwrap();
    let (_, groups, before) = hspg_toy();
    assert_eq!(strict.after_step(&groups, &before, 1.0, true).unwrap(), 2);
    assert_eq!(groups.count_zero_groups().unwrap(), 3);
}

#[test]
fn dhspg_lambda_respects_lower_and_upper_bounds() {
    // x = [1, 0], d = [−2, 1]: ⟨x,d⟩ = −2, LB = 2, UB = ‖d‖²‖x‖/2 = 2.5
    let base = DhspgConfig::default(); // λ = 1e-3, amplify 2, hat 10
    assert!((group_lambda(&base, -2.0, 1.0, 5f64.sqrt()) - 0.01).abs() < 1e-15);
    let big = DhspgConfig {
        lambda: 1.0,
        ..base
    };
    // clip(2·LB = 4, 1, 10) = 4 ≥ UB → (LB + UB)/2
    assert!((group_lambda(&big, -2.0, 1.0, 5f64.sqrt()) - 2.25).abs() < 1e-12);
    // ⟨x,d⟩ ≥ 0: the base λ
    assert_eq!(group_lambda(&big, 0.5, 1.0, 1.0), 1.0);
}

#[test]
fn dhspg_partition_scores_match_hand_values() {
    let dev = candle_core::Device::Cpu;
    let x = candle_core::Tensor::new(&[[3f32, 4.0], [1.0, 0.0], [0.0, 0.5]], &dev).unwrap();
    let d = candle_core::Tensor::new(&[[3f32, 4.0], [-1.0, 0.0], [0.0, 1.0]], &dev).unwrap();
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
