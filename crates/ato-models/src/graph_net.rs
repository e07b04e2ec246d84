//! A trainable network read from a graph (an imported ONNX model, issue 29): [`GraphSpec`] is
//! its topology as saved in the model config; [`GraphNet`] its layers, gated forward and
//! export graph.
//!
//! The gates come from [`crate::graph_groups::find_groups`]; the architecture record is built
//! from them through `ato-zig`'s [`ArchBuilder`] like a built-in model's, so zero-invariant
//! groups, MACs and compaction work unchanged. Gate values multiply the gated channels where
//! a dense conv or a linear layer reads them: a dropped channel reaches no layer, so the gated
//! forward equals the compact model's whatever the topology (residual joins, concatenations).

use crate::graph::{GraphBuilder, Node, Op, ValueId};
use crate::graph_groups::{find_groups, ChannelPlan, GroupPolicy, Segment};
use crate::graph_shapes::{op_name, value_shapes, ValueShape};
use crate::layers::{self, GateValues};
use crate::params::{Init, ParamStore};
use crate::pool::{avg_pool, max_pool};
use crate::ModelError;
use ato_kernels::{Activation, BatchNorm2d};
use ato_zig::{ArchBuilder, BnSpec, ConvSpec, Dim, LinearSpec};
use candle_core::{Module, Result, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A graph network's topology: what `compact.arch.json` stores for an imported model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSpec {
    /// Where the graph came from (an ONNX file), for messages.
    #[serde(default)]
    pub source: String,
    /// Which coupled channel sets are pruned.
    #[serde(default)]
    pub policy: GroupPolicy,
    /// The operators; tensors are named `{path}.weight`, `{path}.bias`, … (see ato-onnx).
    pub nodes: Vec<Node>,
    /// Full-width shape of every tensor the nodes use.
    pub tensor_shapes: BTreeMap<String, Vec<usize>>,
}

impl GraphSpec {
    /// The spec of `graph` (its tensors' shapes, not their values).
    pub fn of(graph: &crate::graph::NetworkGraph, policy: GroupPolicy, source: &str) -> Self {
        Self {
            source: source.to_string(),
            policy,
            nodes: graph.nodes.clone(),
            tensor_shapes: graph
                .params
                .iter()
                .map(|(n, t)| (n.clone(), t.dims().to_vec()))
                .collect(),
        }
    }

    /// Value shapes at full width and the channel plan, for input images (C, H, W).
    pub fn plan(
        &self,
        input: [usize; 3],
    ) -> std::result::Result<(Vec<ValueShape>, ChannelPlan), ModelError> {
        let bad = |m: String| ModelError::InvalidConfig(format!("graph {}: {m}", self.source));
        let shapes = value_shapes(&self.nodes, &input, |n| self.tensor_shapes.get(n).cloned())
            .map_err(bad)?;
        Ok((
            shapes.clone(),
            find_groups(&self.nodes, &shapes, self.policy),
        ))
    }
}

/// One node's layer.
#[derive(Clone, Debug)]
enum Layer {
    None,
    Conv {
        conv: layers::Conv,
        bias: Option<Tensor>,
        /// Applies gates to the input (dense convs only).
        gated: bool,
    },
    Bn(BatchNorm2d, String),
    Linear(candle_nn::Linear, String),
}

/// The declared layers of a graph network (before any tensor exists).
pub(crate) struct GraphDecl {
    specs: Vec<Option<LayerSpec>>,
    segments: Vec<Vec<(Option<usize>, usize)>>,
}

enum LayerSpec {
    Conv(ConvSpec),
    Bn(BnSpec, f64),
    Linear(LinearSpec),
}

/// A network read from a [`GraphSpec`].
pub struct GraphNet {
    nodes: Vec<Node>,
    layers: Vec<Layer>,
    /// Per value: (gate or None, length) of each segment at the built widths.
    segments: Vec<Vec<(Option<usize>, usize)>>,
}

fn path_of(name: &str, suffix: &str, node: usize) -> std::result::Result<String, ModelError> {
    name.strip_suffix(suffix)
        .map(str::to_string)
        .ok_or_else(|| {
            ModelError::InvalidConfig(format!(
                "graph node {node}: tensor `{name}` is not named `<path>{suffix}`"
            ))
        })
}

