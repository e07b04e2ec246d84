//! `scale_channels` (the gated forward) against candle's `broadcast_mul`: output and both
//! gradients, on odd shapes, batch 1 and 1×1 planes; deterministic; bad factors rejected.

mod common;

use ato_kernels::{scale_channels_with, Backend};
use candle_core::{Device, Tensor};
use common::{assert_close, rng, uniform, values, var};

fn both(dims: [usize; 4], seed: u64) {
    let mut r = rng(seed);
    let x = var(&mut r, &dims);
    let g = var(&mut r, &[dims[1]]);
    let w = uniform(&mut r, &dims, 0.0); // a non-uniform upstream gradient
    let mut out = Vec::new();
    for backend in [Backend::Fast, Backend::Stock] {
        let y = scale_channels_with(x.as_tensor(), g.as_tensor(), backend).unwrap();
        let grads = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
        out.push((
            y,
            grads.get(x.as_tensor()).unwrap().clone(),
            grads.get(g.as_tensor()).unwrap().clone(),
        ));
    }
    let (fast, stock) = (&out[0], &out[1]);
    assert_close(&fast.0, &stock.0, 1e-6, &format!("{dims:?} output"));
    assert_close(&fast.1, &stock.1, 1e-6, &format!("{dims:?} dx"));
    assert_close(&fast.2, &stock.2, 1e-5, &format!("{dims:?} dg"));
}

#[test]
fn scale_channels_matches_broadcast_mul_and_its_gradients() {
    for (i, dims) in [[2, 3, 5, 7], [1, 16, 8, 8], [4, 8, 1, 1], [3, 5, 17, 3]]
        .into_iter()
        .enumerate()
    {
        both(dims, i as u64);
    }
}

#[test]
fn scale_channels_is_deterministic_and_checks_its_factors() {
    let mut r = rng(9);
    let x = var(&mut r, &[8, 4, 9, 9]);
    let g = var(&mut r, &[4]);
    let dg = || {
        let y = scale_channels_with(x.as_tensor(), g.as_tensor(), Backend::Fast).unwrap();
        let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        values(grads.get(g.as_tensor()).unwrap())
    };
    assert_eq!(dg(), dg());
    let bad = Tensor::ones(3, candle_core::DType::F32, &Device::Cpu).unwrap();
    let e = scale_channels_with(x.as_tensor(), &bad, Backend::Fast).unwrap_err();
    assert!(e.to_string().contains("4 channels"), "{e}");
}
