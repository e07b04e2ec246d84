//! Shared test fixtures: variables from literal values, gated linear layers.
#![allow(dead_code)]

pub mod quadratic;

use ato_optim::{DecayRule, GroupSet, ParamSet};
use ato_zig::{ArchBuilder, Dim, NamedVars};
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
