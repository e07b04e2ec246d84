//! A model as a graph of standard operators, in eval mode: what an exporter needs
//! ([`crate::Model::graph`]; `ato-onnx` writes it as ONNX), independent of any file format.
//!
//! Values are numbered: value 0 is the input (N, C, H, W); node k's output is value k + 1;
//! the last node's output is the logits (N, classes). Every tensor a node needs (weights, BN
//! statistics) is in [`NetworkGraph::params`] under the model's own variable name.
//! [`NetworkGraph::evaluate`] runs the graph with candle's plain ops — the reference an
//! exported file is checked against, and a check that the graph is the model.

use ato_kernels::{Activation, BatchNorm2d, ConvParams};
use candle_core::{Result, Tensor, D};
use std::collections::HashMap;

/// A value of the graph (0 = the input).
pub type ValueId = usize;

/// An operator of the graph; tensor operands are names in [`NetworkGraph::params`].
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Bias-free 2-D convolution, square kernel, symmetric padding.
    Conv {
        weight: String,
        stride: usize,
        padding: usize,
        groups: usize,
    },
    /// Inference BatchNorm: `γ·(x − μ)/√(σ² + ε) + β` per channel.
    BatchNorm {
        scale: String,
        bias: String,
        mean: String,
        var: String,
        eps: f64,
    },
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    Add,
    /// `x[:, :, ::2, ::2]` (⌈H/2⌉ × ⌈W/2⌉ pixels).
    Subsample2,
    /// Zero channels before and after (option-A shortcuts).
    PadChannels {
        before: usize,
        after: usize,
    },
    /// 3×3 max-pooling, stride 2, padding 1 (inputs are non-negative).
    MaxPool3x3S2P1,
    /// (N, C, H, W) → (N, C), the mean over H and W.
    GlobalAvgPool,
    /// `x·Wᵀ + b`, W of shape (out, in).
    Linear {
        weight: String,
        bias: String,
    },
}

/// One node: an operator on earlier values.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<ValueId>,
}

/// A network as operators, with its tensors and its input shape.
#[derive(Clone, Debug)]
pub struct NetworkGraph {
    pub nodes: Vec<Node>,
    /// Tensors by name, in the order the nodes first use them.
    pub params: Vec<(String, Tensor)>,
    /// (C, H, W) of one input image.
    pub input: (usize, usize, usize),
    pub num_classes: usize,
}

/// Builds a [`NetworkGraph`] as a network walks its layers.
pub struct GraphBuilder {
    nodes: Vec<Node>,
    params: Vec<(String, Tensor)>,
    names: HashMap<String, usize>,
}

impl GraphBuilder {
    pub(crate) fn new() -> Self {
        Self {
            nodes: Vec::new(),
            params: Vec::new(),
            names: HashMap::new(),
        }
    }

    /// The input value.
    pub(crate) fn input(&self) -> ValueId {
        0
    }

    fn param(&mut self, name: String, t: &Tensor) -> String {
        if !self.names.contains_key(&name) {
            self.names.insert(name.clone(), self.params.len());
            self.params.push((name.clone(), t.clone()));
        }
        name
    }

    pub(crate) fn push(&mut self, op: Op, inputs: &[ValueId]) -> ValueId {
        self.nodes.push(Node {
            op,
            inputs: inputs.to_vec(),
        });
        self.nodes.len()
    }

    /// A bias-free convolution whose weight is the variable `name`.
    pub(crate) fn conv(&mut self, x: ValueId, name: &str, w: &Tensor, p: ConvParams) -> ValueId {
        let weight = self.param(name.to_string(), w);
        let op = Op::Conv {
            weight,
            stride: p.stride,
            padding: p.padding,
            groups: p.groups,
        };
        self.push(op, &[x])
    }

    /// Inference BN whose tensors are the variables `{path}.weight` etc.
    pub(crate) fn batch_norm(&mut self, x: ValueId, path: &str, bn: &BatchNorm2d) -> ValueId {
        let op = Op::BatchNorm {
            scale: self.param(format!("{path}.weight"), bn.weight()),
            bias: self.param(format!("{path}.bias"), bn.bias()),
            mean: self.param(format!("{path}.running_mean"), bn.running_mean()),
            var: self.param(format!("{path}.running_var"), bn.running_var()),
            eps: bn.eps(),
        };
        self.push(op, &[x])
    }

    pub(crate) fn activation(&mut self, x: ValueId, act: Activation) -> ValueId {
        match act {
            Activation::Identity => x,
            Activation::Relu => self.push(Op::Relu, &[x]),
            Activation::Relu6 => self.push(Op::Relu6, &[x]),
        }
    }

    pub(crate) fn linear(&mut self, x: ValueId, path: &str, w: &Tensor, b: &Tensor) -> ValueId {
        let op = Op::Linear {
            weight: self.param(format!("{path}.weight"), w),
            bias: self.param(format!("{path}.bias"), b),
        };
        self.push(op, &[x])
    }

    pub(crate) fn finish(self, input: (usize, usize, usize), num_classes: usize) -> NetworkGraph {
        NetworkGraph {
            nodes: self.nodes,
            params: self.params,
            input,
            num_classes,
        }
    }
}

impl NetworkGraph {
    /// The tensor named `name`.
    pub fn param(&self, name: &str) -> Option<&Tensor> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Logits of `x` (N, C, H, W), computed node by node with candle's own ops (not the fast
    /// kernels the model runs on).
    pub fn evaluate(&self, x: &Tensor) -> Result<Tensor> {
        let p = |name: &str| {
            self.param(name)
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg(format!("graph: no tensor `{name}`")))
        };
        let mut values = vec![x.clone()];
        for node in &self.nodes {
            let a = &values[node.inputs[0]];
            let out = match &node.op {
                Op::Conv {
                    weight,
                    stride,
                    padding,
                    groups,
                } => a.conv2d(&p(weight)?, *padding, *stride, 1, *groups)?,
                Op::BatchNorm {
                    scale,
                    bias,
                    mean,
                    var,
                    eps,
                } => {
                    let c = |t: Tensor| t.reshape((1, (), 1, 1));
                    let std = (p(var)? + *eps)?.sqrt()?;
                    let y = a.broadcast_sub(&c(p(mean)?)?)?;
                    let y = y.broadcast_div(&c(std)?)?.broadcast_mul(&c(p(scale)?)?)?;
                    y.broadcast_add(&c(p(bias)?)?)?
                }
                Op::Relu => a.relu()?,
                Op::Relu6 => a.clamp(0f32, 6f32)?,
                Op::Add => (a + &values[node.inputs[1]])?,
                Op::Subsample2 => crate::layers::subsample2(a)?,
                Op::PadChannels { before, after } => a.pad_with_zeros(1, *before, *after)?,
                Op::MaxPool3x3S2P1 => crate::layers::max_pool_3x3_s2_p1(a)?,
                Op::GlobalAvgPool => a.mean((2, 3))?,
                Op::Linear { weight, bias } => a
                    .matmul(&p(weight)?.t()?)?
                    .broadcast_add(&p(bias)?.unsqueeze(0)?)?,
            };
            values.push(out);
        }
        let logits = values.pop().expect("the input at least");
        if logits.dim(D::Minus1)? != self.num_classes {
            candle_core::bail!(
                "graph: {} outputs, {} classes",
                logits.dim(D::Minus1)?,
                self.num_classes
            );
        }
        Ok(logits)
    }
}
