//! A quadratic loss with literal coefficients and a one-call probe measurement, for the
//! probe tests whose answers are computed by hand.

use ato_optim::{ConvergenceProbe, ConvergenceRow, GroupSet, ParamSet, ProbeInputs};
use candle_core::{Device, Tensor};

/// One parameter's term: (name, q, c, e), element-wise.
pub type Term = (&'static str, Vec<f32>, Vec<f32>, Vec<f32>);

/// `Σ_name ½·q·x² + c·x (+ sign(i)·e·x)` over the named parameters: the loss of batch i.
pub struct Quadratic {
    pub terms: Vec<Term>,
}

impl Quadratic {
    pub fn loss(&self, v: &ato_zig::NamedVars, i: usize) -> Tensor {
        let sign = if i.is_multiple_of(2) { 1.0 } else { -1.0 };
        let mut total: Option<Tensor> = None;
        for (name, q, c, e) in &self.terms {
            let x = v[*name].as_tensor().flatten_all().unwrap();
            let t = |v: &Vec<f32>| Tensor::from_slice(v, v.len(), &Device::Cpu).unwrap();
            let lin = (t(c) + t(e).affine(sign, 0.0).unwrap()).unwrap();
            let term = ((x.sqr().unwrap() * t(q)).unwrap().affine(0.5, 0.0).unwrap()
                + (x * lin).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
            total = Some(match total {
                None => term,
                Some(s) => (s + term).unwrap(),
            });
        }
        total.unwrap()
    }
}

pub fn measure(
    probe: &mut ConvergenceProbe,
    (params, groups, v): (&ParamSet, &GroupSet, &ato_zig::NamedVars),
    f: &Quadratic,
    step: u64,
    lr: f64,
    penalty: &[Vec<f64>],
    preconditioner: Option<Vec<(String, Tensor)>>,
) -> ConvergenceRow {
    let inputs = ProbeInputs {
        step,
        epoch: 0,
        lr,
        params,
        weight_decay: 0.0,
        groups,
        penalty,
        preconditioner,
        mask_flips: 0,
    };
    probe
        .measure(inputs, |i| {
            let loss = f.loss(v, i);
            Ok((loss.to_scalar::<f32>()? as f64, loss.backward()?))
        })
        .unwrap()
}

pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

/// Two groups (w.weight[c], w.bias[c]) of a linear gate with literal values.
pub fn two_groups() -> (ato_zig::NamedVars, GroupSet, ParamSet) {
    let v = super::vars(&[
        ("w.weight", &[2, 1], &[3.0, 0.6]),
        ("w.bias", &[2], &[4.0, 0.8]),
    ]);
    let groups = super::linear_gates(&[("w", 1, 2)], &v);
    let params = super::param_set(&v);
    (v, groups, params)
}
