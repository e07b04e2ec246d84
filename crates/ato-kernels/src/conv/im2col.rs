//! im2col and its adjoint col2im for one image and a band of output rows, through a
//! zero-padded copy of the image so the inner loops need no bounds checks.
//!
//! The column matrix of output rows `rows` is (C_in·KH·KW) × (|rows|·W_out), row-major: row
//! `(c, kh, kw)` holds, for every output pixel of the band, the input pixel that tap sees
//! (zero in the padding).

use super::geometry::ConvGeometry;
use crate::simd::multiversion;
use std::ops::Range;

/// Padded plane sizes (H + 2p, W + 2p).
#[inline(always)]
pub(crate) fn padded_dims(g: &ConvGeometry) -> (usize, usize) {
    (g.in_h + 2 * g.padding, g.in_w + 2 * g.padding)
}

/// Elements of the padded copy of one image (0 when the conv has no padding).
pub(crate) fn padded_len(g: &ConvGeometry) -> usize {
    if g.padding == 0 {
        return 0;
    }
    let (hp, wp) = padded_dims(g);
    g.in_channels * hp * wp
}

multiversion! {
/// Copies image `x` into `xp` (C × (H+2p) × (W+2p)) with a zero border.
pub(crate) fn pad_image(g: &ConvGeometry, x: &[f32], xp: &mut [f32]) {
    let (hp, wp) = padded_dims(g);
    let p = g.padding;
    for (c, plane) in xp.chunks_mut(hp * wp).take(g.in_channels).enumerate() {
        let src = &x[c * g.in_plane()..][..g.in_plane()];
        plane[..p * wp].fill(0.0);
        plane[(p + g.in_h) * wp..].fill(0.0);
        for (r, row) in src.chunks(g.in_w).enumerate() {
            let dst = &mut plane[(p + r) * wp..][..wp];
            dst[..p].fill(0.0);
            dst[p + g.in_w..].fill(0.0);
            copy(&mut dst[p..p + g.in_w], row);
        }
    }
}
}

/// `dst = src` for short rows, inlined (a `memcpy` call per 8–32 floats costs more than
/// the copy).
#[inline(always)]
pub(crate) fn copy(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (a, b) in (&mut d).zip(&mut s) {
        let v: [f32; 8] = b.try_into().expect("8 elements");
        a.copy_from_slice(&v);
    }
    for (a, b) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *a = *b;
    }
}

multiversion! {
/// Fills `col` with the im2col matrix of output rows `rows`, reading the padded image `xp`
/// (from [`pad_image`], or the image itself when the conv has no padding).
pub(crate) fn im2col(g: &ConvGeometry, xp: &[f32], rows: Range<usize>, col: &mut [f32]) {
    let (hp, wp) = padded_dims(g);
    let band = rows.len() * g.out_w;
    let s = g.stride;
    let mut row = 0;
    for c in 0..g.in_channels {
        let plane = &xp[c * hp * wp..][..hp * wp];
        for kh in 0..g.kernel_h {
            for kw in 0..g.kernel_w {
                let dst = &mut col[row * band..][..band];
                row += 1;
                for (r, oh) in rows.clone().enumerate() {
                    let seg = &mut dst[r * g.out_w..][..g.out_w];
                    let src = &plane[(oh * s + kh) * wp + kw..];
                    if s == 1 {
                        copy(seg, &src[..g.out_w]);
                    } else {
                        for (ow, v) in seg.iter_mut().enumerate() {
                            *v = src[ow * s];
                        }
                    }
                }
            }
        }
    }
}
}

multiversion! {
/// Adds the column-matrix gradient `col` of output rows `rows` into the padded image
/// gradient `dxp` (C × (H+2p) × (W+2p)).
pub(crate) fn col2im_add(g: &ConvGeometry, col: &[f32], rows: Range<usize>, dxp: &mut [f32]) {
    let (hp, wp) = padded_dims(g);
    let band = rows.len() * g.out_w;
    let s = g.stride;
    let mut row = 0;
    for c in 0..g.in_channels {
        let plane = &mut dxp[c * hp * wp..][..hp * wp];
        for kh in 0..g.kernel_h {
            for kw in 0..g.kernel_w {
                let src = &col[row * band..][..band];
                row += 1;
                for (r, oh) in rows.clone().enumerate() {
                    let seg = &src[r * g.out_w..][..g.out_w];
                    let dst = &mut plane[(oh * s + kh) * wp + kw..];
                    if s == 1 {
                        for (d, v) in dst[..g.out_w].iter_mut().zip(seg) {
                            *d += v;
                        }
                    } else {
                        for (ow, v) in seg.iter().enumerate() {
                            dst[ow * s] += v;
                        }
                    }
                }
            }
        }
    }
}
}

multiversion! {
/// Copies the interior of the padded gradient `dxp` into the image gradient `dx`.
pub(crate) fn crop_image(g: &ConvGeometry, dxp: &[f32], dx: &mut [f32]) {
    let (hp, wp) = padded_dims(g);
    let p = g.padding;
    for (c, plane) in dx.chunks_mut(g.in_plane()).take(g.in_channels).enumerate() {
        let src = &dxp[c * hp * wp..][..hp * wp];
        for (r, row) in plane.chunks_mut(g.in_w).enumerate() {
            copy(row, &src[(p + r) * wp + p..][..g.in_w]);
        }
    }
}
}
