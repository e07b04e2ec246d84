//! SIMD support: [`multiversion!`] compiles a function for AVX-512 and AVX2+FMA as well as
//! the baseline (our crates build for generic x86-64, so without it every loop here would be
//! SSE2), choosing at run time; and small loops written so that LLVM vectorises them
//! (independent lanes, no reassociation needed) with a fixed summation order.

/// Defines a function whose body is compiled three times — for AVX-512 (F, VL), for AVX2 +
/// FMA and for the baseline — and dispatches on the CPU's features at each call (a cached
/// check). Helpers called from the body should be `#[inline(always)]` so they are compiled
/// with the same features.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                /// The body compiled for AVX-512.
                ///
                /// # Safety
                ///
                /// The CPU supports AVX-512F, AVX-512VL, AVX2 and FMA.
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                /// The body compiled for AVX2 + FMA.
                ///
                /// # Safety
                ///
                /// The CPU supports AVX2 and FMA.
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                match $crate::cpu::simd_path() {
                    // SAFETY: the CPU has the features `avx512` is compiled for.
                    $crate::cpu::SimdPath::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: the CPU has the features `avx2` is compiled for.
                    $crate::cpu::SimdPath::Avx2Fma => return unsafe { avx2($($arg),*) },
                    $crate::cpu::SimdPath::Baseline => {}
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;

const LANES: usize = 16;

/// (Σ (xᵢ − shift), Σ (xᵢ − shift)²) in 16 interleaved lanes.
#[inline(always)]
pub(crate) fn shifted_sum_and_squares(x: &[f32], shift: f32) -> (f32, f32) {
    let mut s = [0f32; LANES];
    let mut q = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            let d = c[l] - shift;
            s[l] += d;
            q[l] += d * d;
        }
    }
    let (mut ts, mut tq) = (0.0, 0.0);
    for &v in rest {
        let d = v - shift;
        ts += d;
        tq += d * d;
    }
    (s.iter().sum::<f32>() + ts, q.iter().sum::<f32>() + tq)
}
