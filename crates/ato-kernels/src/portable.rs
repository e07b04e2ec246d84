//! Portable mode (issue 32): every matrix product computed in one fixed order, so that results
//! do not depend on the CPU.
//!
//! In the default mode ([`crate::Reproducibility::Machine`]) products go to the `gemm` crate, which
//! picks its micro-kernels from the CPU's features (AVX-512 or AVX2, register tiles of
//! different shapes) and its blocking of the inner dimension from the cache sizes it reads
//! from the OS, so two CPUs group the same sum differently and disagree in the last bits. A
//! mask drawn by a threshold on the controller's logits turns such a bit into another
//! architecture.
//!
//! In [`crate::Reproducibility::Portable`] mode the products of this crate's convolutions and of
//! [`crate::matmul`] / [`crate::Linear`] run [`portable_matmul`], whose result is *defined*
//! element by element: `s ← fma(lhs[i,k], rhs[k,j], s)` for `k = 0, 1, …, K−1` from `s = 0`
//! (one rounding per step, IEEE fused multiply-add), then `dst[i,j] = s`, or `dst[i,j] + s`
//! when accumulating. Vector width, register tiling and threads only choose which outputs are
//! computed together, never how one output's sum is grouped, and a fused multiply-add rounds
//! the same in hardware and in software (`f32::mul_add` on the baseline path), so the products
//! are the same bits on every CPU. With the rest of a step (the direct conv kernel, candle's
//! vectorised sums: both need AVX2 + FMA), a run is the same bits on every x86-64 CPU with AVX2
//! and FMA (`ato-cli/tests/cpu_paths.rs`, `emulated_cpus.rs`).

use crate::matrix::{MatMut, MatRef};
use crate::simd::multiversion;

/// Rows of one register tile.
const MR: usize = 4;
/// Columns of one register tile (two AVX2 vectors, one AVX-512 vector).
const NR: usize = 16;
/// Rows one task computes (a whole number of tiles), sharing one packed panel of `rhs`.
const ROWS_PER_TASK: usize = 16 * MR;

/// A pointer to `dst` that tasks writing disjoint tiles may share.
struct SharedDst(*mut f32);
// SAFETY: each task writes only the elements of its own tiles (distinct rows × columns).
unsafe impl Send for SharedDst {}
unsafe impl Sync for SharedDst {}

impl SharedDst {
    fn get(&self) -> *mut f32 {
        self.0
    }
}

/// `dst = lhs × rhs`, or `dst += lhs × rhs` when `accumulate`, in the fixed order of the
/// module doc, on `threads` threads. Shapes and bounds are the caller's to check
/// ([`crate::matmul`]'s front end does).
pub(crate) fn portable_matmul(
    dst: MatMut,
    lhs: MatRef,
    rhs: MatRef,
    accumulate: bool,
    threads: usize,
) {
    let (m, n) = (dst.rows, dst.cols);
    let col_blocks = n.div_ceil(NR);
    let row_tasks = m.div_ceil(ROWS_PER_TASK);
    let out = SharedDst(dst.data.as_mut_ptr());
    let dst_len = dst.data.len();
    let row_stride = dst.row_stride;
    let task = |t: usize| {
        let (cb, rt) = (t / row_tasks, t % row_tasks);
        let j0 = cb * NR;
        let cols = NR.min(n - j0);
        let rows = (rt * ROWS_PER_TASK)..((rt + 1) * ROWS_PER_TASK).min(m);
        crate::parallel::with_plane_scratch(lhs.cols * NR, |panel| {
            pack_panel(panel, rhs, j0, cols);
            for i0 in rows.step_by(MR) {
                let mut acc = [[0f32; NR]; MR];
                let valid = MR.min(m - i0);
                // rows past the end repeat the last one (computed, never written)
                let mut starts = [0usize; MR];
                for (r, s) in starts.iter_mut().enumerate() {
                    *s = (i0 + r.min(valid - 1)) * lhs.row_stride;
                }
                tile(&mut acc, lhs.data, starts, lhs.col_stride, panel, lhs.cols);
                for (r, row) in acc.iter().enumerate().take(valid) {
                    let at = (i0 + r) * row_stride + j0;
                    assert!(at + cols <= dst_len, "portable matmul: dst view");
                    // SAFETY: in bounds (checked above); this task alone writes rows
                    // `rows` × columns `j0..j0 + cols` of `dst`, exclusively borrowed.
                    let o = unsafe { std::slice::from_raw_parts_mut(out.get().add(at), cols) };
                    for (o, s) in o.iter_mut().zip(row) {
                        *o = if accumulate { *o + s } else { *s };
                    }
                }
            }
        });
    };
    let tasks = col_blocks * row_tasks;
    if threads > 1 && tasks > 1 {
        crate::pool::run(threads, tasks, &task);
    } else {
        (0..tasks).for_each(task);
    }
}

