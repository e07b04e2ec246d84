//! The register-blocked loops of the direct convolution ([`super::direct`]), written once
//! and instantiated for AVX-512F (16-lane vectors, 32 registers) and for AVX2 + FMA (8 lanes,
//! 16 registers). Both compute every output as the same chain of FMAs over (c, kh, kw), so
//! the two instruction sets give bit-identical results.
//!
//! A tile is `NCO` output channels × `NPIX` vectors of consecutive pixels, each vector at its
//! own place in the wide coordinates of [`super::direct`] (a [`VectorPlan`]: consecutive
//! vectors of the wide range, or the output rows' vectors). Per (c, kh, kw) step, whose input
//! starts at one offset into the padded image, it makes `NPIX` unaligned input loads, `NCO` weight broadcasts and
//! `NCO·NPIX` FMAs into accumulators that stay in registers. The weights are read in place
//! (C_out × C_in·KH·KW): a broadcast costs the same from any address, so they need no
//! packing.

use super::direct_shape::VectorPlan;

/// The instruction set the direct kernel runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    Avx512,
    Avx2,
}

impl Isa {
    /// The instruction set the direct kernel runs with on this CPU, if any: the SIMD path of
    /// [`crate::cpu::simd_path`] (the one rule, so `ATO_SIMD` forces this kernel too: `avx2`
    /// runs its AVX2 tiles, `baseline` turns it off as on a CPU without AVX2 and FMA).
    pub fn detect() -> Option<Isa> {
        match crate::cpu::simd_path() {
            crate::cpu::SimdPath::Avx512 => Some(Isa::Avx512),
            crate::cpu::SimdPath::Avx2Fma => Some(Isa::Avx2),
            crate::cpu::SimdPath::Baseline => None,
        }
    }

    /// f32 lanes of one vector.
    pub fn lanes(self) -> usize {
        match self {
            Isa::Avx512 => 16,
            Isa::Avx2 => 8,
        }
    }

    /// Whether [`run_block`] has an `nco × npix` tile for this instruction set.
    pub fn has_tile(self, nco: usize, npix: usize) -> bool {
        match self {
            Isa::Avx512 => matches!((nco, npix), (1..=8, 1 | 3) | (16, 1)),
            Isa::Avx2 => matches!((nco, npix), (1..=6, 2) | (1..=4, 3)),
        }
    }
}

/// Computes `out[o·P + stores[k] + l] = Σ_t w[o·T + t] · xp[taps[t] + loads[k] + l]` for
/// `o < nco`, every vector k of `plan` and lane l (P = `plan.pitch`, T = `taps.len()`),
/// summing over t in order, in tiles of `nco` channels × `npix` consecutive vectors of the
/// plan.
///
/// # Safety
///
/// - The CPU supports `isa` ([`Isa::detect`]) and `isa.has_tile(nco, npix)`.
/// - `plan.loads` and `plan.stores` have one length, a multiple of `npix`.
/// - `w` is valid for reads of `nco · taps.len()` f32 (`nco` rows of the weight matrix).
/// - `xp` is valid for reads of `max(taps) + max(loads) + lanes` f32.
/// - `out` is valid for writes of `(nco − 1) · P + max(stores) + lanes` f32 and overlaps
///   neither input.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn run_block(
    isa: Isa,
    taps: &[usize],
    nco: usize,
    npix: usize,
    xp: *const f32,
    w: *const f32,
    out: *mut f32,
    plan: &VectorPlan,
) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match isa {
            Isa::Avx512 => avx512::run(taps, nco, npix, xp, w, out, plan),
            // LLVM spills one of the 4 × 3 tile's 12 accumulators (16 registers in use);
            // that tile has its loop written out in assembly.
            Isa::Avx2 if (nco, npix) == (4, 3) => avx2_4x3::tiles(taps, xp, w, out, plan),
            Isa::Avx2 => avx2::run(taps, nco, npix, xp, w, out, plan),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, taps, nco, npix, xp, w, out, plan);
        unreachable!("the direct conv runs on x86-64 only");
    }
}

