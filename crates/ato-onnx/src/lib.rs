//! # ato-onnx
//!
//! A model out of ato-rs as a standard ONNX file: [`to_onnx`] turns the eval-mode graph of a
//! model ([`ato_models::Model::graph`]) into an ONNX `ModelProto`, [`write_onnx`] writes it
//! (write-then-rename). `ato export RUN_DIR --onnx FILE` is its command line.
//!
//! - Opset 17, IR version 8. Operators: `Conv` (grouped and depthwise via `group`),
//!   `BatchNormalization` (inference form, not folded), `Relu`, `Clip(0, 6)` for ReLU6, `Add`,
//!   `Slice` (the option-A shortcut's `x[:, :, ::2, ::2]`), `Pad` (its zero channels), `MaxPool`,
//!   `GlobalAveragePool` + `Flatten`, `Gemm` (transB = 1) — what ONNX Runtime, TensorRT and
//!   OpenVINO run.
//! - One input `input` (N, C, H, W) with a dynamic batch dimension `batch`, one output
//!   `logits` (N, classes). Tensors keep the model's own variable names.
//! - The metadata (`metadata_props`) says what the input must be: the data set's per-channel
//!   mean and std (`normalization_mean`, `normalization_std`), the layout, and the source.
//!
//! The protobuf side is the `onnx-protobuf` crate's generated types (protobuf 3.4), not
//! hand-written encoding.

use ato_models::graph::{NetworkGraph, Op, ValueId};
use candle_core::{DType, Tensor};
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::Dimension;
use onnx_protobuf::type_proto;
use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use std::path::Path;

/// The ONNX opset the files declare.
pub const OPSET: i64 = 17;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("ONNX encoding: {0}")]
    Encode(#[from] protobuf::Error),
    #[error(transparent)]
    Write(#[from] ato_files::WriteError),
    #[error("graph: {0}")]
    Graph(String),
}

/// What a user must feed the exported model, stated in its metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    /// Per-channel mean subtracted after scaling pixels to [0, 1] (one per input channel).
    pub mean: Vec<f32>,
    /// Per-channel std divided by after the mean.
    pub std: Vec<f32>,
    /// Where the model came from (a run folder, a file), for the metadata.
    pub source: String,
}

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
        let nodes = match &node.op {
            Op::Conv {
                weight,
                stride,
                padding,
                groups,
            } => {
                let k = kernel(weight)?;
                let (s, p) = (*stride as i64, *padding as i64);
                vec![node_proto(
                    &name,
                    "Conv",
                    [inputs[0].clone(), weight.clone()],
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
            Op::MaxPool3x3S2P1 => vec![node_proto(
                &name,
                "MaxPool",
                [&inputs[0]],
                &out,
                vec![
                    ints("kernel_shape", &[3, 3]),
                    ints("strides", &[2, 2]),
                    ints("pads", &[1, 1, 1, 1]),
                ],
            )],
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

fn float_tensor(name: &str, t: &Tensor) -> Result<TensorProto, OnnxError> {
    let v = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(TensorProto {
        name: name.into(),
        dims: t.dims().iter().map(|&d| d as i64).collect(),
        data_type: DataType::FLOAT as i32,
        raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    })
}

fn scalar(name: &str, x: f32) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: DataType::FLOAT as i32,
        raw_data: x.to_le_bytes().to_vec(),
        ..Default::default()
    }
}

fn int_tensor(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![v.len() as i64],
        data_type: DataType::INT64 as i32,
        raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn node_proto<S: AsRef<str>>(
    name: &str,
    op: &str,
    inputs: impl IntoIterator<Item = S>,
    output: &str,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        name: name.into(),
        op_type: op.into(),
        input: inputs.into_iter().map(|s| s.as_ref().to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INT.into(),
        i,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INTS.into(),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::FLOAT.into(),
        f,
        ..Default::default()
    }
}

enum Dim {
    Value(usize),
    Param(&'static str),
}

fn value_info(name: &str, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| {
            let mut x = Dimension::new();
            match d {
                Dim::Value(v) => x.set_dim_value(*v as i64),
                Dim::Param(p) => x.set_dim_param(p.to_string()),
            }
            x
        })
        .collect();
    let tensor = type_proto::Tensor {
        elem_type: DataType::FLOAT as i32,
        shape: protobuf::MessageField::some(TensorShapeProto {
            dim,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(tensor));
    ValueInfoProto {
        name: name.into(),
        type_: protobuf::MessageField::some(ty),
        ..Default::default()
    }
}
