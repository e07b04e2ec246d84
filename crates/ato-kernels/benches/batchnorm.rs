//! Criterion benches of the fused BatchNorm(+ReLU) against candle_nn::BatchNorm + relu:
//! train-mode forward, forward + backward, eval-mode forward; and the fused residual
//! `add_relu`. `cargo bench -p ato-kernels --bench batchnorm` (add `-- --quick`).

use ato_kernels::{add_relu_with, Activation, Backend, BatchNorm2d};
use candle_core::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(rng: &mut ChaCha8Rng, dims: &[usize]) -> Tensor {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

fn bench_batchnorm(c: &mut Criterion) {
    ato_kernels::tune_allocator();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for (name, dims) in [
        ("16ch 32x32", [128, 16, 32, 32]),
        ("64ch 8x8", [128, 64, 8, 8]),
        ("576ch 4x4", [128, 576, 4, 4]),
    ] {
        let ch = dims[1];
        let x = Var::from_tensor(&random(&mut rng, &dims)).unwrap();
        let dy = random(&mut rng, &dims);
        let weight = Var::from_tensor(&random(&mut rng, &[ch])).unwrap();
        let bias = Var::from_tensor(&random(&mut rng, &[ch])).unwrap();
        let stat = |v: f32| Var::from_tensor(&Tensor::full(v, ch, &Device::Cpu).unwrap()).unwrap();
        let bn = BatchNorm2d::new(
            weight.as_tensor().clone(),
            bias.as_tensor().clone(),
            stat(0.0).as_tensor().clone(),
            stat(1.0).as_tensor().clone(),
            1e-5,
        )
        .unwrap();
        let mut group = c.benchmark_group(format!("batchnorm+relu {name}"));
        group.sample_size(10);
        for (label, backend) in [("fast", Backend::Fast), ("stock", Backend::Stock)] {
            let fwd = |train| {
                bn.forward_with(x.as_tensor(), train, Activation::Relu, backend)
                    .unwrap()
            };
            group.bench_function(format!("train forward {label}"), |b| b.iter(|| fwd(true)));
            group.bench_function(format!("train forward+backward {label}"), |b| {
                b.iter(|| {
                    (fwd(true) * &dy)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap()
                })
            });
            group.bench_function(format!("eval forward {label}"), |b| b.iter(|| fwd(false)));
            let other = random(&mut rng, &dims);
            group.bench_function(format!("add_relu forward+backward {label}"), |b| {
                b.iter(|| {
                    let y = add_relu_with(x.as_tensor(), &other, backend).unwrap();
                    (y * &dy).unwrap().sum_all().unwrap().backward().unwrap()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_batchnorm);
criterion_main!(benches);
