//! [`WidthPolynomial`]: a cost (MACs or parameters) as a polynomial in the gate widths.
//!
//! Every conv/linear layer contributes `coef · w_in · w_out`, where each gated width is a
//! variable and each fixed width is folded into `coef`; a depthwise conv is linear in its width.
//! One representation gives exact integer costs, differentiable costs for soft widths, and the
//! prunable (any variable) / non-prunable (constant) split.

use crate::arch::{Arch, ConvSpec, Dim, GateId, Layer};
use candle_core::{Result as CandleResult, Tensor};
use std::collections::BTreeMap;

/// `coef · Π widths[g] for g in gates` (0, 1 or 2 gates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    pub coef: u64,
    pub gates: Vec<GateId>,
}

/// A sum of [`Term`]s, with equal monomials merged. Evaluated at the full widths it is the
/// model's cost; see [`WidthPolynomial::macs`] and [`WidthPolynomial::params`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WidthPolynomial {
    /// Non-constant terms, sorted by monomial.
    pub terms: Vec<Term>,
    /// The part no gate can change (stem, stream, classifier, ...).
    pub constant: u64,
}

/// The MACs polynomial is what the pruning literature calls FLOPs.
pub type FlopsPolynomial = WidthPolynomial;

#[derive(Default)]
struct Accumulator(BTreeMap<Vec<GateId>, u64>);

impl Accumulator {
    /// Adds `coef · Π dims`.
    fn add(&mut self, coef: u64, dims: &[Dim]) {
        let mut coef = coef;
        let mut gates = Vec::new();
        for d in dims {
            match *d {
                Dim::Fixed(n) => coef *= n as u64,
                Dim::Gate(g) => gates.push(g),
            }
        }
        gates.sort_unstable();
        *self.0.entry(gates).or_insert(0) += coef;
    }

    /// Adds `coef · in · out / groups` of a conv (`coef · width` when depthwise), summed
    /// over the parts of a concatenated input.
    fn conv(&mut self, coef: u64, c: &ConvSpec) {
        if c.depthwise {
            return self.add(coef, &[c.out_dim]);
        }
        for part in c.inputs() {
            match (part, c.groups) {
                (_, 1) => self.add(coef, &[part, c.out_dim]),
                (Dim::Fixed(n), g) => self.add(coef * (n / g) as u64, &[c.out_dim]),
                (Dim::Gate(_), _) => panic!("grouped conv `{}` has a gated input", c.path),
            }
        }
    }

    fn finish(self) -> WidthPolynomial {
        let mut p = WidthPolynomial::default();
        for (gates, coef) in self.0 {
            if coef == 0 {
                continue;
            }
            if gates.is_empty() {
                p.constant += coef;
            } else {
                p.terms.push(Term { coef, gates });
            }
        }
        p
    }
}

impl WidthPolynomial {
    /// Multiply-accumulates of every conv and linear layer for one input image.
    pub fn macs(arch: &Arch) -> Self {
        let mut acc = Accumulator::default();
        for layer in &arch.layers {
            match layer {
                Layer::Conv(c) => {
                    let k2hw = (c.kernel * c.kernel * c.out_hw.0 * c.out_hw.1) as u64;
                    acc.conv(k2hw, c);
                }
                Layer::Linear(l) => acc.add(1, &[l.in_dim, l.out_dim]),
                Layer::Bn(_) => {}
            }
        }
        acc.finish()
    }

    /// Trainable parameters (conv and linear weights and biases, BN affine weights; not the
    /// running statistics).
    pub fn params(arch: &Arch) -> Self {
        let mut acc = Accumulator::default();
        for layer in &arch.layers {
            match layer {
                Layer::Conv(c) => {
                    acc.conv((c.kernel * c.kernel) as u64, c);
                    if c.bias {
                        acc.add(1, &[c.out_dim]);
                    }
                }
                Layer::Bn(b) => acc.add(2, &[b.dim]),
                Layer::Linear(l) => {
                    acc.add(1, &[l.in_dim, l.out_dim]);
                    acc.add(1, &[l.out_dim]);
                }
            }
        }
        acc.finish()
    }

    /// The prunable part at integer widths.
    pub fn prunable(&self, widths: &[usize]) -> u64 {
        self.terms
            .iter()
            .map(|t| t.coef * t.gates.iter().map(|&g| widths[g] as u64).product::<u64>())
            .sum()
    }

    /// The exact cost at integer widths.
    pub fn eval(&self, widths: &[usize]) -> u64 {
        self.constant + self.prunable(widths)
    }

    /// The prunable part at real-valued widths, as a differentiable scalar tensor.
    /// `widths[g]` is a scalar (rank 0) tensor, e.g. the sum of a soft mask over gate g.
    pub fn prunable_tensor(&self, widths: &[Tensor]) -> CandleResult<Tensor> {
        let mut total: Option<Tensor> = None;
        for t in &self.terms {
            let mut m = widths[t.gates[0]].clone();
            for &g in &t.gates[1..] {
                m = (m * &widths[g])?;
            }
            let m = m.affine(t.coef as f64, 0.0)?;
            total = Some(match total {
                None => m,
                Some(s) => (s + m)?,
            });
        }
        match total {
            Some(t) => Ok(t),
            None => Tensor::new(0f32, &candle_core::Device::Cpu),
        }
    }

    /// The full cost at real-valued widths, as a differentiable scalar tensor.
    pub fn eval_tensor(&self, widths: &[Tensor]) -> CandleResult<Tensor> {
        self.prunable_tensor(widths)?
            .affine(1.0, self.constant as f64)
    }
}
