//! Our fused BatchNorm(+activation) against candle_nn::BatchNorm followed by candle's
//! activation: outputs, gradients of input/weight/bias and the running statistics.

mod common;

use ato_kernels::{add_relu_with, Activation, Backend, BatchNorm2d};
use candle_core::{Tensor, Var};
use common::{assert_close, rng, uniform, values, var};

struct Setup {
    x: Var,
    weight: Var,
    bias: Var,
    mean: Tensor,
    var: Tensor,
}

fn setup(seed: u64, dims: [usize; 4], offset: f32) -> Setup {
    let mut rng = rng(seed);
    let c = dims[1];
    Setup {
        x: Var::from_tensor(&uniform(&mut rng, &dims, offset)).unwrap(),
        weight: Var::from_tensor(&uniform(&mut rng, &[c], 1.0)).unwrap(),
        bias: var(&mut rng, &[c]),
        mean: uniform(&mut rng, &[c], 0.0),
        var: uniform(&mut rng, &[c], 2.0),
    }
}

/// (y, dx, dγ, dβ, running mean, running var) of `sum(act(bn(x)) · r)`.
fn run(s: &Setup, train: bool, act: Activation, backend: Backend, r: &Tensor) -> Vec<Tensor> {
    let rm = Var::from_tensor(&s.mean.copy().unwrap()).unwrap();
    let rv = Var::from_tensor(&s.var.copy().unwrap()).unwrap();
    let bn = BatchNorm2d::new(
        s.weight.as_tensor().clone(),
        s.bias.as_tensor().clone(),
        rm.as_tensor().clone(),
        rv.as_tensor().clone(),
        1e-5,
    )
    .unwrap();
    let y = bn
        .forward_with(s.x.as_tensor(), train, act, backend)
        .unwrap();
    let g = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
    let grad = |v: &Var| g.get(v.as_tensor()).unwrap().clone();
    vec![
        y.clone(),
        grad(&s.x),
        grad(&s.weight),
        grad(&s.bias),
        rm.as_tensor().clone(),
        rv.as_tensor().clone(),
    ]
}

#[test]
fn batch_norm_matches_candle_in_both_modes_with_every_activation() {
    let names = ["y", "dx", "dweight", "dbias", "running_mean", "running_var"];
    for (seed, dims, offset) in [
        (1, [4, 3, 5, 7], 0.0),
        (2, [2, 5, 3, 3], 3.0),
        (3, [1, 2, 4, 4], -1.0),
        (4, [3, 4, 1, 1], 0.5),
    ] {
        let s = setup(seed, dims, offset);
        let r = uniform(&mut rng(seed + 100), &dims, 0.0);
        for train in [true, false] {
            for act in [Activation::Identity, Activation::Relu, Activation::Relu6] {
                let ours = run(&s, train, act, Backend::Fast, &r);
                let theirs = run(&s, train, act, Backend::Stock, &r);
                for ((a, b), what) in ours.iter().zip(&theirs).zip(names) {
                    assert_close(
                        a,
                        b,
                        1e-4,
                        &format!("{dims:?} train={train} {act:?}: {what}"),
                    );
                }
            }
        }
    }
}

#[test]
fn batch_norm_is_bit_identical_run_to_run() {
    let s = setup(5, [16, 6, 5, 5], 0.3);
    let r = uniform(&mut rng(6), &[16, 6, 5, 5], 0.0);
    let first: Vec<Vec<f32>> = run(&s, true, Activation::Relu, Backend::Fast, &r)
        .iter()
        .map(values)
        .collect();
    for _ in 0..3 {
        let again: Vec<Vec<f32>> = run(&s, true, Activation::Relu, Backend::Fast, &r)
            .iter()
            .map(values)
            .collect();
        assert_eq!(first, again);
    }
}

#[test]
fn batch_norm_rejects_a_single_value_per_channel_in_train_mode() {
    let s = setup(7, [1, 3, 1, 1], 0.0);
    let bn = BatchNorm2d::new(
        s.weight.as_tensor().clone(),
        s.bias.as_tensor().clone(),
        Var::from_tensor(&s.mean).unwrap().as_tensor().clone(),
        Var::from_tensor(&s.var).unwrap().as_tensor().clone(),
        1e-5,
    )
    .unwrap();
    assert!(bn
        .forward_with(s.x.as_tensor(), true, Activation::Identity, Backend::Fast)
        .is_err());
    assert!(bn
        .forward_with(s.x.as_tensor(), false, Activation::Identity, Backend::Fast)
        .is_ok());
}

#[test]
fn add_relu_matches_candle() {
    let mut rng = rng(8);
    let a = var(&mut rng, &[2, 3, 4, 5]);
    let b = var(&mut rng, &[2, 3, 4, 5]);
    let r = uniform(&mut rng, &[2, 3, 4, 5], 0.0);
    let run = |backend| {
        let y = add_relu_with(a.as_tensor(), b.as_tensor(), backend).unwrap();
        let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        [
            y,
            g.get(a.as_tensor()).unwrap().clone(),
            g.get(b.as_tensor()).unwrap().clone(),
        ]
    };
    let (ours, theirs) = (run(Backend::Fast), run(Backend::Stock));
    for ((x, y), what) in ours.iter().zip(&theirs).zip(["y", "da", "db"]) {
        assert_close(x, y, 1e-6, what);
    }
}

#[test]
fn train_mode_with_one_value_per_channel_is_an_error_not_a_nan() {
    use ato_kernels::{conv_batch_norm_add_with, conv_batch_norm_with, ConvParams};
    let s = setup(9, [1, 3, 1, 1], 0.0);
    let bn = BatchNorm2d::new(
        s.weight.as_tensor().clone(),
        s.bias.as_tensor().clone(),
        s.mean.clone(),
        s.var.clone(),
        1e-5,
    )
    .unwrap();
    let needle = "more than one value per channel";
    let x = s.x.as_tensor();
    let e = bn
        .forward_with(x, true, Activation::Relu, Backend::Fast)
        .unwrap_err();
    assert!(e.to_string().contains(needle), "{e}");
    // a 1x1 conv to 3 channels keeps the single value per channel
    let w = Tensor::ones((3, 3, 1, 1), candle_core::DType::F32, x.device()).unwrap();
    let p = ConvParams::new(1, 0, 1);
    let e = conv_batch_norm_with(x, &w, p, &bn, true, Activation::Relu, Backend::Fast).unwrap_err();
    assert!(e.to_string().contains(needle), "{e}");
    let e = conv_batch_norm_add_with(x, &w, p, &bn, x, true, Activation::Relu, Backend::Fast)
        .unwrap_err();
    assert!(e.to_string().contains(needle), "{e}");
    // eval mode uses the running statistics and is fine
    assert!(bn
        .forward_with(x, false, Activation::Relu, Backend::Fast)
        .is_ok());
}
