//! # ato-onnx
//!
//! ONNX in and out of ato-rs.
//!
//! # Export
//!
//! A model out of ato-rs as a standard ONNX file: [`to_onnx`] turns the eval-mode graph of a
//! model ([`ato_models::Model::graph`]) into an ONNX `ModelProto`, [`write_onnx`] writes it
//! (write-then-rename). `ato export RUN_DIR --onnx FILE` is its command line.
//!
//! - Opset 17, IR version 8. Operators: `Conv` (grouped and depthwise via `group`, optional
//!   bias), `BatchNormalization` (inference form, not folded), `Relu`, `Clip(0, 6)` for ReLU6,
//!   `Add`, `Slice` (the option-A shortcut's `x[:, :, ::2, ::2]`), `Pad` (its zero channels),
//!   `MaxPool`, `AveragePool` (`count_include_pad = 1`), `GlobalAveragePool` + `Flatten`,
//!   `Flatten`, `Concat` (channels), `Gemm` (transB = 1) — what ONNX Runtime, TensorRT and
//!   OpenVINO run.
//! - One input `input` (N, C, H, W) with a dynamic batch dimension `batch`, one output
//!   `logits` (N, classes). Tensors keep the model's own variable names.
//! - The metadata (`metadata_props`) says what the input must be: the data set's per-channel
//!   mean and std (`normalization_mean`, `normalization_std`), the layout, and the source.
//!
//! # Import
//!
//! [`read_onnx`] (a file) and [`from_proto`] (a parsed `ModelProto`) turn a CNN classifier
//! written as ONNX — by ato-rs or by another framework — back into a [`NetworkGraph`]:
//! one float input (N, C, H, W) with a static square image, one output (N, classes), and the
//! operators `Conv`, `BatchNormalization`, `Relu`, `Clip` (as ReLU or ReLU6), `Add` (of two
//! values, or a constant bias after `MatMul`/`Gemm`), `Concat` (channels), `MaxPool`,
//! `AveragePool`, `GlobalAveragePool`, `Flatten`, `Reshape` (flattening), `Gemm`, `MatMul`,
//! `Identity`, `Dropout`, `Slice` (the option-A subsample) and `Pad` (zero channels), with
//! weights as float32 initializers or `Constant` nodes. Tensors get the names ato's trainer
//! expects: a layer whose weight is called `X.weight` keeps the path `X`, any other gets
//! `node{k}` (`bn{k}` for BatchNorm), and its tensors are `{path}.weight`, `{path}.bias`,
//! `{path}.running_mean`, `{path}.running_var`. Anything else — another operator, dilated
//! or asymmetric windows, `ceil_mode`, shared weights, external data — is an error that names
//! the node and the operator.
//!
//! The protobuf side is the `onnx-protobuf` crate's generated types (protobuf 3.4), not
//! hand-written encoding.

mod export;
mod import;
mod import_layout;
mod import_nodes;
mod import_shape;
mod proto;

pub use export::{to_onnx, write_onnx};
pub use import::{from_proto, parse_onnx, read_onnx};

#[cfg(doc)]
use ato_models::graph::NetworkGraph;

/// The ONNX opset the files declare.
pub const OPSET: i64 = 17;

/// Why an export or an import failed.
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
    /// The file could not be read at all (missing, unreadable).
    #[error("cannot read ONNX file `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file's bytes are not an ONNX model.
    #[error("`{path}` is not a readable ONNX model (truncated or corrupt): {reason}")]
    NotOnnx { path: String, reason: String },
    /// A well-formed model that ato cannot represent (the message names node and operator).
    #[error("ONNX import: {0}")]
    Import(String),
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
