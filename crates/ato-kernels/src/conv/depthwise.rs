//! Depthwise convolution (`groups == C_in == C_out`, weight C × 1 × KH × KW) on the CPU:
//! direct loops over each (image, channel) plane. No per-group split.
//!
//! Each plane is first copied into a zero-padded buffer (with slack after it), so the inner
//! loops have no bounds logic: 16 outputs of a row accumulate in a 16-lane register over the
//! taps. The stride-1 input gradient is the same kernel on the output gradient with the taps
//! flipped ("full" convolution); the weight gradient keeps one 16-lane accumulator per tap.
//!
//! On a CPU with AVX2 and FMA the planes run in [`super::depthwise_wide`] instead (8-lane
//! vectors over the padded plane's wide coordinates, the same forward bits), chosen once per
//! call ([`Planes`]); these row loops remain the path without them, and the input gradient of a
//! strided conv is scattered on every CPU.

#[cfg(target_arch = "x86_64")]
use super::depthwise_wide::WidePlane;
use super::geometry::ConvGeometry;
use super::im2col::copy;
use crate::output::{as_uninit, assume_init, fill_item_groups, zeroed};
use crate::parallel::{par_chunks_mut, with_plane_scratch};
use crate::simd::multiversion;
use std::mem::MaybeUninit;

/// Planes are grouped into tasks of at least this many output elements.
const MIN_TASK_ELEMS: usize = 16 * 1024;

const LANES: usize = 16;

