//! Stride-1 depthwise convolution on AVX2 + FMA in the padded plane's wide coordinates: the
//! forward pass (and with it the stride-1 input gradient, the forward of the "full" conv) and
//! the weight gradient of one (image, channel) plane.
//!
//! As in the dense direct kernel ([`super::direct`]), output pixel (oh, ow) is column
//! `q = oh·Wp + ow` of the zero-padded plane (Hp × Wp), so tap (kh, kw) reads
//! `xp[q + kh·Wp + kw]` and consecutive outputs are one unaligned 8-lane load. Where W_out is
//! a multiple of 8 the vectors are the output rows' (no junk columns, stored in place);
//! otherwise they run over the wide range `0 … (H_out − 1)·Wp + W_out`, whose junk columns
//! (ow ≥ W_out) are dropped when the rows are copied out. A 4 × 4 plane (Wp = 6) takes 3
//! vectors of 8 lanes instead of the 4 rows × 16 lanes of the row kernel
//! ([`super::depthwise`]), a 2 × 2 plane 1 instead of 2 × 16.
//!
//! The forward sum of every output is `((0 + w₀·x₀) + w₁·x₁) + …` over the taps in order, a
//! rounded product then a rounded add, as the row kernel computes it: the same bits. The weight
//! gradient sums each tap in 8 lanes with fused multiply-adds over the vectors in order, then
//! one fixed tree over the lanes (a fixed order on every CPU with AVX2 and FMA; not the row
//! kernel's 16 lanes).

use super::depthwise::PlaneConv;
use std::arch::x86_64::*;

/// f32 lanes of one vector.
const LANES: usize = 8;

/// How a stride-1 plane's vectors lie in the padded plane.
#[derive(Clone, Copy, Debug)]
pub(super) struct WidePlane {
    s: PlaneConv,
    /// Whether the vectors are the output rows' (W_out a multiple of 8).
    rows: bool,
    /// Vectors of 8 outputs (with junk columns when not `rows`).
    vectors: usize,
}

impl WidePlane {
    /// For a stride-1 plane on a CPU with AVX2 and FMA (the SIMD path not forced to the
    /// baseline); `None` otherwise.
    pub fn of(s: &PlaneConv) -> Option<Self> {
        let simd = crate::cpu::simd_path() != crate::cpu::SimdPath::Baseline;
        let cpu = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        (s.stride == 1 && simd && cpu && s.out_h > 0 && s.out_w > 0).then(|| Self::new(*s))
    }

    fn new(s: PlaneConv) -> Self {
        let rows = s.out_w.is_multiple_of(LANES);
        let wide = (s.out_h - 1) * s.wp() + s.out_w;
        let vectors = if rows {
            s.out_h * s.out_w / LANES
        } else {
            wide.div_ceil(LANES)
        };
        Self { s, rows, vectors }
    }

    /// The vectors as (groups, vectors per group, the padded-plane step between groups):
    /// vector k = g·per + j starts at padded column g·step + 8·j (the rows' vectors, or one
    /// group of the wide range).
    fn groups(&self) -> (usize, usize, usize) {
        if self.rows {
            (self.s.out_h, self.s.out_w / LANES, self.s.wp())
        } else {
            (1, self.vectors, 0)
        }
    }

    /// The padded-plane column of vector k's first output.
    fn load_at(&self, k: usize) -> usize {
        let (_, per, step) = self.groups();
        (k / per) * step + (k % per) * LANES
    }

    /// The offset of every tap (kh, kw) into the padded plane, in weight order.
    fn offsets(&self) -> [usize; 49] {
        let mut off = [0; 49];
        for kh in 0..self.s.kh {
            for kw in 0..self.s.kw {
                off[kh * self.s.kw + kw] = kh * self.s.wp() + kw;
            }
        }
        off
    }

