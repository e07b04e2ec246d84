//! The MACs and parameter polynomials against hand counts.

mod common;
use common::bottleneck_arch;

use ato_zig::*;
use candle_core::{Device, Var};

#[test]
fn bottleneck_macs_and_params_match_hand_counts() {
    let arch = bottleneck_arch();
    let macs = WidthPolynomial::macs(&arch);
    // conv1 1×1 64→g1, conv2 3×3 g1→g2, conv3 1×1 g2→64, all on 8×8 = 64 pixels; identity shortcut.
    let hand = |g1: u64, g2: u64| 64 * 64 * g1 + 9 * 64 * g1 * g2 + 64 * 64 * g2;
    assert_eq!(macs.eval(&[16, 16]), hand(16, 16));
    assert_eq!(macs.eval(&[16, 16]), 278_528);
    assert_eq!(macs.eval(&[8, 4]), hand(8, 4));
    assert_eq!(
        macs.constant, 0,
        "every conv of a bottleneck touches a gate"
    );
    let params = WidthPolynomial::params(&arch);
    // 64·g1 + 2g1 + 9·g1·g2 + 2g2 + 64·g2 + 2·64
    assert_eq!(params.eval(&[16, 16]), 1024 + 32 + 2304 + 32 + 1024 + 128);
    assert_eq!(params.constant, 128);
    assert_eq!(params.prunable(&[1, 1]), 64 + 2 + 9 + 2 + 64);
}

#[test]
fn differentiable_polynomial_equals_integer_one_and_has_gradients() {
    let arch = bottleneck_arch();
    let macs = WidthPolynomial::macs(&arch);
    let w1 = Var::new(8f32, &Device::Cpu).unwrap();
    let w2 = Var::new(4f32, &Device::Cpu).unwrap();
    let t = macs
        .eval_tensor(&[w1.as_tensor().clone(), w2.as_tensor().clone()])
        .unwrap();
    assert_eq!(t.to_scalar::<f32>().unwrap(), macs.eval(&[8, 4]) as f32);
    let grads = t.backward().unwrap();
    // ∂/∂g1 = 64·64 + 9·64·g2 = 4096 + 2304 at g2 = 4
    assert_eq!(grads.get(&w1).unwrap().to_scalar::<f32>().unwrap(), 6400.0);
    assert_eq!(
        grads.get(&w2).unwrap().to_scalar::<f32>().unwrap(),
        4096.0 + 9.0 * 64.0 * 8.0
    );
}
