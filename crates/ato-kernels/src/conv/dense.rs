//! Dense (`groups == 1`) convolution on the CPU: per image, the output is the weight matrix
//! (C_out × C_in·KH·KW) times the im2col matrix of a band of output rows (the input image
//! itself for a 1×1 stride-1 conv). The per-image functions take the im2col buffer from the
//! caller (see [`col_capacity`]); the batch functions run images in parallel.

use super::geometry::ConvGeometry;
use super::im2col::{col2im_add, crop_image, im2col, pad_image, padded_len};
use super::implicit;
use crate::matmul::{matmul, MatMut, MatRef};
use crate::parallel::sum_in_chunk_order;
use crate::simd::multiversion;
use std::ops::Range;

/// Elements of im2col matrix per band: 96 Ki f32 = 384 KiB, half of a Zen core's L2 share.
const COL_BAND_ELEMS: usize = 96 * 1024;

/// Output-row bands sized so one band's im2col matrix fits [`COL_BAND_ELEMS`].
fn bands(g: &ConvGeometry) -> impl Iterator<Item = Range<usize>> {
    let rows = (COL_BAND_ELEMS / (g.patch_len() * g.out_w).max(1)).clamp(1, g.out_h.max(1));
    let out_h = g.out_h;
    (0..out_h)
        .step_by(rows)
        .map(move |start| start..(start + rows).min(out_h))
}

/// Scratch elements the per-image functions need: the padded image (or its gradient)
/// followed by the im2col buffer of one band.
pub(crate) fn col_capacity(g: &ConvGeometry) -> usize {
    let im2col = if g.is_pointwise() {
        if small_plane(g) {
            g.out_plane() * g.in_channels.max(g.out_channels)
        } else {
            0
        }
    } else {
        padded_len(g) + bands(g).map(|b| b.len()).max().unwrap_or(0) * g.out_w * g.patch_len()
    };
    im2col.max(implicit::scratch_len(g))
}

/// Pixels below which a 1×1 conv computes the transposed product (pixels × channels): the
/// gemm's register tile spans its unit-stride output dimension, which is then the (larger)
/// channel count instead of a handful of pixels.
const SMALL_PLANE: usize = 64;

pub(crate) fn small_plane(g: &ConvGeometry) -> bool {
    g.is_pointwise() && g.out_plane() < SMALL_PLANE
}

multiversion! {
/// `dst[c, p] = src[p, c]` for a `pixels × channels` source.
fn transpose_into(src: &[f32], pixels: usize, channels: usize, dst: &mut [f32]) {
    for (c, row) in dst.chunks_mut(pixels).take(channels).enumerate() {
        for (p, v) in row.iter_mut().enumerate() {
            *v = src[p * channels + c];
        }
    }
}
}

/// `out (C_out × P) = lhs (C_out × C_in) × rhs (C_in × P)` for a 1×1 conv, through the
/// transposed product on small planes.
fn pointwise_product(
    lhs: MatRef,
    rhs: MatRef,
    out: &mut [f32],
    scratch: &mut [f32],
    small: bool,
    t: usize,
) {
    let (rows, pixels) = (lhs.rows, rhs.cols);
    if small {
        let tmp = &mut scratch[..pixels * rows];
        matmul(
            MatMut::row_major(tmp, pixels, rows, rows),
            rhs.t(),
            lhs.t(),
            false,
            t,
        );
        transpose_into(tmp, pixels, rows, out);
    } else {
        matmul(
            MatMut::row_major(out, rows, pixels, pixels),
            lhs,
            rhs,
            false,
            t,
        );
    }
}

/// The forward of a 1×1 conv on a small plane, from the transposed weight `wt`
/// (C_in × C_out, see [`small_plane`]): `out_nᵀ = x_nᵀ · wt`, with `wt` read in place.
pub(crate) fn pointwise_forward_small(
    g: &ConvGeometry,
    x_n: &[f32],
    wt: &[f32],
    out_n: &mut [f32],
    scratch: &mut [f32],
    t: usize,
) {
    let (p, ci, co) = (g.out_plane(), g.in_channels, g.out_channels);
    let tmp = &mut scratch[..p * co];
    let input_t = MatRef::row_major(x_n, ci, p, p).t();
    matmul(
        MatMut::row_major(tmp, p, co, co),
        input_t,
        MatRef::row_major(wt, ci, co, co),
        false,
        t,
    );
    transpose_into(tmp, p, co, out_n);
}

/// Splits the scratch into (padded image, im2col band).
fn split_scratch<'a>(g: &ConvGeometry, scratch: &'a mut [f32]) -> (&'a mut [f32], &'a mut [f32]) {
    scratch.split_at_mut(padded_len(g))
}

