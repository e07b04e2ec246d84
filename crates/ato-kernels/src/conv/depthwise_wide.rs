//! Depthwise convolution on AVX2 + FMA in the padded plane's wide coordinates: the forward
//! pass at any stride (and with it the input gradient: at stride 1 the forward of the "full"
//! conv, at stride s that of the gradient dilated by s, [`WidePlane::pad_dilated`]) and the
//! weight gradient of one (image, channel) plane.
//!
//! The plane is laid out as the dense direct kernel lays out one channel ([`super::direct`],
//! a one-channel [`DirectShape`]): zero-padded, and at stride s split into its s × s phases,
//! so output pixel (oh, ow) is column `q = oh·Wq + ow` and tap (kh, kw) reads one offset past
//! it — consecutive outputs are one unaligned 8-lane load at any stride. Where W_out is a
//! multiple of 8 the vectors are the output rows' (no junk columns, stored in place);
//! otherwise they run over the wide range `0 … (H_out − 1)·Wq + W_out`, whose junk columns
//! (ow ≥ W_out) are dropped when the rows are copied out. A 4 × 4 plane (Wp = 6) takes 3
//! vectors of 8 lanes instead of the 4 rows × 16 lanes of the row kernel
//! ([`super::depthwise_rows`]), a 2 × 2 plane 1 instead of 2 × 16.
//!
//! The forward sum of every output is `((0 + w₀·x₀) + w₁·x₁) + …` over the taps in order, a
//! rounded product then a rounded add, as the row kernel computes it: the same bits. The weight
//! gradient sums each tap in 8 lanes with fused multiply-adds over the vectors in order, then
//! one fixed tree over the lanes (a fixed order on every CPU with AVX2 and FMA; not the row
//! kernel's 16 lanes).

use super::depthwise_rows::PlaneConv;
use super::direct_layout::pad_into;
use super::direct_shape::DirectShape;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// f32 lanes of one vector.
const LANES: usize = 8;

/// How a plane's vectors lie in its padded (phase-split) buffer.
#[derive(Clone, Copy, Debug)]
pub(super) struct WidePlane {
    /// The plane as a one-channel conv of the direct kernel's layout.
    s: DirectShape,
    /// The buffer offset of every tap (kh, kw), in weight order.
    taps: [usize; 49],
    /// Whether the vectors are the output rows' (W_out a multiple of 8).
    rows: bool,
    /// Vectors of 8 outputs (with junk columns when not `rows`).
    vectors: usize,
    /// Elements of the padded buffer ([`Self::padded_len`]).
    padded: usize,
}

impl WidePlane {
    /// For a plane whose padding is smaller than its kernel, on a CPU with AVX2 and FMA (the
    /// SIMD path not forced to the baseline); `None` otherwise.
    pub fn of(p: &PlaneConv) -> Option<Self> {
        let simd = crate::cpu::simd_path() != crate::cpu::SimdPath::Baseline;
        let cpu = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        let shape = p.pad < p.kh.min(p.kw) && p.stride > 0 && p.kh * p.kw <= 49;
        (shape && simd && cpu && p.out_h > 0 && p.out_w > 0).then(|| Self::new(p))
    }

    fn new(p: &PlaneConv) -> Self {
        let s = DirectShape {
            in_channels: 1,
            out_channels: 1,
            in_h: p.in_h,
            in_w: p.in_w,
            kernel_h: p.kh,
            kernel_w: p.kw,
            stride: p.stride,
            padding: p.pad,
        };
        debug_assert_eq!((s.out_h(), s.out_w()), (p.out_h, p.out_w));
        let mut taps = [0; 49];
        for (t, o) in taps.iter_mut().zip(s.tap_offsets()) {
            *t = o;
        }
        let rows = p.out_w.is_multiple_of(LANES);
        let vectors = if rows {
            p.out_h * p.out_w / LANES
        } else {
            s.wide().div_ceil(LANES)
        };
        let mut plane = Self {
            s,
            taps,
            rows,
            vectors,
            padded: 0,
        };
        let reach = s.last_tap() + plane.load_at(vectors - 1) + LANES;
        plane.padded = (s.planes() * s.plane()).max(reach);
        plane
    }

    /// The vectors as (groups, vectors per group, the buffer step between groups): vector
    /// k = g·per + j starts at column g·step + 8·j (the rows' vectors, or one group of the
    /// wide range).
    fn groups(&self) -> (usize, usize, usize) {
        if self.rows {
            (self.s.out_h(), self.s.out_w() / LANES, self.s.wq())
        } else {
            (1, self.vectors, 0)
        }
    }

