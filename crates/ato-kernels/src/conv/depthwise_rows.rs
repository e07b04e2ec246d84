//! The row kernels of the depthwise convolution ([`super::depthwise`]): the plane of one
//! (image, channel) is copied into a zero-padded buffer (with slack after it), so the inner
//! loops have no bounds logic: 16 outputs of a row accumulate in a 16-lane register over the
//! taps. The stride-1 input gradient is the same kernel on the output gradient with the taps
//! flipped ("full" convolution); the weight gradient keeps one 16-lane accumulator per tap; a
//! strided conv's input gradient scatters each output's gradient. These loops run where the
//! CPU lacks AVX2 and FMA ([`super::depthwise_wide`] runs elsewhere).

use super::geometry::ConvGeometry;
use super::im2col::copy;
use crate::simd::multiversion;

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
    pub(super) fn forward(g: &ConvGeometry) -> Self {
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
    pub(super) fn input_grad(g: &ConvGeometry) -> Option<Self> {
        (g.stride == 1
            && g.padding < g.kernel_h
            && g.padding < g.kernel_w
            && g.kernel_h == g.kernel_w)
            .then(|| Self::full(g, g.out_h, g.out_w))
    }

    /// The stride-1 "full" conv (padding KH − 1 − p, flipped taps) of an `in_h × in_w` plane
    /// onto the forward's input plane.
    fn full(g: &ConvGeometry, in_h: usize, in_w: usize) -> Self {
        Self {
            in_h,
            in_w,
            pad: g.kernel_h - 1 - g.padding,
            kh: g.kernel_h,
            kw: g.kernel_w,
            stride: 1,
            out_h: g.in_h,
            out_w: g.in_w,
        }
    }

    /// The input gradient of a strided conv as the stride-1 forward (flipped taps) of the
    /// output gradient dilated by the stride — s − 1 zeros between its pixels, then the rows
    /// and columns the forward's rounding left out as zeros, a plane of
    /// (H + 2p − KH + 1) × (W + 2p − KW + 1) — padded by KH − 1 − p.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(super) fn dilated_input_grad(g: &ConvGeometry) -> Option<Self> {
        (g.stride > 1
            && g.padding < g.kernel_h
            && g.kernel_h == g.kernel_w
            && g.in_h + 2 * g.padding >= g.kernel_h
            && g.in_w + 2 * g.padding >= g.kernel_w)
            .then(|| {
                let h = g.in_h + 2 * g.padding + 1 - g.kernel_h;
                Self::full(g, h, g.in_w + 2 * g.padding + 1 - g.kernel_w)
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
pub(super) fn weight_grad_padded_plane(s: &PlaneConv, xp: &[f32], dout: &[f32], sums: &mut [f32]) {
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

multiversion! {
/// The input gradient of a strided depthwise conv by scattering each output's gradient.
pub(super) fn scatter_input_grad_plane(g: &ConvGeometry, dout: &[f32], w: &[f32], dx: &mut [f32]) {
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
