//! Direct stride-1 convolution with an AVX-512 register-blocked microkernel (no im2col,
//! no gemm): the forward pass, and the input gradient as the forward of the "full"
//! convolution with transposed, flipped weights.
//!
//! As in [`super::implicit`], the image is zero-padded and output pixels are numbered in
//! padded-width coordinates `q = oh·Wp + ow`, so for tap (kh, kw) the 16 inputs of 16
//! consecutive outputs are one unaligned vector load at `xp[c, q + kh·Wp + kw]`. The
//! microkernel keeps `NCO` output channels × `NPIX` vectors of 16 pixels in registers and
//! walks (c, kh, kw): per step, `NPIX` input loads, `NCO` weight broadcasts (from weights
//! packed as [C_out/NCO][C_in][KH][KW][NCO]) and `NCO·NPIX` FMAs. Sums run in a fixed order.

use super::im2col::copy;
use crate::simd::multiversion;

/// A stride-1 convolution as the direct kernel sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DirectShape {
    pub in_channels: usize,
    pub out_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub padding: usize,
}

/// Register blocking: output channels × 16-pixel vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Blocking {
    Co8Px48,
    Co16Px16,
    Co8Px16,
}

impl Blocking {
    fn channels(self) -> usize {
        match self {
            Blocking::Co16Px16 => 16,
            _ => 8,
        }
    }
    fn pixels(self) -> usize {
        match self {
            Blocking::Co8Px48 => 48,
            _ => 16,
        }
    }
}

impl DirectShape {
    fn hp(&self) -> usize {
        self.in_h + 2 * self.padding
    }
    fn wp(&self) -> usize {
        self.in_w + 2 * self.padding
    }
    pub fn out_h(&self) -> usize {
        self.hp() + 1 - self.kernel_h
    }
    pub fn out_w(&self) -> usize {
        self.wp() + 1 - self.kernel_w
    }
    fn plane(&self) -> usize {
        self.hp() * self.wp()
    }
    /// Output columns in padded-width coordinates.
    fn wide(&self) -> usize {
        (self.out_h() - 1) * self.wp() + self.out_w()
    }
    fn blocking(&self) -> Blocking {
        if self.wide() >= 192 {
            Blocking::Co8Px48
        } else if self.out_channels.is_multiple_of(16) {
            Blocking::Co16Px16
        } else {
            Blocking::Co8Px16
        }
    }
    /// Output columns computed (a whole number of pixel blocks).
    fn wide_rounded(&self) -> usize {
        let px = self.blocking().pixels();
        self.wide().div_ceil(px) * px
    }
    /// Elements of the padded input buffer, with slack for the last block's reads.
    fn padded_len(&self) -> usize {
        let reach = (self.kernel_h - 1) * self.wp() + self.kernel_w - 1 + self.wide_rounded();
        (self.in_channels - 1) * self.plane() + reach.max(self.plane())
    }
    /// Scratch elements [`conv_image`] needs.
    pub fn scratch_len(&self) -> usize {
        self.padded_len() + self.out_channels * self.wide_rounded()
    }
    fn taps(&self) -> usize {
        self.kernel_h * self.kernel_w
    }
}

/// Whether the CPU runs the kernel (AVX-512F).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the direct kernel handles `s` (output channels in blocks of 8, padding smaller
/// than the kernel, an AVX-512 CPU).
pub(crate) fn supports(s: &DirectShape) -> bool {
    s.out_channels.is_multiple_of(8)
        && s.in_channels > 0
        && s.padding < s.kernel_h.min(s.kernel_w)
        && s.hp() >= s.kernel_h
        && s.wp() >= s.kernel_w
        && available()
}

/// Packs forward weights (C_out × C_in × KH × KW) as [C_out/NCO][C_in][KH][KW][NCO].
pub(crate) fn pack_weights(s: &DirectShape, w: &[f32]) -> Vec<f32> {
    let nco = s.blocking().channels();
    let (ci, taps) = (s.in_channels, s.taps());
    let mut packed = vec![0f32; s.out_channels * ci * taps];
    for (block, dst) in packed.chunks_mut(nco * ci * taps).enumerate() {
        for lane in 0..nco {
            let src = &w[(block * nco + lane) * ci * taps..][..ci * taps];
            for (k, v) in src.iter().enumerate() {
                dst[k * nco + lane] = *v;
            }
        }
    }
    packed
}

/// The input-gradient conv of a forward conv with `fwd_w` (C_out × C_in × KH × KW): input
/// C_out channels, output C_in, weights transposed and flipped, padding KH − 1 − p; packed.
pub(crate) fn pack_transposed_weights(s: &DirectShape, fwd_w: &[f32]) -> Vec<f32> {
    // `s` describes the gradient conv: s.in_channels = forward C_out, s.out_channels =
    // forward C_in.
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
    pack_weights(s, &w)
}