/// The padded image to read im2col from: `x_n` itself for an unpadded conv.
fn padded<'a>(g: &ConvGeometry, x_n: &'a [f32], xp: &'a mut [f32]) -> &'a [f32] {
    if g.padding == 0 {
        x_n
    } else {
        pad_image(g, x_n, xp);
        xp
    }
}

/// `out_n = conv(x_n, w)` for one image.
pub(crate) fn forward_image(
    g: &ConvGeometry,
    x_n: &[f32],
    w: &[f32],
    out_n: &mut [f32],
    col: &mut [f32],
    t: usize,
) {
    let k = g.patch_len();
    let p = g.out_plane();
    if implicit::applies_forward(g) {
        return implicit::forward_image(g, x_n, w, out_n, col, t);
    }
    let weight = MatRef::row_major(w, g.out_channels, k, k);
    if g.is_pointwise() {
        let input = MatRef::row_major(x_n, g.in_channels, p, p);
        pointwise_product(weight, input, out_n, col, small_plane(g), t);
        return;
    }
    let (xp, col) = split_scratch(g, col);
    let xp = padded(g, x_n, xp);
    for band in bands(g) {
        let len = band.len() * g.out_w;
        im2col(g, xp, band.clone(), col);
        let dst = &mut out_n[band.start * g.out_w..];
        let cols = MatRef::row_major(&col[..k * len], k, len, len);
        matmul(
            MatMut::row_major(dst, g.out_channels, len, p),
            weight,
            cols,
            false,
            t,
        );
    }
}

/// `dx_n = ∂conv/∂x · dout_n` for one image.
pub(crate) fn input_grad_image(
    g: &ConvGeometry,
    dout_n: &[f32],
    w: &[f32],
    dx_n: &mut [f32],
    col: &mut [f32],
    t: usize,
) {
    let k = g.patch_len();
    let p = g.out_plane();
    if implicit::applies_input_grad(g) {
        return implicit::input_grad_image(g, dout_n, w, dx_n, col, t);
    }
    let weight_t = MatRef::row_major(w, g.out_channels, k, k).t();
    if g.is_pointwise() {
        let grad = MatRef::row_major(dout_n, g.out_channels, p, p);
        pointwise_product(weight_t, grad, dx_n, col, small_plane(g), t);
        return;
    }
    let (padded_grad, col) = split_scratch(g, col);
    let unpadded = g.padding == 0;
    let dxp: &mut [f32] = if unpadded { dx_n } else { padded_grad };
    dxp.fill(0.0);
    for band in bands(g) {
        let len = band.len() * g.out_w;
        let grad = MatRef::row_major(&dout_n[band.start * g.out_w..], g.out_channels, len, p);
        matmul(
            MatMut::row_major(&mut col[..k * len], k, len, len),
            weight_t,
            grad,
            false,
            t,
        );
        col2im_add(g, &col[..k * len], band, dxp);
    }
    if !unpadded {
        crop_image(g, padded_grad, dx_n);
    }
}

/// `acc (+)= dout_n × im2col(x_n)ᵀ` for one image; overwrites `acc` while `*first`.
pub(crate) fn weight_grad_image(
    g: &ConvGeometry,
    x_n: &[f32],
    dout_n: &[f32],
    acc: &mut [f32],
    first: &mut bool,
    col: &mut [f32],
    t: usize,
) {
    let k = g.patch_len();
    let p = g.out_plane();
    if implicit::applies_weight_grad(g) {
        return implicit::weight_grad_image(g, x_n, dout_n, acc, first, col, t);
    }
    if g.is_pointwise() {
        let grad = MatRef::row_major(dout_n, g.out_channels, p, p);
        let input_t = MatRef::row_major(x_n, g.in_channels, p, p).t();
        matmul(
            MatMut::row_major(acc, g.out_channels, k, k),
            grad,
            input_t,
            !*first,
            t,
        );
        *first = false;
        return;
    }
    let (xp, col) = split_scratch(g, col);
    let xp = padded(g, x_n, xp);
    for band in bands(g) {
        let len = band.len() * g.out_w;
        im2col(g, xp, band.clone(), col);
        let grad = MatRef::row_major(&dout_n[band.start * g.out_w..], g.out_channels, len, p);
        let cols_t = MatRef::row_major(&col[..k * len], k, len, len).t();
        matmul(
            MatMut::row_major(acc, g.out_channels, k, k),
            grad,
            cols_t,
            !*first,
            t,
        );
        *first = false;
    }
}

/// The weight gradient from per-chunk partials of [`weight_grad_image`]: their sum in chunk
/// order, in the weight's layout.
pub(crate) fn finish_weight_grad(g: &ConvGeometry, partials: Vec<Vec<f32>>) -> Vec<f32> {
    let total = sum_in_chunk_order(partials, g.out_channels * g.patch_len());
    if implicit::applies_weight_grad(g) {
        implicit::tap_major_to_weight(g, &total)
    } else {
        total
    }
}