    /// The column of vector k's first output.
    fn load_at(&self, k: usize) -> usize {
        let (_, per, step) = self.groups();
        (k / per) * step + (k % per) * LANES
    }

    fn tap_count(&self) -> usize {
        self.s.kernel_h * self.s.kernel_w
    }

    /// Elements of the padded buffer (with slack for the last vector's reads).
    pub fn padded_len(&self) -> usize {
        self.padded
    }

    /// `xp` ([`Self::padded_len`]) = the plane `x` zero-padded (phase-split at stride > 1).
    pub fn pad(&self, x: &[f32], xp: &mut [f32]) {
        pad_into(&self.s, x, xp);
    }

    /// `xp` ([`Self::padded_len`]) = the `cols`-wide plane `g` dilated by `stride` into this
    /// stride-1 plane's input (g[r, c] at pixel (stride·r, stride·c), zeros elsewhere), then
    /// zero-padded: one pass for the dilation and the padding.
    pub fn pad_dilated(&self, g: &[f32], cols: usize, stride: usize, xp: &mut [f32]) {
        assert_eq!(self.s.stride, 1, "a dilated plane is read at stride 1");
        let (p, wq) = (self.s.padding, self.s.wq());
        let rows = g.len() / cols.max(1);
        assert!(
            rows == 0 || (stride * (rows - 1) < self.s.in_h && stride * (cols - 1) < self.s.in_w)
        );
        xp.fill(0.0);
        for (r, row) in g.chunks_exact(cols).enumerate() {
            let dst = &mut xp[(p + stride * r) * wq + p..];
            for (c, v) in row.iter().enumerate() {
                dst[stride * c] = *v;
            }
        }
    }

    /// Scratch elements past the padded plane: the wide outputs (or gradient) when the
    /// vectors are not the rows'.
    pub fn wide_len(&self) -> usize {
        if self.rows {
            0
        } else {
            self.vectors * LANES
        }
    }

