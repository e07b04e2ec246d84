//! The AVX2 tiles of the direct weight gradient ([`super::wgrad_direct`]).
//!
//! `acc[t·C_out + o] += Σ_k Σ_l dz[o·P + gradient[k] + l] · xp[taps[t] + inputs[k] + l]` for
//! every output channel o and tap t (a (c, kh, kw) of the weight, in weight order), over the
//! vectors k of 8 columns of a [`Columns`] list and their lanes l (P its gradient pitch). A
//! tile is 4 output channels × 3 taps: per vector of 8 columns it loads the 3 taps' inputs (one
//! unaligned load each, held in registers) and the 4 channels' gradients (folded into the
//! FMAs), and keeps 12 accumulators of 8 lane sums. At the tile's end each tap's 4
//! accumulators are reduced to 4 sums in one fixed tree (`hadd`, `hadd`, then the two
//! halves) and added to `acc`. Every sum thus has one fixed grouping on a given CPU path,
//! whatever the threads: 8 lanes over q in order, the lanes' tree, the images in order.

use super::wgrad_direct::Columns;
use std::arch::x86_64::*;

/// Output channels of a tile.
const TILE_CO: usize = 4;
/// Taps of a tile.
const TILE_TAPS: usize = 3;

/// Adds one image's weight-gradient sums into `acc` (taps.len() × `co`, tap-major).
///
/// # Safety
///
/// - The CPU supports AVX2 and FMA.
/// - `cols.inputs` and `cols.gradient` have one length; `dz` is valid for reads of
///   `(co − 1) · gradient_pitch + max(gradient) + 8` f32 and `xp` for reads of `max(taps) +
///   max(inputs) + 8` f32.
/// - `acc` holds at least `taps.len() · co` elements.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn accumulate(
    taps: &[usize],
    co: usize,
    cols: &Columns,
    xp: *const f32,
    dz: *const f32,
    acc: &mut [f32],
) {
    assert!(acc.len() >= taps.len() * co && cols.inputs.len() == cols.gradient.len());
    let pitch = cols.gradient_pitch;
    for o0 in (0..co).step_by(TILE_CO) {
        for t0 in (0..taps.len()).step_by(TILE_TAPS) {
            let shape = ((co - o0).min(TILE_CO), (taps.len() - t0).min(TILE_TAPS));
            // SAFETY: forwarded from this function's contract; the tile's channels
            // o0..o0 + nco < co and taps t0..t0 + nt ≤ taps.len() index `dz`, `xp` and
            // `acc` within the bounds stated there.
            unsafe {
                let (dz, acc) = (dz.add(o0 * pitch), acc.as_mut_ptr().add(t0 * co + o0));
                let offs = &taps[t0..];
                match shape {
                    (4, 3) => tile::<4, 3>(offs, co, cols, xp, dz, acc),
                    (4, 2) => tile::<4, 2>(offs, co, cols, xp, dz, acc),
                    (4, 1) => tile::<4, 1>(offs, co, cols, xp, dz, acc),
                    (3, 3) => tile::<3, 3>(offs, co, cols, xp, dz, acc),
                    (3, 2) => tile::<3, 2>(offs, co, cols, xp, dz, acc),
                    (3, 1) => tile::<3, 1>(offs, co, cols, xp, dz, acc),
                    (2, 3) => tile::<2, 3>(offs, co, cols, xp, dz, acc),
                    (2, 2) => tile::<2, 2>(offs, co, cols, xp, dz, acc),
                    (2, 1) => tile::<2, 1>(offs, co, cols, xp, dz, acc),
                    (1, 3) => tile::<1, 3>(offs, co, cols, xp, dz, acc),
                    (1, 2) => tile::<1, 2>(offs, co, cols, xp, dz, acc),
                    _ => tile::<1, 1>(offs, co, cols, xp, dz, acc),
                }
            }
        }
    }
}

