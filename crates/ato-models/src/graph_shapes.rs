//! Shape inference over a graph's nodes: the (C, H, W) or (F,) shape of every value for one
//! image, with every operator's requirements checked (the errors name the node).

use crate::graph::{NetworkGraph, Node, Op};
use ato_zig::conv_out;

/// Shape of one value for one image, without the batch axis: `[C, H, W]` or `[F]`.
pub type ValueShape = Vec<usize>;

impl NetworkGraph {
    /// The shape of every value (value 0 is the input), checked node by node.
    pub fn shapes(&self) -> Result<Vec<ValueShape>, String> {
        let (c, h, w) = self.input;
        value_shapes(&self.nodes, &[c, h, w], |name| {
            self.param(name).map(|t| t.dims().to_vec())
        })
    }
}

/// The shape of every value of `nodes` fed `input` (C, H, W); `param` gives a tensor's shape.
pub fn value_shapes(
    nodes: &[Node],
    input: &[usize],
    param: impl Fn(&str) -> Option<Vec<usize>>,
) -> Result<Vec<ValueShape>, String> {
    let mut shapes: Vec<ValueShape> = vec![input.to_vec()];
    for (k, node) in nodes.iter().enumerate() {
        let at = |msg: String| format!("node {} ({}): {msg}", k + 1, op_name(&node.op));
        if node.inputs.is_empty() || node.inputs.iter().any(|&v| v > k) {
            return Err(at(format!(
                "inputs {:?} are not earlier values",
                node.inputs
            )));
        }
        let ins: Vec<&ValueShape> = node.inputs.iter().map(|&v| &shapes[v]).collect();
        let a = ins[0];
        let p = |name: &str| param(name).ok_or_else(|| at(format!("no tensor `{name}`")));
        let chw = || -> Result<(usize, usize, usize), String> {
            match a.as_slice() {
                &[c, h, w] => Ok((c, h, w)),
                _ => Err(at(format!("expects a (C, H, W) input, got {a:?}"))),
            }
        };
        let pooled = |kernel: usize, stride: usize, padding: usize| {
            let (c, h, w) = chw()?;
            if kernel == 0 || stride == 0 || h + 2 * padding < kernel || w + 2 * padding < kernel {
                return Err(at(format!("window {kernel} does not fit {h}×{w}")));
            }
            Ok(vec![
                c,
                conv_out(h, kernel, stride, padding),
                conv_out(w, kernel, stride, padding),
            ])
        };
        let out = match &node.op {
            Op::Conv {
                weight,
                bias,
                stride,
                padding,
                groups,
            } => {
                let (c, _, _) = chw()?;
                let ws = p(weight)?;
                let &[o, i, kh, kw] = ws.as_slice() else {
                    return Err(at(format!("weight `{weight}` has shape {ws:?}, not 4-D")));
                };
                if kh != kw || *groups == 0 || i * groups != c || o % groups != 0 {
                    return Err(at(format!(
                        "weight {ws:?} with {groups} groups does not fit {c} input channels"
                    )));
                }
                if let Some(b) = bias {
                    if p(b)? != [o] {
                        return Err(at(format!("bias `{b}` is not of shape [{o}]")));
                    }
                }
                let mut s = pooled(kh, *stride, *padding)?;
                s[0] = o;
                s
            }
            Op::BatchNorm {
                scale,
                bias,
                mean,
                var,
                ..
            } => {
                let (c, _, _) = chw()?;
                for t in [scale, bias, mean, var] {
                    if p(t)? != [c] {
                        return Err(at(format!("`{t}` is not of shape [{c}]")));
                    }
                }
                a.clone()
            }
            Op::Relu | Op::Relu6 => a.clone(),
            Op::Add => {
                if ins.len() != 2 || ins[1] != a {
                    return Err(at(format!("adds values of shapes {ins:?}")));
                }
                a.clone()
            }
            Op::Subsample2 => {
                let (c, h, w) = chw()?;
                vec![c, h.div_ceil(2), w.div_ceil(2)]
            }
            Op::PadChannels { before, after } => {
                let (c, h, w) = chw()?;
                vec![before + c + after, h, w]
            }
            Op::MaxPool {
                kernel,
                stride,
                padding,
            }
            | Op::AvgPool {
                kernel,
                stride,
                padding,
            } => pooled(*kernel, *stride, *padding)?,
            Op::GlobalAvgPool => vec![chw()?.0],
            Op::Flatten => vec![a.iter().product()],
            Op::Concat => {
                let (_, h, w) = chw()?;
                let mut c = 0;
                for s in &ins {
                    match s.as_slice() {
                        &[ci, hi, wi] if (hi, wi) == (h, w) => c += ci,
                        _ => return Err(at(format!("concatenates shapes {ins:?}"))),
                    }
                }
                vec![c, h, w]
            }
            Op::Linear { weight, bias } => {
                let &[f] = a.as_slice() else {
                    return Err(at(format!("expects a flat input, got {a:?}")));
                };
                let ws = p(weight)?;
                let &[o, i] = ws.as_slice() else {
                    return Err(at(format!("weight `{weight}` has shape {ws:?}, not 2-D")));
                };
                if i != f || p(bias)? != [o] {
                    return Err(at(format!("weight {ws:?} does not fit {f} features")));
                }
                vec![o]
            }
        };
        shapes.push(out);
    }
    Ok(shapes)
}

/// Whether a conv of `groups` groups from `in_channels` to `out_channels` is depthwise (one
/// filter per channel): the rule the group finder, the declaration and `explain` share.
pub fn is_depthwise(groups: usize, in_channels: usize, out_channels: usize) -> bool {
    groups > 1 && groups == in_channels && out_channels == in_channels
}

/// The operator's name in messages.
pub fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Conv { .. } => "Conv",
        Op::BatchNorm { .. } => "BatchNorm",
        Op::Relu => "Relu",
        Op::Relu6 => "Relu6",
        Op::Add => "Add",
        Op::Subsample2 => "Subsample2",
        Op::PadChannels { .. } => "PadChannels",
        Op::MaxPool { .. } => "MaxPool",
        Op::AvgPool { .. } => "AvgPool",
        Op::GlobalAvgPool => "GlobalAvgPool",
        Op::Flatten => "Flatten",
        Op::Concat => "Concat",
        Op::Linear { .. } => "Linear",
    }
}
