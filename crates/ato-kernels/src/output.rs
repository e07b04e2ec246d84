//! New output vectors, written piece by piece by the kernels.
//!
//! A kernel's output is fresh memory. Rather than zero-filling it in a separate pass (a full
//! write of the output before the kernel writes it again) or exposing uninitialised memory
//! as `&mut [f32]`, the output is allocated uninitialised and handed out piece by piece:
//! kernels that write every element take the piece as `&mut [MaybeUninit<f32>]` and give
//! back the same memory as `&mut [f32]` (the `*_into` helpers: checked, and the borrow
//! checker keeps the kernel from touching the piece afterwards); the others get each piece
//! zero-filled right before they write it, on the same thread, while it is in cache. The
//! helpers hand out every piece of the output, so the vector is initialised when they return
//! it.

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

/// Initialised f32 as a piece to write (every write stores a valid f32, so it stays
/// initialised), for the `*_into` kernels called on memory that already holds values.
pub(crate) fn as_uninit(piece: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and through `&mut
    // [MaybeUninit<f32>]` only f32 values (or nothing) can be written.
    unsafe { &mut *(piece as *mut [f32] as *mut [MaybeUninit<f32>]) }
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

    /// Hands the next part, uninitialised, to `write`, which gives it back initialised
    /// (checked; another slice panics) with its result; `None` once the piece is used up.
    pub fn fill_next<R>(
        &mut self,
        write: impl for<'p> FnOnce(&'p mut [MaybeUninit<f32>]) -> (&'p mut [f32], R),
    ) -> Option<R> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest);
        let (part, tail) = rest.split_at_mut(self.len.min(rest.len()));
        self.rest = tail;
        let given = Given::of(part);
        let (done, result) = write(part);
        given.check(done);
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
    // initialised (the parts handed out, each given back initialised (checked), then the
    // rest zero-filled on drop, which happens before `f` returns).
    unsafe { out.set_len(len) };
    (out, results)
}

/// The address and length of a piece handed out uninitialised, to check that a kernel gives
/// back that same memory initialised (as `&mut [f32]`, which safe code can only make by
/// writing it; while the kernel returns it, the piece stays borrowed, so it cannot write
/// uninitialised values into it afterwards).
struct Given {
    ptr: *const f32,
    len: usize,
}

impl Given {
    fn of(piece: &[MaybeUninit<f32>]) -> Self {
        Self {
            ptr: piece.as_ptr() as *const f32,
            len: piece.len(),
        }
    }

    fn check(self, done: &[f32]) {
        assert!(
            done.as_ptr() == self.ptr && done.len() == self.len,
            "a kernel gave back another slice than the piece it was given"
        );
    }
}

/// Like [`fill_chunks_map`], for kernels that write every element themselves: `f` gets each
/// piece uninitialised (no zero-fill) and gives it back initialised (checked; another slice
/// panics) with its result.
pub(crate) fn fill_chunks_map_into<T: Send>(
    len: usize,
    chunk: usize,
    parallel: bool,
    f: impl for<'p> Fn(usize, &'p mut [MaybeUninit<f32>]) -> (&'p mut [f32], T) + Sync,
) -> (Vec<f32>, Vec<T>) {
    let mut out: Vec<f32> = Vec::with_capacity(len);
    if len == 0 {
        return (out, Vec::new());
    }
    assert!(chunk > 0, "fill_chunks_map_into: empty pieces");
    let checked = |i: usize, piece: &mut [MaybeUninit<f32>]| -> T {
        let given = Given::of(piece);
        let (done, result) = f(i, piece);
        given.check(done);
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
    // SAFETY: the pieces above cover 0..len, and for each of them `f` gave back exactly
    // that memory as `&mut [f32]` (checked), i.e. initialised.
    unsafe { out.set_len(len) };
    (out, results)
}

/// [`fill_chunks_map_into`] without results.
pub(crate) fn fill_chunks_into(
    len: usize,
    chunk: usize,
    parallel: bool,
    f: impl for<'p> Fn(usize, &'p mut [MaybeUninit<f32>]) -> &'p mut [f32] + Sync,
) -> Vec<f32> {
    fill_chunks_map_into(len, chunk, parallel, |i, piece| (f(i, piece), ())).0
}

/// Like [`fill_item_groups`], for kernels that write every element themselves:
/// `f(item, item_piece)` gets each `item_len`-long item uninitialised and gives it back
/// initialised (checked).
pub(crate) fn fill_items_into(
    len: usize,
    item_len: usize,
    min_group_elems: usize,
    f: impl for<'p> Fn(usize, &'p mut [MaybeUninit<f32>]) -> &'p mut [f32] + Sync,
) -> Vec<f32> {
    let group = item_group_len(len, item_len, min_group_elems);
    let per_group = group / item_len.max(1);
    fill_chunks_into(len, group, true, |g, items| {
        for (i, item) in items.chunks_mut(item_len).enumerate() {
            let given = Given::of(item);
            given.check(f(g * per_group + i, item));
        }
        // SAFETY: the items tile `items`, and `f` gave each back initialised (checked).
        unsafe { assume_init(items) }
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
