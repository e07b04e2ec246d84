//! Pruned ("compact") models have irregular channel counts: our convs and fused conv-BN ops
//! against candle's at 1, 3, 5, 7, 9, 11, 13 and 27 input and output channels, stride 1 and 2,
//! forward, input gradient and weight gradient.

mod common;

use ato_kernels::{
    conv2d_with, conv_batch_norm_add_with, conv_batch_norm_with, Activation, Backend, BatchNorm2d,
    ConvParams,
};
use candle_core::{Tensor, Var};
use common::{assert_close, rng, uniform, values, var};

const WIDTHS: [usize; 8] = [1, 3, 5, 7, 9, 11, 13, 27];

/// (C_in, C_out) pairs: every width as input and as output, equal widths, and the shapes of
/// a pruned block (full width in, pruned width out, and back).
fn channel_pairs() -> Vec<(usize, usize)> {
    let n = WIDTHS.len();
    let mut pairs: Vec<(usize, usize)> = (0..n).map(|i| (WIDTHS[i], WIDTHS[(i + 3) % n])).collect();
    pairs.extend([
        (1, 1),
        (13, 13),
        (16, 7),
        (7, 16),
        (8, 3),
        (3, 8),
        (32, 13),
        (13, 32),
    ]);
    pairs
}

/// (y, dx, dw) of `sum(conv(x, w) · r)`.
fn conv_run(backend: Backend, x: &Tensor, w: &Tensor, r: &Tensor, p: ConvParams) -> [Tensor; 3] {
    let (xv, wv) = (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap());
    let y = conv2d_with(xv.as_tensor(), wv.as_tensor(), p, backend).unwrap();
    let grads = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
    [
        y,
        grads.get(xv.as_tensor()).unwrap().clone(),
        grads.get(wv.as_tensor()).unwrap().clone(),
    ]
}

/// Kernel, stride, padding and image (H, W) of the geometries every pair runs: small and
/// wide images (the direct kernel tiles them differently), unpadded, 5×5, strided and 1×1.
fn geometries() -> Vec<(usize, usize, usize, (usize, usize))> {
    vec![
        (3, 1, 1, (5, 7)),
        (3, 1, 1, (16, 16)),
        (3, 1, 0, (9, 6)),
        (5, 1, 2, (6, 9)),
        (3, 2, 1, (9, 11)),
        (3, 2, 1, (8, 8)),
        (1, 1, 0, (5, 6)),
        (1, 2, 0, (9, 9)),
    ]
}

#[test]
fn odd_width_convs_match_candle() {
    let mut rng = rng(31);
    for (i, (ci, co)) in channel_pairs().into_iter().enumerate() {
        for (j, (k, stride, pad, (h, w))) in geometries().into_iter().enumerate() {
            // Batch 1 (one image, threads inside it) and 3 (images in parallel) in turn.
            let batch = if (i + j) % 2 == 0 { 3 } else { 1 };
            let p = ConvParams::new(stride, pad, 1);
            let x = uniform(&mut rng, &[batch, ci, h, w], 0.0);
            let wt = uniform(&mut rng, &[co, ci, k, k], 0.0);
            let y = conv2d_with(&x, &wt, p, Backend::Stock).unwrap();
            let r = uniform(&mut rng, y.dims(), 0.0);
            let ours = conv_run(Backend::Fast, &x, &wt, &r, p);
            let theirs = conv_run(Backend::Stock, &x, &wt, &r, p);
            for (what, (a, b)) in ["y", "dx", "dw"].iter().zip(ours.iter().zip(&theirs)) {
                let name = format!("{ci}→{co} {k}x{k} s{stride} p{pad} {h}x{w} n{batch}: {what}");
                assert_close(a, b, 1e-4, &name);
            }
        }
    }
}

