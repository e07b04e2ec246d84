//! [`read_onnx`] and [`from_proto`]: an ONNX classifier as a [`NetworkGraph`]. The
//! operator-by-operator mapping is in `import_nodes.rs`; this file holds the graph's input
//! and output, constants, values, parameters and their canonical names.

use crate::proto::{dims, image_input, read_f32, read_i64, tensor_dims};
use crate::OnnxError;
use ato_models::graph::{NetworkGraph, Node, Op, ValueId};
use ato_models::graph_shapes::{op_name, value_shapes, ValueShape};
use candle_core::{Device, Tensor};
use onnx_protobuf::{GraphProto, Message, ModelProto, NodeProto, TensorProto, ValueInfoProto};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Reads an ONNX file as a [`NetworkGraph`] (canonical tensor names, see the crate docs).
pub fn read_onnx(path: &Path) -> Result<NetworkGraph, OnnxError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_onnx(&bytes, &shown)
}

/// An ONNX file's bytes as a [`NetworkGraph`]; errors name the file as `shown`.
pub fn parse_onnx(bytes: &[u8], shown: &str) -> Result<NetworkGraph, OnnxError> {
    let not_onnx = |reason: String| OnnxError::NotOnnx {
        path: shown.to_string(),
        reason,
    };
    let model = ModelProto::parse_from_bytes(bytes).map_err(|e| not_onnx(e.to_string()))?;
    if model.graph.is_none() {
        return Err(not_onnx(format!(
            "{} bytes without a graph (empty, or not an ONNX ModelProto)",
            bytes.len()
        )));
    }
    from_proto(&model).map_err(|e| match e {
        OnnxError::Import(m) => OnnxError::Import(format!("`{shown}`: {m}")),
        e => e,
    })
}

/// An ONNX model as a [`NetworkGraph`] (canonical tensor names, see the crate docs).
pub fn from_proto(model: &ModelProto) -> Result<NetworkGraph, OnnxError> {
    let g = model
        .graph
        .as_ref()
        .ok_or_else(|| import("the model has no graph".into()))?;
    let mut imp = Importer::new(g)?;
    for (i, node) in g.node.iter().enumerate() {
        imp.node(i, node)?;
    }
    imp.finish(g)
}

pub(crate) fn import(msg: String) -> OnnxError {
    OnnxError::Import(msg)
}

/// The state of one import: ONNX names → our values and constants, and the graph so far.
pub(crate) struct Importer<'a> {
    /// Initializers and `Constant` outputs by name.
    consts: HashMap<String, Cow<'a, TensorProto>>,
    /// `Identity` outputs of constants → the constant's own name.
    const_alias: HashMap<String, String>,
    /// ONNX value names → our values (aliases share a value).
    values: HashMap<String, ValueId>,
    /// How many node inputs and graph outputs read each ONNX name.
    uses: HashMap<String, usize>,
    /// Per-image shape of each of our values.
    shapes: Vec<ValueShape>,
    nodes: Vec<Node>,
    params: Vec<(String, Tensor)>,
    param_dims: HashMap<String, Vec<usize>>,
    /// Layer paths given out.
    paths: HashSet<String>,
    /// Initializer → the node that made it a parameter (weight sharing is an error).
    owner: HashMap<String, String>,
    /// Linear values whose bias is a zero placeholder: (param index, ONNX output name).
    pub(crate) open_bias: HashMap<ValueId, (usize, String)>,
    /// The input's batch size when the file fixes it.
    pub(crate) batch: Option<i64>,
    /// "node `x` (`Op`)" of the node being imported, for messages.
    at: String,
}

impl<'a> Importer<'a> {
    fn new(g: &'a GraphProto) -> Result<Self, OnnxError> {
        let consts: HashMap<String, Cow<'a, TensorProto>> = g
            .initializer
            .iter()
            .map(|t| (t.name.clone(), Cow::Borrowed(t)))
            .collect();
        let inputs: Vec<&ValueInfoProto> = g
            .input
            .iter()
            .filter(|v| !consts.contains_key(&v.name))
            .collect();
        let [input] = inputs.as_slice() else {
            let names: Vec<&str> = inputs.iter().map(|v| v.name.as_str()).collect();
            return Err(import(format!(
                "the graph has {} inputs {names:?}; ato imports exactly one image input (N, C, H, W)",
                inputs.len()
            )));
        };
        let (batch, chw) = image_input(input)?;
        let mut uses: HashMap<String, usize> = HashMap::new();
        let read = g.node.iter().flat_map(|n| n.input.iter());
        for name in read.chain(g.output.iter().map(|o| &o.name)) {
            *uses.entry(name.clone()).or_default() += 1;
        }
        Ok(Self {
            consts,
            const_alias: HashMap::new(),
            values: HashMap::from([(input.name.clone(), 0)]),
            uses,
            shapes: vec![chw],
            nodes: Vec::new(),
            params: Vec::new(),
            param_dims: HashMap::new(),
            paths: HashSet::new(),
            owner: HashMap::new(),
            open_bias: HashMap::new(),
            batch,
            at: String::new(),
        })
    }

