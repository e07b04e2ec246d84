//! [`NetworkGraph::evaluate`]: a graph run node by node with candle's own ops.

use crate::graph::{NetworkGraph, Op, ValueId};
use crate::graph_shapes::op_name;
use crate::pool::{avg_pool, max_pool};
use candle_core::{Result, Tensor, D};

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
                    bias,
                    stride,
                    padding,
                    groups,
                } => {
                    let y = a.conv2d(&p(weight)?, *padding, *stride, 1, *groups)?;
                    match bias {
                        Some(b) => y.broadcast_add(&p(b)?.reshape((1, (), 1, 1))?)?,
                        None => y,
                    }
                }
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
                Op::Linear { weight, bias } => ato_kernels::matmul(a, &p(weight)?.t()?)?
                    .broadcast_add(&p(bias)?.unsqueeze(0)?)?,
                op => tensorless(op, &node.inputs, &values)?,
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

/// An operator without tensors (activations, joins, pools, reshapes) on `values[inputs]`:
/// what both [`NetworkGraph::evaluate`] and the trainable `GraphNet` compute the same way.
/// Operators with tensors are an error here.
pub(crate) fn tensorless(op: &Op, inputs: &[ValueId], values: &[Tensor]) -> Result<Tensor> {
    let a = &values[inputs[0]];
    match op {
        Op::Relu => a.relu(),
        Op::Relu6 => a.clamp(0f32, 6f32),
        Op::Add => a + &values[inputs[1]],
        Op::Subsample2 => crate::layers::subsample2(a),
        Op::PadChannels { before, after } => a.pad_with_zeros(1, *before, *after),
        Op::MaxPool {
            kernel,
            stride,
            padding,
        } => max_pool(a, *kernel, *stride, *padding),
        Op::AvgPool {
            kernel,
            stride,
            padding,
        } => avg_pool(a, *kernel, *stride, *padding),
        Op::GlobalAvgPool => crate::layers::global_avg_pool(a),
        Op::Flatten => a.flatten_from(1),
        Op::Concat => {
            let parts: Vec<&Tensor> = inputs.iter().map(|&v| &values[v]).collect();
            Tensor::cat(&parts, 1)
        }
        Op::Conv { .. } | Op::BatchNorm { .. } | Op::Linear { .. } => {
            candle_core::bail!("graph: {} needs its tensors", op_name(op))
        }
    }
}