/// Declares the gates and layers of `spec` on `b` (input images (C, H, W)).
pub(crate) fn declare(
    spec: &GraphSpec,
    input: [usize; 3],
    b: &mut ArchBuilder,
) -> std::result::Result<GraphDecl, ModelError> {
    let (shapes, plan) = spec.plan(input)?;
    if plan.gates.is_empty() {
        return Err(ModelError::InvalidConfig(format!(
            "graph {}: no prunable channel group (policy `{}`); every channel class is fixed",
            spec.source,
            serde_json::to_string(&spec.policy)
                .unwrap_or_default()
                .trim_matches('"')
        )));
    }
    let mut gate_dims = Vec::new();
    for &(_, width, producer) in &plan.gates {
        let name = match &spec.nodes[producer].op {
            Op::Conv { weight, .. } | Op::Linear { weight, .. } => {
                weight.trim_end_matches(".weight").to_string()
            }
            _ => format!("node{}", producer + 1),
        };
        gate_dims.push(b.gate(name, width));
    }
    let dim = |s: &Segment| match plan.gate(*s) {
        Some(g) => gate_dims[g],
        None => Dim::Fixed(s.len),
    };
    let single = |segs: &[Segment]| match segs {
        [s] => dim(s),
        many => Dim::Fixed(many.iter().map(|s| s.len).sum()),
    };
    let mut specs = Vec::new();
    for (k, node) in spec.nodes.iter().enumerate() {
        let n = k + 1;
        let ins = &plan.segments[node.inputs[0]];
        let in_shape = &shapes[node.inputs[0]];
        let layer = match &node.op {
            Op::Conv {
                weight,
                bias,
                stride,
                padding,
                groups,
            } => {
                let path = path_of(weight, ".weight", n)?;
                if let Some(bn) = bias {
                    if *bn != format!("{path}.bias") {
                        path_of(bn, &format!("{path}.bias"), n)?;
                    }
                }
                let ws = &spec.tensor_shapes[weight];
                let depthwise = *groups > 1 && *groups == in_shape[0] && ws[0] == in_shape[0];
                let (in_dim, in_parts) = match ins.as_slice() {
                    [s] => (dim(s), Vec::new()),
                    many => (single(many), many.iter().map(dim).collect()),
                };
                let out_dim = if depthwise {
                    single(ins)
                } else {
                    single(&plan.segments[n])
                };
                Some(LayerSpec::Conv(b.conv_spec(ConvSpec {
                    path,
                    in_dim,
                    in_parts: if depthwise { Vec::new() } else { in_parts },
                    groups: if depthwise { 1 } else { *groups },
                    out_dim,
                    kernel: ws[3],
                    stride: *stride,
                    padding: *padding,
                    depthwise,
                    bias: bias.is_some(),
                    in_hw: (in_shape[1], in_shape[2]),
                    out_hw: (0, 0),
                })))
            }
            Op::BatchNorm {
                scale,
                bias,
                mean,
                var,
                eps,
            } => {
                let path = path_of(scale, ".weight", n)?;
                for (t, s) in [
                    (bias, ".bias"),
                    (mean, ".running_mean"),
                    (var, ".running_var"),
                ] {
                    if *t != format!("{path}{s}") {
                        return Err(ModelError::InvalidConfig(format!(
                            "graph node {n}: BatchNorm tensor `{t}` is not `{path}{s}`"
                        )));
                    }
                }
                Some(LayerSpec::Bn(b.bn(path, single(ins)), *eps))
            }
            Op::Linear { weight, bias } => {
                let path = path_of(weight, ".weight", n)?;
                if *bias != format!("{path}.bias") {
                    path_of(bias, &format!("{path}.bias"), n)?;
                }
                let out = single(&plan.segments[n]);
                Some(LayerSpec::Linear(b.linear(path, single(ins), out)))
            }
            _ => None,
        };
        specs.push(layer);
    }
    let segments = plan
        .segments
        .iter()
        .map(|v| v.iter().map(|s| (plan.gate(*s), s.len)).collect())
        .collect();
    Ok(GraphDecl { specs, segments })
}

impl GraphNet {
    /// The layers of `decl` at `widths`, their tensors from `store`.
    pub(crate) fn new(
        spec: &GraphSpec,
        decl: &GraphDecl,
        widths: &[usize],
        store: &mut ParamStore,
    ) -> std::result::Result<Self, ModelError> {
        let mut built = Vec::new();
        for (node, layer) in spec.nodes.iter().zip(&decl.specs) {
            built.push(match layer {
                None => Layer::None,
                Some(LayerSpec::Conv(c)) => {
                    let conv = layers::conv(c, widths, store)?;
                    let bias = if c.bias {
                        let fan_in = conv.weight().dims()[1..].iter().product();
                        let o = conv.weight().dim(0)?;
                        Some(store.var(
                            &format!("{}.bias", c.path),
                            &[o],
                            Init::UniformFanIn(fan_in),
                        )?)
                    } else {
                        None
                    };
                    Layer::Conv {
                        conv,
                        bias,
                        gated: !c.depthwise,
                    }
                }
                Some(LayerSpec::Bn(s, eps)) => {
                    Layer::Bn(layers::bn_with_eps(s, widths, store, *eps)?, s.path.clone())
                }
                Some(LayerSpec::Linear(s)) => {
                    Layer::Linear(layers::linear(s, widths, store)?, s.path.clone())
                }
            });
            let _ = node;
        }
        let segments = decl
            .segments
            .iter()
            .map(|v| {
                v.iter()
                    .map(|&(g, len)| (g, g.map_or(len, |g| widths[g])))
                    .collect()
            })
            .collect();
        Ok(Self {
            nodes: spec.nodes.clone(),
            layers: built,
            segments,
        })
    }

