//! Depthwise convolution (`groups == C_in == C_out`, weight C × 1 × KH × KW) on the CPU:
//! direct loops over each (image, channel) plane. No per-group split.
//!
//! The planes run in [`super::depthwise_wide`] on a CPU with AVX2 and FMA (8-lane vectors
//! over the padded plane's wide coordinates; a strided conv's input gradient as the stride-1
//! conv of the dilated gradient), else in the 16-lane row loops of [`super::depthwise_rows`]
//! (the same forward bits), chosen once per call ([`Planes`]). This module hands out the
//! planes: one image (the fused conv-BN ops), or the batch in parallel.

use super::depthwise_rows::PlaneConv;
use super::depthwise_rows::{
    conv_padded_plane, pad_plane, scatter_input_grad_plane, weight_grad_padded_plane,
};
#[cfg(target_arch = "x86_64")]
use super::depthwise_wide::WidePlane;
use super::geometry::ConvGeometry;
use crate::output::{as_uninit, assume_init, fill_item_groups, zeroed};
use crate::parallel::{par_chunks_mut, with_plane_scratch};
use std::mem::MaybeUninit;

/// Planes are grouped into tasks of at least this many output elements.
const MIN_TASK_ELEMS: usize = 16 * 1024;

/// The plane convolutions of one depthwise conv and the kernels that run them, chosen once
/// per call: the wide kernel ([`WidePlane`]) where the CPU has AVX2 and FMA, else the row
/// kernel.
#[derive(Clone, Copy, Debug)]
struct Planes {
    forward: PlaneConv,
    /// The stride-1 input gradient as a forward conv (`None`: scattered).
    input_grad: Option<PlaneConv>,
    #[cfg(target_arch = "x86_64")]
    wide_forward: Option<WidePlane>,
    #[cfg(target_arch = "x86_64")]
    wide_input_grad: Option<WidePlane>,
    /// A strided conv's input gradient on the dilated output gradient
    /// ([`PlaneConv::dilated_input_grad`]), with the wide kernel.
    #[cfg(target_arch = "x86_64")]
    wide_dilated: Option<WidePlane>,
}

impl Planes {
    fn new(g: &ConvGeometry) -> Self {
        let forward = PlaneConv::forward(g);
        let input_grad = PlaneConv::input_grad(g);
        Self {
            forward,
            input_grad,
            #[cfg(target_arch = "x86_64")]
            wide_forward: WidePlane::of(&forward),
            #[cfg(target_arch = "x86_64")]
            wide_input_grad: input_grad.as_ref().and_then(WidePlane::of),
            #[cfg(target_arch = "x86_64")]
            wide_dilated: PlaneConv::dilated_input_grad(g)
                .as_ref()
                .and_then(WidePlane::of),
        }
    }
}

/// `out_plane = depthwise_conv(x_plane, w_c)`, every element of `out` written (it may be
/// uninitialised).
fn forward_plane(p: &Planes, x: &[f32], w: &[f32], out: &mut [MaybeUninit<f32>]) {
    let s = p.forward;
    #[cfg(target_arch = "x86_64")]
    if let Some(k) = &p.wide_forward {
        return wide_conv(k, x, w, out);
    }
    let out = zeroed(out);
    with_plane_scratch(s.padded_len(), |xp| {
        pad_plane(&s, x, xp);
        conv_padded_plane(&s, xp, w, out);
    });
}

/// `dx_plane = ∂(depthwise_conv)/∂x · dout_plane`, every element of `dx` written (it may be
/// uninitialised).
fn input_grad_plane(
    g: &ConvGeometry,
    p: &Planes,
    dout: &[f32],
    w: &[f32],
    dx: &mut [MaybeUninit<f32>],
) {
    match p.input_grad {
        Some(s) => {
            let flipped = flipped(w, g.taps());
            let flipped = &flipped[..g.taps()];
            #[cfg(target_arch = "x86_64")]
            if let Some(k) = &p.wide_input_grad {
                return wide_conv(k, dout, flipped, dx);
            }
            let dx = zeroed(dx);
            with_plane_scratch(s.padded_len(), |dp| {
                pad_plane(&s, dout, dp);
                conv_padded_plane(&s, dp, flipped, dx);
            });
        }
        None => {
            #[cfg(target_arch = "x86_64")]
            if let Some(k) = &p.wide_dilated {
                return dilated_input_grad_plane(g, k, dout, w, dx);
            }
            scatter_input_grad_plane(g, dout, w, zeroed(dx))
        }
    }
}

