//! Batch parallelism on rayon's pool, and per-thread scratch buffers.
//!
//! Results never depend on how rayon schedules work: each task writes its own disjoint output,
//! and partial sums are indexed by a fixed chunking of the batch and reduced in index order.

use rayon::prelude::*;
use std::cell::RefCell;

/// Threads in rayon's global pool (candle's CPU ops use the same pool).
pub(crate) fn threads() -> usize {
    rayon::current_num_threads()
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer of at least `len` f32 (contents unspecified).
/// The buffer grows as needed and is kept for the thread's next call.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        // Re-entered on the same thread (rayon work stealing inside `f`): use a fresh buffer.
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// Calls `f(first_item, items)` on consecutive groups of `item_len`-long items of `out`, in
/// parallel, with groups of about `min_group_elems` elements so tiny items are not one task
/// each.
pub(crate) fn par_item_groups(
    out: &mut [f32],
    item_len: usize,
    min_group_elems: usize,
    f: impl Fn(usize, &mut [f32]) + Sync,
) {
    if out.is_empty() || item_len == 0 {
        return;
    }
    let items = out.len() / item_len;
    let per_group = min_group_elems.div_ceil(item_len).clamp(1, items.max(1));
    out.par_chunks_mut(per_group * item_len)
        .enumerate()
        .for_each(|(g, chunk)| f(g * per_group, chunk));
}

/// Splits `0..n` into at most `max_chunks` near-equal consecutive ranges (a fixed function of
/// `n` and `max_chunks`, so partial sums over them reduce identically on every run).
pub(crate) fn fixed_chunks(n: usize, max_chunks: usize) -> Vec<std::ops::Range<usize>> {
    let chunks = n.min(max_chunks).max(1);
    (0..chunks)
        .map(|i| (i * n / chunks)..((i + 1) * n / chunks))
        .filter(|r| !r.is_empty())
        .collect()
}
