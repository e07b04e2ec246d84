//! The weight gradient of a dense conv in the direct kernel's layout ([`super::direct`]):
//! `dw[o, c, kh, kw] = Σ_q dz[o, q] · xp[c, q + offset(kh, kw)]` over the output columns q
//! (wide coordinates `oh·Wq + ow`), with the input padded (and phase-split at stride > 1)
//! exactly as the forward pass pads it. The tiles ([`super::wgrad_simd`]) read the columns
//! through a [`Columns`] list: in machine mode, vectors of 8 columns — the output rows' where
//! W_out is a multiple of 8 (the gradient read in place), else the wide range (the gradient
//! copied into the wide layout, zeros in its junk columns); in portable mode, every output
//! column once (the gradient transposed).
//!
//! Two orders of summation ([`Order`]). In machine mode each sum runs over q in 8 lanes, then
//! a fixed tree over the lanes (a fixed order on a given CPU path). In portable mode each sum
//! runs over q one column at a time with fused multiply-adds — the order portable mode defines
//! for every product ([`crate::portable`]) — with the vectors across output channels, so it
//! gives the bits of the implicit gemm ([`super::implicit`]) it replaces, on every CPU; it runs
//! only where that gemm would (stride 1, at least 8 input channels), the other shapes keep
//! their im2col products, whose sums are split in bands of rows.

use super::direct_layout::{pad_into, widen_into};
use super::direct_shape::DirectShape;
use crate::mode::{reproducibility, Reproducibility};
use crate::parallel::sum_in_chunk_order;

/// How a [`DirectWeightGrad`] sums over the wide columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// 8 lanes over the columns, then a tree over the lanes (machine mode).
    Lanes,
    /// Column by column, as the portable product (portable mode).
    Sequential,
}

/// The columns a weight gradient sums over, as offsets: column (or vector of 8 columns) k
/// reads the input at `inputs[k]` past each tap's offset and the output gradient at
/// `gradient[k]` of its channel's row, the rows `gradient_pitch` apart (the lanes order; the
/// sequential order reads column k of its transposed gradient and leaves these empty). Both
/// lists increase (their last entry is their largest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Columns {
    pub inputs: Vec<usize>,
    pub gradient: Vec<usize>,
    pub gradient_pitch: usize,
}

/// The direct weight gradient of one conv shape (the forward's [`DirectShape`]).
pub(crate) struct DirectWeightGrad {
    shape: DirectShape,
    order: Order,
    /// The buffer offset of every (c, kh, kw), in weight order.
    taps: Vec<usize>,
    /// The columns the tiles sum over.
    columns: Columns,
}

impl DirectWeightGrad {
    /// For the forward shape `s` (one the direct kernel supports) on a CPU with AVX2 and FMA
    /// (the SIMD path not forced to the baseline): in machine mode, and in portable mode where
    /// `replaces_implicit` (the portable product would run the implicit gemm); `None`
    /// otherwise.
    pub fn new(s: DirectShape, replaces_implicit: bool) -> Option<Self> {
        let order = order(reproducibility(), replaces_implicit)?;
        takes(crate::cpu::simd_path(), avx2_fma()).then(|| Self::of(s, order))
    }

    fn of(s: DirectShape, order: Order) -> Self {
        Self {
            taps: s.tap_offsets(),
            columns: columns(&s, order),
            shape: s,
            order,
        }
    }

    /// Whether the tiles read the output gradient in place (the rows' vectors).
    fn in_place(&self) -> bool {
        self.order == Order::Lanes && self.columns.gradient_pitch == self.plane()
    }

    fn plane(&self) -> usize {
        self.shape.out_h() * self.shape.out_w()
    }

    /// Lanes: the wide columns of the gradient's copy per channel (a multiple of 8).
    /// Sequential: output channels per column of the transposed gradient (a multiple of 8).
    fn pitch(&self) -> usize {
        match self.order {
            Order::Lanes => self.shape.wide().div_ceil(8) * 8,
            Order::Sequential => self.shape.out_channels.div_ceil(8) * 8,
        }
    }