/// A strided conv's input gradient of one plane: the output gradient dilated by the stride
/// into the zero-padded plane, then the wide kernel's stride-1 conv with the taps flipped.
#[cfg(target_arch = "x86_64")]
fn dilated_input_grad_plane(
    g: &ConvGeometry,
    k: &WidePlane,
    dout: &[f32],
    w: &[f32],
    dx: &mut [MaybeUninit<f32>],
) {
    let flipped = flipped(w, g.taps());
    let flipped = &flipped[..g.taps()];
    with_plane_scratch(k.padded_len() + k.wide_len(), |buf| {
        let (xp, wide) = buf.split_at_mut(k.padded_len());
        k.pad_dilated(&dout[..g.out_plane()], g.out_w, g.stride, xp);
        k.conv(xp, flipped, dx, wide);
    });
}

/// The first `taps` weights of a plane in reverse order (the input gradient's "full" conv).
fn flipped(w: &[f32], taps: usize) -> [f32; 49] {
    let mut f = [0f32; 49];
    for (d, v) in f.iter_mut().zip(w[..taps].iter().rev()) {
        *d = *v;
    }
    f
}

/// `out = conv(x, taps)` for one plane with the wide kernel.
#[cfg(target_arch = "x86_64")]
fn wide_conv(k: &WidePlane, x: &[f32], taps: &[f32], out: &mut [MaybeUninit<f32>]) {
    with_plane_scratch(k.padded_len() + k.wide_len(), |buf| {
        let (xp, wide) = buf.split_at_mut(k.padded_len());
        k.pad(x, xp);
        k.conv(xp, taps, out, wide);
    });
}

/// Per-tap weight-gradient sums of one plane.
fn weight_grad_plane(p: &Planes, x: &[f32], dout: &[f32], sums: &mut [f32]) {
    let s = p.forward;
    #[cfg(target_arch = "x86_64")]
    if let Some(k) = &p.wide_forward {
        return with_plane_scratch(k.padded_len() + k.wide_len(), |buf| {
            let (xp, wide) = buf.split_at_mut(k.padded_len());
            k.pad(x, xp);
            k.weight_grad(xp, dout, sums, wide);
        });
    }
    with_plane_scratch(s.padded_len(), |xp| {
        pad_plane(&s, x, xp);
        weight_grad_padded_plane(&s, xp, dout, sums);
    });
}

/// `out_n = depthwise_conv(x_n, w)` for one image.
pub(crate) fn forward_image(g: &ConvGeometry, x_n: &[f32], w: &[f32], out_n: &mut [f32]) {
    forward_image_into(g, x_n, w, as_uninit(out_n));
}

/// [`forward_image`] into `out_n` (one output image, possibly uninitialised), every element
/// written, returned initialised.
pub(crate) fn forward_image_into<'o>(
    g: &ConvGeometry,
    x_n: &[f32],
    w: &[f32],
    out_n: &'o mut [MaybeUninit<f32>],
) -> &'o mut [f32] {
    let (pi, po, taps) = (g.in_plane(), g.out_plane(), g.taps());
    assert_eq!(out_n.len(), g.out_image());
    let p = Planes::new(g);
    for (c, out_plane) in out_n.chunks_mut(po).enumerate() {
        forward_plane(&p, &x_n[c * pi..][..pi], &w[c * taps..][..taps], out_plane);
    }
    // SAFETY: `forward_plane` wrote every element of each of the C_out planes, which tile
    // `out_n` (its length asserted).
    unsafe { assume_init(out_n) }
}

/// `dx_n = ∂(depthwise_conv)/∂x · dout_n` for one image.
pub(crate) fn input_grad_image(g: &ConvGeometry, dout_n: &[f32], w: &[f32], dx_n: &mut [f32]) {
    input_grad_image_into(g, dout_n, w, as_uninit(dx_n));
}

/// [`input_grad_image`] into `dx_n` (one input image, possibly uninitialised), every element
/// written, returned initialised.
pub(crate) fn input_grad_image_into<'o>(
    g: &ConvGeometry,
    dout_n: &[f32],
    w: &[f32],
    dx_n: &'o mut [MaybeUninit<f32>],
) -> &'o mut [f32] {
    let (pi, po, taps) = (g.in_plane(), g.out_plane(), g.taps());
    assert_eq!(dx_n.len(), g.in_image());
    let p = Planes::new(g);
    for (c, dx_plane) in dx_n.chunks_mut(pi).enumerate() {
        let (dout, w) = (&dout_n[c * po..][..po], &w[c * taps..][..taps]);
        input_grad_plane(g, &p, dout, w, dx_plane);
    }
    // SAFETY: `input_grad_plane` wrote every element of each of the C_in planes, which tile
    // `dx_n` (its length asserted).
    unsafe { assume_init(dx_n) }
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
    let mut sums = [0f32; 49];
    let sums = &mut sums[..taps];
    let p = Planes::new(g);
    for (c, acc_c) in acc.chunks_mut(taps).enumerate() {
        weight_grad_plane(&p, &x_n[c * pi..][..pi], &dout_n[c * po..][..po], sums);
        if *first {
            acc_c.copy_from_slice(sums);
        } else {
            acc_c.iter_mut().zip(sums.iter()).for_each(|(a, s)| *a += s);
        }
    }
    *first = false;
}

