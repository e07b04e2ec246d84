//! The fused conv → BatchNorm → activation against candle's conv2d, candle_nn::BatchNorm and
//! activation: output, gradients of input, weight, γ and β, and running statistics.

mod common;

use ato_kernels::{
    conv_batch_norm_add_with, conv_batch_norm_with, Activation, Backend, BatchNorm2d, ConvParams,
};
use candle_core::{Tensor, Var};
use common::{assert_close, rng, uniform, values};

struct Case {
    name: &'static str,
    x: [usize; 4],
    w: [usize; 4],
    p: ConvParams,
}

fn cases() -> Vec<Case> {
    let c = |name, x, w, (s, pad, groups)| Case {
        name,
        x,
        w,
        p: ConvParams::new(s, pad, groups),
    };
    vec![
        c("3x3 s1", [3, 3, 6, 7], [5, 3, 3, 3], (1, 1, 1)),
        c("3x3 s1 implicit", [3, 8, 5, 7], [6, 8, 3, 3], (1, 1, 1)),
        c(
            "3x3 s1 implicit batch 1",
            [1, 12, 4, 5],
            [4, 12, 3, 3],
            (1, 1, 1),
        ),
        c("3x3 direct", [3, 8, 5, 7], [16, 8, 3, 3], (1, 1, 1)),
        c("3x3 direct wide", [2, 16, 12, 18], [8, 16, 3, 3], (1, 1, 1)),
        c("3x3 s2 odd", [2, 4, 7, 9], [6, 4, 3, 3], (2, 1, 1)),
        c("3x3 rows", [2, 8, 8, 8], [8, 8, 3, 3], (1, 1, 1)),
        c("1x1", [2, 6, 4, 4], [3, 6, 1, 1], (1, 0, 1)),
        c("1x1 s2", [2, 6, 5, 5], [4, 6, 1, 1], (2, 0, 1)),
        c("batch 1", [1, 3, 4, 5], [4, 3, 3, 3], (1, 1, 1)),
        c("7x7 s2 stem", [2, 3, 11, 11], [4, 3, 7, 7], (2, 3, 1)),
        c("depthwise s1", [2, 5, 6, 6], [5, 1, 3, 3], (1, 1, 5)),
        c("depthwise s2", [3, 4, 7, 7], [4, 1, 3, 3], (2, 1, 4)),
        c("many images", [19, 2, 3, 3], [3, 2, 3, 3], (1, 1, 1)),
    ]
}

/// (y, dx, dw, dγ, dβ, running mean, running var) of `sum(act(bn(conv(x, w))) · r)`.
fn run(
    case: &Case,
    seed: u64,
    train: bool,
    act: Activation,
    backend: Backend,
    x_needs_grad: bool,
) -> Vec<Tensor> {
    run_with(case, seed, train, act, backend, x_needs_grad, false)
}

/// As [`run`], for `act(bn(conv(x, w)) + s)` when `with_residual`, with ds appended.
fn run_with(
    case: &Case,
    seed: u64,
    train: bool,
    act: Activation,
    backend: Backend,
    x_needs_grad: bool,
    with_residual: bool,
) -> Vec<Tensor> {
    let mut rng = rng(seed);
    let cout = case.w[0];
    let x = Var::from_tensor(&uniform(&mut rng, &case.x, 0.5)).unwrap();
    let w = Var::from_tensor(&uniform(&mut rng, &case.w, 0.1)).unwrap();
    let gamma = Var::from_tensor(&uniform(&mut rng, &[cout], 1.0)).unwrap();
    let beta = Var::from_tensor(&uniform(&mut rng, &[cout], 0.0)).unwrap();
    let rm = Var::from_tensor(&uniform(&mut rng, &[cout], 0.0)).unwrap();
    let rv = Var::from_tensor(&uniform(&mut rng, &[cout], 2.0)).unwrap();
    let bn = BatchNorm2d::new(
        gamma.as_tensor().clone(),
        beta.as_tensor().clone(),
        rm.as_tensor().clone(),
        rv.as_tensor().clone(),
        1e-5,
    )
    .unwrap();
    let input = if x_needs_grad {
        x.as_tensor().clone()
    } else {
        x.as_tensor().detach()
    };
    let out_dims = conv_batch_norm_with(
        &input.detach(),
        &w.as_tensor().detach(),
        case.p,
        &bn,
        false,
        act,
        backend,
    )
    .unwrap()
    .dims()
    .to_vec();
    let residual = Var::from_tensor(&uniform(&mut rng, &out_dims, 0.0)).unwrap();
    let y = if with_residual {
        conv_batch_norm_add_with(
            &input,
            w.as_tensor(),
            case.p,
            &bn,
            residual.as_tensor(),
            train,
            act,
            backend,
        )
        .unwrap()
    } else {
        conv_batch_norm_with(&input, w.as_tensor(), case.p, &bn, train, act, backend).unwrap()
    };
    let r = uniform(&mut rng, y.dims(), 0.0);
    let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let grad = |v: &Var| {
        grads
            .get(v.as_tensor())
            .cloned()
            .unwrap_or_else(|| v.zeros_like().unwrap())
    };
    let mut out = vec![
        y.clone(),
        grad(&x),
        grad(&w),
        grad(&gamma),
        grad(&beta),
        rm.as_tensor().clone(),
        rv.as_tensor().clone(),
    ];
    if with_residual {
        out.push(grad(&residual));
    }
    out
}