multiversion! {
/// Copies one image (C × H × W) into the padded buffer, zeroing border and slack.
fn pad_into(s: &DirectShape, x: &[f32], xp: &mut [f32]) {
    let (wp, p, plane) = (s.wp(), s.padding, s.plane());
    let used = s.in_channels * plane;
    let len = xp.len();
    xp[used.min(len)..].fill(0.0);
    for c in 0..s.in_channels {
        let dst = &mut xp[c * plane..][..plane];
        dst[..p * wp + p].fill(0.0);
        let src = &x[c * s.in_h * s.in_w..][..s.in_h * s.in_w];
        for (r, row) in src.chunks(s.in_w).enumerate() {
            let start = (p + r) * wp + p;
            copy(&mut dst[start..start + s.in_w], row);
            // The right border of this row and the left border of the next one.
            for v in &mut dst[start + s.in_w..(start + wp).min(plane)] {
                *v = 0.0;
            }
        }
        dst[(p + s.in_h) * wp..].fill(0.0);
    }
}
}

multiversion! {
/// `out[o, oh, ow] = wide[o, oh·Wp + ow]`.
fn narrow_into(s: &DirectShape, wide: &[f32], out: &mut [f32]) {
    let (wp, ow, stride) = (s.wp(), s.out_w(), s.wide_rounded());
    let plane = s.out_h() * ow;
    for o in 0..s.out_channels {
        let src = &wide[o * stride..];
        for (oh, row) in out[o * plane..][..plane].chunks_mut(ow).enumerate() {
            copy(row, &src[oh * wp..][..ow]);
        }
    }
}
}

/// `out = conv(x, w)` for one image: x is C_in × H × W, out C_out × H_out × W_out, `packed`
/// from [`pack_weights`] (or [`pack_transposed_weights`]).
pub(crate) fn conv_image(
    s: &DirectShape,
    x: &[f32],
    packed: &[f32],
    out: &mut [f32],
    scratch: &mut [f32],
) {
    assert!(supports(s), "direct conv on an unsupported shape or CPU");
    assert!(
        x.len() >= s.in_channels * s.in_h * s.in_w
            && out.len() >= s.out_channels * s.out_h() * s.out_w()
    );
    assert_eq!(packed.len(), s.out_channels * s.in_channels * s.taps());
    let (xp, wide) = scratch.split_at_mut(s.padded_len());
    let wide = &mut wide[..s.out_channels * s.wide_rounded()];
    pad_into(s, x, xp);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `supports` checked AVX-512F; `padded_len` and `wide_rounded` size both buffers
    // for every load and store the kernel makes (asserted in `run_blocks`).
    unsafe {
        match s.blocking() {
            Blocking::Co8Px48 => run_blocks::<8, 3>(s, xp, packed, wide),
            Blocking::Co16Px16 => run_blocks::<16, 1>(s, xp, packed, wide),
            Blocking::Co8Px16 => run_blocks::<8, 1>(s, xp, packed, wide),
        }
    }
    narrow_into(s, wide, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_blocks<const NCO: usize, const NPIX: usize>(
    s: &DirectShape,
    xp: &[f32],
    packed: &[f32],
    wide: &mut [f32],
) {
    let stride = s.wide_rounded();
    let taps = s.taps();
    let per_block = s.in_channels * taps * NCO;
    let last_read =
        (s.in_channels - 1) * s.plane() + (s.kernel_h - 1) * s.wp() + s.kernel_w - 1 + stride;
    assert!(last_read <= xp.len() && wide.len() >= s.out_channels * stride);
    for block in 0..s.out_channels / NCO {
        let w = packed[block * per_block..][..per_block].as_ptr();
        let out = wide[block * NCO * stride..].as_mut_ptr();
        for q in (0..stride).step_by(16 * NPIX) {
            // SAFETY: q + 16·NPIX ≤ stride, so every read stays below `last_read` and every
            // write inside this block's NCO rows of `wide`.
            unsafe { microkernel::<NCO, NPIX>(s, xp.as_ptr().add(q), w, out.add(q), stride) };
        }
    }
}

/// One NCO × (16·NPIX) output tile, summed over (c, kh, kw) in that order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn microkernel<const NCO: usize, const NPIX: usize>(
    s: &DirectShape,
    x: *const f32,
    w: *const f32,
    out: *mut f32,
    out_stride: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); NPIX]; NCO];
    let (plane, wp) = (s.plane(), s.wp());
    let mut wk = w;
    for c in 0..s.in_channels {
        // SAFETY (whole body): offsets stay within the buffers sized by the caller.
        let xc = unsafe { x.add(c * plane) };
        for kh in 0..s.kernel_h {
            let row = unsafe { xc.add(kh * wp) };
            for kw in 0..s.kernel_w {
                let base = unsafe { row.add(kw) };
                let mut inputs = [_mm512_setzero_ps(); NPIX];
                for (v, input) in inputs.iter_mut().enumerate() {
                    *input = unsafe { _mm512_loadu_ps(base.add(16 * v)) };
                }
                for (o, acc_o) in acc.iter_mut().enumerate() {
                    let weight = _mm512_set1_ps(unsafe { *wk.add(o) });
                    for v in 0..NPIX {
                        acc_o[v] = _mm512_fmadd_ps(weight, inputs[v], acc_o[v]);
                    }
                }
                wk = unsafe { wk.add(NCO) };
            }
        }
    }
    for (o, acc_o) in acc.iter().enumerate() {
        for (v, a) in acc_o.iter().enumerate() {
            unsafe { _mm512_storeu_ps(out.add(o * out_stride + 16 * v), *a) };
        }
    }
}
