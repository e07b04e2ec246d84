//! Small helpers on the generated ONNX types: builders for the exporter, readers (tensors,
//! attributes) for the importer.

use crate::OnnxError;
use candle_core::{DType, Tensor};
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::{DataLocation, DataType};
use onnx_protobuf::tensor_shape_proto::Dimension;
use onnx_protobuf::type_proto;
use onnx_protobuf::{
    AttributeProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use protobuf::Enum;

pub(crate) fn float_tensor(name: &str, t: &Tensor) -> Result<TensorProto, OnnxError> {
    let v = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(TensorProto {
        name: name.into(),
        dims: t.dims().iter().map(|&d| d as i64).collect(),
        data_type: DataType::FLOAT as i32,
        raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    })
}

pub(crate) fn scalar(name: &str, x: f32) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: DataType::FLOAT as i32,
        raw_data: x.to_le_bytes().to_vec(),
        ..Default::default()
    }
}

pub(crate) fn int_tensor(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![v.len() as i64],
        data_type: DataType::INT64 as i32,
        raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

pub(crate) fn node_proto<S: AsRef<str>>(
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

pub(crate) fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INT.into(),
        i,
        ..Default::default()
    }
}

pub(crate) fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INTS.into(),
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub(crate) fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::FLOAT.into(),
        f,
        ..Default::default()
    }
}

pub(crate) enum Dim {
    Value(usize),
    Param(&'static str),
}

pub(crate) fn value_info(name: &str, dims: &[Dim]) -> ValueInfoProto {
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

// ---- readers ----

fn dtype_name(code: i32) -> String {
    match DataType::from_i32(code) {
        Some(d) => format!("{d:?}").to_lowercase(),
        None => format!("data type {code}"),
    }
}

/// The element count its dims say (1 for a scalar), checked non-negative.
fn numel(t: &TensorProto) -> Result<usize, String> {
    t.dims.iter().try_fold(1usize, |n, &d| {
        usize::try_from(d)
            .map(|d| n * d)
            .map_err(|_| format!("tensor `{}` has a negative dimension {d}", t.name))
    })
}

fn check_stored(t: &TensorProto, want: DataType) -> Result<usize, String> {
    if t.data_location.enum_value() == Ok(DataLocation::EXTERNAL) || !t.external_data.is_empty() {
        return Err(format!(
            "tensor `{}` is stored outside the file (external data), which ato cannot read",
            t.name
        ));
    }
    if t.data_type != want as i32 {
        return Err(format!(
            "tensor `{}` is {}, expected {}",
            t.name,
            dtype_name(t.data_type),
            dtype_name(want as i32)
        ));
    }
    numel(t)
}

fn mismatch(t: &TensorProto, n: usize, got: usize) -> String {
    format!(
        "tensor `{}` holds {got} values, its shape {:?} needs {n}",
        t.name, t.dims
    )
}

/// A float32 tensor's values (raw little-endian bytes or `float_data`).
pub(crate) fn read_f32(t: &TensorProto) -> Result<Vec<f32>, String> {
    let n = check_stored(t, DataType::FLOAT)?;
    let v: Vec<f32> = if t.raw_data.is_empty() {
        t.float_data.clone()
    } else {
        if t.raw_data.len() != 4 * n {
            return Err(mismatch(t, n, t.raw_data.len() / 4));
        }
        t.raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    if v.len() != n {
        return Err(mismatch(t, n, v.len()));
    }
    Ok(v)
}

/// An int64 tensor's values (raw little-endian bytes or `int64_data`).
pub(crate) fn read_i64(t: &TensorProto) -> Result<Vec<i64>, String> {
    let n = check_stored(t, DataType::INT64)?;
    let v: Vec<i64> = if t.raw_data.is_empty() {
        t.int64_data.clone()
    } else {
        if t.raw_data.len() != 8 * n {
            return Err(mismatch(t, n, t.raw_data.len() / 8));
        }
        t.raw_data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect()
    };
    if v.len() != n {
        return Err(mismatch(t, n, v.len()));
    }
    Ok(v)
}

/// The dims of a tensor as sizes.
pub(crate) fn dims(t: &TensorProto) -> Vec<usize> {
    t.dims.iter().map(|&d| d.max(0) as usize).collect()
}

/// A node's attributes by name.
pub(crate) struct Attrs<'a>(&'a NodeProto);

impl<'a> Attrs<'a> {
    pub(crate) fn new(node: &'a NodeProto) -> Self {
        Self(node)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.0.attribute.iter().find(|a| a.name == name)
    }

    pub(crate) fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }

    pub(crate) fn ints(&self, name: &str) -> Option<&'a [i64]> {
        self.get(name).map(|a| a.ints.as_slice())
    }

    pub(crate) fn float(&self, name: &str) -> Option<f32> {
        self.get(name).map(|a| a.f)
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }
}

/// An f32 attribute as the f64 it was written from: the shortest decimal that gives the
/// same f32 (an ε of 1e-5 comes back as 1e-5, not 9.99999974e-6).
pub(crate) fn f32_as_f64(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

/// The dims of a tensor value's declared type (None: unknown dim), if it has one.
pub(crate) fn tensor_dims(v: &ValueInfoProto) -> Option<Vec<Option<i64>>> {
    let Some(type_proto::Value::TensorType(t)) = v.type_.as_ref()?.value.as_ref() else {
        return None;
    };
    let shape = t.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| d.has_dim_value().then(|| d.dim_value()))
            .collect(),
    )
}

/// The image input's batch size (when fixed) and its (C, H, W).
pub(crate) fn image_input(v: &ValueInfoProto) -> Result<(Option<i64>, Vec<usize>), OnnxError> {
    let bad = |why: &str| {
        OnnxError::Import(format!(
            "the graph input `{}` {why}; ato imports a float32 image batch (N, C, H, W) with static C, H = W",
            v.name
        ))
    };
    let Some(type_proto::Value::TensorType(t)) = v.type_.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(bad("is not a tensor"));
    };
    if t.elem_type != DataType::FLOAT as i32 {
        return Err(bad(&format!("has element type {}", t.elem_type)));
    }
    let d = tensor_dims(v).ok_or_else(|| bad("has no shape"))?;
    let &[n, Some(c), Some(h), Some(w)] = d.as_slice() else {
        return Err(bad(&format!("has shape {d:?}")));
    };
    if c <= 0 || h <= 0 || h != w {
        return Err(bad(&format!("has shape (N, {c}, {h}, {w})")));
    }
    Ok((n, vec![c as usize, h as usize, w as usize]))
}