/// One plane's convolution: input `in_h × in_w` padded by `pad`, kernel `kh × kw`, `stride`.
#[derive(Clone, Copy, Debug)]
pub(super) struct PlaneConv {
    pub in_h: usize,
    pub in_w: usize,
    pub pad: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl PlaneConv {
    fn forward(g: &ConvGeometry) -> Self {
        Self {
            in_h: g.in_h,
            in_w: g.in_w,
            pad: g.padding,
            kh: g.kernel_h,
            kw: g.kernel_w,
            stride: g.stride,
            out_h: g.out_h,
            out_w: g.out_w,
        }
    }

    /// The stride-1 input gradient as a forward conv of the output gradient (flipped taps).
    fn input_grad(g: &ConvGeometry) -> Option<Self> {
        (g.stride == 1
            && g.padding < g.kernel_h
            && g.padding < g.kernel_w
            && g.kernel_h == g.kernel_w)
            .then(|| Self {
                in_h: g.out_h,
                in_w: g.out_w,
                pad: g.kernel_h - 1 - g.padding,
                kh: g.kernel_h,
                kw: g.kernel_w,
                stride: 1,
                out_h: g.in_h,
                out_w: g.in_w,
            })
    }

    /// The input gradient of a strided conv as the stride-1 forward (flipped taps) of the
    /// output gradient dilated by the stride — s − 1 zeros between its pixels, then the rows
    /// and columns the forward's rounding left out as zeros, a plane of
    /// (H + 2p − KH + 1) × (W + 2p − KW + 1) — padded by KH − 1 − p.
    fn dilated_input_grad(g: &ConvGeometry) -> Option<Self> {
        (g.stride > 1
            && g.padding < g.kernel_h
            && g.kernel_h == g.kernel_w
            && g.in_h + 2 * g.padding >= g.kernel_h
            && g.in_w + 2 * g.padding >= g.kernel_w)
            .then(|| Self {
                in_h: g.in_h + 2 * g.padding + 1 - g.kernel_h,
                in_w: g.in_w + 2 * g.padding + 1 - g.kernel_w,
                pad: g.kernel_h - 1 - g.padding,
                kh: g.kernel_h,
                kw: g.kernel_w,
                stride: 1,
                out_h: g.in_h,
                out_w: g.in_w,
            })
    }

    pub(super) fn wp(&self) -> usize {
        self.in_w + 2 * self.pad
    }

    /// Padded plane plus slack for the last vector's reads.
    pub(super) fn padded_len(&self) -> usize {
        (self.in_h + 2 * self.pad) * self.wp() + LANES * self.stride + self.kw + LANES
    }
}

multiversion! {
/// `xp` = the plane `x` zero-padded, then zero slack.
pub(super) fn pad_plane(s: &PlaneConv, x: &[f32], xp: &mut [f32]) {
    let (wp, p) = (s.wp(), s.pad);
    xp.fill(0.0);
    for (r, row) in x.chunks(s.in_w).take(s.in_h).enumerate() {
        copy(&mut xp[(p + r) * wp + p..][..s.in_w], row);
    }
}
}

multiversion! {
/// `out = conv(xp, taps)` on a padded plane.
pub(super) fn conv_padded_plane(s: &PlaneConv, xp: &[f32], taps: &[f32], out: &mut [f32]) {
    let wp = s.wp();
    for (oh, row) in out.chunks_mut(s.out_w).take(s.out_h).enumerate() {
        for ow0 in (0..s.out_w).step_by(LANES) {
            let mut acc = [0f32; LANES];
            for kh in 0..s.kh {
                let src_row = &xp[(oh * s.stride + kh) * wp..];
                for kw in 0..s.kw {
                    let wv = taps[kh * s.kw + kw];
                    let base = ow0 * s.stride + kw;
                    if s.stride == 1 {
                        let src: &[f32; LANES] = src_row[base..base + LANES].try_into().expect("16 lanes");
                        for l in 0..LANES {
                            acc[l] += wv * src[l];
                        }
                    } else {
                        let src = &src_row[base..base + LANES * s.stride];
                        for l in 0..LANES {
                            acc[l] += wv * src[l * s.stride];
                        }
                    }
                }
            }
            let n = LANES.min(s.out_w - ow0);
            row[ow0..ow0 + n].copy_from_slice(&acc[..n]);
        }
    }
}
}

multiversion! {
/// Per tap, Σ dout[oh, ow] · xp[oh·s + kh, ow·s + kw] over a padded input plane.
fn weight_grad_padded_plane(s: &PlaneConv, xp: &[f32], dout: &[f32], sums: &mut [f32]) {
    let wp = s.wp();
    let taps = s.kh * s.kw;
    let mut acc = [[0f32; LANES]; 49];
    let acc = &mut acc[..taps];
    for (oh, grad_row) in dout.chunks(s.out_w).take(s.out_h).enumerate() {
        for ow0 in (0..s.out_w).step_by(LANES) {
            let n = LANES.min(s.out_w - ow0);
            let mut d = [0f32; LANES];
            d[..n].copy_from_slice(&grad_row[ow0..ow0 + n]);
            for kh in 0..s.kh {
                let src_row = &xp[(oh * s.stride + kh) * wp..];
                for kw in 0..s.kw {
                    let a = &mut acc[kh * s.kw + kw];
                    let base = ow0 * s.stride + kw;
                    if s.stride == 1 {
                        let src: &[f32; LANES] = src_row[base..base + LANES].try_into().expect("16 lanes");
                        for l in 0..LANES {
                            a[l] += d[l] * src[l];
                        }
                    } else {
                        let src = &src_row[base..base + LANES * s.stride];
                        for l in 0..LANES {
                            a[l] += d[l] * src[l * s.stride];
                        }
                    }
                }
            }
        }
    }
    for (sum, a) in sums.iter_mut().zip(acc.iter()) {
        *sum = a.iter().sum();
    }
}
}

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

multiversion! {
/// The input gradient of a strided depthwise conv by scattering each output's gradient.
fn scatter_input_grad_plane(g: &ConvGeometry, dout: &[f32], w: &[f32], dx: &mut [f32]) {
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
                for (ow, v) in grad_row[lo.min(hi)..hi].iter().enumerate() {
                    dst[(lo + ow) * s + kw - p] += wv * v;
                }
            }
        }
    }
}
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
