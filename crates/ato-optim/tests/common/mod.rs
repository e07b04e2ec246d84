//! Shared test fixtures: variables from literal values, gated linear layers.
#![allow(dead_code)]

pub mod quadratic;

use ato_optim::{DecayRule, GroupSet, ParamSet};
use ato_zig::{ArchBuilder, Dim, NamedVars, WidthPolynomial};
use candle_core::{Device, Tensor, Var};

/// Named variables from `(name, shape, values)`.
pub fn vars(spec: &[(&str, &[usize], &[f32])]) -> NamedVars {
    spec.iter()
        .map(|(n, shape, v)| {
            let t = Tensor::from_slice(v, *shape, &Device::Cpu).unwrap();
            (n.to_string(), Var::from_tensor(&t).unwrap())
        })
        .collect()
}

/// Values of a variable, flattened.
pub fn values(vars: &NamedVars, name: &str) -> Vec<f32> {
    vars[name]
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// A model made of gated linear layers `name: in → gate(width)`, each a gate of its own.
pub fn linear_gates(layers: &[(&str, usize, usize)], vars: &NamedVars) -> GroupSet {
    let mut b = ArchBuilder::new();
    for &(name, input, width) in layers {
        let g = b.gate(name, width);
        b.linear(name, Dim::Fixed(input), g);
    }
    let arch = b.finish().unwrap();
    GroupSet::new(&ato_zig::gates(&arch), vars).unwrap()
}

/// All variables as a parameter set (decay everywhere).
pub fn param_set(vars: &NamedVars) -> ParamSet {
    ParamSet::new(
        vars.iter().map(|(n, v)| (n.clone(), v.clone())).collect(),
        DecayRule::All,
    )
}

pub fn assert_close(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= tol,
            "element {i}: got {g}, want {w}"
        );
    }
}

/// Linear layers `fc0: input → g0`, `fc1: g0 → g1`, …, `fcK: g_{K−1} → output`, every hidden
/// width a gate, weights and biases drawn from a seeded N(0, 1); returns the variables, the
/// groups and the MACs polynomial (Σ in·out).
pub fn chain(
    input: usize,
    widths: &[usize],
    output: usize,
    seed: u64,
) -> (NamedVars, GroupSet, WidthPolynomial) {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut b = ArchBuilder::new();
    let mut dims = vec![Dim::Fixed(input)];
    for (i, &w) in widths.iter().enumerate() {
        dims.push(b.gate(format!("g{i}"), w));
    }
    dims.push(Dim::Fixed(output));
    let mut sizes = vec![input];
    sizes.extend_from_slice(widths);
    sizes.push(output);
    let mut vars = NamedVars::new();
    for i in 0..dims.len() - 1 {
        let name = format!("fc{i}");
        b.linear(name.clone(), dims[i], dims[i + 1]);
        for (suffix, shape) in [
            ("weight", vec![sizes[i + 1], sizes[i]]),
            ("bias", vec![sizes[i + 1]]),
        ] {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n)
                .map(|_| {
                    let x: f64 = StandardNormal.sample(&mut rng);
                    x as f32
                })
                .collect();
            let t = Tensor::from_vec(v, shape, &Device::Cpu).unwrap();
            vars.insert(format!("{name}.{suffix}"), Var::from_tensor(&t).unwrap());
        }
    }
    let arch = b.finish().unwrap();
    let groups = GroupSet::new(&ato_zig::gates(&arch), &vars).unwrap();
    (vars, groups, WidthPolynomial::macs(&arch))
}
