//! Helpers shared by the equality tests.
#![allow(dead_code)]

use candle_core::{Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A tensor of uniform values in [-1, 1) (plus `offset`).
pub fn uniform(rng: &mut ChaCha8Rng, dims: &[usize], offset: f32) -> Tensor {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| rng.random_range(-1.0f32..1.0) + offset)
        .collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

pub fn var(rng: &mut ChaCha8Rng, dims: &[usize]) -> Var {
    Var::from_tensor(&uniform(rng, dims, 0.0)).unwrap()
}

pub fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// max |a − b| / max |b|.
pub fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let (a, b) = (values(a), values(b));
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    let diff = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

#[track_caller]
pub fn assert_close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
    let d = rel_diff(a, b);
    assert!(d <= tol, "{what}: relative difference {d:e} > {tol:e}");
}