    /// Elements of the output gradient's copy.
    fn gradient_len(&self) -> usize {
        match self.order {
            Order::Lanes if self.in_place() => 0,
            Order::Lanes => self.shape.out_channels * self.pitch(),
            Order::Sequential => self.plane() * self.pitch(),
        }
    }

    /// Columns read past each tap's offset.
    fn reach(&self) -> usize {
        let width = match self.order {
            Order::Lanes => 8,
            Order::Sequential => 1,
        };
        self.columns.inputs.last().map_or(0, |m| m + width)
    }

    fn padded_len(&self) -> usize {
        self.shape
            .padded_len()
            .max(self.shape.last_tap() + self.reach())
    }

    /// Scratch elements [`Self::accumulate_image`] needs.
    pub fn scratch_len(&self) -> usize {
        self.padded_len() + self.gradient_len()
    }

    /// Elements of the sums (C_in·KH·KW taps × C_out, tap-major).
    pub fn sums_len(&self) -> usize {
        self.taps.len() * self.shape.out_channels
    }

    /// Adds one image's sums into `acc` ([`Self::sums_len`], tap-major; overwrites it when
    /// `first` in the sequential order, whose first image is not added to zeros): x is the
    /// input image (C_in × H × W), dz the output's gradient (C_out × H_out × W_out).
    pub fn accumulate_image(
        &self,
        x: &[f32],
        dz: &[f32],
        acc: &mut [f32],
        first: bool,
        scratch: &mut [f32],
    ) {
        let s = &self.shape;
        let (co, pitch) = (s.out_channels, self.pitch());
        assert!(x.len() >= s.in_channels * s.in_h * s.in_w);
        assert!(dz.len() >= co * self.plane() && acc.len() >= self.sums_len());
        let (xp, grad) = scratch.split_at_mut(self.padded_len());
        let grad = &mut grad[..self.gradient_len()];
        pad_into(s, x, xp);
        assert!(s.last_tap() + self.reach() <= xp.len());
        let grad: &[f32] = match self.order {
            Order::Lanes if self.in_place() => dz,
            Order::Lanes => {
                widen_into(s, dz, grad, pitch);
                grad
            }
            Order::Sequential => {
                transpose_into(s, dz, grad, pitch);
                grad
            }
        };
        let cols = &self.columns;
        match self.order {
            Order::Lanes => {
                let last = cols.gradient.last().map_or(0, |m| m + 8);
                assert!((co - 1) * cols.gradient_pitch + last <= grad.len());
            }
            Order::Sequential => assert!(cols.inputs.len() * pitch <= grad.len()),
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("`new` gives direct tiles on x86-64 only");
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `new` checked AVX2 and FMA; `grad` holds the gradient in the layout of
        // `order` (co rows of `gradient_pitch` read at the columns' offsets, or one column of
        // `pitch` ≥ co channels per output column), `xp` every tap's columns and `grad` every
        // column's (asserted), `acc` the sums (asserted).
        unsafe {
            let (xp, grad) = (xp.as_ptr(), grad.as_ptr());
            match self.order {
                Order::Lanes => super::wgrad_simd::accumulate(&self.taps, co, cols, xp, grad, acc),
                Order::Sequential => super::wgrad_simd::accumulate_sequential(
                    &self.taps, co, pitch, cols, xp, grad, acc, first,
                ),
            }
        };
    }

    /// The weight gradient (C_out × C_in × KH × KW) from per-chunk sums, added in chunk order.
    pub fn finish(&self, partials: Vec<Vec<f32>>) -> Vec<f32> {
        let (co, taps) = (self.shape.out_channels, self.taps.len());
        let total = sum_in_chunk_order(partials, taps * co);
        let mut w = vec![0f32; co * taps];
        for (t, row) in total.chunks_exact(co).enumerate() {
            for (o, v) in row.iter().enumerate() {
                w[o * taps + t] = *v;
            }
        }
        w
    }
}

/// The order the direct tiles sum in for `mode`, if they run: always in machine mode, in
/// portable mode only in place of the implicit gemm.
fn order(mode: Reproducibility, replaces_implicit: bool) -> Option<Order> {
    match mode {
        Reproducibility::Machine => Some(Order::Lanes),
        Reproducibility::Portable => replaces_implicit.then_some(Order::Sequential),
    }
}

/// Whether the direct tiles can run: on a SIMD path above the baseline (not forced down with
/// `ATO_SIMD=baseline`), on a CPU with AVX2 and FMA.
fn takes(path: crate::cpu::SimdPath, avx2_fma: bool) -> bool {
    path != crate::cpu::SimdPath::Baseline && avx2_fma
}

/// The columns the tiles of `order` sum over (see [`Columns`]): in the lanes order, vectors
/// of 8 — the output rows' where W_out is a multiple of 8 (the gradient read in place, its
/// rows H_out·W_out apart), else the wide range (the gradient's wide copy); in the sequential
/// order, every output column once, in order (the junk columns of the wide range, whose
/// gradient is zero, skipped: adding a product with a zero factor to a sum that started at
/// +0 changes no bit).
fn columns(s: &DirectShape, order: Order) -> Columns {
    let (oh, ow, wq) = (s.out_h(), s.out_w(), s.wq());
    match order {
        Order::Lanes if ow.is_multiple_of(8) => Columns {
            inputs: s.row_vectors(8, wq),
            gradient: s.row_vectors(8, ow),
            gradient_pitch: oh * ow,
        },
        Order::Lanes => {
            let pitch = s.wide().div_ceil(8) * 8;
            let starts: Vec<usize> = (0..pitch).step_by(8).collect();
            Columns {
                inputs: starts.clone(),
                gradient: starts,
                gradient_pitch: pitch,
            }
        }
        Order::Sequential => Columns {
            inputs: s.row_vectors(1, wq),
            gradient: Vec::new(),
            gradient_pitch: 0,
        },
    }
}

/// `dzt[(oh·W_out + ow)·pitch + o] = dz[o, oh, ow]`, zero in the channels from C_out to
/// `pitch`.
fn transpose_into(s: &DirectShape, dz: &[f32], dzt: &mut [f32], pitch: usize) {
    let plane = s.out_h() * s.out_w();
    dzt.fill(0.0);
    for (o, src) in dz.chunks_exact(plane).take(s.out_channels).enumerate() {
        for (q, v) in src.iter().enumerate() {
            dzt[q * pitch + o] = *v;
        }
    }
}

fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::SimdPath;
    use crate::test_inputs::lcg_values;