    /// `x` with the gated channels of value `v` multiplied by their gate values.
    fn gate_input(&self, x: &Tensor, v: ValueId, gates: Option<GateValues>) -> Result<Tensor> {
        let Some(GateValues(g)) = gates else {
            return Ok(x.clone());
        };
        let segs = &self.segments[v];
        if segs.iter().all(|(gate, _)| gate.is_none()) {
            return Ok(x.clone());
        }
        let parts = segs
            .iter()
            .map(|&(gate, len)| match gate {
                Some(id) => Ok(g[id].to_dtype(x.dtype())?),
                None => Tensor::ones(len, x.dtype(), x.device()),
            })
            .collect::<Result<Vec<_>>>()?;
        let m = Tensor::cat(&parts, 0)?;
        if x.rank() == 4 {
            ato_kernels::scale_channels(x, &m)
        } else {
            x.broadcast_mul(&m.unsqueeze(0)?)
        }
    }

    /// Logits of `x`, gates applied where dense layers read gated channels.
    pub fn forward_t(&self, x: &Tensor, gates: Option<GateValues>, train: bool) -> Result<Tensor> {
        let mut values = vec![x.clone()];
        for (node, layer) in self.nodes.iter().zip(&self.layers) {
            let a = &values[node.inputs[0]];
            let out = match (&node.op, layer) {
                (Op::Conv { .. }, Layer::Conv { conv, bias, gated }) => {
                    let x = if *gated {
                        self.gate_input(a, node.inputs[0], gates)?
                    } else {
                        a.clone()
                    };
                    let y = conv.forward(&x)?;
                    match bias {
                        Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?)?,
                        None => y,
                    }
                }
                (Op::BatchNorm { .. }, Layer::Bn(bn, _)) => {
                    bn.forward_act_t(a, train, Activation::Identity)?
                }
                (Op::Linear { .. }, Layer::Linear(l, _)) => {
                    l.forward(&self.gate_input(a, node.inputs[0], gates)?)?
                }
                (Op::Relu, _) => a.relu()?,
                (Op::Relu6, _) => a.clamp(0f32, 6f32)?,
                (Op::Add, _) => (a + &values[node.inputs[1]])?,
                (Op::Subsample2, _) => layers::subsample2(a)?,
                (Op::PadChannels { before, after }, _) => a.pad_with_zeros(1, *before, *after)?,
                (
                    Op::MaxPool {
                        kernel,
                        stride,
                        padding,
                    },
                    _,
                ) => max_pool(a, *kernel, *stride, *padding)?,
                (
                    Op::AvgPool {
                        kernel,
                        stride,
                        padding,
                    },
                    _,
                ) => avg_pool(a, *kernel, *stride, *padding)?,
                (Op::GlobalAvgPool, _) => layers::global_avg_pool(a)?,
                (Op::Flatten, _) => a.flatten_from(1)?,
                (Op::Concat, _) => {
                    let parts: Vec<&Tensor> = node.inputs.iter().map(|&v| &values[v]).collect();
                    Tensor::cat(&parts, 1)?
                }
                (op, _) => candle_core::bail!("graph: {} has no layer", op_name(op)),
            };
            values.push(out);
        }
        Ok(values.pop().expect("the input at least"))
    }

    /// The eval-mode network as graph nodes (the model's current tensors).
    pub(crate) fn to_graph(&self, g: &mut GraphBuilder) -> Result<ValueId> {
        let mut last = g.input();
        for (node, layer) in self.nodes.iter().zip(&self.layers) {
            let ins = &node.inputs;
            last = match (&node.op, layer) {
                (Op::Conv { .. }, Layer::Conv { conv, bias, .. }) => {
                    conv.to_graph(g, ins[0], bias.as_ref())
                }
                (Op::BatchNorm { .. }, Layer::Bn(bn, path)) => g.batch_norm(ins[0], path, bn),
                (Op::Linear { .. }, Layer::Linear(l, path)) => g.linear(ins[0], path, l)?,
                (op, _) => g.push(op.clone(), ins),
            };
        }
        Ok(last)
    }
}
