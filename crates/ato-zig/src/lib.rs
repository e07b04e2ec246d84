//! # ato-zig — channel gates, zero-invariant groups, FLOPs and compaction
//!
//! This crate holds everything ATO and the baselines (OTO, OTOv2, HESSO, magnitude) need to
//! know about *which* channels can be pruned and what pruning them costs or saves, without any model code:
//!
//! - [`Arch`] records a network as layers with channel [`Dim`]s that are either fixed or the
//!   width of a prunable **gate**. Models describe themselves through [`ArchBuilder`] and the
//!   shared block builders of [`blocks`] (basic block, bottleneck, inverted residual), so no
//!   group is ever listed by hand per layer.
//! - [`gates`] derives each gate's **zero-invariant groups** (docs/design.md §3): the member slices
//!   (conv rows, depthwise filters, BN γ/β) that are shrunk and zeroed together, the BN running
//!   statistics, and the consumer slices (next layer's input channels) cut at compaction.
//! - [`Mask`]: the channels a method keeps per gate (`true` = keep, everywhere).
//! - [`group_norms`] and [`set_dropped_to_zero`] act on a model's named variables.
//! - [`WidthPolynomial`] (alias [`FlopsPolynomial`]) is the MACs or parameter count as a
//!   polynomial in the gate widths: exact integers, differentiable tensors, prunable split.
//! - [`compact_tensors`] slices a model's tensors to the [`KeptChannels`] of a [`Mask`]; the model crate
//!   rebuilds the same architecture at the kept widths around them.
//!
//! ```
//! use ato_zig::{blocks, ArchBuilder, Dim, WidthPolynomial, gates};
//! let mut b = ArchBuilder::new();
//! let blk = blocks::basic_block(&mut b, "layer1.0", 16, 16, 1, blocks::ShortcutKind::A, (8, 8));
//! let arch = b.finish().unwrap();
//! let macs = WidthPolynomial::macs(&arch);
//! // two 3×3 convs 16→16 on 8×8: 2 · 9·16·16·64
//! assert_eq!(macs.eval(&arch.gate_widths()), 2 * 9 * 16 * 16 * 64);
//! // halving the gated inner width halves the cost
//! assert_eq!(macs.eval(&[8]), 9 * 16 * 8 * 64 * 2);
//! assert_eq!(gates(&arch)[blk.gate].consumers[0].tensor, "layer1.0.conv2.weight");
//! # let _ = Dim::Fixed(1);
//! ```

pub mod arch;
pub mod blocks;
pub mod builder;
pub mod compact;
pub mod groups;
pub mod mask;
pub mod norms;
pub mod polynomial;

pub use arch::{Arch, BnSpec, ConvSpec, Dim, GateId, GateSpec, Layer, LinearSpec};
pub use builder::{conv_out, ArchBuilder};
pub use compact::{compact_tensors, KeptChannels};
pub use groups::{gates, Gate, TensorAxis};
pub use mask::Mask;
pub use norms::{all_group_norms, group_norms, set_dropped_to_zero, NamedVars};
pub use polynomial::{FlopsPolynomial, Term, WidthPolynomial};

/// Errors of this crate: each names the gate or tensor at fault.
#[derive(Debug, thiserror::Error)]
pub enum ZigError {
    #[error("expected {expected} gate widths, got {got}")]
    WidthCount { expected: usize, got: usize },
    #[error("gate `{0}` has width 0; every gate keeps at least one channel")]
    ZeroWidth(String),
    #[error("tensor `{0}` is missing from the model's variables")]
    MissingTensor(String),
    #[error("gate `{0}` has no member tensors")]
    NoMembers(String),
    #[error("mask for gate `{gate}` has {got} entries, the gate has {expected} channels")]
    MaskLength {
        gate: String,
        expected: usize,
        got: usize,
    },
    #[error("gate `{0}` keeps no channel")]
    EmptyKeep(String),
    #[error("gate `{gate}` keeps channel {index}, but has only {width}")]
    KeepOutOfRange {
        gate: String,
        index: usize,
        width: usize,
    },
    #[error("kept channels of gate `{0}` are not strictly ascending")]
    KeepNotAscending(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