/// One instruction set's tiles: `$vec` vectors of `$lanes` f32 and the intrinsics on them,
/// and the (NPIX => [NCO, ...]) tile shapes to instantiate.
macro_rules! isa_kernels {
    (
        $module:ident, $feature:literal, $lanes:literal, $vec:ty,
        $zero:ident, $load:ident, $splat:ident, $fma:ident, $store:ident,
        { $($npix:literal => [$($nco:literal),*]),* $(,)? }
    ) => {
        #[cfg(target_arch = "x86_64")]
        mod $module {
            use super::VectorPlan;
            use std::arch::x86_64::*;

            /// Dispatches to the `nco × npix` tile loop.
            ///
            /// # Safety
            ///
            /// As [`super::run_block`], for this module's instruction set.
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn run(
                taps: &[usize],
                nco: usize,
                npix: usize,
                xp: *const f32,
                w: *const f32,
                out: *mut f32,
                plan: &VectorPlan,
            ) {
                // SAFETY: forwarded from this function's contract.
                unsafe {
                    match (npix, nco) {
                        $($(($npix, $nco) => tiles::<$nco, $npix>(taps, xp, w, out, plan),)*)*
                        _ => unreachable!("no {nco}×{npix} direct-conv tile"),
                    }
                }
            }

            /// Every `NCO × (NPIX·lanes)` tile of one block of channels, each summed over
            /// the taps in order.
            ///
            /// # Safety
            ///
            /// As [`super::run_block`] with `nco = NCO`, `npix = NPIX`.
            #[target_feature(enable = $feature)]
            unsafe fn tiles<const NCO: usize, const NPIX: usize>(
                taps: &[usize],
                xp: *const f32,
                w: *const f32,
                out: *mut f32,
                plan: &VectorPlan,
            ) {
                let pitch = plan.pitch;
                let tiles = plan.loads.chunks_exact(NPIX).zip(plan.stores.chunks_exact(NPIX));
                for (loads, stores) in tiles {
                    let mut acc: [[$vec; NPIX]; NCO] = [[$zero(); NPIX]; NCO];
                    // SAFETY (loop body): every input read lies below max(taps) +
                    // max(loads) + lanes and every weight read below NCO·taps.len(), as the
                    // contract requires.
                    let xs: [*const f32; NPIX] =
                        std::array::from_fn(|v| unsafe { xp.add(loads[v]) });
                    let ws = taps.len();
                    for (t, &offset) in taps.iter().enumerate() {
                        let wk = unsafe { w.add(t) };
                        let mut inputs: [$vec; NPIX] = [$zero(); NPIX];
                        for (input, x) in inputs.iter_mut().zip(&xs) {
                            *input = unsafe { $load(x.add(offset)) };
                        }
                        for (o, acc_o) in acc.iter_mut().enumerate() {
                            let weight = $splat(unsafe { *wk.add(o * ws) });
                            for (a, input) in acc_o.iter_mut().zip(&inputs) {
                                *a = $fma(weight, *input, *a);
                            }
                        }
                    }
                    for (o, acc_o) in acc.iter().enumerate() {
                        for (a, &at) in acc_o.iter().zip(stores) {
                            // SAFETY: o < NCO: below (NCO − 1)·pitch + max(stores) + lanes.
                            unsafe { $store(out.add(o * pitch + at), *a) };
                        }
                    }
                }
            }
        }
    };
}

isa_kernels!(
    avx512, "avx512f", 16, __m512,
    _mm512_setzero_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps,
    { 1 => [1, 2, 3, 4, 5, 6, 7, 8, 16], 3 => [1, 2, 3, 4, 5, 6, 7, 8] }
);

isa_kernels!(
    avx2, "avx2,fma", 8, __m256,
    _mm256_setzero_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps,
    { 2 => [1, 2, 3, 4, 5, 6], 3 => [1, 2, 3] }
);

/// The AVX2 4-channel × 3-vector tile with its tap loop in assembly: accumulators in
/// ymm0–ymm11 (channel o, vector v in ymm(3·o + v)), the three input vectors in ymm12–ymm14
/// (read through one pointer per vector of the plan),
/// the broadcast weight in ymm15. Each accumulator takes `vfmadd231ps acc, weight, input`
/// per tap in order, the same rounding as `_mm256_fmadd_ps(weight, input, acc)` elsewhere.
#[cfg(target_arch = "x86_64")]
mod avx2_4x3 {
    use super::VectorPlan;
    use std::arch::asm;
    use std::arch::x86_64::*;

