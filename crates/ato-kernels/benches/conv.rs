//! Criterion benches of our conv kernels against candle's (forward, input gradient, weight
//! gradient) on the shapes of CIFAR ResNets and MobileNetV2 (ImageNet and CIFAR, whose later
//! depthwise layers run on 4 × 4 planes), batch 128.
//!
//! `cargo bench -p ato-kernels --bench conv` (add `-- --quick` for a short run). The stock
//! gradients are computed the way candle's backward does (conv_transpose2d for the input,
//! a transposed conv2d for the weight).

use ato_kernels::{conv2d_input_grad, conv2d_weight_grad, conv2d_with, Backend, ConvParams};
use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(rng: &mut ChaCha8Rng, dims: (usize, usize, usize, usize)) -> Tensor {
    let n = dims.0 * dims.1 * dims.2 * dims.3;
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// (name, input dims, weight dims, params)
type Shape = (
    &'static str,
    (usize, usize, usize, usize),
    (usize, usize, usize, usize),
    ConvParams,
);

fn shapes() -> Vec<Shape> {
    let p = ConvParams::new;
    vec![
        (
            "3x3 16ch 32x32",
            (128, 16, 32, 32),
            (16, 16, 3, 3),
            p(1, 1, 1),
        ),
        (
            "3x3 32ch 16x16",
            (128, 32, 16, 16),
            (32, 32, 3, 3),
            p(1, 1, 1),
        ),
        ("3x3 64ch 8x8", (128, 64, 8, 8), (64, 64, 3, 3), p(1, 1, 1)),
        (
            "3x3 s2 16-32ch 32x32",
            (128, 16, 32, 32),
            (32, 16, 3, 3),
            p(2, 1, 1),
        ),
        (
            "1x1 s2 16-32ch 32x32",
            (128, 16, 32, 32),
            (32, 16, 1, 1),
            p(2, 0, 1),
        ),
        (
            "1x1 96-24ch 16x16",
            (128, 96, 16, 16),
            (24, 96, 1, 1),
            p(1, 0, 1),
        ),
        (
            "depthwise 3x3 96ch 16x16",
            (128, 96, 16, 16),
            (96, 1, 3, 3),
            p(1, 1, 96),
        ),
        (
            "depthwise 3x3 s2 144ch 16x16",
            (128, 144, 16, 16),
            (144, 1, 3, 3),
            p(2, 1, 144),
        ),
        (
            "depthwise 3x3 384ch 4x4",
            (128, 384, 4, 4),
            (384, 1, 3, 3),
            p(1, 1, 384),
        ),
        (
            "7x7 s2 stem 3-64ch 64x64",
            (32, 3, 64, 64),
            (64, 3, 7, 7),
            p(2, 3, 1),
        ),
    ]
}

fn stock_input_grad(
    dy: &Tensor,
    w: &Tensor,
    x_dims: (usize, usize, usize, usize),
    p: ConvParams,
) -> Tensor {
    let out_h = dy.dim(2).unwrap();
    let k = w.dim(2).unwrap();
    let out_padding = x_dims.2 - ((out_h - 1) * p.stride + k - 2 * p.padding);
    if p.groups == 1 {
        dy.conv_transpose2d(w, p.padding, out_padding, p.stride, 1)
            .unwrap()
    } else {
        // candle has no grouped conv_transpose2d; go through the autograd of its conv.
        let x = candle_core::Var::zeros(x_dims, candle_core::DType::F32, &Device::Cpu).unwrap();
        let y = conv2d_with(x.as_tensor(), w, p, Backend::Stock).unwrap();
        let g = (y * dy).unwrap().sum_all().unwrap().backward().unwrap();
        g.get(x.as_tensor()).unwrap().clone()
    }
}

fn stock_weight_grad(
    x: &Tensor,
    dy: &Tensor,
    w_dims: (usize, usize, usize, usize),
    p: ConvParams,
) -> Tensor {
    if p.groups == 1 {
        let g = x
            .transpose(0, 1)
            .unwrap()
            .conv2d(&dy.transpose(0, 1).unwrap(), p.padding, 1, p.stride, 1)
            .unwrap()
            .transpose(0, 1)
            .unwrap();
        g.narrow(2, 0, w_dims.2)
            .unwrap()
            .narrow(3, 0, w_dims.3)
            .unwrap()
    } else {
        let w = candle_core::Var::zeros(w_dims, candle_core::DType::F32, &Device::Cpu).unwrap();
        let y = conv2d_with(x, w.as_tensor(), p, Backend::Stock).unwrap();
        let g = (y * dy).unwrap().sum_all().unwrap().backward().unwrap();
        g.get(w.as_tensor()).unwrap().clone()
    }
}

fn bench_conv(c: &mut Criterion) {
    ato_kernels::tune_allocator();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for (name, xd, wd, p) in shapes() {
        let x = random(&mut rng, xd);
        let w = random(&mut rng, wd);
        let y = conv2d_with(&x, &w, p, Backend::Fast).unwrap();
        let dy = random(&mut rng, y.dims4().unwrap());
        let mut group = c.benchmark_group(format!("conv {name}"));
        group.sample_size(10);
        group.bench_function("forward fast", |b| {
            b.iter(|| conv2d_with(&x, &w, p, Backend::Fast).unwrap())
        });
        group.bench_function("forward stock", |b| {
            b.iter(|| conv2d_with(&x, &w, p, Backend::Stock).unwrap())
        });
        group.bench_function("input grad fast", |b| {
            b.iter(|| conv2d_input_grad(&dy, &w, xd, p).unwrap())
        });
        group.bench_function("input grad stock", |b| {
            b.iter(|| stock_input_grad(&dy, &w, xd, p))
        });
        group.bench_function("weight grad fast", |b| {
            b.iter(|| conv2d_weight_grad(&x, &dy, wd, p).unwrap())
        });
        group.bench_function("weight grad stock", |b| {
            b.iter(|| stock_weight_grad(&x, &dy, wd, p))
        });
        group.finish();
    }
}

criterion_group!(benches, bench_conv);
criterion_main!(benches);