    #[test]
    fn the_tiles_run_on_avx2_and_fma_in_the_order_of_the_mode() {
        assert!(takes(SimdPath::Avx2Fma, true));
        assert!(takes(SimdPath::Avx512, true));
        assert!(!takes(SimdPath::Baseline, true));
        assert!(!takes(SimdPath::Avx2Fma, false));
        let (m, p) = (Reproducibility::Machine, Reproducibility::Portable);
        assert_eq!(order(m, false), Some(Order::Lanes));
        assert_eq!(order(m, true), Some(Order::Lanes));
        assert_eq!(order(p, true), Some(Order::Sequential));
        assert_eq!(order(p, false), None);
    }

    /// dw[o, c, kh, kw] = Σ_n Σ_(oh, ow) dz[n, o, oh, ow] · x[n, c, s·oh + kh − p, s·ow + kw − p]
    /// in f64, zero outside the image, with the sum of the terms' magnitudes.
    fn reference(s: &DirectShape, batch: usize, x: &[f32], dz: &[f32]) -> Vec<(f64, f64)> {
        let (ci, co, kh, kw) = (s.in_channels, s.out_channels, s.kernel_h, s.kernel_w);
        let (oh, ow) = (s.out_h(), s.out_w());
        let mut dw = vec![(0f64, 0f64); co * ci * kh * kw];
        for n in 0..batch {
            for (i, d) in dw.iter_mut().enumerate() {
                let (o, c, a, b) = (i / (ci * kh * kw), i / (kh * kw) % ci, i / kw % kh, i % kw);
                for r in 0..oh {
                    for q in 0..ow {
                        let (y, xx) = (s.stride * r + a, s.stride * q + b);
                        if y < s.padding || xx < s.padding {
                            continue;
                        }
                        let (y, xx) = (y - s.padding, xx - s.padding);
                        if y >= s.in_h || xx >= s.in_w {
                            continue;
                        }
                        let xv = x[((n * ci + c) * s.in_h + y) * s.in_w + xx] as f64;
                        let term = dz[((n * co + o) * oh + r) * ow + q] as f64 * xv;
                        d.0 += term;
                        d.1 += term.abs();
                    }
                }
            }
        }
        dw
    }

