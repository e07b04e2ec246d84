//! Parallel loops on the calling thread plus `CANDLE_NUM_THREADS − 1` helpers, and
//! per-thread scratch buffers.
//!
//! The helpers ([`crate::pool`]) share the work of a loop with the caller, which never waits
//! for a helper that has not started; idle, they spin briefly and then sleep, so they do not
//! fight candle's own pool workers for the cores (rayon's pool is not used: a second pool of
//! spinning threads would).
//!
//! Results never depend on scheduling: each index writes its own output, and partial sums are
//! indexed by a fixed chunking and reduced in index order.

use candle_core::utils::barrier_pool;
use std::cell::RefCell;
use std::sync::Mutex;

/// Threads that run a parallel loop: `CANDLE_NUM_THREADS` (as many as candle's own pool).
pub(crate) fn threads() -> usize {
    barrier_pool().n_workers() + 1
}

/// Calls `f(i)` for every `i` in `0..n`, spread over the threads.
pub(crate) fn par_for(n: usize, f: impl Fn(usize) + Sync) {
    crate::pool::run(threads(), n, &f);
}

/// A pointer that may cross threads; users hand out disjoint ranges only.
struct SharedMut<T>(*mut T);
// SAFETY: only used to give each loop index its own disjoint sub-slice of `T: Send` items.
unsafe impl<T: Send> Send for SharedMut<T> {}
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the raw field).
    fn get(&self) -> *mut T {
        self.0
    }
}

/// Calls `f(i, chunk_i)` for the consecutive `chunk`-long pieces of `data` (the last may be
/// shorter), in parallel.
pub(crate) fn par_chunks_mut<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if data.is_empty() || chunk == 0 {
        return;
    }
    let len = data.len();
    let base = SharedMut(data.as_mut_ptr());
    par_for(len.div_ceil(chunk), |i| {
        let start = i * chunk;
        let n = chunk.min(len - start);
        // SAFETY: distinct `i` give disjoint ranges inside `data`, which stays exclusively
        // borrowed for the whole loop.
        let piece = unsafe { std::slice::from_raw_parts_mut(base.get().add(start), n) };
        f(i, piece);
    });
}

/// Like [`par_chunks_mut`], collecting `f`'s results in chunk order.
pub(crate) fn par_chunks_map<T: Send, R: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) -> R + Sync,
) -> Vec<R> {
    if data.is_empty() || chunk == 0 {
        return Vec::new();
    }
    let slots: Vec<Mutex<Option<R>>> = (0..data.len().div_ceil(chunk))
        .map(|_| Mutex::new(None))
        .collect();
    par_chunks_mut(data, chunk, |i, piece| {
        *slots[i].lock().expect("par_chunks_map slot") = Some(f(i, piece));
    });
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .expect("par_chunks_map slot")
                .expect("every chunk ran")
        })
        .collect()
}

/// `(0..n).map(f)` evaluated in parallel, in index order.
pub(crate) fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let slots: Vec<Mutex<Option<T>>> = (0..n).map(|_| Mutex::new(None)).collect();
    par_for(n, |i| {
        *slots[i].lock().expect("par_map slot") = Some(f(i));
    });
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .expect("par_map slot")
                .expect("every index ran")
        })
        .collect()
}

/// Elements per group when `item_len`-long items of `len` elements are processed in groups of
/// about `min_group_elems` elements (so tiny items are not one task each): a whole number of
/// items.
pub(crate) fn item_group_len(len: usize, item_len: usize, min_group_elems: usize) -> usize {
    let items = len / item_len.max(1);
    min_group_elems
        .div_ceil(item_len.max(1))
        .clamp(1, items.max(1))
        * item_len
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static PLANE_SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Like [`with_scratch`], a second per-thread buffer for per-plane work inside a task that
/// holds the first.
pub(crate) fn with_plane_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    with_buffer(&PLANE_SCRATCH, len, f)
}

/// Runs `f` with this thread's scratch buffer of at least `len` f32 (contents unspecified).
/// The buffer grows as needed and is kept for the thread's next call.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    with_buffer(&SCRATCH, len, f)
}

fn with_buffer<R>(
    key: &'static std::thread::LocalKey<RefCell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        // Re-entered on the same thread: use a fresh buffer.
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// The element-wise sum of per-chunk partial sums, added in chunk order (`len` zeros when there
/// is none): the reduction that makes chunked sums independent of the threads.
pub(crate) fn sum_in_chunk_order(partials: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    let mut iter = partials.into_iter();
    let mut total = iter.next().unwrap_or_else(|| vec![0.0; len]);
    for part in iter {
        for (d, v) in total.iter_mut().zip(&part) {
            *d += v;
        }
    }
    total
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
