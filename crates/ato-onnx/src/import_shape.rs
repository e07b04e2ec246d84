//! Shape arithmetic folded at import: `Shape`, `Gather`, `Unsqueeze` and an all-constant
//! `Concat` of int64 vectors, as PyTorch writes `x.view(x.size(0), -1)`
//! (Shape → Gather → Unsqueeze → Concat → Reshape). Every shape but the batch is static here;
//! the batch entry of a `Shape` folds to 0, ONNX Reshape's "copy this dimension", so the
//! pattern ends in a flattening Reshape to (0, −1).

use crate::import::Importer;
use crate::import_nodes::opt_input;
use crate::proto::Attrs;
use crate::OnnxError;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{NodeProto, TensorProto};

fn int64(name: &str, values: Vec<i64>, dims: Vec<i64>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims,
        data_type: DataType::INT64 as i32,
        int64_data: values,
        ..Default::default()
    }
}

impl Importer<'_> {
    /// Whether every input of `node` is a constant (then a `Concat` is shape arithmetic).
    pub(crate) fn all_constant(&self, node: &NodeProto) -> bool {
        !node.input.is_empty() && node.input.iter().all(|n| self.is_const(n))
    }

    /// Folds a shape-arithmetic node into a constant named by its output.
    pub(crate) fn fold_shape(&mut self, node: &NodeProto, a: &Attrs) -> Result<(), OnnxError> {
        let out = node.output[0].clone();
        let x = self.input(node, 0)?;
        let folded = match node.op_type.as_str() {
            "Shape" => {
                let v = self.value(x)?;
                // the batch (dynamic) is 0: Reshape's "copy the input's dimension"
                let mut dims: Vec<i64> = vec![0];
                dims.extend(self.shape(v).iter().map(|&d| d as i64));
                let n = dims.len() as i64;
                let clamp = |i: i64| (if i < 0 { i + n } else { i }).clamp(0, n) as usize;
                let start = clamp(a.int("start", 0));
                let end = clamp(a.int("end", n));
                let dims = dims[start..end.max(start)].to_vec();
                let len = dims.len() as i64;
                int64(&out, dims, vec![len])
            }
            "Gather" => {
                let data = self.ints(x).map_err(|_| {
                    self.fail(
                        "gathers from a computed value; ato imports Gather on constant shapes only",
                    )
                })?;
                let idx_name = self.input(node, 1)?;
                let scalar = self.constant(idx_name)?.dims.is_empty();
                let idx = self.ints(idx_name)?;
                if a.int("axis", 0) != 0 {
                    return Err(self.fail("gathers along an axis other than 0"));
                }
                let n = data.len() as i64;
                let picked = idx
                    .iter()
                    .map(|&i| {
                        let j = if i < 0 { i + n } else { i };
                        data.get(j as usize)
                            .copied()
                            .ok_or_else(|| self.fail(format!("index {i} is outside {n} values")))
                    })
                    .collect::<Result<Vec<i64>, _>>()?;
                let dims = if scalar {
                    vec![]
                } else {
                    vec![picked.len() as i64]
                };
                int64(&out, picked, dims)
            }
            "Unsqueeze" => {
                let data = self.ints(x).map_err(|_| {
                    self.fail("unsqueezes a computed value; ato imports Unsqueeze on constant shapes only")
                })?;
                let axes = match opt_input(node, 1) {
                    Some(s) => self.ints(s)?,
                    None => a.ints("axes").unwrap_or_default().to_vec(),
                };
                let rank = self.constant(x)?.dims.len();
                if rank > 0 || axes != [0] {
                    return Err(self.fail(format!(
                        "unsqueezes a rank-{rank} constant at {axes:?}; ato folds a scalar to a vector only"
                    )));
                }
                int64(&out, data, vec![1])
            }
            "Concat" => {
                let mut values = Vec::new();
                for n in &node.input {
                    if self.constant(n)?.dims.len() > 1 {
                        return Err(self.fail("concatenates constants of rank > 1"));
                    }
                    values.extend(self.ints(n)?);
                }
                let len = values.len() as i64;
                int64(&out, values, vec![len])
            }
            op => return Err(self.fail(format!("`{op}` is not shape arithmetic"))),
        };
        self.add_constant(&out, folded)
    }
}
