//! New output vectors, written piece by piece by the kernels.
//!
//! A kernel's output is fresh memory. Rather than zero-filling it in a separate pass (a full
//! write of the output before the kernel writes it again) or exposing uninitialised memory
//! as `&mut [f32]`, the output is allocated uninitialised and each piece is zero-filled
//! right before its kernel writes it: the fill touches memory the kernel is about to write
//! anyway, on the same thread, while it is in cache. The helpers here hand out every piece of
//! the output exactly once, so the vector is initialised when they return it.

use crate::parallel::{item_group_len, par_chunks_map};
use std::mem::MaybeUninit;

/// `piece` as initialised f32.
///
/// # Safety
///
/// Every element of `piece` has been written.
pub(crate) unsafe fn assume_init(piece: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: initialised, as the caller guarantees; `MaybeUninit<f32>` has the size,
    // alignment and ABI of `f32`.
    unsafe { &mut *(piece as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// `piece` zero-filled, as initialised f32.
pub(crate) fn zeroed(piece: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    for v in piece.iter_mut() {
        v.write(0.0);
    }
    // SAFETY: every element was written just above.
    unsafe { assume_init(piece) }
}

/// A new vector of `len` f32 written by `f(i, piece_i)` for its consecutive `chunk`-long
/// pieces (the last may be shorter), in parallel when `parallel`, each piece zero-filled
/// just before `f` gets it; returns the vector and `f`'s results in piece order.
pub(crate) fn fill_chunks_map<T: Send>(
    len: usize,
    chunk: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [f32]) -> T + Sync,
) -> (Vec<f32>, Vec<T>) {
    let mut out: Vec<f32> = Vec::with_capacity(len);
    if len == 0 {
        return (out, Vec::new());
    }
    assert!(chunk > 0, "fill_chunks_map: empty pieces");
    let spare = &mut out.spare_capacity_mut()[..len];
    let results = if parallel {
        par_chunks_map(spare, chunk, |i, piece| f(i, zeroed(piece)))
    } else {
        spare
            .chunks_mut(chunk)
            .enumerate()
            .map(|(i, piece)| f(i, zeroed(piece)))
            .collect()
    };
    // SAFETY: the pieces above cover 0..len (both loops visit every chunk of `spare`; a panic
    // in `f` unwinds past this line) and `zeroed` initialised each of them.
    unsafe { out.set_len(len) };
    (out, results)
}

/// The consecutive `len`-long parts of one piece of a new vector (the last may be shorter),
/// handed out one by one by [`Parts::fill_next`] to be initialised (so a kernel that writes
/// a large piece part by part finds each part in cache); parts never handed out are
/// zero-filled on drop, so the whole piece is initialised either way.
pub(crate) struct Parts<'a> {
    rest: &'a mut [MaybeUninit<f32>],
    len: usize,
}

impl<'a> Parts<'a> {
    fn new(piece: &'a mut [MaybeUninit<f32>], len: usize) -> Self {
        Self { rest: piece, len }
    }

    /// Hands the next part, uninitialised, to `write`, which returns the [`Filled`] proof
    /// that it initialised it (checked; a mismatch panics) with its result; `None` once the
    /// piece is used up.
    pub fn fill_next<R>(
        &mut self,
        write: impl FnOnce(&mut [MaybeUninit<f32>]) -> (Filled, R),
    ) -> Option<R> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest);
        let (part, tail) = rest.split_at_mut(self.len.min(rest.len()));
        self.rest = tail;
        let (ptr, n) = (part.as_ptr() as *const f32, part.len());
        let (filled, result) = write(part);
        assert!(
            filled.ptr == ptr && filled.len == n,
            "a kernel returned another slice than the part it was given"
        );
        Some(result)
    }
}

impl Drop for Parts<'_> {
    fn drop(&mut self) {
        zeroed(std::mem::take(&mut self.rest));
    }
}

/// Like [`fill_chunks_map_into`], but `f` gets each piece as its [`Parts`] of `part`
/// elements, initialised one part at a time.
pub(crate) fn fill_chunk_parts_map<T: Send>(
    len: usize,
    chunk: usize,
    part: usize,
    parallel: bool,
    f: impl Fn(usize, Parts) -> T + Sync,
) -> (Vec<f32>, Vec<T>) {
    let mut out: Vec<f32> = Vec::with_capacity(len);
    if len == 0 {
        return (out, Vec::new());
    }
    assert!(chunk > 0 && part > 0, "fill_chunk_parts_map: empty pieces");
    let spare = &mut out.spare_capacity_mut()[..len];
    let results = if parallel {
        par_chunks_map(spare, chunk, |i, piece| f(i, Parts::new(piece, part)))
    } else {
        spare
            .chunks_mut(chunk)
            .enumerate()
            .map(|(i, piece)| f(i, Parts::new(piece, part)))
            .collect()
    };
    // SAFETY: the pieces above cover 0..len, and each piece's `Parts` had all of it
    // initialised (the parts handed out, checked by their `Filled` proofs, then the rest
    // zero-filled on drop, which happens before `f` returns).
    unsafe { out.set_len(len) };
    (out, results)
}