    /// The tiles against the f64 sums on shapes with every tile remainder (channels not a
    /// multiple of 4, taps not of 3), strides 1 to 3, a 7 × 7 stem and a 1 × 1 stride-2 conv,
    /// output widths of whole vectors (the rows' vectors, the gradient read in place: 40 and
    /// 32 wide at stride 1, 8 wide at stride 2 and in a 1 × 1 conv), over two images (the sums
    /// of the second add to the first's).
    #[test]
    fn direct_tiles_match_the_definition() {
        if !takes(crate::cpu::simd_path(), avx2_fma()) {
            eprintln!("no AVX2 + FMA (or ATO_SIMD=baseline): the direct tiles never run");
            return;
        }
        let shape = |ci, co, h, w, k: (usize, usize), stride, padding| DirectShape {
            in_channels: ci,
            out_channels: co,
            in_h: h,
            in_w: w,
            kernel_h: k.0,
            kernel_w: k.1,
            stride,
            padding,
        };
        let cases = [
            shape(3, 5, 7, 9, (3, 3), 1, 1),
            shape(4, 6, 9, 7, (3, 3), 2, 1),
            shape(8, 16, 6, 7, (3, 3), 1, 1),
            shape(3, 8, 19, 21, (7, 7), 2, 3),
            shape(8, 4, 7, 7, (1, 1), 2, 0),
            shape(5, 13, 5, 40, (5, 5), 1, 2),
            shape(2, 7, 11, 11, (3, 3), 3, 2),
            shape(3, 4, 6, 7, (3, 2), 1, 1),
            shape(16, 16, 32, 32, (3, 3), 1, 1),
            shape(4, 6, 16, 16, (3, 3), 2, 1),
            shape(8, 5, 4, 8, (1, 1), 1, 0),
        ];
        for (k, s) in cases.iter().enumerate() {
            let batch = 2;
            let x = lcg_values(batch * s.in_channels * s.in_h * s.in_w, 2 * k as u64, 1.0);
            let dz = lcg_values(
                batch * s.out_channels * s.out_h() * s.out_w(),
                2 * k as u64 + 1,
                1.0,
            );
            for order in [Order::Lanes, Order::Sequential] {
                let kernel = DirectWeightGrad::of(*s, order);
                let mut sums = vec![0f32; kernel.sums_len()];
                let mut scratch = vec![f32::NAN; kernel.scratch_len()];
                let (xi, zi) = (x.len() / batch, dz.len() / batch);
                for n in 0..batch {
                    kernel.accumulate_image(
                        &x[n * xi..][..xi],
                        &dz[n * zi..][..zi],
                        &mut sums,
                        n == 0,
                        &mut scratch,
                    );
                }
                let ours = kernel.finish(vec![sums]);
                let want = reference(s, batch, &x, &dz);
                assert_eq!(ours.len(), want.len());
                // f32 sums of up to ~2,000 terms (the sequential order rounds the most)
                for (i, (a, (b, size))) in ours.iter().zip(&want).enumerate() {
                    assert!(
                        (*a as f64 - b).abs() <= 1e-5 + 1e-6 * size,
                        "{order:?}, case {k} ({s:?}) weight {i}: {a} against {b}"
                    );
                }
            }
        }
    }
}