/// Copies columns `j0..j0 + cols` of `rhs` into `panel` (K rows of `NR`, zero-padded).
fn pack_panel(panel: &mut [f32], rhs: MatRef, j0: usize, cols: usize) {
    for (k, row) in panel.chunks_exact_mut(NR).enumerate() {
        let base = k * rhs.row_stride + j0 * rhs.col_stride;
        for (c, v) in row.iter_mut().enumerate() {
            *v = if c < cols {
                rhs.data[base + c * rhs.col_stride]
            } else {
                0.0
            };
        }
    }
}

multiversion! {
/// One `MR × NR` tile: `acc[r][c] ← fma(lhs[row r, k], panel[k][c], acc[r][c])` for k in
/// order; row r of `lhs` starts at `starts[r]`, its elements `col_stride` apart.
fn tile(
    acc: &mut [[f32; NR]; MR],
    lhs: &[f32],
    starts: [usize; MR],
    col_stride: usize,
    panel: &[f32],
    k: usize,
) {
    for (kk, b) in panel.chunks_exact(NR).take(k).enumerate() {
        let b: &[f32; NR] = b.try_into().expect("panel row");
        for r in 0..MR {
            let a = lhs[starts[r] + kk * col_stride];
            for c in 0..NR {
                acc[r][c] = a.mul_add(b[c], acc[r][c]);
            }
        }
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one element at a time.
    fn reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f32;
                for kk in 0..k {
                    s = a[i * k + kk].mul_add(b[kk * n + j], s);
                }
                out[i * n + j] = s;
            }
        }
        out
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        // a fixed pseudo-random sequence with mixed magnitudes (sums that round)
        let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                ((x % 20001) as f32 / 10000.0 - 1.0) * if x.is_multiple_of(7) { 100.0 } else { 1.0 }
            })
            .collect()
    }

    fn run(m: usize, k: usize, n: usize, threads: usize) -> (Vec<f32>, Vec<f32>) {
        let (a, b) = (values(m * k, 1), values(k * n, 2));
        let mut out = vec![f32::NAN; m * n];
        portable_matmul(
            MatMut::row_major(&mut out, m, n, n),
            MatRef::row_major(&a, m, k, k),
            MatRef::row_major(&b, k, n, n),
            false,
            threads,
        );
        (out, reference(&a, &b, m, k, n))
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn every_element_is_the_defined_fma_chain() {
        // edges of both tile dimensions, a task boundary (65 rows), one and two threads
        for (m, k, n) in [
            (1, 1, 1),
            (3, 7, 5),
            (4, 64, 16),
            (65, 300, 33),
            (9, 1000, 17),
        ] {
            for threads in [1, 2] {
                let (got, want) = run(m, k, n, threads);
                assert_eq!(bits(&got), bits(&want), "{m}×{k}×{n}, {threads} threads");
            }
        }
    }

    #[test]
    fn a_regrouped_sum_is_seen() {
        // negative control: the same products summed in two halves (what a blocked inner
        // dimension does) differ from the chain in some element
        let (m, k, n) = (8, 1000, 16);
        let (a, b) = (values(m * k, 1), values(k * n, 2));
        let want = reference(&a, &b, m, k, n);
        let halves = |i: usize, j: usize| {
            let part = |r: std::ops::Range<usize>| {
                r.fold(0f32, |s, kk| a[i * k + kk].mul_add(b[kk * n + j], s))
            };
            part(0..k / 2) + part(k / 2..k)
        };
        let regrouped: Vec<f32> = (0..m * n).map(|e| halves(e / n, e % n)).collect();
        assert_ne!(bits(&regrouped), bits(&want));
    }

    #[test]
    fn accumulating_adds_the_chain_to_dst_and_strides_are_honoured() {
        let (m, k, n) = (6, 9, 20);
        let (a, b) = (values(m * k, 3), values(k * n, 4));
        let chain = reference(&a, &b, m, k, n);
        // lhs given transposed in memory (k × m), dst rows 25 apart
        let at: Vec<f32> = (0..k * m).map(|e| a[(e % m) * k + e / m]).collect();
        let mut out = vec![0.5f32; m * 25];
        portable_matmul(
            MatMut::row_major(&mut out, m, n, 25),
            MatRef::row_major(&at, k, m, m).t(),
            MatRef::row_major(&b, k, n, n),
            true,
            2,
        );
        for i in 0..m {
            for j in 0..25 {
                let want = if j < n { 0.5 + chain[i * n + j] } else { 0.5 };
                assert_eq!(out[i * 25 + j].to_bits(), want.to_bits(), "({i}, {j})");
            }
        }
    }
}
