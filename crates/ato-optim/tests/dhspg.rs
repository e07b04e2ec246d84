//! OTOv2's DHSPG: partition and λ bounds on toys computed by hand.

mod common;

use ato_optim::dhspg::group_lambda;
use ato_optim::{Dhspg, DhspgConfig};

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