/// One tile: `NCO` channels (rows of `dz`, `cols.gradient_pitch` apart) × `NT` taps
/// (`offs[..NT]`); `acc` points at the tile's first (tap, channel) in the tap-major sums,
/// rows `co` apart.
#[inline(always)]
unsafe fn tile<const NCO: usize, const NT: usize>(
    offs: &[usize],
    co: usize,
    cols: &Columns,
    xp: *const f32,
    dz: *const f32,
    acc: *mut f32,
) {
    // SAFETY (whole body): as `accumulate`'s contract, for this tile's rows and taps.
    unsafe {
        let mut sums = [[_mm256_setzero_ps(); NT]; NCO];
        let inputs: [*const f32; NT] = std::array::from_fn(|j| xp.add(offs[j]));
        let pitch = cols.gradient_pitch;
        for (&xq, &dq) in cols.inputs.iter().zip(&cols.gradient) {
            let x: [__m256; NT] = std::array::from_fn(|j| _mm256_loadu_ps(inputs[j].add(xq)));
            let dz = dz.add(dq);
            for (o, row) in sums.iter_mut().enumerate() {
                let d = _mm256_loadu_ps(dz.add(o * pitch));
                for (s, xj) in row.iter_mut().zip(&x) {
                    *s = _mm256_fmadd_ps(d, *xj, *s);
                }
            }
        }
        let zero = _mm256_setzero_ps();
        for (j, dst) in (0..NT).map(|j| (j, acc.add(j * co))) {
            let lane = |o: usize| if o < NCO { sums[o][j] } else { zero };
            let four = reduce4(lane(0), lane(1), lane(2), lane(3));
            if NCO == 4 {
                _mm_storeu_ps(dst, _mm_add_ps(_mm_loadu_ps(dst), four));
            } else {
                let mut v = [0f32; 4];
                _mm_storeu_ps(v.as_mut_ptr(), four);
                for (o, s) in v.iter().enumerate().take(NCO) {
                    *dst.add(o) += s;
                }
            }
        }
    }
}

/// [Σ a, Σ b, Σ c, Σ d] over the 8 lanes of each, in one fixed tree.
#[inline(always)]
unsafe fn reduce4(a: __m256, b: __m256, c: __m256, d: __m256) -> __m128 {
    // SAFETY: AVX instructions, run with AVX2 enabled by the caller.
    unsafe {
        let ab = _mm256_hadd_ps(a, b);
        let cd = _mm256_hadd_ps(c, d);
        let abcd = _mm256_hadd_ps(ab, cd);
        _mm_add_ps(
            _mm256_castps256_ps128(abcd),
            _mm256_extractf128_ps::<1>(abcd),
        )
    }
}

/// Output channels of one vector of the sequential tiles.
const LANES: usize = 8;

