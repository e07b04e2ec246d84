//! im2col and its adjoint col2im for one image and a band of output rows.
//!
//! The column matrix of output rows `rows` is (C_in·KH·KW) × (|rows|·W_out), row-major: row
//! `(c, kh, kw)` holds, for every output pixel of the band, the input pixel that tap sees
//! (zero in the padding).

use super::geometry::ConvGeometry;
use std::ops::Range;

/// Fills `col` with the im2col matrix of output rows `rows` of image `x` (C_in·H·W elements).
pub(crate) fn im2col(g: &ConvGeometry, x: &[f32], rows: Range<usize>, col: &mut [f32]) {
    let band = rows.len() * g.out_w;
    let (s, p) = (g.stride, g.padding);
    let mut row = 0;
    for c in 0..g.in_channels {
        let plane = &x[c * g.in_plane()..][..g.in_plane()];
        for kh in 0..g.kernel_h {
            for kw in 0..g.kernel_w {
                let dst = &mut col[row * band..][..band];
                row += 1;
                let (lo, hi) = ConvGeometry::valid_outputs(kw, p, s, g.in_w, g.out_w);
                for (r, oh) in rows.clone().enumerate() {
                    let seg = &mut dst[r * g.out_w..][..g.out_w];
                    let ih = (oh * s + kh).wrapping_sub(p);
                    if ih >= g.in_h {
                        seg.fill(0.0);
                        continue;
                    }
                    let src = &plane[ih * g.in_w..][..g.in_w];
                    seg[..lo].fill(0.0);
                    seg[hi..].fill(0.0);
                    if s == 1 {
                        let start = lo + kw - p;
                        seg[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                    } else {
                        for (ow, v) in seg[lo..hi].iter_mut().enumerate() {
                            *v = src[(lo + ow) * s + kw - p];
                        }
                    }
                }
            }
        }
    }
}

/// Adds the column-matrix gradient `col` of output rows `rows` into the image gradient `dx`.
pub(crate) fn col2im_add(g: &ConvGeometry, col: &[f32], rows: Range<usize>, dx: &mut [f32]) {
    let band = rows.len() * g.out_w;
    let (s, p) = (g.stride, g.padding);
    let mut row = 0;
    for c in 0..g.in_channels {
        let plane = &mut dx[c * g.in_plane()..][..g.in_plane()];
        for kh in 0..g.kernel_h {
            for kw in 0..g.kernel_w {
                let src = &col[row * band..][..band];
                row += 1;
                let (lo, hi) = ConvGeometry::valid_outputs(kw, p, s, g.in_w, g.out_w);
                if lo >= hi {
                    continue;
                }
                for (r, oh) in rows.clone().enumerate() {
                    let ih = (oh * s + kh).wrapping_sub(p);
                    if ih >= g.in_h {
                        continue;
                    }
                    let seg = &src[r * g.out_w..][..g.out_w];
                    let dst = &mut plane[ih * g.in_w..][..g.in_w];
                    if s == 1 {
                        let start = lo + kw - p;
                        for (d, v) in dst[start..start + (hi - lo)].iter_mut().zip(&seg[lo..hi]) {
                            *d += v;
                        }
                    } else {
                        for (ow, v) in seg[lo..hi].iter().enumerate() {
                            dst[(lo + ow) * s + kw - p] += v;
                        }
                    }
                }
            }
        }
    }
}
