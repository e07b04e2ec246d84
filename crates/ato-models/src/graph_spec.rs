//! [`GraphSpec`]: an imported graph's topology as a model config stores it, and the
//! declaration of its gates and layers on `ato-zig`'s [`ArchBuilder`] (issue 29) — the same
//! record a built-in model declares, so zero-invariant groups, MACs and compaction work
//! unchanged. The trainable network is [`crate::graph_net::GraphNet`].

use crate::graph::Node;
use crate::graph::Op;
use crate::graph_groups::{find_groups, ChannelPlan, GroupPolicy, Segment};
use crate::graph_shapes::{is_depthwise, value_shapes, ValueShape};
use crate::ModelError;
use ato_zig::{ArchBuilder, BnSpec, ConvSpec, Dim, LinearSpec};
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

    /// Every layer that starts channels (a dense conv or a linear layer), in graph order:
    /// its path, its output channels, and the gate they belong to or why they are fixed —
    /// what `ato info FILE.onnx` prints, so a user sees why a layer is not pruned.
    pub fn explain(&self, input: [usize; 3]) -> Result<Vec<LayerGroup>, ModelError> {
        let (shapes, plan) = self.plan(input)?;
        let mut out = Vec::new();
        for (k, node) in self.nodes.iter().enumerate() {
            let weight = match &node.op {
                Op::Conv { weight, groups, .. }
                    if !is_depthwise(*groups, shapes[node.inputs[0]][0], shapes[k + 1][0]) =>
                {
                    weight
                }
                Op::Linear { weight, .. } => weight,
                _ => continue,
            };
            let Some(seg) = plan.segments[k + 1].first().copied() else {
                continue;
            };
            out.push(LayerGroup {
                layer: weight.trim_end_matches(".weight").to_string(),
                channels: shapes[k + 1][0],
                gate: plan.gate(seg),
                fixed_because: plan.fixed_because[seg.class],
            });
        }
        Ok(out)
    }

    /// Value shapes at full width and the channel plan, for input images (C, H, W).
    pub fn plan(
        &self,
        input: [usize; 3],
    ) -> std::result::Result<(Vec<ValueShape>, ChannelPlan), ModelError> {
        let bad = |m: String| ModelError::InvalidConfig(format!("graph {}: {m}", self.source));
        let shapes = value_shapes(&self.nodes, &input, |n| self.tensor_shapes.get(n).cloned())
            .map_err(bad)?;
        let plan = find_groups(&self.nodes, &shapes, self.policy);
        Ok((shapes, plan))
    }
}

/// A layer that starts channels, and what became of them ([`GraphSpec::explain`]).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerGroup {
    pub layer: String,
    pub channels: usize,
    /// The gate (index) its channels belong to.
    pub gate: Option<usize>,
    /// Why its channels are not pruned.
    pub fixed_because: Option<&'static str>,
}

/// The declared layers of a graph network (before any tensor exists).
pub(crate) struct GraphDecl {
    pub(crate) specs: Vec<Option<LayerSpec>>,
    pub(crate) segments: Vec<Vec<(Option<usize>, usize)>>,
}

pub(crate) enum LayerSpec {
    Conv(ConvSpec),
    Bn(BnSpec, f64),
    Linear(LinearSpec),
}

/// Checks that node `node`'s tensor `name` is `expected` (the importer's canonical naming).
fn expect_named(name: &str, expected: &str, node: usize) -> std::result::Result<(), ModelError> {
    if name == expected {
        Ok(())
    } else {
        Err(ModelError::InvalidConfig(format!(
            "graph node {node}: tensor `{name}` is not `{expected}`"
        )))
    }
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
                if let Some(b) = bias {
                    expect_named(b, &format!("{path}.bias"), n)?;
                }
                let ws = &spec.tensor_shapes[weight];
                let depthwise = is_depthwise(*groups, in_shape[0], ws[0]);
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
                    expect_named(t, &format!("{path}{s}"), n)?;
                }
                Some(LayerSpec::Bn(b.bn(path, single(ins)), *eps))
            }
            Op::Linear { weight, bias } => {
                let path = path_of(weight, ".weight", n)?;
                expect_named(bias, &format!("{path}.bias"), n)?;
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
