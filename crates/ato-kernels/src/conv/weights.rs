//! A conv's weights as the kernels of one call use them, and which kernel runs which pass:
//! the direct kernel's shapes for the forward pass and the input gradient, and the scratch
//! the per-image functions need.

use super::dense;
use super::direct::{self, DirectConv, DirectShape};
use super::direct_layout;
use super::geometry::{ConvGeometry, ConvKind};
use std::borrow::Cow;

/// A conv's weights with whatever the kernels for the passes ahead prepare once per call
/// (the direct kernel's tap offsets, transposed copies).
pub(crate) struct ConvWeights<'a> {
    pub(super) raw: &'a [f32],
    /// C_in × C_out, for 1×1 convs on small planes.
    pub(super) pointwise_t: Option<Vec<f32>>,
    pub(super) direct_forward: Option<DirectConv<'a>>,
    pub(super) direct_input_grad: Option<DirectConv<'a>>,
}

/// The passes a [`ConvWeights`] is prepared for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Passes {
    Forward,
    Backward,
    /// Backward with the forward recomputed (eval-mode backward).
    Both,
}

/// The direct kernel's view of a dense conv, if it can run it (1×1 stride-1 convs are a
/// plain matrix product: they stay with gemm).
pub(super) fn direct_forward_shape(g: &ConvGeometry) -> Option<DirectShape> {
    if g.kind() != ConvKind::Dense || g.is_pointwise() {
        return None;
    }
    let s = DirectShape {
        in_channels: g.in_channels,
        out_channels: g.out_channels,
        in_h: g.in_h,
        in_w: g.in_w,
        kernel_h: g.kernel_h,
        kernel_w: g.kernel_w,
        stride: g.stride,
        padding: g.padding,
    };
    direct::supports(&s).then_some(s)
}

/// The direct kernel's view of the input gradient of a stride-1 dense conv (the "full" conv
/// of the output gradient with the transposed, flipped weights), if it can run it.
fn direct_input_grad_shape(g: &ConvGeometry) -> Option<DirectShape> {
    if g.kind() != ConvKind::Dense || g.stride != 1 || g.is_pointwise() || g.kernel_h != g.kernel_w
    {
        return None;
    }
    let s = DirectShape {
        in_channels: g.out_channels,
        out_channels: g.in_channels,
        in_h: g.out_h,
        in_w: g.out_w,
        kernel_h: g.kernel_h,
        kernel_w: g.kernel_w,
        stride: 1,
        padding: g.kernel_h - 1 - g.padding.min(g.kernel_h - 1),
    };
    (g.padding < g.kernel_h && direct::supports(&s)).then_some(s)
}

impl<'a> ConvWeights<'a> {
    pub fn new(g: &ConvGeometry, raw: &'a [f32], passes: Passes) -> Self {
        let forward = passes != Passes::Backward;
        let backward = passes != Passes::Forward;
        let pointwise_t =
            (forward && g.kind() == ConvKind::Dense && dense::small_plane(g)).then(|| {
                let (co, ci) = (g.out_channels, g.in_channels);
                let mut wt = vec![0f32; ci * co];
                for o in 0..co {
                    for i in 0..ci {
                        wt[i * co + o] = raw[o * ci + i];
                    }
                }
                wt
            });
        Self {
            raw,
            pointwise_t,
            direct_forward: direct_forward_shape(g)
                .filter(|_| forward)
                .map(|s| DirectConv::new(s, Cow::Borrowed(raw))),
            direct_input_grad: direct_input_grad_shape(g).filter(|_| backward).map(|s| {
                DirectConv::new(s, Cow::Owned(direct_layout::transposed_weights(&s, raw)))
            }),
        }
    }
}

/// Scratch elements the per-image functions need.
pub(crate) fn col_capacity(g: &ConvGeometry) -> usize {
    let direct = [direct_forward_shape(g), direct_input_grad_shape(g)]
        .iter()
        .flatten()
        .map(DirectShape::scratch_len)
        .max()
        .unwrap_or(0);
    match g.kind() {
        ConvKind::Dense => dense::col_capacity(g).max(direct),
        _ => 0,
    }
}
