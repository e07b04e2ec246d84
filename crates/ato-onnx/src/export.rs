//! [`to_onnx`] and [`write_onnx`]: a [`NetworkGraph`] as an ONNX `ModelProto`.

use crate::proto::{
    float, float_tensor, int, int_tensor, ints, node_proto, scalar, value_info, Dim,
};
use crate::{InputSpec, OnnxError, OPSET};
use ato_models::graph::{NetworkGraph, Op, ValueId};
use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto,
};
use std::path::Path;

/// `graph` as an ONNX model with `spec` in its metadata.
pub fn to_onnx(graph: &NetworkGraph, spec: &InputSpec) -> Result<ModelProto, OnnxError> {
    let mut g = GraphProto {
        name: "ato-rs".into(),
        ..GraphProto::default()
    };
    for (name, t) in &graph.params {
        g.initializer.push(float_tensor(name, t)?);
    }
    let last = graph.nodes.len();
    let value = |v: ValueId| match v {
        0 => "input".to_string(),
        v if v == last => "logits".to_string(),
        v => format!("v{v}"),
    };
    let mut consts = Constants::default();
    for (k, node) in graph.nodes.iter().enumerate() {
        let inputs: Vec<String> = node.inputs.iter().map(|&v| value(v)).collect();
        let out = value(k + 1);
        let name = format!("n{}", k + 1);
        let kernel = |w: &str| -> Result<i64, OnnxError> {
            let t = graph
                .param(w)
                .ok_or_else(|| OnnxError::Graph(format!("no tensor `{w}`")))?;
            Ok(t.dim(3)? as i64)
        };
        let pool = |op: &str,
                    kernel: usize,
                    stride: usize,
                    padding: usize,
                    extra: Option<AttributeProto>| {
            let (k, s, p) = (kernel as i64, stride as i64, padding as i64);
            let mut attrs = vec![
                ints("kernel_shape", &[k, k]),
                ints("strides", &[s, s]),
                ints("pads", &[p, p, p, p]),
            ];
            attrs.extend(extra);
            node_proto(&name, op, [&inputs[0]], &out, attrs)
        };
        let nodes: Vec<NodeProto> = match &node.op {
            Op::Conv {
                weight,
                bias,
                stride,
                padding,
                groups,
            } => {
                let k = kernel(weight)?;
                let (s, p) = (*stride as i64, *padding as i64);
                let mut ins = vec![inputs[0].clone(), weight.clone()];
                ins.extend(bias.iter().cloned());
                vec![node_proto(
                    &name,
                    "Conv",
                    ins,
                    &out,
                    vec![
                        ints("kernel_shape", &[k, k]),
                        ints("strides", &[s, s]),
                        ints("pads", &[p, p, p, p]),
                        ints("dilations", &[1, 1]),
                        int("group", *groups as i64),
                    ],
                )]
            }
            Op::BatchNorm {
                scale,
                bias,
                mean,
                var,
                eps,
            } => vec![node_proto(
                &name,
                "BatchNormalization",
                [&inputs[0], scale, bias, mean, var].map(String::from),
                &out,
                vec![float("epsilon", *eps as f32)],
            )],
            Op::Relu => vec![node_proto(&name, "Relu", [&inputs[0]], &out, vec![])],
            Op::Relu6 => {
                let (lo, hi) = consts.relu6(&mut g);
                vec![node_proto(
                    &name,
                    "Clip",
                    [inputs[0].clone(), lo, hi],
                    &out,
                    vec![],
                )]
            }
            Op::Add => vec![node_proto(&name, "Add", &inputs[..2], &out, vec![])],
            Op::Subsample2 => {
                let [starts, ends, axes, steps] = consts.subsample(&mut g);
                vec![node_proto(
                    &name,
                    "Slice",
                    [inputs[0].clone(), starts, ends, axes, steps],
                    &out,
                    vec![],
                )]
            }
            Op::PadChannels { before, after } => {
                let pads = format!("{name}.pads");
                let (b, a) = (*before as i64, *after as i64);
                g.initializer
                    .push(int_tensor(&pads, &[0, b, 0, 0, 0, a, 0, 0]));
                vec![node_proto(
                    &name,
                    "Pad",
                    [inputs[0].clone(), pads],
                    &out,
                    vec![],
                )]
            }
            Op::MaxPool {
                kernel,
                stride,
                padding,
            } => vec![pool("MaxPool", *kernel, *stride, *padding, None)],
            Op::AvgPool {
                kernel,
                stride,
                padding,
            } => {
                let include = Some(int("count_include_pad", 1));
                vec![pool("AveragePool", *kernel, *stride, *padding, include)]
            }
            Op::GlobalAvgPool => {
                let pooled = format!("{name}.pooled");
                vec![
                    node_proto(&name, "GlobalAveragePool", [&inputs[0]], &pooled, vec![]),
                    node_proto(
                        &format!("{name}.flatten"),
                        "Flatten",
                        [&pooled],
                        &out,
                        vec![int("axis", 1)],
                    ),
                ]
            }
            Op::Flatten => vec![node_proto(
                &name,
                "Flatten",
                [&inputs[0]],
                &out,
                vec![int("axis", 1)],
            )],
            Op::Concat => vec![node_proto(
                &name,
                "Concat",
                &inputs,
                &out,
                vec![int("axis", 1)],
            )],
            Op::Linear { weight, bias } => vec![node_proto(
                &name,
                "Gemm",
                [&inputs[0], weight, bias].map(String::from),
                &out,
                vec![int("transB", 1)],
            )],
        };
        g.node.extend(nodes);
    }
    let (c, h, w) = graph.input;
    g.input.push(value_info(
        "input",
        &[
            Dim::Param("batch"),
            Dim::Value(c),
            Dim::Value(h),
            Dim::Value(w),
        ],
    ));
    g.output.push(value_info(
        "logits",
        &[Dim::Param("batch"), Dim::Value(graph.num_classes)],
    ));
    let meta = |k: &str, v: String| StringStringEntryProto {
        key: k.into(),
        value: v,
        ..Default::default()
    };
    let list = |x: &[f32]| x.iter().map(f32::to_string).collect::<Vec<_>>().join(",");
    Ok(ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
            ..Default::default()
        }],
        producer_name: "ato-rs".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: protobuf::MessageField::some(g),
        metadata_props: vec![
            meta(
                "input_layout",
                "NCHW float32; pixels scaled to [0, 1], then (x - mean) / std per channel".into(),
            ),
            meta("normalization_mean", list(&spec.mean)),
            meta("normalization_std", list(&spec.std)),
            meta("source", spec.source.clone()),
        ],
        ..Default::default()
    })
}