    /// `out = conv(xp, taps)` (H_out × W_out) on the padded plane `xp` ([`Self::padded_len`]),
    /// with `wide` ([`Self::wide_len`]) as scratch.
    /// Writes every element of `out[..H_out·W_out]` (which may be uninitialised).
    pub fn conv(&self, xp: &[f32], taps: &[f32], out: &mut [MaybeUninit<f32>], wide: &mut [f32]) {
        let nt = self.tap_count();
        let (oh, ow) = (self.s.out_h(), self.s.out_w());
        assert!(xp.len() >= self.padded_len() && taps.len() >= nt);
        assert!(out.len() >= oh * ow && wide.len() >= self.wide_len());
        let dst: *mut f32 = if self.rows {
            out.as_mut_ptr().cast()
        } else {
            wide.as_mut_ptr()
        };
        // SAFETY: `of` checked AVX2 and FMA; vector k reads `xp` below
        // load_at(k) + last tap + 8 ≤ padded_len (asserted) and writes 8 elements at 8·k of
        // `out` (rows: the vectors are the H_out·W_out outputs) or of `wide` (wide_len).
        unsafe {
            match nt {
                9 => self.conv_taps::<9>(xp.as_ptr(), taps, dst),
                _ => self.conv_any(xp.as_ptr(), &taps[..nt], dst),
            }
        }
        if !self.rows {
            let wq = self.s.wq();
            for (r, row) in out.chunks_exact_mut(ow).take(oh).enumerate() {
                for (d, v) in row.iter_mut().zip(&wide[r * wq..][..ow]) {
                    d.write(*v);
                }
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn conv_taps<const NT: usize>(&self, xp: *const f32, taps: &[f32], dst: *mut f32) {
        let off = &self.taps;
        let w: [__m256; NT] = std::array::from_fn(|t| _mm256_set1_ps(taps[t]));
        let (groups, per, step) = self.groups();
        // SAFETY (loop): as `conv` states, for vector k = g·per + j.
        for g in 0..groups {
            for j in 0..per {
                unsafe {
                    let base = xp.add(g * step + j * LANES);
                    let mut acc = _mm256_setzero_ps();
                    for t in 0..NT {
                        let x = _mm256_loadu_ps(base.add(off[t]));
                        acc = _mm256_add_ps(acc, _mm256_mul_ps(w[t], x));
                    }
                    _mm256_storeu_ps(dst.add((g * per + j) * LANES), acc);
                }
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn conv_any(&self, xp: *const f32, taps: &[f32], dst: *mut f32) {
        let off = &self.taps;
        let (groups, per, step) = self.groups();
        // SAFETY (loop): as `conv` states, for vector k = g·per + j.
        for g in 0..groups {
            for j in 0..per {
                unsafe {
                    let base = xp.add(g * step + j * LANES);
                    let mut acc = _mm256_setzero_ps();
                    for (t, wt) in taps.iter().enumerate() {
                        let x = _mm256_loadu_ps(base.add(off[t]));
                        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(*wt), x));
                    }
                    _mm256_storeu_ps(dst.add((g * per + j) * LANES), acc);
                }
            }
        }
    }

    /// `sums[t] = Σ dout[oh, ow] · xp[oh + kh, ow + kw]` for every tap t = (kh, kw), with
    /// `wide` ([`Self::wide_len`]) as scratch for the widened gradient.
    pub fn weight_grad(&self, xp: &[f32], dout: &[f32], sums: &mut [f32], wide: &mut [f32]) {
        let nt = self.tap_count();
        let (oh, ow, wq) = (self.s.out_h(), self.s.out_w(), self.s.wq());
        assert!(xp.len() >= self.padded_len() && sums.len() >= nt);
        assert!(dout.len() >= oh * ow && wide.len() >= self.wide_len());
        let grad = if self.rows {
            &dout[..oh * ow]
        } else {
            let wide = &mut wide[..self.wide_len()];
            wide.fill(0.0);
            for (r, row) in dout.chunks_exact(ow).take(oh).enumerate() {
                wide[r * wq..][..ow].copy_from_slice(row);
            }
            &*wide
        };
        // SAFETY: `of` checked AVX2 and FMA; vector k reads 8 gradients at 8·k of `grad`
        // (H_out·W_out or wide_len elements) and `xp` below padded_len (asserted).
        unsafe {
            match nt {
                9 => self.grad_taps::<9>(xp.as_ptr(), grad.as_ptr(), sums),
                _ => self.grad_any(xp.as_ptr(), grad.as_ptr(), &mut sums[..nt]),
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn grad_taps<const NT: usize>(
        &self,
        xp: *const f32,
        grad: *const f32,
        sums: &mut [f32],
    ) {
        let off = &self.taps;
        let mut acc = [_mm256_setzero_ps(); NT];
        let (groups, per, step) = self.groups();
        // SAFETY (loop): as `weight_grad` states, for vector k = g·per + j.
        for g in 0..groups {
            for j in 0..per {
                unsafe {
                    let base = xp.add(g * step + j * LANES);
                    let d = _mm256_loadu_ps(grad.add((g * per + j) * LANES));
                    for (t, a) in acc.iter_mut().enumerate() {
                        *a = _mm256_fmadd_ps(d, _mm256_loadu_ps(base.add(off[t])), *a);
                    }
                }
            }
        }
        for (s, a) in sums.iter_mut().zip(&acc) {
            *s = lane_sum(*a);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn grad_any(&self, xp: *const f32, grad: *const f32, sums: &mut [f32]) {
        let off = &self.taps;
        let (groups, per, step) = self.groups();
        for (t, s) in sums.iter_mut().enumerate() {
            let mut a = _mm256_setzero_ps();
            // SAFETY (loop): as `weight_grad` states, for vector k = g·per + j.
            for g in 0..groups {
                for j in 0..per {
                    unsafe {
                        let x = _mm256_loadu_ps(xp.add(g * step + j * LANES + off[t]));
                        let d = _mm256_loadu_ps(grad.add((g * per + j) * LANES));
                        a = _mm256_fmadd_ps(d, x, a);
                    }
                }
            }
            *s = lane_sum(a);
        }
    }
}

/// The 8 lanes' sum in one fixed tree: the halves added, then pairs, then the last two.
#[target_feature(enable = "avx2,fma")]
fn lane_sum(a: __m256) -> f32 {
    let half = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
    let pairs = _mm_add_ps(half, _mm_movehl_ps(half, half));
    _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps::<1>(pairs, pairs)))
}

#[cfg(test)]
mod tests {
    use super::super::depthwise_rows::{conv_padded_plane, pad_plane};
    use super::*;
    use crate::test_inputs::lcg_values;

    /// Planes: rows of a whole number of vectors (8, 16 wide), wide ranges with junk
    /// columns (2 × 2 to 13 wide), 1 × 1, 3 × 3, 5 × 5 and 3 × 2 kernels, padding 0 up to
    /// k − 1 (the input gradient's "full" conv), strides 1 to 3 (even and odd sizes).
    fn planes() -> Vec<PlaneConv> {
        let plane = |h: usize, w: usize, (kh, kw): (usize, usize), pad: usize, stride| PlaneConv {
            in_h: h,
            in_w: w,
            pad,
            kh,
            kw,
            stride,
            out_h: (h + 2 * pad - kh) / stride + 1,
            out_w: (w + 2 * pad - kw) / stride + 1,
        };
        vec![
            plane(2, 2, (3, 3), 1, 1),
            plane(4, 4, (3, 3), 1, 1),
            plane(8, 8, (3, 3), 1, 1),
            plane(16, 16, (3, 3), 1, 1),
            plane(5, 13, (3, 3), 1, 1),
            plane(7, 7, (3, 3), 0, 1),
            plane(6, 6, (3, 3), 2, 1),
            plane(9, 10, (5, 5), 2, 1),
            plane(4, 8, (1, 1), 0, 1),
            plane(6, 9, (3, 2), 1, 1),
            plane(32, 32, (3, 3), 1, 2),
            plane(8, 8, (3, 3), 1, 2),
            plane(4, 4, (3, 3), 1, 2),
            plane(7, 9, (3, 3), 1, 2),
            plane(11, 10, (5, 5), 2, 2),
            plane(10, 11, (3, 3), 1, 3),
        ]
    }

    fn available() -> bool {
        let ok = WidePlane::of(&planes()[0]).is_some();
        if !ok {
            eprintln!("no AVX2 + FMA (or ATO_SIMD=baseline): the wide kernel never runs");
        }
        ok
    }

    /// The plane `x` padded for `k`, and NaN scratch for its wide outputs or gradient.
    fn buffers(k: &WidePlane, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let mut xp = vec![f32::NAN; k.padded_len()];
        k.pad(x, &mut xp);
        (xp, vec![f32::NAN; k.wide_len()])
    }

    /// The forward sums are the row kernel's, bit for bit (each output's products added in
    /// tap order from 0), with both kernels on their own padded buffers.
    #[test]
    fn forward_is_the_row_kernels_bits() {
        if !available() {
            return;
        }
        for (i, s) in planes().iter().enumerate() {
            let k = WidePlane::of(s).expect("padding below the kernel");
            let x = lcg_values(s.in_h * s.in_w, 3 * i as u64, 1.0);
            let taps = lcg_values(s.kh * s.kw, 3 * i as u64 + 1, 1.0);
            let (xp, mut wide) = buffers(&k, &x);
            let mut ours = vec![f32::NAN; s.out_h * s.out_w];
            k.conv(&xp, &taps, crate::output::as_uninit(&mut ours), &mut wide);
            let mut xp = vec![f32::NAN; s.padded_len()];
            pad_plane(s, &x, &mut xp);
            let mut rows = vec![f32::NAN; s.out_h * s.out_w];
            conv_padded_plane(s, &xp, &taps, &mut rows);
            let (a, b): (Vec<u32>, Vec<u32>) = (
                ours.iter().map(|v| v.to_bits()).collect(),
                rows.iter().map(|v| v.to_bits()).collect(),
            );
            assert_eq!(a, b, "plane {i}: {s:?}");
        }
    }

    /// The weight-gradient sums against the f64 definition, within the rounding of f32 sums.
    #[test]
    fn weight_grad_matches_the_definition() {
        if !available() {
            return;
        }
        for (i, s) in planes().iter().enumerate() {
            let k = WidePlane::of(s).expect("padding below the kernel");
            let x = lcg_values(s.in_h * s.in_w, 3 * i as u64, 1.0);
            let dout = lcg_values(s.out_h * s.out_w, 3 * i as u64 + 2, 1.0);
            let (xp, mut wide) = buffers(&k, &x);
            let mut sums = vec![f32::NAN; s.kh * s.kw];
            k.weight_grad(&xp, &dout, &mut sums, &mut wide);
            for (t, got) in sums.iter().enumerate() {
                let (kh, kw) = (t / s.kw, t % s.kw);
                let (mut want, mut size) = (0f64, 0f64);
                for oh in 0..s.out_h {
                    for ow in 0..s.out_w {
                        let r = (s.stride * oh + kh).wrapping_sub(s.pad);
                        let c = (s.stride * ow + kw).wrapping_sub(s.pad);
                        if r < s.in_h && c < s.in_w {
                            let term = dout[oh * s.out_w + ow] as f64 * x[r * s.in_w + c] as f64;
                            want += term;
                            size += term.abs();
                        }
                    }
                }
                assert!(
                    (*got as f64 - want).abs() <= 1e-6 * size + 1e-7,
                    "plane {i} ({s:?}) tap {t}: {got} against {want}"
                );
            }
        }
    }
}
