//! The importer's operators that reshape, slice or pad data, and the classifier:
//! Flatten, Reshape, Gemm / MatMul, Slice (the option-A subsample), Pad (zero channels).

use crate::import::Importer;
use crate::import_nodes::opt_input;
use crate::proto::Attrs;
use crate::OnnxError;
use ato_models::graph::{Op, ValueId};
use onnx_protobuf::NodeProto;

/// `v` (rows × cols, row-major) transposed.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols)
        .flat_map(|c| (0..rows).map(move |r| v[r * cols + c]))
        .collect()
}

impl Importer<'_> {
    /// Flattens `x` to (N, F): an alias when it already is flat.
    fn flat(&mut self, x: ValueId) -> Result<ValueId, OnnxError> {
        if self.shape(x).len() == 1 {
            Ok(x)
        } else {
            self.push(Op::Flatten, &[x])
        }
    }

    pub(crate) fn flatten(&mut self, node: &NodeProto, a: &Attrs) -> Result<ValueId, OnnxError> {
        let x = self.value(self.input(node, 0)?)?;
        let axis = self.axis(a, Some(1), self.shape(x).len())?;
        if axis != 1 {
            return Err(self.fail(format!(
                "flattens from axis {axis}; ato imports Flatten with axis 1 only"
            )));
        }
        self.flat(x)
    }

    pub(crate) fn reshape(&mut self, node: &NodeProto, a: &Attrs) -> Result<ValueId, OnnxError> {
        let x = self.value(self.input(node, 0)?)?;
        let target = match opt_input(node, 1) {
            Some(s) => self.ints(s)?,
            None => a.ints("shape").unwrap_or_default().to_vec(),
        };
        let f = self.shape(x).iter().product::<usize>() as i64;
        let copy = a.int("allowzero", 0) == 0;
        let batch_ok = |n: i64| (n == 0 && copy) || Some(n) == self.batch;
        let flat = match *target.as_slice() {
            [-1, g] => g == f,
            [n, g] => batch_ok(n) && (g == f || g == -1),
            _ => false,
        };
        if !flat {
            return Err(self.fail(format!(
                "reshapes to {target:?}; ato imports only a Reshape that flattens to (N, {f})"
            )));
        }
        self.flat(x)
    }

    pub(crate) fn linear(&mut self, node: &NodeProto, a: &Attrs) -> Result<ValueId, OnnxError> {
        let gemm = node.op_type == "Gemm";
        if gemm {
            let alpha = a.float("alpha").unwrap_or(1.0);
            let beta = a.float("beta").unwrap_or(1.0);
            if alpha != 1.0 || (beta != 1.0 && opt_input(node, 2).is_some()) {
                return Err(self.fail(format!(
                    "alpha {alpha}, beta {beta} are not supported (ato imports alpha = beta = 1)"
                )));
            }
            if a.int("transA", 0) != 0 {
                return Err(self.fail("transA = 1 is not supported"));
            }
        }
        let x = self.value(self.input(node, 0)?)?;
        if self.shape(x).len() != 1 {
            return Err(self.fail(format!(
                "multiplies a {}-D value; ato imports {} of (N, features) only",
                self.shape(x).len() + 1,
                node.op_type
            )));
        }
        let w_name = self.input(node, 1)?;
        let (w, wd) = self.floats(w_name)?;
        let &[r, c] = wd.as_slice() else {
            return Err(self.fail(format!("weight `{w_name}` has shape {wd:?}, not 2-D")));
        };
        // our weight is (out, in)
        let trans_b = gemm && a.int("transB", 0) != 0;
        let (w, out, inp) = if trans_b {
            (w, r, c)
        } else {
            (transpose(&w, r, c), c, r)
        };
        let path = self.path(w_name, "node");
        let weight = self.param(Some(w_name), format!("{path}.weight"), w, vec![out, inp])?;
        let bias_name = format!("{path}.bias");
        let (bias, open) = match opt_input(node, 2).filter(|_| gemm) {
            Some(c_name) => {
                let (b, bd) = self.floats(c_name)?;
                if b.len() != out || bd.iter().rev().skip(1).any(|&d| d != 1) {
                    return Err(self.fail(format!("bias `{c_name}` has shape {bd:?}, not [{out}]")));
                }
                (self.param(Some(c_name), bias_name, b, vec![out])?, false)
            }
            None => (
                self.param(None, bias_name, vec![0.0; out], vec![out])?,
                true,
            ),
        };
        let index = self.param_count() - 1;
        let v = self.push(Op::Linear { weight, bias }, &[x])?;
        if open {
            self.open_bias.insert(v, (index, node.output[0].clone()));
        }
        Ok(v)
    }

    pub(crate) fn slice(&mut self, node: &NodeProto, a: &Attrs) -> Result<ValueId, OnnxError> {
        let x = self.value(self.input(node, 0)?)?;
        let list = |j: usize, attr: &str| -> Result<Option<Vec<i64>>, OnnxError> {
            match opt_input(node, j) {
                Some(n) => self.ints(n).map(Some),
                None if node.input.len() <= 1 => Ok(a.ints(attr).map(<[i64]>::to_vec)),
                None => Ok(None),
            }
        };
        let starts = list(1, "starts")?.unwrap_or_default();
        let ends = list(2, "ends")?.unwrap_or_default();
        let n = starts.len();
        let axes = list(3, "axes")?.unwrap_or_else(|| (0..n as i64).collect());
        let steps = list(4, "steps")?.unwrap_or_else(|| vec![1; n]);
        let s = self.shape(x).clone();
        let bad = || {
            self.fail(format!(
                "slices starts {starts:?} ends {ends:?} axes {axes:?} steps {steps:?}; ato imports only x[:, :, ::2, ::2]"
            ))
        };
        if s.len() != 3 || [ends.len(), axes.len(), steps.len()] != [n; 3] {
            return Err(bad());
        }
        let mut halved = [false; 2];
        for i in 0..n {
            let axis = if axes[i] < 0 { axes[i] + 4 } else { axes[i] };
            let dim = match axis {
                1..=3 => s[axis as usize - 1] as i64,
                _ => return Err(bad()),
            };
            let whole = starts[i] == 0 && ends[i] >= dim;
            match (axis, steps[i]) {
                (2 | 3, 2) if whole && !halved[axis as usize - 2] => {
                    halved[axis as usize - 2] = true
                }
                (_, 1) if whole => {}
                _ => return Err(bad()),
            }
        }
        if halved != [true, true] {
            return Err(bad());
        }
        self.push(Op::Subsample2, &[x])
    }

    pub(crate) fn pad(&mut self, node: &NodeProto, a: &Attrs) -> Result<ValueId, OnnxError> {
        let x = self.value(self.input(node, 0)?)?;
        let mode = a.string("mode").unwrap_or_else(|| "constant".into());
        let (pads, value, axes) = if node.input.len() >= 2 {
            let value = match opt_input(node, 2) {
                Some(v) => self.scalar(v)?,
                None => 0.0,
            };
            let axes = opt_input(node, 3).map(|n| self.ints(n)).transpose()?;
            (self.ints(self.input(node, 1)?)?, value, axes)
        } else {
            let pads = a.ints("pads").unwrap_or_default().to_vec();
            (pads, a.float("value").unwrap_or(0.0), None)
        };
        let axes = axes.unwrap_or_else(|| (0..pads.len() as i64 / 2).collect());
        let n = axes.len();
        let mut channels = (0, 0);
        let mut ok = mode == "constant" && value == 0.0 && pads.len() == 2 * n;
        for i in 0..n.min(pads.len() / 2) {
            let axis = if axes[i] < 0 { axes[i] + 4 } else { axes[i] };
            let (before, after) = (pads[i], pads[i + n]);
            match axis {
                1 if before >= 0 && after >= 0 => channels = (before as usize, after as usize),
                _ if before == 0 && after == 0 => {}
                _ => ok = false,
            }
        }
        if !ok || self.shape(x).len() != 3 {
            return Err(self.fail(format!(
                "pads {pads:?} (mode `{mode}`, value {value}); ato imports only zero padding of the channel axis"
            )));
        }
        let (before, after) = channels;
        self.push(Op::PadChannels { before, after }, &[x])
    }
}