/// Writes `graph` as an ONNX file at `path` (write-then-rename); the file's size in bytes.
pub fn write_onnx(path: &Path, graph: &NetworkGraph, spec: &InputSpec) -> Result<usize, OnnxError> {
    let bytes = to_onnx(graph, spec)?.write_to_bytes()?;
    ato_files::write_bytes(path, &bytes)?;
    Ok(bytes.len())
}

/// Shared constant inputs, added once.
#[derive(Default)]
struct Constants {
    relu6: bool,
    subsample: bool,
}

impl Constants {
    fn relu6(&mut self, g: &mut GraphProto) -> (String, String) {
        let names = ("relu6.min".to_string(), "relu6.max".to_string());
        if !std::mem::replace(&mut self.relu6, true) {
            g.initializer.push(scalar(&names.0, 0.0));
            g.initializer.push(scalar(&names.1, 6.0));
        }
        names
    }

    fn subsample(&mut self, g: &mut GraphProto) -> [String; 4] {
        let names = ["starts", "ends", "axes", "steps"].map(|n| format!("subsample2.{n}"));
        if !std::mem::replace(&mut self.subsample, true) {
            for (n, v) in names
                .iter()
                .zip([[0, 0], [i64::MAX, i64::MAX], [2, 3], [2, 2]])
            {
                g.initializer.push(int_tensor(n, &v));
            }
        }
        names
    }
}
