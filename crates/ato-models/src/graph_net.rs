//! A trainable network read from a graph (an imported ONNX model, issue 29): [`GraphSpec`] is
//! its topology as saved in the model config; [`GraphNet`] its layers, gated forward and
//! export graph.
//!
//! The gates come from [`crate::graph_groups::find_groups`]; the architecture record is built
//! from them through `ato-zig`'s [`ArchBuilder`] like a built-in model's, so zero-invariant
//! groups, MACs and compaction work unchanged. Gate values multiply the gated channels where
//! a dense conv or a linear layer reads them: a dropped channel reaches no layer, so the gated
//! forward equals the compact model's whatever the topology (residual joins, concatenations).
//! A bias-free conv read only by its BatchNorm (and that only by a ReLU/ReLU6) runs as one
//! fused conv+BN(+activation) op, as the built-ins' layers do, so an imported model trains as
//! fast as the same built-in.

use crate::graph::{GraphBuilder, Node, Op, ValueId};
pub use crate::graph_spec::GraphSpec;
use crate::graph_spec::{GraphDecl, LayerSpec};
use crate::layers::{self, GateValues};
use crate::params::{Init, ParamStore};
use crate::ModelError;
use ato_kernels::{Activation, BatchNorm2d};
use candle_core::{Module, Result, Tensor};

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
    Linear(ato_kernels::Linear, String),
}

/// A bias-free conv whose output only its BatchNorm reads (and the BN's output only an
/// activation, if `act` is set): run as one fused conv+BN(+activation) op, as the built-ins do.
#[derive(Clone, Copy, Debug)]
struct Fused {
    /// The BN node's index.
    bn: usize,
    /// The activation node's index and kind, when fused too.
    act: Option<(usize, Activation)>,
}

/// For every node, the conv+BN(+activation) chain it starts, if it can be fused.
fn fusions(nodes: &[Node]) -> Vec<Option<Fused>> {
    let mut readers = vec![Vec::new(); nodes.len() + 1];
    for (k, n) in nodes.iter().enumerate() {
        for &v in &n.inputs {
            readers[v].push(k);
        }
    }
    let last = nodes.len();
    let only_reader = |v: usize| match readers[v].as_slice() {
        [k] if v != last => Some(*k),
        _ => None,
    };
    nodes
        .iter()
        .enumerate()
        .map(|(k, n)| {
            let Op::Conv { bias: None, .. } = n.op else {
                return None;
            };
            let bn = only_reader(k + 1).filter(|&j| matches!(nodes[j].op, Op::BatchNorm { .. }))?;
            let act = only_reader(bn + 1).and_then(|a| match nodes[a].op {
                Op::Relu => Some((a, Activation::Relu)),
                Op::Relu6 => Some((a, Activation::Relu6)),
                _ => None,
            });
            Some(Fused { bn, act })
        })
        .collect()
}

/// A network read from a [`GraphSpec`].
pub struct GraphNet {
    nodes: Vec<Node>,
    layers: Vec<Layer>,
    fused: Vec<Option<Fused>>,
    /// Per value: (gate or None, length) of each segment at the built widths.
    segments: Vec<Vec<(Option<usize>, usize)>>,
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
        for layer in &decl.specs {
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
            fused: fusions(&spec.nodes),
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
        // outputs of BN and activation nodes computed ahead by a fused conv
        let mut ahead: Vec<Option<Tensor>> = vec![None; self.nodes.len()];
        for (k, (node, layer)) in self.nodes.iter().zip(&self.layers).enumerate() {
            if let Some(done) = ahead[k].take() {
                values.push(done);
                continue;
            }
            let a = &values[node.inputs[0]];
            let out = match (&node.op, layer) {
                (Op::Conv { .. }, Layer::Conv { conv, bias, gated }) => {
                    let x = if *gated {
                        self.gate_input(a, node.inputs[0], gates)?
                    } else {
                        a.clone()
                    };
                    let fused = self.fused[k].map(|f| (f, &self.layers[f.bn]));
                    if let Some((f, Layer::Bn(bn, _))) = fused {
                        let act = f.act.map_or(Activation::Identity, |(_, a)| a);
                        let y = conv.forward_bn_act(&x, bn, train, act)?;
                        // the conv's own output is read by nothing but its BN
                        ahead[f.bn] = Some(y.clone());
                        if let Some((a, _)) = f.act {
                            ahead[a] = Some(y.clone());
                        }
                        values.push(y);
                        continue;
                    }
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
                (op, _) => crate::graph_eval::tensorless(op, &node.inputs, &values)?,
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
