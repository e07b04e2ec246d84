//! # ato-models — the networks ATO prunes
//!
//! CIFAR ResNet-20/32/56/110 (shortcut A or B), ImageNet ResNet-18/34/50 and MobileNetV2
//! (ImageNet layout, and a CIFAR variant with a stride-1 stem), written in candle, any class
//! count. Every model:
//!
//! - describes itself through the block builders of `ato-zig`, so its gates, zero-invariant
//!   groups and FLOPs polynomial come from the same record as its layers ([`Model::arch`],
//!   [`Model::gates`], [`Model::macs_polynomial`]);
//! - has per-gate widths in its [`ModelConfig`] (`widths`), so a compact model is a normal
//!   model of the registry;
//! - has a **gated forward**: [`Model::forward_t`] takes an optional (C_g,) vector per gate
//!   that multiplies the gated channels, differentiably (the controller's masks);
//! - uses train-mode BatchNorm with running statistics, and eval mode;
//! - is initialised from a seeded ChaCha RNG (same seed ⇒ same weights), compacts to the kept
//!   channels ([`Model::compact`]) and saves/loads as safetensors + an architecture file.
//!
//! [`latency`] times a compact model against its dense twin side by side.
//!
//! ```no_run
//! use ato_models::{Model, ModelConfig};
//! use candle_core::{Device, Tensor};
//! let cfg = ModelConfig::cifar("resnet20", 10);
//! let model = Model::new(&cfg, &Device::Cpu, 0).unwrap();
//! let x = Tensor::zeros((2, 3, 32, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
//! let logits = model.forward_t(&x, None, false).unwrap();
//! assert_eq!(logits.dims(), [2, 10]);
//! println!("{} params, {} MACs", model.param_count(), model.macs());
//! ```

pub mod config;
pub mod graph;
mod graph_eval;
pub mod graph_groups;
pub mod graph_net;
pub mod graph_shapes;
pub mod graph_sketch;
pub mod graph_spec;
pub mod io;
pub mod latency;
pub mod layers;
pub mod mobilenetv2;
pub mod model;
pub mod params;
pub mod pool;
pub mod resnet;

pub use config::{Family, ModelConfig, ModelName, ShortcutKind};
pub use model::{describe, is_buffer, FrozenModel, Model};

/// Errors building, loading or compacting a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown model `{0}` (known: resnet20, resnet32, resnet56, resnet110, resnet18, resnet34, resnet50, mobilenetv2)")]
    UnknownModel(String),
    #[error("invalid model config: {0}")]
    InvalidConfig(String),
    #[error("tensor `{0}` is missing")]
    MissingTensor(String),
    #[error("tensor `{0}` is not part of this architecture")]
    UnexpectedTensor(String),
    #[error("tensor `{0}` is defined twice")]
    DuplicateTensor(String),
    #[error("tensor `{name}` has shape {got:?}, the architecture expects {expected:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Zig(#[from] ato_zig::ZigError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
