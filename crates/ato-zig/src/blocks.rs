//! Shared block builders. Each declares its gates and layers once; the model crate instantiates
//! tensors from the returned specs and the groups and FLOPs follow from the same record.
//!
//! Gating policy (docs/design.md §3), identical for ATO, OTO and OTOv2:
//! - basic block: the inner channel (conv1's output);
//! - bottleneck: conv1's and conv2's outputs (two gates);
//! - inverted residual with expansion > 1: the hidden width (expand conv + BN + depthwise + BN);
//! - the residual stream, the stem, projections and the classifier stay fixed.

use crate::arch::{BnSpec, ConvSpec, Dim, GateId};
use crate::builder::ArchBuilder;
use serde::{Deserialize, Serialize};

/// A convolution followed by its batch normalisation.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvBnSpec {
    pub conv: ConvSpec,
    pub bn: BnSpec,
}

impl ConvBnSpec {
    /// Output spatial size.
    pub fn out_hw(&self) -> (usize, usize) {
        self.conv.out_hw
    }
}

/// Declares a conv (dense, or depthwise when `in_dim == out_dim` and `depthwise`) + BN pair.
#[allow(clippy::too_many_arguments)]
pub fn conv_bn(
    b: &mut ArchBuilder,
    conv_path: &str,
    bn_path: &str,
    in_dim: Dim,
    out_dim: Dim,
    kernel: usize,
    stride: usize,
    in_hw: (usize, usize),
) -> ConvBnSpec {
    let conv = b.conv(
        conv_path,
        in_dim,
        out_dim,
        kernel,
        stride,
        kernel / 2,
        in_hw,
    );
    let bn = b.bn(bn_path, out_dim);
    ConvBnSpec { conv, bn }
}

fn depthwise_bn(
    b: &mut ArchBuilder,
    prefix: &str,
    dim: Dim,
    stride: usize,
    in_hw: (usize, usize),
) -> ConvBnSpec {
    let conv = b.depthwise(format!("{prefix}.conv"), dim, 3, stride, 1, in_hw);
    let bn = b.bn(format!("{prefix}.bn"), dim);
    ConvBnSpec { conv, bn }
}

/// How a residual block matches its shortcut to a change of shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ShortcutKind {
    /// Option A of He et al.: strided identity with zero-padded channels (no parameters).
    A,
    /// Option B: 1×1 convolution + BN where the shape changes.
    #[default]
    B,
}

/// The shortcut a residual block ended up with.
#[derive(Clone, Debug, PartialEq)]
pub enum Shortcut {
    Identity,
    /// Take every `stride`-th pixel and pad `pad` zero channels on each side.
    ZeroPad {
        stride: usize,
        pad: usize,
    },
    Projection(ConvBnSpec),
}

fn shortcut(
    b: &mut ArchBuilder,
    prefix: &str,
    kind: ShortcutKind,
    in_ch: usize,
    out_ch: usize,
    stride: usize,
    in_hw: (usize, usize),
) -> Shortcut {
    if stride == 1 && in_ch == out_ch {
        return Shortcut::Identity;
    }
    match kind {
        ShortcutKind::A => {
            assert!(
                out_ch >= in_ch && (out_ch - in_ch).is_multiple_of(2),
                "option A pads evenly"
            );
            Shortcut::ZeroPad {
                stride,
                pad: (out_ch - in_ch) / 2,
            }
        }
        ShortcutKind::B => Shortcut::Projection(conv_bn(
            b,
            &format!("{prefix}.shortcut.conv"),
            &format!("{prefix}.shortcut.bn"),
            Dim::Fixed(in_ch),
            Dim::Fixed(out_ch),
            1,
            stride,
            in_hw,
        )),
    }
}

/// ResNet basic block: 3×3 conv → BN → ReLU → (gate) → 3×3 conv → BN, + shortcut, ReLU.
#[derive(Clone, Debug, PartialEq)]
pub struct BasicBlockSpec {
    pub conv1: ConvBnSpec,
    pub conv2: ConvBnSpec,
    pub shortcut: Shortcut,
    pub gate: GateId,
    pub out_channels: usize,
}