#[test]
fn odd_width_convs_are_bit_identical_run_to_run() {
    let mut rng = rng(32);
    for (ci, co, batch) in [(13, 7, 8), (5, 27, 1), (27, 11, 4)] {
        for stride in [1, 2] {
            let p = ConvParams::new(stride, 1, 1);
            let x = uniform(&mut rng, &[batch, ci, 12, 10], 0.0);
            let w = uniform(&mut rng, &[co, ci, 3, 3], 0.0);
            let y = conv2d_with(&x, &w, p, Backend::Stock).unwrap();
            let r = uniform(&mut rng, y.dims(), 0.0);
            let first = conv_run(Backend::Fast, &x, &w, &r, p).map(|t| values(&t));
            for _ in 0..3 {
                let again = conv_run(Backend::Fast, &x, &w, &r, p).map(|t| values(&t));
                assert_eq!(first, again, "{ci}→{co} s{stride} n{batch}");
            }
        }
    }
}

/// (y, dx, dw, dγ, dβ, dr) of `sum(act(bn(conv(x, w)) (+ r)) · u)`.
fn conv_bn_run(
    backend: Backend,
    x: &Var,
    w: &Var,
    p: ConvParams,
    residual: Option<&Var>,
    train: bool,
    seed: u64,
) -> Vec<Tensor> {
    let mut rng = rng(seed);
    let co = w.dims()[0];
    let gamma = var(&mut rng, &[co]);
    let beta = var(&mut rng, &[co]);
    let mean = uniform(&mut rng, &[co], 0.0);
    let var_ = uniform(&mut rng, &[co], 2.0);
    let bn = BatchNorm2d::new(
        gamma.as_tensor().clone(),
        beta.as_tensor().clone(),
        mean,
        var_,
        1e-5,
    )
    .unwrap();
    let act = Activation::Relu;
    let y = match residual {
        Some(r) => conv_batch_norm_add_with(
            x.as_tensor(),
            w.as_tensor(),
            p,
            &bn,
            r.as_tensor(),
            train,
            act,
            backend,
        ),
        None => conv_batch_norm_with(x.as_tensor(), w.as_tensor(), p, &bn, train, act, backend),
    }
    .unwrap();
    let u = uniform(&mut rng, y.dims(), 0.0);
    let grads = (&y * &u).unwrap().sum_all().unwrap().backward().unwrap();
    let mut out = vec![y];
    let vars = [Some(x), Some(w), Some(&gamma), Some(&beta), residual];
    for v in vars.into_iter().flatten() {
        out.push(grads.get(v.as_tensor()).unwrap().clone());
    }
    out
}

#[test]
fn odd_width_conv_batch_norm_matches_candle() {
    let mut rng = rng(33);
    // A pruned basic block: full width → pruned inner width (stride 1 or 2) → full width
    // plus the shortcut.
    for (i, (full, inner, stride)) in [(8, 3, 1), (16, 7, 2), (16, 13, 1), (32, 27, 2), (5, 1, 1)]
        .into_iter()
        .enumerate()
    {
        for train in [false, true] {
            let seed = 100 + i as u64;
            let x = var(&mut rng, &[3, full, 8, 10]);
            let w1 = var(&mut rng, &[inner, full, 3, 3]);
            let p1 = ConvParams::new(stride, 1, 1);
            let ours = conv_bn_run(Backend::Fast, &x, &w1, p1, None, train, seed);
            let theirs = conv_bn_run(Backend::Stock, &x, &w1, p1, None, train, seed);
            for (k, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                let what = format!("conv1 {full}→{inner} s{stride} train={train}: output {k}");
                assert_close(a, b, 1e-4, &what);
            }
            let h = Var::from_tensor(&ours[0]).unwrap();
            let w2 = var(&mut rng, &[full, inner, 3, 3]);
            let p2 = ConvParams::new(1, 1, 1);
            let r = var(&mut rng, &[3, full, h.dims()[2], h.dims()[3]]);
            let ours = conv_bn_run(Backend::Fast, &h, &w2, p2, Some(&r), train, seed);
            let theirs = conv_bn_run(Backend::Stock, &h, &w2, p2, Some(&r), train, seed);
            for (k, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                let what = format!("conv2 {inner}→{full} + r train={train}: output {k}");
                assert_close(a, b, 1e-4, &what);
            }
        }
    }
}
