//! Depthwise convolution (`groups == C_in == C_out`, weight C × 1 × KH × KW) on the CPU:
//! direct loops over each (image, channel) plane, whose inner loops run along output rows
//! (contiguous for stride 1, so they vectorise). No per-group split.

use super::geometry::ConvGeometry;
use crate::parallel::{par_chunks_mut, par_item_groups};
use crate::simd::{axpy, dot, multiversion};

/// Planes are grouped into tasks of at least this many output elements.
const MIN_TASK_ELEMS: usize = 16 * 1024;

/// `out = depthwise_conv(x, w)`.
pub(crate) fn forward(g: &ConvGeometry, x: &[f32], w: &[f32], out: &mut [f32]) {
    let (pi, po, c) = (g.in_plane(), g.out_plane(), g.in_channels);
    par_item_groups(out, po, MIN_TASK_ELEMS, |first, planes| {
        for (i, out_plane) in planes.chunks_mut(po).enumerate() {
            let plane = first + i;
            let ch = plane % c;
            forward_plane(
                g,
                &x[plane * pi..][..pi],
                &w[ch * g.taps()..][..g.taps()],
                out_plane,
            );
        }
    });
}

multiversion! {
fn forward_plane(g: &ConvGeometry, x: &[f32], w: &[f32], out: &mut [f32]) {
    let (s, p) = (g.stride, g.padding);
    for (oh, row) in out.chunks_mut(g.out_w).enumerate() {
        row.fill(0.0);
        for kh in 0..g.kernel_h {
            let ih = (oh * s + kh).wrapping_sub(p);
            if ih >= g.in_h {
                continue;
            }
            let src = &x[ih * g.in_w..][..g.in_w];
            for kw in 0..g.kernel_w {
                let wv = w[kh * g.kernel_w + kw];
                let (lo, hi) = ConvGeometry::valid_outputs(kw, p, s, g.in_w, g.out_w);
                if lo >= hi {
                    continue;
                }
                if s == 1 {
                    let start = lo + kw - p;
                    axpy(&mut row[lo..hi], wv, &src[start..start + (hi - lo)]);
                } else {
                    for (ow, o) in row[lo..hi].iter_mut().enumerate() {
                        *o += wv * src[(lo + ow) * s + kw - p];
                    }
                }
            }
        }
    }
}
}

/// `out_n = depthwise_conv(x_n, w)` for one image.
pub(crate) fn forward_image(g: &ConvGeometry, x_n: &[f32], w: &[f32], out_n: &mut [f32]) {
    let (pi, po, taps) = (g.in_plane(), g.out_plane(), g.taps());
    for (c, out_plane) in out_n.chunks_mut(po).enumerate() {
        forward_plane(g, &x_n[c * pi..][..pi], &w[c * taps..][..taps], out_plane);
    }
}

/// `dx_n = ∂(depthwise_conv)/∂x · dout_n` for one image.
pub(crate) fn input_grad_image(g: &ConvGeometry, dout_n: &[f32], w: &[f32], dx_n: &mut [f32]) {
    let (pi, po, taps) = (g.in_plane(), g.out_plane(), g.taps());
    for (c, dx_plane) in dx_n.chunks_mut(pi).enumerate() {
        backward_input_plane(g, &dout_n[c * po..][..po], &w[c * taps..][..taps], dx_plane);
    }
}

/// `acc (+)= ∂(depthwise_conv)/∂w · dout_n` for one image (C × KH·KW); overwrites while
/// `*first`.
pub(crate) fn weight_grad_image(
    g: &ConvGeometry,
    x_n: &[f32],
    dout_n: &[f32],
    acc: &mut [f32],
    first: &mut bool,
) {
    let (pi, po, taps) = (g.in_plane(), g.out_plane(), g.taps());
    let mut sums = [0f32; 64];
    let mut heap;
    let sums: &mut [f32] = if taps <= sums.len() {
        &mut sums[..taps]
    } else {
        heap = vec![0f32; taps];
        &mut heap
    };
    for (c, acc_c) in acc.chunks_mut(taps).enumerate() {
        weight_grad_plane(g, &x_n[c * pi..][..pi], &dout_n[c * po..][..po], sums);
        if *first {
            acc_c.copy_from_slice(sums);
        } else {
            acc_c.iter_mut().zip(sums.iter()).for_each(|(a, s)| *a += s);
        }
    }
    *first = false;
}