/// The portable-mode sums: for every tap t and output channel o, `s = 0`, then
/// `s ← fma(dzt[q·co8 + o], xp[taps[t] + inputs[q]], s)` for the columns q = 0, 1, … of
/// `cols.inputs` in order, then
/// `acc[t·co + o] = s` (`first`) or `acc[t·co + o] + s` — the fixed order of
/// [`crate::portable`]'s product, element by element, so the same bits on every CPU and the
/// same as that product over the same columns. The vectors run across output channels (8
/// per vector, `dzt` holding the gradient column-major: `co8` ≥ co channels per column, zero
/// past co); a tile is 16 channels × 6 taps, 12 accumulators.
///
/// # Safety
///
/// - The CPU supports AVX2 and FMA.
/// - `co8` is a multiple of 8 and ≥ `co`; `dzt` is valid for reads of `inputs.len() · co8`
///   f32 and `xp` for reads of `max(taps) + max(inputs) + 1` f32.
/// - `acc` holds at least `taps.len() · co` elements.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn accumulate_sequential(
    taps: &[usize],
    co: usize,
    co8: usize,
    cols: &Columns,
    xp: *const f32,
    dzt: *const f32,
    acc: &mut [f32],
    first: bool,
) {
    assert!(acc.len() >= taps.len() * co && co8.is_multiple_of(LANES) && co8 >= co);
    let cols = &cols.inputs[..];
    for o0 in (0..co8).step_by(2 * LANES) {
        for t0 in (0..taps.len()).step_by(6) {
            let shape = ((co8 - o0) / LANES).min(2) * 8 + (taps.len() - t0).min(6);
            let offs = &taps[t0..];
            let at = |t: usize| (t0 + t) * co + o0;
            let valid = co.saturating_sub(o0);
            // SAFETY: forwarded from this function's contract; `sequential_tile` writes only
            // channels below co of taps t0.. below taps.len().
            unsafe {
                let (dzt, acc) = (dzt.add(o0), &mut *acc);
                match shape {
                    22 => sequential_tile::<2, 6>(offs, co8, cols, xp, dzt, acc, at, valid, first),
                    21 => sequential_tile::<2, 5>(offs, co8, cols, xp, dzt, acc, at, valid, first),
                    20 => sequential_tile::<2, 4>(offs, co8, cols, xp, dzt, acc, at, valid, first),
                    19 => sequential_tile::<2, 3>(offs, co8, cols, xp, dzt, acc, at, valid, first),
                    18 => sequential_tile::<2, 2>(offs, co8, cols, xp, dzt, acc, at, valid, first),
                    17 => sequential_tile::<2, 1>(offs, co8, cols, xp, dzt, acc, at, valid, first),
                    14 => sequential_tile::<1, 6>(offs, co8, cols, xp, dzt, acc, at, valid, first),
                    13 => sequential_tile::<1, 5>(offs, co8, cols, xp, dzt, acc, at, valid, first),
                    12 => sequential_tile::<1, 4>(offs, co8, cols, xp, dzt, acc, at, valid, first),
                    11 => sequential_tile::<1, 3>(offs, co8, cols, xp, dzt, acc, at, valid, first),
                    10 => sequential_tile::<1, 2>(offs, co8, cols, xp, dzt, acc, at, valid, first),
                    _ => sequential_tile::<1, 1>(offs, co8, cols, xp, dzt, acc, at, valid, first),
                }
            }
        }
    }
}

/// One tile of [`accumulate_sequential`]: `NV` vectors of channels (from `dzt`'s first) × `NT`
/// taps (`offs[..NT]`); tap j's sums go to `acc[at(j)..]`, channels past `valid` dropped.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn sequential_tile<const NV: usize, const NT: usize>(
    offs: &[usize],
    co8: usize,
    cols: &[usize],
    xp: *const f32,
    dzt: *const f32,
    acc: &mut [f32],
    at: impl Fn(usize) -> usize,
    valid: usize,
    first: bool,
) {
    // SAFETY (whole body): reads as `accumulate_sequential`'s contract states; writes below.
    unsafe {
        let mut sums = [[_mm256_setzero_ps(); NT]; NV];
        let inputs: [*const f32; NT] = std::array::from_fn(|j| xp.add(offs[j]));
        for (q, &xq) in cols.iter().enumerate() {
            let d: [__m256; NV] =
                std::array::from_fn(|v| _mm256_loadu_ps(dzt.add(q * co8 + LANES * v)));
            for (j, input) in inputs.iter().enumerate() {
                let x = _mm256_broadcast_ss(&*input.add(xq));
                for (row, dv) in sums.iter_mut().zip(&d) {
                    row[j] = _mm256_fmadd_ps(*dv, x, row[j]);
                }
            }
        }
        for (v, row) in sums.iter().enumerate() {
            let mut lanes = [0f32; LANES];
            for (j, s) in row.iter().enumerate() {
                _mm256_storeu_ps(lanes.as_mut_ptr(), *s);
                let n = valid.saturating_sub(LANES * v).min(LANES);
                if n == 0 {
                    continue;
                }
                let dst = &mut acc[at(j) + LANES * v..][..n];
                for (o, s) in dst.iter_mut().zip(&lanes) {
                    *o = if first { *s } else { *o + s };
                }
            }
        }
    }
}