/// Declares a basic block at `prefix` (e.g. `layer1.0`) with `planes` inner/out channels.
pub fn basic_block(
    b: &mut ArchBuilder,
    prefix: &str,
    in_ch: usize,
    planes: usize,
    stride: usize,
    kind: ShortcutKind,
    in_hw: (usize, usize),
) -> BasicBlockSpec {
    let inner = b.gate(format!("{prefix}.conv1"), planes);
    let conv1 = conv_bn(
        b,
        &format!("{prefix}.conv1"),
        &format!("{prefix}.bn1"),
        Dim::Fixed(in_ch),
        inner,
        3,
        stride,
        in_hw,
    );
    let conv2 = conv_bn(
        b,
        &format!("{prefix}.conv2"),
        &format!("{prefix}.bn2"),
        inner,
        Dim::Fixed(planes),
        3,
        1,
        conv1.out_hw(),
    );
    let shortcut = shortcut(b, prefix, kind, in_ch, planes, stride, in_hw);
    BasicBlockSpec {
        conv1,
        conv2,
        shortcut,
        gate: inner.gate().expect("gated"),
        out_channels: planes,
    }
}

/// ResNet bottleneck (v1.5, stride on the 3×3): 1×1 → 3×3 → 1×1 (×4), two gates.
#[derive(Clone, Debug, PartialEq)]
pub struct BottleneckSpec {
    pub conv1: ConvBnSpec,
    pub conv2: ConvBnSpec,
    pub conv3: ConvBnSpec,
    pub shortcut: Shortcut,
    pub gates: [GateId; 2],
    pub out_channels: usize,
}

/// Declares a bottleneck block with inner width `planes` and output `planes * 4`.
pub fn bottleneck(
    b: &mut ArchBuilder,
    prefix: &str,
    in_ch: usize,
    planes: usize,
    stride: usize,
    in_hw: (usize, usize),
) -> BottleneckSpec {
    let out_ch = planes * 4;
    let g1 = b.gate(format!("{prefix}.conv1"), planes);
    let g2 = b.gate(format!("{prefix}.conv2"), planes);
    let p = |s: &str| format!("{prefix}.{s}");
    let conv1 = conv_bn(
        b,
        &p("conv1"),
        &p("bn1"),
        Dim::Fixed(in_ch),
        g1,
        1,
        1,
        in_hw,
    );
    let conv2 = conv_bn(b, &p("conv2"), &p("bn2"), g1, g2, 3, stride, conv1.out_hw());
    let conv3 = conv_bn(
        b,
        &p("conv3"),
        &p("bn3"),
        g2,
        Dim::Fixed(out_ch),
        1,
        1,
        conv2.out_hw(),
    );
    let shortcut = shortcut(b, prefix, ShortcutKind::B, in_ch, out_ch, stride, in_hw);
    BottleneckSpec {
        conv1,
        conv2,
        conv3,
        shortcut,
        gates: [g1.gate().expect("gated"), g2.gate().expect("gated")],
        out_channels: out_ch,
    }
}

/// MobileNetV2 inverted residual: [1×1 expand → BN → ReLU6] → 3×3 depthwise → BN → ReLU6
/// → (gate) → 1×1 project → BN, + identity when shapes match.
#[derive(Clone, Debug, PartialEq)]
pub struct InvertedResidualSpec {
    /// Absent when the expansion factor is 1.
    pub expand: Option<ConvBnSpec>,
    pub depthwise: ConvBnSpec,
    pub project: ConvBnSpec,
    pub gate: Option<GateId>,
    pub residual: bool,
    pub out_channels: usize,
}

/// Declares an inverted residual block; the hidden width `in_ch * expansion` is gated when
/// `expansion > 1`.
pub fn inverted_residual(
    b: &mut ArchBuilder,
    prefix: &str,
    in_ch: usize,
    out_ch: usize,
    stride: usize,
    expansion: usize,
    in_hw: (usize, usize),
) -> InvertedResidualSpec {
    let p = |s: &str| format!("{prefix}.{s}");
    let (expand, hidden, gate) = if expansion != 1 {
        let hidden = b.gate(p("hidden"), in_ch * expansion);
        let e = conv_bn(
            b,
            &p("expand.conv"),
            &p("expand.bn"),
            Dim::Fixed(in_ch),
            hidden,
            1,
            1,
            in_hw,
        );
        (Some(e), hidden, hidden.gate())
    } else {
        (None, Dim::Fixed(in_ch), None)
    };
    let depthwise = depthwise_bn(b, &p("dw"), hidden, stride, in_hw);
    let project = conv_bn(
        b,
        &p("project.conv"),
        &p("project.bn"),
        hidden,
        Dim::Fixed(out_ch),
        1,
        1,
        depthwise.out_hw(),
    );
    InvertedResidualSpec {
        expand,
        depthwise,
        project,
        gate,
        residual: stride == 1 && in_ch == out_ch,
        out_channels: out_ch,
    }
}
