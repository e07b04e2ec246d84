//! Our conv2d against candle's: forward output and both gradients (through `backward()`),
//! on small random shapes covering every case the models use and a few they do not.

mod common;

use ato_kernels::{conv2d_with, Backend, ConvParams};
use candle_core::Tensor;
use common::{assert_close, rng, uniform, values, var};

/// (x dims, w dims, params)
type Case = ([usize; 4], [usize; 4], ConvParams);

fn p(stride: usize, padding: usize, groups: usize) -> ConvParams {
    ConvParams::new(stride, padding, groups)
}

fn cases() -> Vec<(&'static str, Case)> {
    vec![
        ("3x3 s1 p1", ([2, 3, 7, 9], [5, 3, 3, 3], p(1, 1, 1))),
        ("3x3 s2 p1 odd", ([3, 4, 9, 7], [6, 4, 3, 3], p(2, 1, 1))),
        ("3x3 s2 p1 even", ([2, 4, 8, 8], [8, 4, 3, 3], p(2, 1, 1))),
        (
            "3x3 s1 p1 implicit",
            ([2, 8, 5, 6], [4, 8, 3, 3], p(1, 1, 1)),
        ),
        (
            "3x3 s1 p0 implicit",
            ([2, 9, 6, 5], [3, 9, 3, 3], p(1, 0, 1)),
        ),
        (
            "5x5 s1 p2 implicit batch 1",
            ([1, 10, 7, 4], [5, 10, 5, 5], p(1, 2, 1)),
        ),
        ("3x3 direct co16", ([2, 8, 6, 7], [16, 8, 3, 3], p(1, 1, 1))),
        (
            "3x3 direct wide",
            ([2, 16, 13, 17], [8, 16, 3, 3], p(1, 1, 1)),
        ),
        (
            "5x5 direct batch 1",
            ([1, 8, 9, 9], [8, 8, 5, 5], p(1, 2, 1)),
        ),
        ("3x3 direct p0", ([2, 8, 7, 7], [8, 8, 3, 3], p(1, 0, 1))),
        (
            "3x3 direct 3 channels in",
            ([2, 3, 8, 8], [16, 3, 3, 3], p(1, 1, 1)),
        ),
        // Output widths a whole number of vectors: the tiles compute the output rows and
        // store into the image layout (4 × 3 tiles in assembly for 8 channels, 6 × 2 for 6;
        // 16 rows' vectors in 18 slots of 3).
        (
            "3x3 rows 4x3 tiles",
            ([2, 8, 8, 16], [8, 8, 3, 3], p(1, 1, 1)),
        ),
        ("3x3 s2 rows", ([2, 4, 16, 16], [6, 4, 3, 3], p(2, 1, 1))),
        ("3x3 batch 1", ([1, 5, 6, 5], [4, 5, 3, 3], p(1, 1, 1))),
        ("3x3 s1 p0", ([2, 3, 6, 7], [2, 3, 3, 3], p(1, 0, 1))),
        ("1x1 s1", ([2, 8, 5, 5], [6, 8, 1, 1], p(1, 0, 1))),
        (
            "1x1 s1 large plane",
            ([2, 8, 9, 9], [6, 8, 1, 1], p(1, 0, 1)),
        ),
        ("1x1 s2", ([3, 8, 7, 7], [4, 8, 1, 1], p(2, 0, 1))),
        ("1x1 s1 batch 1", ([1, 8, 3, 4], [5, 8, 1, 1], p(1, 0, 1))),
        ("7x7 s2 p3 stem", ([2, 3, 19, 21], [8, 3, 7, 7], p(2, 3, 1))),
        ("3x3 s3 p2", ([2, 3, 11, 11], [4, 3, 3, 3], p(3, 2, 1))),
        ("3x2 kernel s1 p1", ([2, 3, 6, 7], [4, 3, 3, 2], p(1, 1, 1))),
        ("5x5 s1 p2 wide", ([2, 2, 5, 40], [3, 2, 5, 5], p(1, 2, 1))),
        ("depthwise 3x3 s1", ([2, 6, 9, 9], [6, 1, 3, 3], p(1, 1, 6))),
        (
            "depthwise 3x3 s2 odd",
            ([3, 5, 9, 7], [5, 1, 3, 3], p(2, 1, 5)),
        ),
        (
            "depthwise 3x3 s2 even batch 1",
            ([1, 4, 8, 8], [4, 1, 3, 3], p(2, 1, 4)),
        ),
        ("depthwise 5x5 p2", ([2, 3, 7, 8], [3, 1, 5, 5], p(1, 2, 3))),
        (
            "depthwise 3x3 s1 wide",
            ([2, 3, 5, 37], [3, 1, 3, 3], p(1, 1, 3)),
        ),
        (
            "depthwise 3x3 s2 wide",
            ([2, 3, 6, 34], [3, 1, 3, 3], p(2, 1, 3)),
        ),
        ("depthwise 7x7 p3", ([2, 2, 9, 9], [2, 1, 7, 7], p(1, 3, 2))),
        ("depthwise 3x3 p0", ([2, 3, 6, 6], [3, 1, 3, 3], p(1, 0, 3))),
        (
            "groups 2 (candle fallback)",
            ([2, 4, 6, 6], [6, 2, 3, 3], p(1, 1, 2)),
        ),
    ]
}