/// `out = depthwise_conv(x, w)` over the batch, planes in parallel.
pub(crate) fn forward(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    let (pi, po, c, taps) = (g.in_plane(), g.out_plane(), g.in_channels, g.taps());
    let p = Planes::new(g);
    fill_item_groups(
        g.batch * g.out_image(),
        po,
        MIN_TASK_ELEMS,
        |first, planes| {
            for (i, out_plane) in planes.chunks_mut(po).enumerate() {
                let plane = first + i;
                let ch = plane % c;
                forward_plane(
                    &p,
                    &x[plane * pi..][..pi],
                    &w[ch * taps..][..taps],
                    as_uninit(out_plane),
                );
            }
        },
    )
}

/// `dx = ∂(depthwise_conv)/∂x · dout` over the batch, planes in parallel.
pub(crate) fn backward_input(g: &ConvGeometry, dout: &[f32], w: &[f32]) -> Vec<f32> {
    let (pi, po, c, taps) = (g.in_plane(), g.out_plane(), g.in_channels, g.taps());
    let p = Planes::new(g);
    fill_item_groups(
        g.batch * g.in_image(),
        pi,
        MIN_TASK_ELEMS,
        |first, planes| {
            for (i, dx_plane) in planes.chunks_mut(pi).enumerate() {
                let plane = first + i;
                let ch = plane % c;
                input_grad_plane(
                    g,
                    &p,
                    &dout[plane * po..][..po],
                    &w[ch * taps..][..taps],
                    as_uninit(dx_plane),
                );
            }
        },
    )
}

/// `dw = ∂(depthwise_conv)/∂w · dout`: channels in parallel, each summed over the batch in
/// image order (per-image sums in f32, their total in f64).
pub(crate) fn backward_weight(g: &ConvGeometry, x: &[f32], dout: &[f32]) -> Vec<f32> {
    let (pi, po, c, taps) = (g.in_plane(), g.out_plane(), g.in_channels, g.taps());
    let mut dw = vec![0f32; c * taps];
    let p = Planes::new(g);
    par_chunks_mut(&mut dw, taps, |ch, dw_c| {
        let mut total = [0f64; 49];
        let mut image_sum = [0f32; 49];
        for n in 0..g.batch {
            let plane = n * c + ch;
            weight_grad_plane(
                &p,
                &x[plane * pi..][..pi],
                &dout[plane * po..][..po],
                &mut image_sum[..taps],
            );
            for (t, v) in total.iter_mut().zip(&image_sum[..taps]) {
                *t += *v as f64;
            }
        }
        for (d, t) in dw_c.iter_mut().zip(&total) {
            *d = *t as f32;
        }
    });
    dw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::geometry::ConvParams;
    use crate::test_inputs::lcg_values;

    /// The `*_into` paths write every element of their output: into memory holding NaN they
    /// give the bits they give into zeros, at strides 1 and 2, odd and even planes (wide and
    /// rows vector plans, the dilated strided input gradient).
    #[test]
    fn into_paths_write_every_element() {
        let cases = [
            (5, 7, 1),
            (8, 8, 1),
            (4, 4, 1),
            (9, 7, 2),
            (8, 16, 2),
            (2, 2, 1),
        ];
        for (k, &(h, w, stride)) in cases.iter().enumerate() {
            let c = 3;
            let p = ConvParams::new(stride, 1, c);
            let g = ConvGeometry::new((1, c, h, w), (c, 1, 3, 3), p).unwrap();
            let x = lcg_values(g.in_image(), 2 * k as u64, 1.0);
            let wt = lcg_values(c * 9, 2 * k as u64 + 1, 1.0);
            let dout = lcg_values(g.out_image(), 2 * k as u64 + 2, 1.0);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let (mut nan, mut zero) = (vec![f32::NAN; g.out_image()], vec![0f32; g.out_image()]);
            forward_image_into(&g, &x, &wt, as_uninit(&mut nan));
            forward_image_into(&g, &x, &wt, as_uninit(&mut zero));
            assert_eq!(bits(&nan), bits(&zero), "forward, case {k}");
            let (mut nan, mut zero) = (vec![f32::NAN; g.in_image()], vec![0f32; g.in_image()]);
            input_grad_image_into(&g, &dout, &wt, as_uninit(&mut nan));
            input_grad_image_into(&g, &dout, &wt, as_uninit(&mut zero));
            assert_eq!(bits(&nan), bits(&zero), "input gradient, case {k}");
        }
    }
}
