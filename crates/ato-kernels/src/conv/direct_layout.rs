//! The data layouts of the direct convolution ([`super::direct`]): the transposed weights of
//! the input gradient, the zero-padded (and at stride > 1 phase-split) input image, and the
//! copy of the wide output into the image layout.

use super::direct_shape::DirectShape;
use super::im2col::copy;
use crate::batchnorm::kernels::{narrow_affine_act, ChannelAffine};
use crate::simd::multiversion;
use std::mem::MaybeUninit;

/// The weights of the input-gradient conv of a forward conv with `fwd_w` (C_out × C_in × KH ×
/// KW): input C_out channels, output C_in, weights transposed and flipped (run with padding
/// KH − 1 − p); `s` describes that gradient conv.
pub(crate) fn transposed_weights(s: &DirectShape, fwd_w: &[f32]) -> Vec<f32> {
    let (kh, kw) = (s.kernel_h, s.kernel_w);
    let (fwd_out, fwd_in) = (s.in_channels, s.out_channels);
    let mut w = vec![0f32; fwd_in * fwd_out * kh * kw];
    for o in 0..fwd_out {
        for i in 0..fwd_in {
            for a in 0..kh {
                for b in 0..kw {
                    let src = ((o * fwd_in + i) * kh + a) * kw + b;
                    let dst = ((i * fwd_out + o) * kh + (kh - 1 - a)) * kw + (kw - 1 - b);
                    w[dst] = fwd_w[src];
                }
            }
        }
    }
    w
}

/// Copies one image (C × H × W) into the padded buffer (phase-split at stride > 1), zeroing
/// borders and slack.
pub(crate) fn pad_into(s: &DirectShape, x: &[f32], xp: &mut [f32]) {
    match s.stride {
        1 => pad_plain(s, x, xp),
        2 if 2 * s.wq() <= ROW_BUF => pad_phases2(s, x, xp),
        _ => pad_phases(s, x, xp),
    }
}

/// Padded row length [`pad_phases2`] handles with its stack buffer.
const ROW_BUF: usize = 1024;

multiversion! {
/// [`pad_phases`] at stride 2: each padded row is built in a buffer, then split into its
/// even and odd columns (a loop LLVM vectorises).
fn pad_phases2(s: &DirectShape, x: &[f32], xp: &mut [f32]) {
    let (p, plane, wq) = (s.padding, s.plane(), s.wq());
    let (ph, pw) = s.phases();
    let used = s.planes() * plane;
    let len = xp.len();
    xp[used.min(len)..].fill(0.0);
    let mut buf = [0f32; ROW_BUF];
    let row_buf = &mut buf[..2 * wq];
    for c in 0..s.in_channels {
        let src = &x[c * s.in_h * s.in_w..][..s.in_h * s.in_w];
        for a in 0..ph {
            let base = (c * ph + a) * pw * plane;
            for i in 0..s.hq() {
                let r = 2 * i + a;
                let (dst0, dst1) = if pw == 2 {
                    let (even, odd) = xp[base + i * wq..].split_at_mut(plane);
                    (&mut even[..wq], Some(&mut odd[..wq]))
                } else {
                    (&mut xp[base + i * wq..][..wq], None)
                };
                if r < p || r >= p + s.in_h {
                    dst0.fill(0.0);
                    if let Some(d) = dst1 {
                        d.fill(0.0);
                    }
                    continue;
                }
                row_buf[p..p + s.in_w].copy_from_slice(&src[(r - p) * s.in_w..][..s.in_w]);
                if let Some(dst1) = dst1 {
                    for ((e, o), pair) in dst0.iter_mut().zip(dst1).zip(row_buf.chunks_exact(2)) {
                        *e = pair[0];
                        *o = pair[1];
                    }
                } else {
                    for (e, pair) in dst0.iter_mut().zip(row_buf.chunks_exact(2)) {
                        *e = pair[0];
                    }
                }
            }
        }
    }
}
}

multiversion! {
/// [`pad_into`] at stride 1: one padded Hp × Wp plane per channel.
fn pad_plain(s: &DirectShape, x: &[f32], xp: &mut [f32]) {
    let (w, h, p, wp, plane) = (s.in_w, s.in_h, s.padding, s.wp(), s.plane());
    let used = s.in_channels * plane;
    let len = xp.len();
    xp[used.min(len)..].fill(0.0);
    for (dst, src) in xp.chunks_exact_mut(plane).zip(x.chunks_exact(h * w)).take(s.in_channels) {
        // The top rows and the left border of the first image row.
        let (head, mut rest) = dst.split_at_mut(p * wp + p);
        head.fill(0.0);
        for row in src.chunks_exact(w) {
            // This row, the right border of this row and the left border of the next one.
            let (line, tail) = rest.split_at_mut(w + 2 * p);
            copy(&mut line[..w], row);
            for v in &mut line[w..] {
                *v = 0.0;
            }
            rest = tail;
        }
        // The bottom rows (less the left border already written).
        rest.fill(0.0);
    }
}
}