    fn finish(self, g: &GraphProto) -> Result<NetworkGraph, OnnxError> {
        let [output] = g.output.as_slice() else {
            let names: Vec<&str> = g.output.iter().map(|v| v.name.as_str()).collect();
            return Err(import(format!(
                "the graph has {} outputs {names:?}; ato imports exactly one, the logits (N, classes)",
                names.len()
            )));
        };
        let id = *self.values.get(&output.name).ok_or_else(|| {
            import(format!(
                "the graph output `{}` is not computed by any node",
                output.name
            ))
        })?;
        if id == 0 || id != self.nodes.len() {
            return Err(import(format!(
                "the graph output `{}` is not the last computed value (value {id} of {})",
                output.name,
                self.nodes.len()
            )));
        }
        let &[classes] = self.shapes[id].as_slice() else {
            return Err(import(format!(
                "the graph output `{}` has shape (N, {:?}), not logits (N, classes)",
                output.name, self.shapes[id]
            )));
        };
        if let Some(Some(declared)) = tensor_dims(output).map(|d| d.get(1).copied().flatten()) {
            if declared != classes as i64 {
                return Err(import(format!(
                    "the graph output `{}` is declared with {declared} classes, the nodes compute {classes}",
                    output.name
                )));
            }
        }
        let (c, h, w) = (self.shapes[0][0], self.shapes[0][1], self.shapes[0][2]);
        let graph = NetworkGraph {
            nodes: self.nodes,
            params: self.params,
            input: (c, h, w),
            num_classes: classes,
        };
        let shapes = graph
            .shapes()
            .map_err(|e| import(format!("the imported graph does not check: {e}")))?;
        if shapes.last() != Some(&vec![classes]) {
            return Err(import(format!(
                "the imported graph's logits have shape {:?}, not [{classes}]",
                shapes.last()
            )));
        }
        Ok(graph)
    }

    /// Sets the node being imported (for messages).
    pub(crate) fn enter(&mut self, i: usize, node: &NodeProto) {
        let op = &node.op_type;
        self.at = match (node.name.as_str(), node.output.first()) {
            ("", Some(out)) => format!("node #{i} (output `{out}`, operator `{op}`)"),
            ("", None) => format!("node #{i} (operator `{op}`)"),
            (name, _) => format!("node `{name}` (`{op}`)"),
        };
    }

    /// An import error about the current node.
    pub(crate) fn fail(&self, msg: impl std::fmt::Display) -> OnnxError {
        import(format!("{}: {msg}", self.at))
    }

    pub(crate) fn uses(&self, name: &str) -> usize {
        self.uses.get(name).copied().unwrap_or(0)
    }

    pub(crate) fn is_const(&self, name: &str) -> bool {
        self.consts.contains_key(self.origin(name))
    }

    /// The value named `name` (an earlier node's output or the graph input).
    pub(crate) fn value(&self, name: &str) -> Result<ValueId, OnnxError> {
        if let Some(&v) = self.values.get(name) {
            return Ok(v);
        }
        Err(self.fail(if self.is_const(name) {
            format!("input `{name}` is a constant where ato expects a computed value")
        } else {
            format!("input `{name}` is not produced by an earlier node (nodes must be in topological order)")
        }))
    }

    /// The per-image shape of a value.
    pub(crate) fn shape(&self, v: ValueId) -> &ValueShape {
        &self.shapes[v]
    }

    /// The constant named `name` (an initializer or a `Constant` node's output).
    pub(crate) fn constant(&self, name: &str) -> Result<&TensorProto, OnnxError> {
        if let Some(t) = self.consts.get(self.origin(name)) {
            return Ok(t);
        }
        Err(self.fail(if self.values.contains_key(name) {
            format!("input `{name}` must be a constant (an initializer or a Constant node), not a computed value")
        } else {
            format!("input `{name}` is neither an initializer nor an earlier node's output")
        }))
    }

    /// A float32 constant's values and dims.
    pub(crate) fn floats(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>), OnnxError> {
        let t = self.constant(name)?;
        let v = read_f32(t).map_err(|e| self.fail(e))?;
        Ok((v, dims(t)))
    }

    /// An int64 constant's values.
    pub(crate) fn ints(&self, name: &str) -> Result<Vec<i64>, OnnxError> {
        read_i64(self.constant(name)?).map_err(|e| self.fail(e))
    }

    /// A float scalar constant (one value).
    pub(crate) fn scalar(&self, name: &str) -> Result<f32, OnnxError> {
        match self.floats(name)?.0.as_slice() {
            &[x] => Ok(x),
            v => Err(self.fail(format!("`{name}` holds {} values, not one", v.len()))),
        }
    }

