//! The importer's operators: one ONNX node → zero (an alias) or one [`Op`].

use crate::import::Importer;
use crate::proto::{f32_as_f64, Attrs};
use crate::OnnxError;
use ato_models::graph::{Op, ValueId};
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{NodeProto, TensorProto};

const SUPPORTED: &str = "Conv, BatchNormalization, Relu, Clip, Add, Concat, MaxPool, \
    AveragePool, GlobalAveragePool, Flatten, Reshape, Gemm, MatMul, Identity, Dropout, Slice, Pad, \
    Shape, Gather, Unsqueeze";

/// Input `j` of `node` when present (an empty name is an omitted optional input).
pub(crate) fn opt_input(node: &NodeProto, j: usize) -> Option<&str> {
    node.input
        .get(j)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

impl Importer<'_> {
    /// Imports node `i` of the file.
    pub(crate) fn node(&mut self, i: usize, node: &NodeProto) -> Result<(), OnnxError> {
        self.enter(i, node);
        if node.output.is_empty() {
            return Err(self.fail("has no output"));
        }
        let op = node.op_type.as_str();
        if !(node.domain.is_empty() || node.domain == "ai.onnx") || !is_supported(op) {
            let domain = if node.domain.is_empty() {
                String::new()
            } else {
                format!(" of domain `{}`", node.domain)
            };
            let who = match node.name.as_str() {
                "" => format!("node #{i} (output `{}`)", node.output[0]),
                name => format!("node `{name}`"),
            };
            return Err(crate::import::import(format!(
                "{who} uses operator `{op}`{domain}, which ato cannot import (supported: {SUPPORTED})"
            )));
        }
        let a = Attrs::new(node);
        let v = match op {
            "Constant" => return self.constant_node(node),
            "Shape" | "Gather" | "Unsqueeze" => return self.fold_shape(node, &a),
            "Concat" if self.all_constant(node) => return self.fold_shape(node, &a),
            "Identity" if self.is_const(self.input(node, 0)?) => {
                return self.alias_constant(&node.output[0], self.input(node, 0)?);
            }
            "Identity" => self.value(self.input(node, 0)?)?,
            "Dropout" => self.dropout(node)?,
            "Relu" => self.unary(node, Op::Relu)?,
            "Clip" => self.clip(node, &a)?,
            "Conv" => self.conv(node, &a)?,
            "BatchNormalization" => self.batch_norm(node, &a)?,
            "Add" => self.add(node)?,
            "Concat" => self.concat(node, &a)?,
            "MaxPool" | "AveragePool" => self.pool(node, &a)?,
            "GlobalAveragePool" => self.unary(node, Op::GlobalAvgPool)?,
            "Flatten" => self.flatten(node, &a)?,
            "Reshape" => self.reshape(node, &a)?,
            "Gemm" | "MatMul" => self.linear(node, &a)?,
            "Slice" => self.slice(node, &a)?,
            "Pad" => self.pad(node, &a)?,
            _ => unreachable!("checked by is_supported"),
        };
        self.define(node, v)
    }

    pub(crate) fn input<'n>(&self, node: &'n NodeProto, j: usize) -> Result<&'n str, OnnxError> {
        opt_input(node, j).ok_or_else(|| self.fail(format!("has no input {j}")))
    }

    fn unary(&mut self, node: &NodeProto, op: Op) -> Result<ValueId, OnnxError> {
        let x = self.value(self.input(node, 0)?)?;
        self.push(op, &[x])
    }

    fn constant_node(&mut self, node: &NodeProto) -> Result<(), OnnxError> {
        let out = node.output[0].clone();
        let t = |data_type: DataType, dims: Vec<i64>| TensorProto {
            name: out.clone(),
            dims,
            data_type: data_type as i32,
            ..Default::default()
        };
        let attr = node
            .attribute
            .first()
            .ok_or_else(|| self.fail("has no value"))?;
        let tensor = match (attr.name.as_str(), attr.type_.enum_value()) {
            ("value", Ok(AttributeType::TENSOR)) if attr.t.is_some() => {
                let mut t = attr.t.as_ref().expect("checked").clone();
                t.name = out.clone();
                t
            }
            ("value_float", _) => TensorProto {
                float_data: vec![attr.f],
                ..t(DataType::FLOAT, vec![])
            },
            ("value_floats", _) => TensorProto {
                float_data: attr.floats.clone(),
                ..t(DataType::FLOAT, vec![attr.floats.len() as i64])
            },
            ("value_int", _) => TensorProto {
                int64_data: vec![attr.i],
                ..t(DataType::INT64, vec![])
            },
            ("value_ints", _) => TensorProto {
                int64_data: attr.ints.clone(),
                ..t(DataType::INT64, vec![attr.ints.len() as i64])
            },
            (name, _) => {
                return Err(self.fail(format!("a `{name}` constant is not supported")));
            }
        };
        self.add_constant(&out, tensor)
    }

    fn dropout(&mut self, node: &NodeProto) -> Result<ValueId, OnnxError> {
        if let Some(mode) = opt_input(node, 2) {
            let t = self.constant(mode)?;
            if t.raw_data.iter().any(|&b| b != 0) || t.int32_data.iter().any(|&b| b != 0) {
                return Err(self.fail("runs in training mode"));
            }
        }
        self.value(self.input(node, 0)?)
    }

    fn clip(&mut self, node: &NodeProto, a: &Attrs) -> Result<ValueId, OnnxError> {
        let bound = |j: usize, attr: &str| match opt_input(node, j) {
            Some(name) => self.scalar(name).map(Some),
            None => Ok(a.float(attr)),
        };
        let (lo, hi) = (bound(1, "min")?, bound(2, "max")?);
        let op = match (lo, hi) {
            (Some(lo), Some(hi)) if lo == 0.0 && hi == 6.0 => Op::Relu6,
            (Some(lo), hi) if lo == 0.0 && hi.is_none_or(|h| h == f32::INFINITY) => Op::Relu,
            _ => {
                return Err(self.fail(format!(
                    "Clip to [{lo:?}, {hi:?}] is neither ReLU [0, ∞) nor ReLU6 [0, 6], which ato cannot import"
                )))
            }
        };
        self.unary(node, op)
    }

    /// Two equal non-negative values (height, width) of `attr`, `default` when absent.
    fn square(&self, a: &Attrs, attr: &str, default: i64) -> Result<usize, OnnxError> {
        match a.ints(attr) {
            None => Ok(default as usize),
            Some(&[h, w]) if h == w && h >= 0 => Ok(h as usize),
            Some(v) => Err(self.fail(format!(
                "{attr} {v:?} are not one value for height and width, which ato cannot import"
            ))),
        }
    }

    /// The padding of `pads`: all four sides equal.
    fn pads(&self, a: &Attrs) -> Result<usize, OnnxError> {
        match a.ints("pads") {
            None => Ok(0),
            Some(&[p, q, r, s]) if p >= 0 && [q, r, s] == [p; 3] => Ok(p as usize),
            Some(v) => Err(self.fail(format!(
                "pads {v:?} are not equal on all sides, which ato cannot import"
            ))),
        }
    }

    /// Undilated windows, explicit padding.
    fn plain_window(&self, a: &Attrs) -> Result<(), OnnxError> {
        if let Some(d) = a.ints("dilations").filter(|d| d.iter().any(|&x| x != 1)) {
            return Err(self.fail(format!(
                "dilations {d:?} are not supported (ato imports dilation 1 only)"
            )));
        }
        match a.string("auto_pad").as_deref() {
            None | Some("NOTSET") | Some("") | Some("VALID") => Ok(()),
            Some(p) => Err(self.fail(format!(
                "auto_pad `{p}` is not supported (ato imports explicit pads)"
            ))),
        }
    }

    fn conv(&mut self, node: &NodeProto, a: &Attrs) -> Result<ValueId, OnnxError> {
        let x = self.value(self.input(node, 0)?)?;
        let w_name = self.input(node, 1)?;
        let (w, wd) = self.floats(w_name)?;
        let &[_, _, kh, kw] = wd.as_slice() else {
            return Err(self.fail(format!(
                "weight `{w_name}` has shape {wd:?}; ato imports 2-D convolutions"
            )));
        };
        if kh != kw
            || a.ints("kernel_shape")
                .is_some_and(|k| k != [kh as i64, kw as i64])
        {
            return Err(self.fail(format!(
                "kernel {kh}×{kw} (kernel_shape {:?}) is not square, which ato cannot import",
                a.ints("kernel_shape")
            )));
        }
        self.plain_window(a)?;
        let stride = self.square(a, "strides", 1)?;
        let padding = self.pads(a)?;
        let groups = a.int("group", 1).max(0) as usize;
        let path = self.path(w_name, "node");
        let weight = self.param(Some(w_name), format!("{path}.weight"), w, wd)?;
        let bias = match opt_input(node, 2) {
            Some(b_name) => {
                let (b, bd) = self.floats(b_name)?;
                Some(self.param(Some(b_name), format!("{path}.bias"), b, bd)?)
            }
            None => None,
        };
        let op = Op::Conv {
            weight,
            bias,
            stride,
            padding,
            groups,
        };
        self.push(op, &[x])
    }

    fn batch_norm(&mut self, node: &NodeProto, a: &Attrs) -> Result<ValueId, OnnxError> {
        // `training_mode = 1` (PyTorch's TRAINING export) is read as the inference form with the
        // stored running statistics: ato trains the model itself; the node's extra outputs must
        // be unused (checked when the node is named)
        if a.int("spatial", 1) != 1 {
            return Err(self.fail("is not spatial, which ato cannot import"));
        }
        let x = self.value(self.input(node, 0)?)?;
        let names: Vec<&str> = (1..5)
            .map(|j| self.input(node, j))
            .collect::<Result<_, _>>()?;
        let path = self.path(names[0], "bn");
        let mut canonical = Vec::new();
        for (src, suffix) in names
            .iter()
            .zip(["weight", "bias", "running_mean", "running_var"])
        {
            let (v, d) = self.floats(src)?;
            canonical.push(self.param(Some(src), format!("{path}.{suffix}"), v, d)?);
        }
        let [scale, bias, mean, var] = <[String; 4]>::try_from(canonical).expect("four");
        let eps = a.float("epsilon").map_or(1e-5, f32_as_f64);
        let op = Op::BatchNorm {
            scale,
            bias,
            mean,
            var,
            eps,
        };
        self.push(op, &[x])
    }

    fn add(&mut self, node: &NodeProto) -> Result<ValueId, OnnxError> {
        let [l, r] = node.input.as_slice() else {
            return Err(self.fail(format!("has {} inputs, not 2", node.input.len())));
        };
        let (value, bias) = match (self.is_const(l), self.is_const(r)) {
            (false, false) => {
                let (l, r) = (self.value(l)?, self.value(r)?);
                return self.push(Op::Add, &[l, r]);
            }
            (false, true) => (l, r),
            (true, false) => (r, l),
            (true, true) => return Err(self.fail("adds two constants")),
        };
        // a constant added to a bias-free Linear is its bias
        let v = self.value(value)?;
        let open = self.open_bias.get(&v).cloned();
        let Some((index, _)) = open.filter(|(_, out)| out == value && self.uses(value) == 1) else {
            return Err(self.fail(format!(
                "adds the constant `{bias}` to `{value}`; ato imports a constant Add only as the \
                 bias of the MatMul or bias-free Gemm right before it (and only user of its output)"
            )));
        };
        let (b, bd) = self.floats(bias)?;
        let features = self.shape(v)[0];
        if b.len() != features || bd.iter().rev().skip(1).any(|&d| d != 1) {
            return Err(self.fail(format!("bias `{bias}` has shape {bd:?}, not [{features}]")));
        }
        self.set_param(index, bias, b)?;
        self.open_bias.remove(&v);
        Ok(v)
    }

    /// `axis` normalised against a value of per-image rank `rank` (batch axis added).
    pub(crate) fn axis(
        &self,
        a: &Attrs,
        default: Option<i64>,
        rank: usize,
    ) -> Result<i64, OnnxError> {
        let axis = match a.get("axis") {
            Some(attr) => attr.i,
            None => default.ok_or_else(|| self.fail("has no axis"))?,
        };
        Ok(if axis < 0 {
            axis + rank as i64 + 1
        } else {
            axis
        })
    }

    fn concat(&mut self, node: &NodeProto, a: &Attrs) -> Result<ValueId, OnnxError> {
        let xs: Vec<ValueId> = node
            .input
            .iter()
            .map(|n| self.value(n))
            .collect::<Result<_, _>>()?;
        let first = *xs.first().ok_or_else(|| self.fail("has no inputs"))?;
        let axis = self.axis(a, None, self.shape(first).len())?;
        if axis != 1 || self.shape(first).len() != 3 {
            return Err(self.fail(format!(
                "concatenates along axis {axis} of {}-D values; ato imports channel concatenation (axis 1 of N, C, H, W)",
                self.shape(first).len() + 1
            )));
        }
        self.push(Op::Concat, &xs)
    }

    fn pool(&mut self, node: &NodeProto, a: &Attrs) -> Result<ValueId, OnnxError> {
        let x = self.value(self.input(node, 0)?)?;
        if a.ints("kernel_shape").is_none() {
            return Err(self.fail("has no kernel_shape"));
        }
        self.plain_window(a)?;
        let kernel = self.square(a, "kernel_shape", 0)?;
        let stride = self.square(a, "strides", 1)?;
        let padding = self.pads(a)?;
        if a.int("ceil_mode", 0) != 0 {
            // ceil_mode gives the floor's size when the windows tile the padded input exactly
            let tiles = |size: usize| {
                (size + 2 * padding)
                    .checked_sub(kernel)
                    .map(|r| r % stride.max(1) == 0)
            };
            let s = self.shape(x);
            if s.len() != 3 || tiles(s[1]) != Some(true) || tiles(s[2]) != Some(true) {
                return Err(self.fail(format!(
                    "ceil_mode 1 adds a partial window on a {s:?} input, which ato cannot import"
                )));
            }
        }
        let op = if node.op_type == "MaxPool" {
            if a.int("storage_order", 0) != 0 {
                return Err(self.fail("storage_order 1 is not supported"));
            }
            Op::MaxPool {
                kernel,
                stride,
                padding,
            }
        } else {
            if padding > 0 && a.int("count_include_pad", 0) == 0 {
                return Err(self.fail(
                    "pads with count_include_pad = 0 (padded pixels left out of the mean), which \
                     ato cannot import: ato's AvgPool counts padded zeros (count_include_pad = 1)",
                ));
            }
            Op::AvgPool {
                kernel,
                stride,
                padding,
            }
        };
        self.push(op, &[x])
    }
}

fn is_supported(op: &str) -> bool {
    op == "Constant" || SUPPORTED.split(", ").any(|s| s == op)
}