multiversion! {
/// [`pad_into`] at stride s: for every channel, phase (a, b) is the ⌈Hp/s⌉ × ⌈Wp/s⌉ plane of
/// padded pixels (s·i + a, s·j + b), zero where that lies outside the image.
fn pad_phases(s: &DirectShape, x: &[f32], xp: &mut [f32]) {
    let (st, p, plane) = (s.stride, s.padding, s.plane());
    let (ph, pw) = s.phases();
    let (hq, wq) = (s.hq(), s.wq());
    let used = s.planes() * plane;
    let len = xp.len();
    xp[used.min(len)..].fill(0.0);
    for c in 0..s.in_channels {
        let src = &x[c * s.in_h * s.in_w..][..s.in_h * s.in_w];
        for a in 0..ph {
            for b in 0..pw {
                let dst = &mut xp[((c * ph + a) * pw + b) * plane..][..plane];
                // Columns j whose padded column s·j + b is an image column: j0..j1.
                let j0 = p.saturating_sub(b).div_ceil(st).min(wq);
                let j1 = (p + s.in_w).saturating_sub(b).div_ceil(st).clamp(j0, wq);
                for (i, row) in dst.chunks_mut(wq).enumerate().take(hq) {
                    let r = st * i + a;
                    if r < p || r >= p + s.in_h {
                        row.fill(0.0);
                        continue;
                    }
                    let src_row = &src[(r - p) * s.in_w..][..s.in_w];
                    row[..j0].fill(0.0);
                    for (j, v) in row[j0..j1].iter_mut().enumerate() {
                        *v = src_row[st * (j0 + j) + b - p];
                    }
                    row[j1..].fill(0.0);
                }
            }
        }
    }
}
}

multiversion! {
/// `out[o, oh, ow] = wide[o·P + oh·R + ow]` for `rows` = (P, R) (the wide layout: P =
/// `wide_rounded`, R = Wq): writes every element of `out[..C_out·H_out·W_out]`, whatever it
/// held before.
pub(crate) fn narrow_into(
    s: &DirectShape,
    wide: &[f32],
    out: &mut [MaybeUninit<f32>],
    rows: (usize, usize),
) {
    let (ow, (stride, wq)) = (s.out_w(), rows);
    let plane = s.out_h() * ow;
    for o in 0..s.out_channels {
        let src = &wide[o * stride..];
        for (oh, row) in out[o * plane..][..plane].chunks_mut(ow).enumerate() {
            write_row(row, &src[oh * wq..][..ow]);
        }
    }
}
}

multiversion! {
/// `wide[o·pitch + oh·Wq + ow] = compact[o, oh, ow]`, every other column of the first
/// C_out rows of `pitch` zeroed (the inverse of [`narrow_into`], at any row pitch ≥ the wide
/// width).
pub(crate) fn widen_into(s: &DirectShape, compact: &[f32], wide: &mut [f32], pitch: usize) {
    let (wq, ow) = (s.wq(), s.out_w());
    let plane = s.out_h() * ow;
    for (o, dst) in wide.chunks_exact_mut(pitch).take(s.out_channels).enumerate() {
        dst.fill(0.0);
        for (oh, row) in compact[o * plane..][..plane].chunks_exact(ow).enumerate() {
            copy(&mut dst[oh * wq..][..ow], row);
        }
    }
}
}

/// [`narrow_into`] with the eval-mode BatchNorm epilogue fused into the copy:
/// `out[o, oh, ow] = act(wide[o·P + oh·R + ow] · scale[o] + shift[o] (+ residual[o, oh, ow]))`,
/// one pass over the output instead of two; writes every element of `out[..C_out·H_out·W_out]`.
pub(crate) fn narrow_affine_into(
    s: &DirectShape,
    wide: &[f32],
    out: &mut [MaybeUninit<f32>],
    epi: &ChannelAffine,
    rows: (usize, usize),
) {
    let (ow, (stride, wq)) = (s.out_w(), rows);
    let plane = s.out_h() * ow;
    for o in 0..s.out_channels {
        let r = epi.residual.map(|r| &r[o * plane..][..plane]);
        narrow_affine_act(
            &mut out[o * plane..][..plane],
            &wide[o * stride..],
            wq,
            ow,
            r,
            epi.scale[o],
            epi.shift[o],
            epi.act,
        );
    }
}

/// `dst = src` for a short row of possibly uninitialised `dst` (as [`copy`]: no `memcpy`
/// call).
#[inline(always)]
fn write_row(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (a, b) in (&mut d).zip(&mut s) {
        let v: [f32; 8] = b.try_into().expect("8 elements");
        for (x, y) in a.iter_mut().zip(v) {
            x.write(y);
        }
    }
    for (a, b) in d.into_remainder().iter_mut().zip(s.remainder()) {
        a.write(*b);
    }
}