    /// Elements of the padded plane (with slack for the last vector's reads).
    pub fn padded_len(&self) -> usize {
        let last_tap = (self.s.kh - 1) * self.s.wp() + self.s.kw - 1;
        let plane = (self.s.in_h + 2 * self.s.pad) * self.s.wp();
        plane.max(last_tap + self.load_at(self.vectors - 1) + LANES)
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
    pub fn conv(&self, xp: &[f32], taps: &[f32], out: &mut [f32], wide: &mut [f32]) {
        let nt = self.s.kh * self.s.kw;
        assert!(xp.len() >= self.padded_len() && taps.len() >= nt && nt <= 49);
        assert!(out.len() >= self.s.out_h * self.s.out_w && wide.len() >= self.wide_len());
        let dst = if self.rows {
            out.as_mut_ptr()
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
            let (wp, ow) = (self.s.wp(), self.s.out_w);
            for (oh, row) in out.chunks_exact_mut(ow).take(self.s.out_h).enumerate() {
                row.copy_from_slice(&wide[oh * wp..][..ow]);
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn conv_taps<const NT: usize>(&self, xp: *const f32, taps: &[f32], dst: *mut f32) {
        let off = self.offsets();
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
        let off = self.offsets();
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
        let nt = self.s.kh * self.s.kw;
        let (oh, ow, wp) = (self.s.out_h, self.s.out_w, self.s.wp());
        assert!(xp.len() >= self.padded_len() && sums.len() >= nt && nt <= 49);
        assert!(dout.len() >= oh * ow && wide.len() >= self.wide_len());
        let grad = if self.rows {
            &dout[..oh * ow]
        } else {
            let wide = &mut wide[..self.wide_len()];
            wide.fill(0.0);
            for (r, row) in dout.chunks_exact(ow).take(oh).enumerate() {
                wide[r * wp..][..ow].copy_from_slice(row);
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
        let off = self.offsets();
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
        let off = self.offsets();
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
    use super::super::depthwise::{conv_padded_plane, pad_plane};
    use super::*;
    use crate::test_inputs::lcg_values;

    /// Stride-1 planes: rows of a whole number of vectors (8, 16 wide), wide ranges with
    /// junk columns (2 × 2 to 13 wide), 1 × 1, 3 × 3, 5 × 5 and 3 × 2 kernels, padding 0 up
    /// to k − 1 (the input gradient's "full" conv).
    fn planes() -> Vec<PlaneConv> {
        let plane = |h: usize, w: usize, (kh, kw): (usize, usize), pad: usize| PlaneConv {
            in_h: h,
            in_w: w,
            pad,
            kh,
            kw,
            stride: 1,
            out_h: h + 2 * pad + 1 - kh,
            out_w: w + 2 * pad + 1 - kw,
        };
        vec![
            plane(2, 2, (3, 3), 1),
            plane(4, 4, (3, 3), 1),
            plane(8, 8, (3, 3), 1),
            plane(16, 16, (3, 3), 1),
            plane(5, 13, (3, 3), 1),
            plane(7, 7, (3, 3), 0),
            plane(6, 6, (3, 3), 2),
            plane(9, 10, (5, 5), 2),
            plane(4, 8, (1, 1), 0),
            plane(6, 9, (3, 2), 1),
        ]
    }

    fn available() -> bool {
        let ok = WidePlane::of(&planes()[0]).is_some();
        if !ok {
            eprintln!("no AVX2 + FMA (or ATO_SIMD=baseline): the wide kernel never runs");
        }
        ok
    }

    /// The forward sums are the row kernel's, bit for bit (each output's products added in
    /// tap order from 0), with both kernels on their own padded buffers.
    #[test]
    fn forward_is_the_row_kernels_bits() {
        if !available() {
            return;
        }
        for (i, s) in planes().iter().enumerate() {
            let k = WidePlane::of(s).expect("stride 1");
            let x = lcg_values(s.in_h * s.in_w, 3 * i as u64, 1.0);
            let taps = lcg_values(s.kh * s.kw, 3 * i as u64 + 1, 1.0);
            let mut xp = vec![f32::NAN; k.padded_len()];
            let mut wide = vec![f32::NAN; k.wide_len()];
            pad_plane(s, &x, &mut xp);
            let mut ours = vec![f32::NAN; s.out_h * s.out_w];
            k.conv(&xp, &taps, &mut ours, &mut wide);
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
            let k = WidePlane::of(s).expect("stride 1");
            let x = lcg_values(s.in_h * s.in_w, 3 * i as u64, 1.0);
            let dout = lcg_values(s.out_h * s.out_w, 3 * i as u64 + 2, 1.0);
            let mut xp = vec![f32::NAN; k.padded_len()];
            let mut wide = vec![f32::NAN; k.wide_len()];
            pad_plane(s, &x, &mut xp);
            let mut sums = vec![f32::NAN; s.kh * s.kw];
            k.weight_grad(&xp, &dout, &mut sums, &mut wide);
            for (t, got) in sums.iter().enumerate() {
                let (kh, kw) = (t / s.kw, t % s.kw);
                let (mut want, mut size) = (0f64, 0f64);
                for oh in 0..s.out_h {
                    for ow in 0..s.out_w {
                        let (r, c) = ((oh + kh).wrapping_sub(s.pad), (ow + kw).wrapping_sub(s.pad));
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
