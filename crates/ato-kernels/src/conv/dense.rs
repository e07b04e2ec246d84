//! Dense (`groups == 1`) convolution on the CPU: per image, the output is the weight matrix
//! (C_out × C_in·KH·KW) times the im2col matrix of a band of output rows (the input image
//! itself for a 1×1 stride-1 conv). Images run in parallel; each thread keeps its im2col
//! buffer between calls.

use super::geometry::ConvGeometry;
use super::im2col::{col2im_add, im2col};
use crate::matmul::{matmul, MatMut, MatRef};
use crate::parallel::{fixed_chunks, threads, with_scratch};
use crate::storage::output_buffer;
use rayon::prelude::*;
use std::ops::Range;

/// Elements of im2col matrix per band: 96 Ki f32 = 384 KiB, half of a Zen core's L2 share.
const COL_BAND_ELEMS: usize = 96 * 1024;

/// Weight-gradient partial sums: the batch is cut into at most this many fixed chunks.
const WEIGHT_GRAD_PARTIALS: usize = 8;

/// Output-row bands sized so one band's im2col matrix fits [`COL_BAND_ELEMS`].
fn bands(g: &ConvGeometry) -> impl Iterator<Item = Range<usize>> {
    let rows = (COL_BAND_ELEMS / (g.patch_len() * g.out_w).max(1)).clamp(1, g.out_h.max(1));
    let out_h = g.out_h;
    (0..out_h)
        .step_by(rows)
        .map(move |start| start..(start + rows).min(out_h))
}

fn band_capacity(g: &ConvGeometry) -> usize {
    bands(g).map(|b| b.len()).max().unwrap_or(0) * g.out_w * g.patch_len()
}

/// Runs `f(image, item, gemm_threads)` for every image: images in parallel when there are
/// enough of them, otherwise one after another with a parallel gemm.
fn per_image(
    batch: usize,
    out: &mut [f32],
    image_len: usize,
    f: impl Fn(usize, &mut [f32], usize) + Sync,
) {
    let t = threads();
    if out.is_empty() || image_len == 0 {
        return;
    }
    if batch >= t && t > 1 {
        out.par_chunks_mut(image_len)
            .enumerate()
            .for_each(|(n, o)| f(n, o, 1));
    } else {
        for (n, o) in out.chunks_mut(image_len).enumerate() {
            f(n, o, t);
        }
    }
}

/// `out = conv(x, w)`; `out` has N·C_out·H_out·W_out elements.
pub(crate) fn forward(g: &ConvGeometry, x: &[f32], w: &[f32], out: &mut [f32]) {
    let k = g.patch_len();
    let p = g.out_plane();
    let weight = MatRef::row_major(w, g.out_channels, k, k);
    per_image(g.batch, out, g.out_image(), |n, out_n, t| {
        let x_n = &x[n * g.in_image()..][..g.in_image()];
        if g.is_pointwise() {
            let input = MatRef::row_major(x_n, g.in_channels, p, p);
            matmul(
                MatMut::row_major(out_n, g.out_channels, p, p),
                weight,
                input,
                false,
                t,
            );
            return;
        }
        with_scratch(band_capacity(g), |col| {
            for band in bands(g) {
                let len = band.len() * g.out_w;
                im2col(g, x_n, band.clone(), col);
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
        });
    });
}

/// `dx = ∂(conv)/∂x · dout`; `dx` has N·C_in·H·W elements.
pub(crate) fn backward_input(g: &ConvGeometry, dout: &[f32], w: &[f32], dx: &mut [f32]) {
    let k = g.patch_len();
    let p = g.out_plane();
    let weight_t = MatRef::row_major(w, g.out_channels, k, k).t();
    per_image(g.batch, dx, g.in_image(), |n, dx_n, t| {
        let dout_n = &dout[n * g.out_image()..][..g.out_image()];
        if g.is_pointwise() {
            let grad = MatRef::row_major(dout_n, g.out_channels, p, p);
            matmul(
                MatMut::row_major(dx_n, g.in_channels, p, p),
                weight_t,
                grad,
                false,
                t,
            );
            return;
        }
        dx_n.fill(0.0);
        with_scratch(band_capacity(g), |col| {
            for band in bands(g) {
                let len = band.len() * g.out_w;
                let grad =
                    MatRef::row_major(&dout_n[band.start * g.out_w..], g.out_channels, len, p);
                matmul(
                    MatMut::row_major(&mut col[..k * len], k, len, len),
                    weight_t,
                    grad,
                    false,
                    t,
                );
                col2im_add(g, &col[..k * len], band, dx_n);
            }
        });
    });
}

/// `dw = ∂(conv)/∂w · dout`, summed over the batch in a fixed order.
pub(crate) fn backward_weight(g: &ConvGeometry, x: &[f32], dout: &[f32]) -> Vec<f32> {
    let k = g.patch_len();
    let len = g.out_channels * k;
    let t = threads();
    let chunks = fixed_chunks(g.batch, WEIGHT_GRAD_PARTIALS);
    let gemm_threads = if chunks.len() >= t { 1 } else { t };
    let partial = |images: Range<usize>| -> Vec<f32> {
        let mut acc = output_buffer(len);
        let mut first = true;
        for n in images {
            let x_n = &x[n * g.in_image()..][..g.in_image()];
            let dout_n = &dout[n * g.out_image()..][..g.out_image()];
            accumulate_image(g, x_n, dout_n, &mut acc, &mut first, gemm_threads);
        }
        if first {
            acc.fill(0.0);
        }
        acc
    };
    let partials: Vec<Vec<f32>> = if gemm_threads == 1 {
        chunks.into_par_iter().map(partial).collect()
    } else {
        chunks.into_iter().map(partial).collect()
    };
    let mut iter = partials.into_iter();
    let mut dw = iter.next().unwrap_or_else(|| vec![0.0; len]);
    for part in iter {
        for (d, v) in dw.iter_mut().zip(&part) {
            *d += v;
        }
    }
    dw
}

/// `acc (+)= dout_n × im2col(x_n)ᵀ`; overwrites `acc` while `*first`.
fn accumulate_image(
    g: &ConvGeometry,
    x_n: &[f32],
    dout_n: &[f32],
    acc: &mut [f32],
    first: &mut bool,
    t: usize,
) {
    let k = g.patch_len();
    let p = g.out_plane();
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
    with_scratch(band_capacity(g), |col| {
        for band in bands(g) {
            let len = band.len() * g.out_w;
            im2col(g, x_n, band.clone(), col);
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
    });
}
