//! The architecture description every other part of the crate reads: layers with their
//! (possibly gated) channel dimensions and spatial sizes.
//!
//! A model crate builds an [`Arch`] through [`crate::ArchBuilder`] and the block builders of
//! [`crate::blocks`], and instantiates its tensors from the returned specs, so the FLOPs
//! polynomial, the groups and the real model can never disagree.

use serde::{Deserialize, Serialize};

/// Index of a gate in [`Arch::gates`].
pub type GateId = usize;

/// A channel dimension: a fixed width, or the width of a prunable gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dim {
    Fixed(usize),
    Gate(GateId),
}

impl Dim {
    /// The gate behind this dimension, if any.
    pub fn gate(self) -> Option<GateId> {
        match self {
            Dim::Gate(g) => Some(g),
            Dim::Fixed(_) => None,
        }
    }

    /// The concrete width given the current width of every gate.
    pub fn resolve(self, gate_widths: &[usize]) -> usize {
        match self {
            Dim::Fixed(n) => n,
            Dim::Gate(g) => gate_widths[g],
        }
    }
}

/// A 2-D convolution. `depthwise` convolutions have `groups == channels` and `in_dim == out_dim`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvSpec {
    /// Parameter path prefix (the weight is `{path}.weight`).
    pub path: String,
    /// The input channels; when `in_parts` is not empty the input is their concatenation
    /// and `in_dim` is unused (see [`ConvSpec::inputs`]).
    pub in_dim: Dim,
    /// The parts of a concatenated input, in channel order (empty: the input is `in_dim`).
    pub in_parts: Vec<Dim>,
    /// Convolution groups of a dense (not depthwise) conv: 1, or a divisor of fixed widths.
    pub groups: usize,
    pub out_dim: Dim,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub depthwise: bool,
    pub bias: bool,
    /// Spatial size of the input, (H, W).
    pub in_hw: (usize, usize),
    /// Spatial size of the output, (H, W).
    pub out_hw: (usize, usize),
}

impl ConvSpec {
    /// The input channel parts in order: `in_parts`, or `[in_dim]`.
    pub fn inputs(&self) -> Vec<Dim> {
        if self.in_parts.is_empty() {
            vec![self.in_dim]
        } else {
            self.in_parts.clone()
        }
    }

    /// Input channels at the given gate widths.
    pub fn in_width(&self, gate_widths: &[usize]) -> usize {
        self.inputs().iter().map(|d| d.resolve(gate_widths)).sum()
    }
}

/// Batch normalisation over `dim` channels (affine weight and bias, running mean and var).
#[derive(Clone, Debug, PartialEq)]
pub struct BnSpec {
    pub path: String,
    pub dim: Dim,
}

/// A fully connected layer with bias; weight shape `(out, in)` as in PyTorch and candle.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearSpec {
    pub path: String,
    pub in_dim: Dim,
    pub out_dim: Dim,
}

/// One parametrised layer of the architecture.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    Conv(ConvSpec),
    Bn(BnSpec),
    Linear(LinearSpec),
}

/// A prunable channel dimension as declared by the builder: its name and current width.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateSpec {
    pub name: String,
    pub width: usize,
}

/// The full description of a model: its gates and its parametrised layers in build order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Arch {
    pub gates: Vec<GateSpec>,
    pub layers: Vec<Layer>,
}

impl Arch {
    /// Current width of every gate, in gate order.
    pub fn gate_widths(&self) -> Vec<usize> {
        self.gates.iter().map(|g| g.width).collect()
    }

    /// Sum of all gate widths: the number of channel groups the pruner may remove.
    pub fn gated_channels(&self) -> usize {
        self.gates.iter().map(|g| g.width).sum()
    }

    /// Every trainable parameter tensor, as (name, shape) at the current widths.
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.tensor_shapes(false)
    }

    /// Every tensor a model stores (parameters and BN running statistics) at the current widths.
    pub fn tensor_shapes(&self, with_buffers: bool) -> Vec<(String, Vec<usize>)> {
        let w = self.gate_widths();
        let mut out = Vec::new();
        for layer in &self.layers {
            match layer {
                Layer::Conv(c) => {
                    let (i, o) = (c.in_width(&w), c.out_dim.resolve(&w));
                    let per_group_in = if c.depthwise { 1 } else { i / c.groups };
                    out.push((
                        format!("{}.weight", c.path),
                        vec![o, per_group_in, c.kernel, c.kernel],
                    ));
                    if c.bias {
                        out.push((format!("{}.bias", c.path), vec![o]));
                    }
                }
                Layer::Bn(b) => {
                    let n = b.dim.resolve(&w);
                    out.push((format!("{}.weight", b.path), vec![n]));
                    out.push((format!("{}.bias", b.path), vec![n]));
                    if with_buffers {
                        out.push((format!("{}.running_mean", b.path), vec![n]));
                        out.push((format!("{}.running_var", b.path), vec![n]));
                    }
                }
                Layer::Linear(l) => {
                    let (i, o) = (l.in_dim.resolve(&w), l.out_dim.resolve(&w));
                    out.push((format!("{}.weight", l.path), vec![o, i]));
                    out.push((format!("{}.bias", l.path), vec![o]));
                }
            }
        }
        out
    }

    /// The same architecture with other gate widths (what compaction produces).
    pub fn with_widths(&self, widths: &[usize]) -> Arch {
        assert_eq!(widths.len(), self.gates.len(), "one width per gate");
        let mut a = self.clone();
        for (g, &w) in a.gates.iter_mut().zip(widths) {
            g.width = w;
        }
        a
    }
}
