//! Portable mode's direct weight gradient gives the bits of the implicit gemm it replaces.
//!
//! One test in its own binary: it switches the process-wide mode and the direct kernel, which
//! other tests running beside it would see.

mod common;

use ato_kernels::{
    conv2d_weight_grad, set_direct_conv, set_reproducibility, ConvParams, Reproducibility,
};
use candle_core::Tensor;
use common::{rng, uniform, values};

/// (x dims, w dims, padding): stride-1 convs with at least 8 input channels, the shapes where
/// portable mode runs the direct tiles (channel counts off multiples of 8, odd planes, a wide
/// plane, a 5 × 5 kernel, no padding).
const CASES: [([usize; 4], [usize; 4], usize); 6] = [
    ([2, 8, 7, 9], [5, 8, 3, 3], 1),
    ([3, 16, 32, 32], [16, 16, 3, 3], 1),
    ([2, 12, 8, 8], [20, 12, 3, 3], 1),
    ([1, 10, 7, 4], [5, 10, 5, 5], 2),
    ([2, 9, 6, 5], [3, 9, 3, 3], 0),
    ([2, 8, 5, 40], [13, 8, 3, 3], 1),
];

/// The weight gradient of every case with the direct kernel on or off.
fn weight_grads(direct: bool) -> Vec<Vec<f32>> {
    set_direct_conv(direct);
    let mut r = rng(7);
    let grads = CASES
        .iter()
        .map(|(xd, wd, pad)| {
            let x = uniform(&mut r, xd, 0.0);
            let p = ConvParams::new(1, *pad, 1);
            let out = [
                xd[0],
                wd[0],
                xd[2] + 2 * pad + 1 - wd[2],
                xd[3] + 2 * pad + 1 - wd[3],
            ];
            let dy: Tensor = uniform(&mut r, &out, 0.0);
            let dims = (wd[0], wd[1], wd[2], wd[3]);
            values(&conv2d_weight_grad(&x, &dy, dims, p).unwrap())
        })
        .collect();
    set_direct_conv(true);
    grads
}

fn bits(v: &[Vec<f32>]) -> Vec<Vec<u32>> {
    v.iter()
        .map(|g| g.iter().map(|x| x.to_bits()).collect())
        .collect()
}

#[test]
fn portable_direct_weight_grad_has_the_implicit_gemms_bits() {
    let simd = ato_kernels::cpu::simd_path() != ato_kernels::cpu::SimdPath::Baseline;
    if !(simd
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma"))
    {
        eprintln!("no AVX2 + FMA (or ATO_SIMD=baseline): the direct tiles never run");
        return;
    }
    set_reproducibility(Reproducibility::Portable);
    let (direct, gemm) = (weight_grads(true), weight_grads(false));
    for (i, (d, g)) in bits(&direct).iter().zip(bits(&gemm)).enumerate() {
        assert_eq!(
            d, &g,
            "case {i}: portable direct tiles against the implicit gemm"
        );
    }
    // The comparison can tell: machine mode's tiles sum in lanes, and differ from its gemm.
    set_reproducibility(Reproducibility::Machine);
    let (direct, gemm) = (weight_grads(true), weight_grads(false));
    assert_ne!(
        bits(&direct),
        bits(&gemm),
        "machine mode: lanes against gemm"
    );
}
