//! The AVX2 loop of the BN backward's per-plane sums (Σ g, Σ g · (z − mean)), written with
//! intrinsics: LLVM compiled the generic loop ([`super::kernels::plane_grad_sums`]) into a
//! branch and a scalar load per lane for the activation's gate, at ~4 GB/s. Here the gate
//! is a compare and a bit mask. It computes the generic loop's operations in the generic
//! loop's order — 16 interleaved lanes (two vectors), `v = z·a + b` as a product then a sum,
//! the lanes summed in order, the tail one element at a time — so its bits are the same
//! (`tests::avx2_plane_sums_are_the_generic_bits`).

use super::kernels::ActFn;
use super::Activation;
use std::arch::x86_64::*;

/// `dy` where the activation passed its input `v` on, else +0.0, lane by lane.
#[inline(always)]
unsafe fn gate(act: Activation, dy: __m256, v: __m256) -> __m256 {
    // SAFETY: the caller runs with AVX2 (these are AVX instructions).
    unsafe {
        let zero = _mm256_setzero_ps();
        match act {
            Activation::Identity => dy,
            Activation::Relu => _mm256_and_ps(dy, _mm256_cmp_ps::<_CMP_GT_OQ>(v, zero)),
            Activation::Relu6 => {
                let above = _mm256_cmp_ps::<_CMP_GT_OQ>(v, zero);
                let below = _mm256_cmp_ps::<_CMP_LT_OQ>(v, _mm256_set1_ps(6.0));
                _mm256_and_ps(dy, _mm256_and_ps(above, below))
            }
        }
    }
}

/// (Σ g, Σ g · (z − mean)) over one plane, g = `A::gate(dy, z·a + b)`; `act` is `A`.
///
/// # Safety
///
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn plane_grad_sums<A: ActFn>(
    z: &[f32],
    dy: &[f32],
    a: f32,
    b: f32,
    mean: f32,
    act: Activation,
) -> (f32, f32) {
    let n = z.len().min(dy.len());
    let full = n / 16 * 16;
    let (va, vb, vm) = (_mm256_set1_ps(a), _mm256_set1_ps(b), _mm256_set1_ps(mean));
    let mut s = [_mm256_setzero_ps(); 2];
    let mut q = [_mm256_setzero_ps(); 2];
    for i in (0..full).step_by(16) {
        for h in 0..2 {
            // SAFETY: i + 8·h + 8 ≤ full ≤ the length of both slices.
            let (zv, dv) = unsafe {
                (
                    _mm256_loadu_ps(z.as_ptr().add(i + 8 * h)),
                    _mm256_loadu_ps(dy.as_ptr().add(i + 8 * h)),
                )
            };
            // SAFETY: AVX2 is enabled for this function.
            let g = unsafe { gate(act, dv, _mm256_add_ps(_mm256_mul_ps(zv, va), vb)) };
            s[h] = _mm256_add_ps(s[h], g);
            q[h] = _mm256_add_ps(q[h], _mm256_mul_ps(g, _mm256_sub_ps(zv, vm)));
        }
    }
    let mut sl = [0f32; 16];
    let mut ql = [0f32; 16];
    for h in 0..2 {
        // SAFETY: 8·h + 8 ≤ 16.
        unsafe {
            _mm256_storeu_ps(sl.as_mut_ptr().add(8 * h), s[h]);
            _mm256_storeu_ps(ql.as_mut_ptr().add(8 * h), q[h]);
        }
    }
    let (mut ts, mut tq) = (0f32, 0f32);
    for i in full..n {
        let g = A::gate(dy[i], z[i] * a + b);
        ts += g;
        tq += g * (z[i] - mean);
    }
    (sl.iter().sum::<f32>() + ts, ql.iter().sum::<f32>() + tq)
}

#[cfg(test)]
mod tests {
    use super::super::kernels::{plane_grad_sums, plane_grad_sums_generic};
    use super::Activation;
    use crate::test_inputs::lcg_values;

    /// The AVX2 loop against the generic one, bit for bit, on lengths around the 16-lane
    /// step, for every activation (and with half the gate's inputs at or below zero).
    #[test]
    fn avx2_plane_sums_are_the_generic_bits() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("no AVX2 on this CPU: the AVX2 loop is never taken");
            return;
        }
        for (i, &len) in [1usize, 7, 15, 16, 17, 33, 64, 100, 1024, 1029]
            .iter()
            .enumerate()
        {
            let z = lcg_values(len, 3 * i as u64, 8.0);
            let dy = lcg_values(len, 3 * i as u64 + 1, 1.0);
            for act in [Activation::Identity, Activation::Relu, Activation::Relu6] {
                let (a, b, mean) = (1.37, -0.21, 0.113);
                let fast = plane_grad_sums(&z, &dy, a, b, mean, act);
                let generic = plane_grad_sums_generic(&z, &dy, a, b, mean, act);
                assert_eq!(
                    (fast.0.to_bits(), fast.1.to_bits()),
                    (generic.0.to_bits(), generic.1.to_bits()),
                    "{act:?}, {len} values: {fast:?} against {generic:?}"
                );
            }
        }
    }
}
