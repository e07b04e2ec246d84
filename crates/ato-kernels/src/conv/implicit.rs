//! Stride-1 dense convolution without im2col ("implicit GEMM" on the padded image).
//!
//! With the image zero-padded to Hp × Wp and output pixels numbered in padded-width
//! coordinates `q = oh·Wp + ow` (columns `ow ≥ W_out` are junk), the input that tap (kh, kw)
//! sees at `q` is `xp[c, q + kh·Wp + kw]`: for each tap the im2col rows are plain shifted
//! views of the padded image, which the gemm reads in place (contiguous along `q`, so it needs
//! no packing). A conv is then KH·KW accumulating gemms with inner dimension C_in, on
//! `P' = (H_out − 1)·Wp + W_out` columns; the junk columns cost (Wp − W_out)/W_out extra work
//! (6% at 32×32, 25% at 8×8) but the 9× im2col copy disappears.

use super::geometry::ConvGeometry;
use super::im2col::{copy, crop_image, pad_image, padded_dims};
use crate::matmul::{matmul, MatMut, MatRef};
use crate::simd::multiversion;

/// Whether the implicit gemm can run this conv: stride 1, dense, a real kernel, and enough
/// input channels for a gemm with inner dimension C_in to pay.
fn eligible(g: &ConvGeometry) -> bool {
    g.stride == 1 && g.groups == 1 && !g.is_pointwise() && g.in_channels >= 8
}

/// Measured on CIFAR ResNet shapes: im2col wins the forward pass (its gemm has the 9×
/// longer inner dimension and no junk columns) ...
pub(crate) fn applies_forward(_g: &ConvGeometry) -> bool {
    false
}

/// ... and the input gradient except on wide images, where the im2col copy dominates ...
pub(crate) fn applies_input_grad(g: &ConvGeometry) -> bool {
    eligible(g) && g.out_w >= 32
}

/// ... while the weight gradient (inner dimension = pixels) always gains.
pub(crate) fn applies_weight_grad(g: &ConvGeometry) -> bool {
    eligible(g)
}

/// Columns of the padded-width output.
fn wide_len(g: &ConvGeometry) -> usize {
    let (_, wp) = padded_dims(g);
    (g.out_h - 1) * wp + g.out_w
}

fn padded_image_len(g: &ConvGeometry) -> usize {
    let (hp, wp) = padded_dims(g);
    g.in_channels * hp * wp
}

/// Scratch elements the per-image functions need.
pub(crate) fn scratch_len(g: &ConvGeometry) -> usize {
    if !eligible(g) {
        return 0;
    }
    padded_image_len(g) + g.out_channels * wide_len(g)
}

/// Tap `t`'s weights as a C_out × C_in matrix (strided view of the C_out × C_in × KH × KW
/// weight).
fn tap_weights<'a>(g: &ConvGeometry, w: &'a [f32], t: usize) -> MatRef<'a> {
    MatRef {
        data: &w[t..],
        rows: g.out_channels,
        cols: g.in_channels,
        row_stride: g.patch_len(),
        col_stride: g.taps(),
    }
}

/// Offset of tap `t` in a padded plane.
fn tap_offset(g: &ConvGeometry, t: usize) -> usize {
    let (_, wp) = padded_dims(g);
    (t / g.kernel_w) * wp + t % g.kernel_w
}

multiversion! {
/// `wide[c, oh·Wp + ow] = compact[c, oh, ow]`, junk columns zeroed.
fn widen(g: &ConvGeometry, compact: &[f32], wide: &mut [f32]) {
    let (_, wp) = padded_dims(g);
    let (po, pw) = (g.out_plane(), wide_len(g));
    for (c, dst) in wide.chunks_mut(pw).take(g.out_channels).enumerate() {
        let src = &compact[c * po..][..po];
        for (oh, row) in src.chunks(g.out_w).enumerate() {
            let start = oh * wp;
            copy(&mut dst[start..start + g.out_w], row);
            let end = (start + wp).min(pw);
            dst[start + g.out_w..end].fill(0.0);
        }
    }
}
}