#[test]
fn conv_batch_norm_add_matches_candle() {
    let names = [
        "y",
        "dx",
        "dw",
        "dgamma",
        "dbeta",
        "running_mean",
        "running_var",
        "dresidual",
    ];
    for (i, case) in cases().iter().enumerate() {
        for train in [true, false] {
            for act in [Activation::Identity, Activation::Relu, Activation::Relu6] {
                let seed = 50 + i as u64;
                let ours = run_with(case, seed, train, act, Backend::Fast, true, true);
                let theirs = run_with(case, seed, train, act, Backend::Stock, true, true);
                assert_eq!(ours.len(), 8);
                for ((a, b), what) in ours.iter().zip(&theirs).zip(names) {
                    let what = format!("{} residual train={train} {act:?}: {what}", case.name);
                    assert_close(a, b, 1e-4, &what);
                }
            }
        }
    }
}

#[test]
fn conv_batch_norm_matches_candle() {
    let names = [
        "y",
        "dx",
        "dw",
        "dgamma",
        "dbeta",
        "running_mean",
        "running_var",
    ];
    for (i, case) in cases().iter().enumerate() {
        for train in [true, false] {
            for act in [Activation::Identity, Activation::Relu, Activation::Relu6] {
                let seed = 10 + i as u64;
                let ours = run(case, seed, train, act, Backend::Fast, true);
                let theirs = run(case, seed, train, act, Backend::Stock, true);
                for ((a, b), what) in ours.iter().zip(&theirs).zip(names) {
                    assert_close(
                        a,
                        b,
                        1e-4,
                        &format!("{} train={train} {act:?}: {what}", case.name),
                    );
                }
            }
        }
    }
}

#[test]
fn conv_batch_norm_skips_the_input_gradient_of_a_constant_input() {
    let case = &cases()[0];
    let ours = run(case, 3, true, Activation::Relu, Backend::Fast, false);
    let theirs = run(case, 3, true, Activation::Relu, Backend::Stock, false);
    assert!(
        values(&ours[1]).iter().all(|v| *v == 0.0),
        "no dx for a detached input"
    );
    for i in [0, 2, 3, 4] {
        assert_close(
            &ours[i],
            &theirs[i],
            1e-4,
            "outputs and parameter gradients",
        );
    }
}

#[test]
fn conv_batch_norm_is_bit_identical_run_to_run() {
    let case = Case {
        name: "det",
        x: [16, 4, 6, 6],
        w: [8, 4, 3, 3],
        p: ConvParams::new(1, 1, 1),
    };
    let first: Vec<Vec<f32>> = run(&case, 7, true, Activation::Relu, Backend::Fast, true)
        .iter()
        .map(values)
        .collect();
    for _ in 0..3 {
        let again: Vec<Vec<f32>> = run(&case, 7, true, Activation::Relu, Backend::Fast, true)
            .iter()
            .map(values)
            .collect();
        assert_eq!(first, again);
    }
}
