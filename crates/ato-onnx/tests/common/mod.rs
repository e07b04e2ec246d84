//! What the import tests share: small built-in models, random tensors, and a writer of ONNX
//! graphs by hand (as another framework would write them).
#![allow(dead_code)]

use ato_models::{Model, ModelConfig, ModelName};
use ato_onnx::InputSpec;
use candle_core::{Device, Tensor};
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::Dimension;
use onnx_protobuf::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn small(name: ModelName, size: usize, base: Option<usize>) -> ModelConfig {
    let mut c = ModelConfig::new(name, 10, size);
    c.base_width = base;
    c
}

/// A model whose BN statistics and affine parameters are random (BN matters in eval mode).
pub fn model(cfg: &ModelConfig, seed: u64) -> Model {
    let m = Model::new(cfg, &Device::Cpu, seed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (name, var) in m.named_vars() {
        let n = var.elem_count();
        let range = if name.ends_with("running_var") {
            0.5..2.0
        } else if name.ends_with("running_mean") || name.contains("bn") && name.ends_with("bias") {
            -0.3..0.3
        } else if name.contains("bn") && name.ends_with("weight") {
            0.5..1.5
        } else {
            continue;
        };
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(range.clone())).collect();
        var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    m
}

pub fn spec() -> InputSpec {
    InputSpec {
        mean: vec![0.5; 3],
        std: vec![0.25; 3],
        source: "test".into(),
    }
}

pub fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Largest |a − b|.
pub fn gap(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

// ---- a hand-built file ----

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INTS.into(),
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INT.into(),
        i,
        ..Default::default()
    }
}

pub fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::FLOAT.into(),
        f,
        ..Default::default()
    }
}

pub fn float_proto(name: &str, t: &Tensor, raw: bool) -> TensorProto {
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    let mut p = TensorProto {
        name: name.into(),
        dims: t.dims().iter().map(|&d| d as i64).collect(),
        data_type: DataType::FLOAT as i32,
        ..Default::default()
    };
    if raw {
        p.raw_data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    } else {
        p.float_data = v;
    }
    p
}

pub fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| {
            let mut x = Dimension::new();
            match d {
                Some(v) => x.set_dim_value(*v),
                None => x.set_dim_param("N".into()),
            }
            x
        })
        .collect();
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(type_proto::Tensor {
        elem_type: DataType::FLOAT as i32,
        shape: protobuf::MessageField::some(TensorShapeProto {
            dim,
            ..Default::default()
        }),
        ..Default::default()
    }));
    ValueInfoProto {
        name: name.into(),
        type_: protobuf::MessageField::some(ty),
        ..Default::default()
    }
}

/// A graph being written by hand, as another framework would.
#[derive(Default)]
pub struct Onnx {
    pub g: GraphProto,
    weights: std::collections::HashMap<String, Tensor>,
}

impl Onnx {
    /// A float initializer (alternately raw bytes and `float_data`).
    pub fn init(&mut self, name: &str, t: Tensor) -> String {
        let raw = self.g.initializer.len().is_multiple_of(2);
        self.g.initializer.push(float_proto(name, &t, raw));
        self.weights.insert(name.into(), t);
        name.into()
    }

    pub fn node(
        &mut self,
        name: &str,
        op: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> String {
        let out = format!("{name}_out");
        self.g.node.push(NodeProto {
            name: name.into(),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            attribute: attrs,
            ..Default::default()
        });
        out
    }

    /// A `Constant` node holding `t`.
    pub fn constant(&mut self, name: &str, t: &Tensor) -> String {
        let mut p = float_proto("", t, false);
        p.name.clear();
        let attr = AttributeProto {
            name: "value".into(),
            type_: AttributeType::TENSOR.into(),
            t: protobuf::MessageField::some(p),
            ..Default::default()
        };
        self.node(name, "Constant", &[], vec![attr])
    }

    pub fn w(&self, name: &str) -> &Tensor {
        &self.weights[name]
    }

    /// The model: input `x` (N, c, size, size), output `out` (N, classes).
    pub fn model(mut self, c: i64, size: i64, out: &str, classes: i64) -> ModelProto {
        self.g
            .input
            .push(value_info("x", &[None, Some(c), Some(size), Some(size)]));
        self.g.output.push(value_info(out, &[None, Some(classes)]));
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                version: 13,
                ..Default::default()
            }],
            graph: protobuf::MessageField::some(self.g),
            ..Default::default()
        }
    }
}

pub fn square(name: &str, v: i64) -> AttributeProto {
    attr_ints(name, &[v, v])
}

pub fn pads(p: i64) -> AttributeProto {
    attr_ints("pads", &[p; 4])
}

pub fn conv_node(c: &mut Onnx, name: &str, x: &str, w: &str, b: Option<&str>, pad: i64) -> String {
    let mut ins = vec![x, w];
    ins.extend(b);
    let k = c.w(w).dims()[3] as i64;
    c.node(
        name,
        "Conv",
        &ins,
        vec![square("kernel_shape", k), pads(pad)],
    )
}