multiversion! {
/// `compact[c, oh, ow] = wide[c, oh·Wp + ow]`.
fn narrow(g: &ConvGeometry, wide: &[f32], compact: &mut [f32]) {
    let (_, wp) = padded_dims(g);
    let (po, pw) = (g.out_plane(), wide_len(g));
    for (c, dst) in compact.chunks_mut(po).take(g.out_channels).enumerate() {
        let src = &wide[c * pw..][..pw];
        for (oh, row) in dst.chunks_mut(g.out_w).enumerate() {
            copy(row, &src[oh * wp..][..g.out_w]);
        }
    }
}
}

/// `out_n = conv(x_n, w)` for one image.
pub(crate) fn forward_image(
    g: &ConvGeometry,
    x_n: &[f32],
    w: &[f32],
    out_n: &mut [f32],
    scratch: &mut [f32],
    t: usize,
) {
    let (hp, wp) = padded_dims(g);
    let (plane, pw) = (hp * wp, wide_len(g));
    let (xp, wide) = scratch.split_at_mut(padded_image_len(g));
    pad_image(g, x_n, xp);
    let wide = &mut wide[..g.out_channels * pw];
    for tap in 0..g.taps() {
        let input = MatRef {
            data: &xp[tap_offset(g, tap)..],
            rows: g.in_channels,
            cols: pw,
            row_stride: plane,
            col_stride: 1,
        };
        let dst = MatMut::row_major(wide, g.out_channels, pw, pw);
        matmul(dst, tap_weights(g, w, tap), input, tap > 0, t);
    }
    narrow(g, wide, out_n);
}

/// `dx_n = ∂conv/∂x · dout_n` for one image.
pub(crate) fn input_grad_image(
    g: &ConvGeometry,
    dout_n: &[f32],
    w: &[f32],
    dx_n: &mut [f32],
    scratch: &mut [f32],
    t: usize,
) {
    let (hp, wp) = padded_dims(g);
    let (plane, pw) = (hp * wp, wide_len(g));
    let (dxp, wide) = scratch.split_at_mut(padded_image_len(g));
    let wide = &mut wide[..g.out_channels * pw];
    widen(g, dout_n, wide);
    dxp.fill(0.0);
    let grad = MatRef::row_major(wide, g.out_channels, pw, pw);
    for tap in 0..g.taps() {
        let dst = MatMut::row_major(&mut dxp[tap_offset(g, tap)..], g.in_channels, pw, plane);
        matmul(dst, tap_weights(g, w, tap).t(), grad, true, t);
    }
    crop_image(g, dxp, dx_n);
}

/// `acc (+)= dout_n × shifted(x_n)ᵀ` for one image, with `acc` in tap-major layout
/// (KH·KW × C_out × C_in, see [`tap_major_to_weight`]); overwrites `acc` while `*first`.
pub(crate) fn weight_grad_image(
    g: &ConvGeometry,
    x_n: &[f32],
    dout_n: &[f32],
    acc: &mut [f32],
    first: &mut bool,
    scratch: &mut [f32],
    t: usize,
) {
    let (hp, wp) = padded_dims(g);
    let (plane, pw) = (hp * wp, wide_len(g));
    let (xp, wide) = scratch.split_at_mut(padded_image_len(g));
    let wide = &mut wide[..g.out_channels * pw];
    pad_image(g, x_n, xp);
    widen(g, dout_n, wide);
    let grad = MatRef::row_major(wide, g.out_channels, pw, pw);
    let block = g.out_channels * g.in_channels;
    for (tap, acc_t) in acc.chunks_mut(block).take(g.taps()).enumerate() {
        let input_t = MatRef {
            data: &xp[tap_offset(g, tap)..],
            rows: pw,
            cols: g.in_channels,
            row_stride: 1,
            col_stride: plane,
        };
        let dst = MatMut::row_major(acc_t, g.out_channels, g.in_channels, g.in_channels);
        matmul(dst, grad, input_t, !*first, t);
    }
    *first = false;
}

/// Reorders a tap-major weight gradient (KH·KW × C_out × C_in) into the weight layout
/// (C_out × C_in × KH × KW).
pub(crate) fn tap_major_to_weight(g: &ConvGeometry, tap_major: &[f32]) -> Vec<f32> {
    let (co, ci, taps) = (g.out_channels, g.in_channels, g.taps());
    let mut w = vec![0f32; co * ci * taps];
    for t in 0..taps {
        for o in 0..co {
            for i in 0..ci {
                w[(o * ci + i) * taps + t] = tap_major[(t * co + o) * ci + i];
            }
        }
    }
    w
}