    /// # Safety
    ///
    /// As [`super::run_block`] with `isa = Avx2`, `nco = 4`, `npix = 3`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tiles(
        taps: &[usize],
        xp: *const f32,
        w: *const f32,
        out: *mut f32,
        plan: &VectorPlan,
    ) {
        assert!(!taps.is_empty(), "a conv has at least one tap");
        let ws = taps.len();
        let tiles = plan.loads.chunks_exact(3).zip(plan.stores.chunks_exact(3));
        for (loads, stores) in tiles {
            let mut a = [_mm256_setzero_ps(); 12];
            // SAFETY: the loop reads taps[0..T], 8 floats at xp + loads[v] + taps[t] for
            // v < 3 (below max(taps) + max(loads) + 8) and the weights w[o·T + t] for o < 4
            // (below 4·T), as the contract requires; it writes registers only.
            unsafe {
                asm!(
                    "2:",
                    "mov {off}, qword ptr [{taps} + 8*{t}]",
                    "vmovups ymm12, ymmword ptr [{x0} + 4*{off}]",
                    "vmovups ymm13, ymmword ptr [{x1} + 4*{off}]",
                    "vmovups ymm14, ymmword ptr [{x2} + 4*{off}]",
                    "vbroadcastss ymm15, dword ptr [{w0} + 4*{t}]",
                    "vfmadd231ps ymm0, ymm15, ymm12",
                    "vfmadd231ps ymm1, ymm15, ymm13",
                    "vfmadd231ps ymm2, ymm15, ymm14",
                    "vbroadcastss ymm15, dword ptr [{w1} + 4*{t}]",
                    "vfmadd231ps ymm3, ymm15, ymm12",
                    "vfmadd231ps ymm4, ymm15, ymm13",
                    "vfmadd231ps ymm5, ymm15, ymm14",
                    "vbroadcastss ymm15, dword ptr [{w2} + 4*{t}]",
                    "vfmadd231ps ymm6, ymm15, ymm12",
                    "vfmadd231ps ymm7, ymm15, ymm13",
                    "vfmadd231ps ymm8, ymm15, ymm14",
                    "vbroadcastss ymm15, dword ptr [{w3} + 4*{t}]",
                    "vfmadd231ps ymm9, ymm15, ymm12",
                    "vfmadd231ps ymm10, ymm15, ymm13",
                    "vfmadd231ps ymm11, ymm15, ymm14",
                    "inc {t}",
                    "cmp {t}, {n}",
                    "jne 2b",
                    taps = in(reg) taps.as_ptr(),
                    x0 = in(reg) xp.add(loads[0]),
                    x1 = in(reg) xp.add(loads[1]),
                    x2 = in(reg) xp.add(loads[2]),
                    w0 = in(reg) w,
                    w1 = in(reg) w.add(ws),
                    w2 = in(reg) w.add(2 * ws),
                    w3 = in(reg) w.add(3 * ws),
                    n = in(reg) ws,
                    t = inout(reg) 0usize => _,
                    off = out(reg) _,
                    inout("ymm0") a[0],
                    inout("ymm1") a[1],
                    inout("ymm2") a[2],
                    inout("ymm3") a[3],
                    inout("ymm4") a[4],
                    inout("ymm5") a[5],
                    inout("ymm6") a[6],
                    inout("ymm7") a[7],
                    inout("ymm8") a[8],
                    inout("ymm9") a[9],
                    inout("ymm10") a[10],
                    inout("ymm11") a[11],
                    out("ymm12") _,
                    out("ymm13") _,
                    out("ymm14") _,
                    out("ymm15") _,
                    options(nostack, readonly),
                );
            }
            for (i, acc) in a.iter().enumerate() {
                let (o, v) = (i / 3, i % 3);
                // SAFETY: o < 4: below 3·pitch + max(stores) + 8.
                unsafe { _mm256_storeu_ps(out.add(o * plan.pitch + stores[v]), *acc) };
            }
        }
    }
}
