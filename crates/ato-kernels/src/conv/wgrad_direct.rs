//! The weight gradient of a dense conv in the direct kernel's layout ([`super::direct`]), for
//! the machine mode: `dw[o, c, kh, kw] = Σ_q dz[o, q] · xp[c, q + offset(kh, kw)]` over the
//! wide output columns q, with the input padded (and phase-split at stride > 1) exactly as
//! the forward pass pads it, and the output gradient copied into the wide layout with zeros
//! in its junk columns. The tiles are in [`super::wgrad_simd`].
//!
//! Each sum runs over q in 8 lanes, then a fixed tree over the lanes: a fixed order on a
//! given CPU path, but not the sequential order the portable mode defines for every product,
//! so portable runs keep the implicit gemm ([`super::implicit`]) and its fixed-order product.

use super::direct_layout::{pad_into, widen_into};
use super::direct_shape::DirectShape;
use crate::mode::{reproducibility, Reproducibility};

/// The direct weight gradient of one conv shape (the forward's [`DirectShape`]).
pub(crate) struct DirectWeightGrad {
    shape: DirectShape,
    /// The buffer offset of every (c, kh, kw), in weight order.
    taps: Vec<usize>,
}

impl DirectWeightGrad {
    /// For the forward shape `s` (one the direct kernel supports), when this process runs
    /// machine-mode products on a CPU with AVX2 and FMA (and the SIMD path is not forced to
    /// the baseline); `None` otherwise.
    pub fn new(s: DirectShape) -> Option<Self> {
        takes(reproducibility(), crate::cpu::simd_path(), avx2_fma()).then(|| Self::of(s))
    }

    fn of(s: DirectShape) -> Self {
        Self {
            taps: s.tap_offsets(),
            shape: s,
        }
    }

    /// Wide columns summed per row of the output gradient (a multiple of 8).
    fn pitch(&self) -> usize {
        self.shape.wide().div_ceil(8) * 8
    }

    fn padded_len(&self) -> usize {
        self.shape
            .padded_len()
            .max(self.shape.last_tap() + self.pitch())
    }

    /// Scratch elements [`Self::accumulate_image`] needs.
    pub fn scratch_len(&self) -> usize {
        self.padded_len() + self.shape.out_channels * self.pitch()
    }

    /// Elements of the sums (C_in·KH·KW taps × C_out, tap-major).
    pub fn sums_len(&self) -> usize {
        self.taps.len() * self.shape.out_channels
    }

    /// Adds one image's sums into `acc` ([`Self::sums_len`], tap-major): x is the input
    /// image (C_in × H × W), dz the output's gradient (C_out × H_out × W_out).
    pub fn accumulate_image(&self, x: &[f32], dz: &[f32], acc: &mut [f32], scratch: &mut [f32]) {
        let s = &self.shape;
        let (co, pitch) = (s.out_channels, self.pitch());
        assert!(x.len() >= s.in_channels * s.in_h * s.in_w);
        assert!(dz.len() >= co * s.out_h() * s.out_w() && acc.len() >= self.sums_len());
        let (xp, dzw) = scratch.split_at_mut(self.padded_len());
        let dzw = &mut dzw[..co * pitch];
        pad_into(s, x, xp);
        widen_into(s, dz, dzw, pitch);
        assert!(s.last_tap() + pitch <= xp.len());
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `new` checked AVX2 and FMA; pitch is a multiple of 8; `dzw` holds co rows
        // of `pitch`, `xp` every tap's `pitch` columns (asserted), `acc` the sums (asserted).
        unsafe {
            super::wgrad_simd::accumulate(&self.taps, co, pitch, xp.as_ptr(), dzw.as_ptr(), acc)
        };
    }

    /// The weight gradient (C_out × C_in × KH × KW) from per-chunk sums, added in chunk order.
    pub fn finish(&self, partials: Vec<Vec<f32>>) -> Vec<f32> {
        let (co, taps) = (self.shape.out_channels, self.taps.len());
        let mut iter = partials.into_iter();
        let mut total = iter.next().unwrap_or_else(|| vec![0.0; taps * co]);
        for part in iter {
            for (t, p) in total.iter_mut().zip(&part) {
                *t += p;
            }
        }
        let mut w = vec![0f32; co * taps];
        for (t, row) in total.chunks_exact(co).enumerate() {
            for (o, v) in row.iter().enumerate() {
                w[o * taps + t] = *v;
            }
        }
        w
    }
}

/// Whether the direct tiles run: machine mode, on a SIMD path above the baseline (not forced
/// down with `ATO_SIMD=baseline`), on a CPU with AVX2 and FMA.
fn takes(mode: Reproducibility, path: crate::cpu::SimdPath, avx2_fma: bool) -> bool {
    mode == Reproducibility::Machine && path != crate::cpu::SimdPath::Baseline && avx2_fma
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
    fn only_machine_mode_on_avx2_and_fma_takes_the_direct_tiles() {
        let m = Reproducibility::Machine;
        assert!(takes(m, SimdPath::Avx2Fma, true));
        assert!(takes(m, SimdPath::Avx512, true));
        assert!(!takes(Reproducibility::Portable, SimdPath::Avx2Fma, true));
        assert!(!takes(m, SimdPath::Baseline, true));
        assert!(!takes(m, SimdPath::Avx2Fma, false));
    }

    /// dw[o, c, kh, kw] = Σ_n Σ_(oh, ow) dz[n, o, oh, ow] · x[n, c, s·oh + kh − p, s·ow + kw − p]
    /// in f64, zero outside the image.
    fn reference(s: &DirectShape, batch: usize, x: &[f32], dz: &[f32]) -> Vec<f64> {
        let (ci, co, kh, kw) = (s.in_channels, s.out_channels, s.kernel_h, s.kernel_w);
        let (oh, ow) = (s.out_h(), s.out_w());
        let mut dw = vec![0f64; co * ci * kh * kw];
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
                        *d += dz[((n * co + o) * oh + r) * ow + q] as f64 * xv;
                    }
                }
            }
        }
        dw
    }

    /// The tiles against the f64 sums on shapes with every tile remainder (channels not a
    /// multiple of 4, taps not of 3), strides 1 to 3, a 7 × 7 stem and a 1 × 1 stride-2 conv,
    /// over two images (the sums of the second add to the first's).
    #[test]
    fn direct_tiles_match_the_definition() {
        if !avx2_fma() {
            eprintln!("no AVX2 + FMA on this CPU: the direct tiles never run");
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
        ];
        for (k, s) in cases.iter().enumerate() {
            let batch = 2;
            let x = lcg_values(batch * s.in_channels * s.in_h * s.in_w, 2 * k as u64, 1.0);
            let dz = lcg_values(
                batch * s.out_channels * s.out_h() * s.out_w(),
                2 * k as u64 + 1,
                1.0,
            );
            let kernel = DirectWeightGrad::of(*s);
            let mut sums = vec![0f32; kernel.sums_len()];
            let mut scratch = vec![f32::NAN; kernel.scratch_len()];
            let (xi, zi) = (x.len() / batch, dz.len() / batch);
            for n in 0..batch {
                kernel.accumulate_image(
                    &x[n * xi..][..xi],
                    &dz[n * zi..][..zi],
                    &mut sums,
                    &mut scratch,
                );
            }
            let ours = kernel.finish(vec![sums]);
            let want = reference(s, batch, &x, &dz);
            assert_eq!(ours.len(), want.len());
            for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
                assert!(
                    (*a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "case {k} ({s:?}) weight {i}: {a} against {b}"
                );
            }
        }
    }
}