/// (y, dx, dw) of `sum(conv(x, w) · r)`.
fn run(backend: Backend, x: &Tensor, w: &Tensor, r: &Tensor, params: ConvParams) -> [Tensor; 3] {
    let (xv, wv) = (
        candle_core::Var::from_tensor(x).unwrap(),
        candle_core::Var::from_tensor(w).unwrap(),
    );
    let y = conv2d_with(xv.as_tensor(), wv.as_tensor(), params, backend).unwrap();
    let grads = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
    [
        y,
        grads.get(xv.as_tensor()).unwrap().clone(),
        grads.get(wv.as_tensor()).unwrap().clone(),
    ]
}

#[test]
fn conv2d_matches_candle_forward_and_gradients() {
    let mut rng = rng(1);
    for (name, (xd, wd, params)) in cases() {
        let x = var(&mut rng, &xd);
        let w = var(&mut rng, &wd);
        let stock_y = conv2d_with(x.as_tensor(), w.as_tensor(), params, Backend::Stock).unwrap();
        let r = uniform(&mut rng, stock_y.dims(), 0.0);
        let ours = run(Backend::Fast, x.as_tensor(), w.as_tensor(), &r, params);
        let theirs = run(Backend::Stock, x.as_tensor(), w.as_tensor(), &r, params);
        for (what, (a, b)) in ["y", "dx", "dw"].iter().zip(ours.iter().zip(&theirs)) {
            assert_close(a, b, 1e-4, &format!("{name}: {what}"));
        }
    }
}

#[test]
fn conv2d_is_bit_identical_run_to_run() {
    let mut rng = rng(2);
    for (xd, wd, params) in [
        ([16, 4, 6, 6], [8, 4, 3, 3], p(1, 1, 1)),
        ([16, 8, 5, 5], [4, 8, 1, 1], p(1, 0, 1)),
        ([16, 6, 7, 7], [6, 1, 3, 3], p(2, 1, 6)),
    ] {
        let x = uniform(&mut rng, &xd, 0.0);
        let w = uniform(&mut rng, &wd, 0.0);
        let y = conv2d_with(&x, &w, params, Backend::Stock).unwrap();
        let r = uniform(&mut rng, y.dims(), 0.0);
        let first = run(Backend::Fast, &x, &w, &r, params).map(|t| values(&t));
        for _ in 0..3 {
            let again = run(Backend::Fast, &x, &w, &r, params).map(|t| values(&t));
            assert_eq!(first, again);
        }
    }
}

#[test]
fn conv2d_without_input_gradient_still_gives_the_weight_gradient() {
    let mut rng = rng(3);
    let x = uniform(&mut rng, &[2, 3, 5, 5], 0.0);
    let w = var(&mut rng, &[4, 3, 3, 3]);
    let y = conv2d_with(&x, w.as_tensor(), p(1, 1, 1), Backend::Fast).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    let stock = conv2d_with(&x, w.as_tensor(), p(1, 1, 1), Backend::Stock).unwrap();
    let stock_grads = stock.sum_all().unwrap().backward().unwrap();
    assert!(grads.get(&x).is_none());
    assert_close(
        grads.get(w.as_tensor()).unwrap(),
        stock_grads.get(w.as_tensor()).unwrap(),
        1e-4,
        "dw",
    );
}

#[test]
fn conv2d_rejects_mismatched_channels() {
    let mut rng = rng(4);
    let x = uniform(&mut rng, &[1, 3, 5, 5], 0.0);
    let w = uniform(&mut rng, &[4, 2, 3, 3], 0.0);
    assert!(conv2d_with(&x, &w, p(1, 1, 1), Backend::Fast).is_err());
}