/// `dx = ∂(depthwise_conv)/∂x · dout`.
pub(crate) fn backward_input(g: &ConvGeometry, dout: &[f32], w: &[f32], dx: &mut [f32]) {
    let (pi, po, c) = (g.in_plane(), g.out_plane(), g.in_channels);
    par_item_groups(dx, pi, MIN_TASK_ELEMS, |first, planes| {
        for (i, dx_plane) in planes.chunks_mut(pi).enumerate() {
            let plane = first + i;
            let ch = plane % c;
            let w_c = &w[ch * g.taps()..][..g.taps()];
            backward_input_plane(g, &dout[plane * po..][..po], w_c, dx_plane);
        }
    });
}

multiversion! {
fn backward_input_plane(g: &ConvGeometry, dout: &[f32], w: &[f32], dx: &mut [f32]) {
    let (s, p) = (g.stride, g.padding);
    dx.fill(0.0);
    for (oh, grad_row) in dout.chunks(g.out_w).enumerate() {
        for kh in 0..g.kernel_h {
            let ih = (oh * s + kh).wrapping_sub(p);
            if ih >= g.in_h {
                continue;
            }
            let dst = &mut dx[ih * g.in_w..][..g.in_w];
            for kw in 0..g.kernel_w {
                let wv = w[kh * g.kernel_w + kw];
                let (lo, hi) = ConvGeometry::valid_outputs(kw, p, s, g.in_w, g.out_w);
                if lo >= hi {
                    continue;
                }
                if s == 1 {
                    let start = lo + kw - p;
                    axpy(&mut dst[start..start + (hi - lo)], wv, &grad_row[lo..hi]);
                } else {
                    for (ow, v) in grad_row[lo..hi].iter().enumerate() {
                        dst[(lo + ow) * s + kw - p] += wv * v;
                    }
                }
            }
        }
    }
}
}

/// `dw = ∂(depthwise_conv)/∂w · dout`: channels in parallel, each summed over the batch in
/// image order (per-image sums in f32, their total in f64).
pub(crate) fn backward_weight(g: &ConvGeometry, x: &[f32], dout: &[f32]) -> Vec<f32> {
    let (pi, po, c, taps) = (g.in_plane(), g.out_plane(), g.in_channels, g.taps());
    let mut dw = vec![0f32; c * taps];
    par_chunks_mut(&mut dw, taps, |ch, dw_c| {
        let mut total = vec![0f64; taps];
        let mut image_sum = vec![0f32; taps];
        for n in 0..g.batch {
            let plane = n * c + ch;
            weight_grad_plane(
                g,
                &x[plane * pi..][..pi],
                &dout[plane * po..][..po],
                &mut image_sum,
            );
            for (t, v) in total.iter_mut().zip(&image_sum) {
                *t += *v as f64;
            }
        }
        for (d, t) in dw_c.iter_mut().zip(&total) {
            *d = *t as f32;
        }
    });
    dw
}

multiversion! {
fn weight_grad_plane(g: &ConvGeometry, x: &[f32], dout: &[f32], sums: &mut [f32]) {
    let (s, p) = (g.stride, g.padding);
    sums.fill(0.0);
    for (oh, grad_row) in dout.chunks(g.out_w).enumerate() {
        for kh in 0..g.kernel_h {
            let ih = (oh * s + kh).wrapping_sub(p);
            if ih >= g.in_h {
                continue;
            }
            let src = &x[ih * g.in_w..][..g.in_w];
            for kw in 0..g.kernel_w {
                let (lo, hi) = ConvGeometry::valid_outputs(kw, p, s, g.in_w, g.out_w);
                if lo >= hi {
                    continue;
                }
                let v = if s == 1 {
                    let start = lo + kw - p;
                    dot(&grad_row[lo..hi], &src[start..start + (hi - lo)])
                } else {
                    grad_row[lo..hi]
                        .iter()
                        .enumerate()
                        .map(|(ow, v)| v * src[(lo + ow) * s + kw - p])
                        .sum()
                };
                sums[kh * g.kernel_w + kw] += v;
            }
        }
    }
}
}