/// The proof a kernel hands back that it initialised the piece [`fill_chunks_map_into`] gave
/// it: made from the `&mut [f32]` it holds for that memory (which safe code can only have
/// after writing it).
pub(crate) struct Filled {
    ptr: *const f32,
    len: usize,
}

impl Filled {
    pub fn new(piece: &mut [f32]) -> Self {
        Self {
            ptr: piece.as_ptr(),
            len: piece.len(),
        }
    }
}

/// Like [`fill_chunks_map`], for kernels that write every element themselves: `f` gets each
/// piece uninitialised (no zero-fill) and returns, with its result, the [`Filled`] proof of
/// that same piece (checked; a mismatch panics).
pub(crate) fn fill_chunks_map_into<T: Send>(
    len: usize,
    chunk: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [MaybeUninit<f32>]) -> (Filled, T) + Sync,
) -> (Vec<f32>, Vec<T>) {
    let mut out: Vec<f32> = Vec::with_capacity(len);
    if len == 0 {
        return (out, Vec::new());
    }
    assert!(chunk > 0, "fill_chunks_map_into: empty pieces");
    let checked = |i: usize, piece: &mut [MaybeUninit<f32>]| -> T {
        let (ptr, n) = (piece.as_ptr() as *const f32, piece.len());
        let (filled, result) = f(i, piece);
        assert!(
            filled.ptr == ptr && filled.len == n,
            "a kernel returned another slice than the piece it was given"
        );
        result
    };
    let spare = &mut out.spare_capacity_mut()[..len];
    let results = if parallel {
        par_chunks_map(spare, chunk, checked)
    } else {
        spare
            .chunks_mut(chunk)
            .enumerate()
            .map(|(i, piece)| checked(i, piece))
            .collect()
    };
    // SAFETY: the pieces above cover 0..len, and for each of them `f` returned a `Filled`
    // made from a `&mut [f32]` of exactly that memory (checked), i.e. initialised it.
    unsafe { out.set_len(len) };
    (out, results)
}

/// [`fill_chunks_map_into`] without results.
pub(crate) fn fill_chunks_into(
    len: usize,
    chunk: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [MaybeUninit<f32>]) -> Filled + Sync,
) -> Vec<f32> {
    fill_chunks_map_into(len, chunk, parallel, |i, piece| (f(i, piece), ())).0
}

/// Like [`fill_item_groups`], for kernels that write every element themselves:
/// `f(item, item_piece)` gets each `item_len`-long item uninitialised and returns its
/// [`Filled`] proof.
pub(crate) fn fill_items_into(
    len: usize,
    item_len: usize,
    min_group_elems: usize,
    f: impl Fn(usize, &mut [MaybeUninit<f32>]) -> Filled + Sync,
) -> Vec<f32> {
    let group = item_group_len(len, item_len, min_group_elems);
    let per_group = group / item_len.max(1);
    fill_chunks_into(len, group, true, |g, items| {
        for (i, item) in items.chunks_mut(item_len).enumerate() {
            let (ptr, n) = (item.as_ptr() as *const f32, item.len());
            let filled = f(g * per_group + i, item);
            assert!(
                filled.ptr == ptr && filled.len == n,
                "a kernel returned another slice than the item it was given"
            );
        }
        // SAFETY: every item of `items` (they tile it) was initialised, as its checked
        // `Filled` proves.
        Filled::new(unsafe { assume_init(items) })
    })
}

/// [`fill_chunks_map`] without results.
pub(crate) fn fill_chunks(
    len: usize,
    chunk: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    fill_chunks_map(len, chunk, parallel, f).0
}

/// A new vector of `len` f32 made of `item_len`-long items, written in parallel by
/// `f(first_item, items)` on consecutive groups of about `min_group_elems` elements (so tiny
/// items are not one task each).
pub(crate) fn fill_item_groups(
    len: usize,
    item_len: usize,
    min_group_elems: usize,
    f: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let group = item_group_len(len, item_len, min_group_elems);
    let per_group = group / item_len.max(1);
    fill_chunks(len, group, true, |g, items| f(g * per_group, items))
}
