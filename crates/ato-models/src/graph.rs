//! A model as a graph of standard operators, in eval mode: what an exporter needs
//! ([`crate::Model::graph`]; `ato-onnx` writes it as ONNX), independent of any file format.
//!
//! Values are numbered: value 0 is the input (N, C, H, W); node k's output is value k + 1;
//! the last node's output is the logits (N, classes). Every tensor a node needs (weights, BN
//! statistics) is in [`NetworkGraph::params`] under the model's own variable name.
//! [`NetworkGraph::evaluate`] (`graph_eval.rs`) runs the graph with candle's plain ops — the
//! reference an exported file is checked against, and a check that the graph is the model.

use ato_kernels::{Activation, BatchNorm2d, ConvParams};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A value of the graph (0 = the input).
pub type ValueId = usize;

/// An operator of the graph; tensor operands are names in [`NetworkGraph::params`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// 2-D convolution, square kernel (the weight's last dim), symmetric padding, optional
    /// bias.
    Conv {
        weight: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias: Option<String>,
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
    /// Square max-pooling; padded pixels never win (−∞ padding).
    MaxPool {
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    /// Square average pooling; padded pixels count as zeros (`count_include_pad`).
    AvgPool {
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    /// (N, C, H, W) → (N, C), the mean over H and W.
    GlobalAvgPool,
    /// (N, C, H, W) → (N, C·H·W), channel-major (identity on (N, C)).
    Flatten,
    /// Concatenation of every input along the channel axis, in input order.
    Concat,
    /// `x·Wᵀ + b`, W of shape (out, in).
    Linear {
        weight: String,
        bias: String,
    },
}

/// One node: an operator on earlier values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

    pub(crate) fn param(&mut self, name: String, t: &Tensor) -> String {
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
            bias: None,
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

    /// `x·Wᵀ + b` of the layer whose variables are `{path}.weight` and `{path}.bias`.
    pub(crate) fn linear(
        &mut self,
        x: ValueId,
        path: &str,
        layer: &ato_kernels::Linear,
    ) -> candle_core::Result<ValueId> {
        let bias = layer
            .bias()
            .ok_or_else(|| candle_core::Error::Msg(format!("graph: `{path}` has no bias")))?;
        let op = Op::Linear {
            weight: self.param(format!("{path}.weight"), layer.weight()),
            bias: self.param(format!("{path}.bias"), bias),
        };
        Ok(self.push(op, &[x]))
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