    /// The constant's own name when `name` is an `Identity` of it, else `name`.
    fn origin<'n>(&'n self, name: &'n str) -> &'n str {
        self.const_alias.get(name).map_or(name, String::as_str)
    }

    /// Names `alias` (an `Identity` output) the constant `name`.
    pub(crate) fn alias_constant(&mut self, alias: &str, name: &str) -> Result<(), OnnxError> {
        if self.is_const(alias) || self.values.contains_key(alias) {
            return Err(self.fail(format!("redefines `{alias}`")));
        }
        let origin = self.origin(name).to_string();
        self.const_alias.insert(alias.to_string(), origin);
        Ok(())
    }

    pub(crate) fn add_constant(&mut self, name: &str, t: TensorProto) -> Result<(), OnnxError> {
        if self.is_const(name) || self.values.contains_key(name) {
            return Err(self.fail(format!("redefines `{name}`")));
        }
        self.consts.insert(name.to_string(), Cow::Owned(t));
        Ok(())
    }

    /// Names the node's first output `v`; its other outputs must be unused.
    pub(crate) fn define(&mut self, node: &NodeProto, v: ValueId) -> Result<(), OnnxError> {
        let out = &node.output[0];
        if out.is_empty() || self.is_const(out) || self.values.contains_key(out) {
            return Err(self.fail(format!("output `{out}` is empty or already defined")));
        }
        if let Some(extra) = node.output[1..].iter().find(|o| self.uses(o) > 0) {
            return Err(self.fail(format!(
                "its output `{extra}` is used; ato imports only the first output"
            )));
        }
        self.values.insert(out.clone(), v);
        Ok(())
    }

    /// A fresh layer path: `X` when the weight is called `X.weight` and `X` is free, else
    /// `{prefix}{k}` with k the 1-based index of the node about to be added.
    pub(crate) fn path(&mut self, weight: &str, prefix: &str) -> String {
        let named = self
            .origin(weight)
            .strip_suffix(".weight")
            .filter(|x| !x.is_empty() && !self.paths.contains(*x));
        let path = match named {
            Some(x) => x.to_string(),
            None => {
                let base = format!("{prefix}{}", self.nodes.len() + 1);
                let mut path = base.clone();
                let mut i = 1;
                while self.paths.contains(&path) {
                    i += 1;
                    path = format!("{base}_{i}");
                }
                path
            }
        };
        self.paths.insert(path.clone());
        path
    }

    /// Adds parameter `name` (canonical) from the ONNX tensor `source` (None: made here).
    pub(crate) fn param(
        &mut self,
        source: Option<&str>,
        name: String,
        data: Vec<f32>,
        dims: Vec<usize>,
    ) -> Result<String, OnnxError> {
        if let Some(src) = source.map(|s| self.origin(s).to_string()) {
            if let Some(first) = self.owner.get(&src) {
                return Err(self.fail(format!(
                    "initializer `{src}` is also used by {first} (shared weights), which ato cannot import"
                )));
            }
            self.owner.insert(src, self.at.clone());
        }
        if self.param_dims.contains_key(&name) {
            return Err(self.fail(format!("tensor name `{name}` is given twice")));
        }
        let t = Tensor::from_vec(data, dims.as_slice(), &Device::Cpu)?;
        self.param_dims.insert(name.clone(), dims);
        self.params.push((name.clone(), t));
        Ok(name)
    }

    pub(crate) fn param_count(&self) -> usize {
        self.params.len()
    }

    /// Replaces parameter `index`'s values (a bias folded from a following Add).
    pub(crate) fn set_param(
        &mut self,
        index: usize,
        source: &str,
        data: Vec<f32>,
    ) -> Result<(), OnnxError> {
        let source = self.origin(source).to_string();
        if let Some(first) = self.owner.get(&source) {
            return Err(self.fail(format!(
                "initializer `{source}` is also used by {first} (shared weights), which ato cannot import"
            )));
        }
        self.owner.insert(source, self.at.clone());
        let (_, t) = &mut self.params[index];
        *t = Tensor::from_vec(data, t.dims(), &Device::Cpu)?;
        Ok(())
    }

    /// Appends a node; its output value, with its shape checked.
    pub(crate) fn push(&mut self, op: Op, inputs: &[ValueId]) -> Result<ValueId, OnnxError> {
        let name = op_name(&op);
        self.nodes.push(Node {
            op,
            inputs: inputs.to_vec(),
        });
        let dims = &self.param_dims;
        match value_shapes(&self.nodes, &self.shapes[0], |n| dims.get(n).cloned()) {
            Ok(shapes) => self.shapes = shapes,
            Err(e) => {
                self.nodes.pop();
                return Err(self.fail(format!("as ato's {name}: {e}")));
            }
        }
        Ok(self.nodes.len())
    }
}
