//! The work-sharing pool behind [`crate::parallel`]'s loops.
//!
//! The calling thread publishes a loop of n indices and works through them itself, while
//! `threads() − 1` helper threads claim indices as long as any are left. The caller then
//! waits only for indices a helper claimed and has not finished, never for a helper that has
//! not woken up: on a busy machine, where a woken thread may wait milliseconds for a core, a
//! loop costs at worst what the caller alone takes. (candle's barrier pool, which these loops
//! ran on before, waits for every worker to check in; on a loaded 2-core machine that wait
//! made two threads several times slower than one.) Idle helpers spin briefly, then sleep on
//! a condition variable, so they leave the cores to candle's own workers.
//!
//! A loop is one atomic word: (next index, length). Claiming is a compare-and-swap that
//! succeeds only while indices are left, so a claim always belongs to the loop in progress,
//! whose body stays alive (on the caller's stack) until every claimed index has finished.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

/// A loop body.
type Body<'a> = &'a (dyn Fn(usize) + Sync);

/// Spins of an idle helper before it sleeps, and of a waiting caller before it yields
/// (some tens of microseconds).
const SPINS: u32 = 4_000;

struct Shared {
    /// `(next index << 32) | length` of the current loop; no index is left once
    /// next ≥ length (the state between loops).
    cursor: AtomicU64,
    /// Indices of the current loop that have finished.
    done: AtomicUsize,
    /// The current loop's body, a `*const Body` into the caller's stack frame.
    body: AtomicPtr<()>,
    /// Bumped after each loop is published; what sleeping helpers wait for.
    epoch: AtomicU64,
    sleep: Mutex<()>,
    wake: Condvar,
    /// The first panic of a loop body on a helper, re-raised by the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// Held by the thread whose loop is in progress.
    busy: Mutex<()>,
}

thread_local! {
    /// Set on helpers and on a caller inside its loop: a nested loop runs inline.
    static IN_LOOP: Cell<bool> = const { Cell::new(false) };
}

fn pack(next: usize, len: usize) -> u64 {
    ((next as u64) << 32) | len as u64
}

fn unpack(c: u64) -> (usize, usize) {
    ((c >> 32) as usize, (c & 0xffff_ffff) as usize)
}

impl Shared {
    /// Claims the next index of the loop in progress, if one is left.
    fn claim(&self) -> Option<usize> {
        let mut c = self.cursor.load(Ordering::Acquire);
        loop {
            let (next, len) = unpack(c);
            if next >= len {
                return None;
            }
            match self.cursor.compare_exchange_weak(
                c,
                pack(next + 1, len),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(next),
                Err(now) => c = now,
            }
        }
    }

    /// Runs claimed indices until none is left; a panic is stored for the caller.
    fn work(&self) {
        while let Some(i) = self.claim() {
            // SAFETY: a successful claim belongs to the loop in progress (claims only succeed
            // while its indices last), whose caller published `body` before the loop and
            // keeps it alive until `done` counts this index.
            let body = unsafe { *(self.body.load(Ordering::Acquire) as *const Body) };
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| body(i))) {
                self.panic.lock().expect("pool panic slot").get_or_insert(p);
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

struct Pool {
    shared: &'static Shared,
    helpers: usize,
}

fn helper(shared: &'static Shared) {
    IN_LOOP.with(|f| f.set(true));
    let mut seen = 0;
    loop {
        let mut spins = 0;
        loop {
            let epoch = shared.epoch.load(Ordering::Acquire);
            if epoch != seen {
                seen = epoch;
                break;
            }
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            let guard = shared.sleep.lock().expect("pool sleep lock");
            if shared.epoch.load(Ordering::Acquire) == seen {
                drop(shared.wake.wait(guard).expect("pool sleep lock"));
            }
            spins = 0;
        }
        shared.work();
    }
}

fn pool(threads: usize) -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            cursor: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            body: AtomicPtr::new(std::ptr::null_mut()),
            epoch: AtomicU64::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
            panic: Mutex::new(None),
            busy: Mutex::new(()),
        }));
        let helpers = threads.saturating_sub(1);
        for i in 0..helpers {
            std::thread::Builder::new()
                .name(format!("ato-kernels-{i}"))
                .spawn(move || helper(shared))
                .expect("spawn an ato-kernels helper thread");
        }
        Pool { shared, helpers }
    })
}

/// Calls `f(i)` for every `i` in `0..n`, on the caller and up to `threads − 1` helpers; inline
/// when nested in another loop, when another thread's loop is in progress, or for n ≤ 1.
pub(crate) fn run(threads: usize, n: usize, f: &(dyn Fn(usize) + Sync)) {
    let inline = || (0..n).for_each(f);
    if n <= 1 || threads <= 1 || IN_LOOP.with(|l| l.get()) {
        return inline();
    }
    let pool = pool(threads);
    let s = pool.shared;
    let Ok(_busy) = s.busy.try_lock() else {
        return inline();
    };
    if pool.helpers == 0 || n >= 1 << 31 {
        return inline();
    }
    IN_LOOP.with(|l| l.set(true));
    // No index of the previous loop is left or running (its caller waited for them all), so
    // nobody touches `done` or `body` until the cursor below opens this loop.
    s.done.store(0, Ordering::Relaxed);
    let body: Body = f;
    s.body
        .store(&body as *const Body as *mut (), Ordering::Relaxed);
    s.cursor.store(pack(0, n), Ordering::Release);
    s.epoch.fetch_add(1, Ordering::Release);
    drop(s.sleep.lock().expect("pool sleep lock"));
    s.wake.notify_all();
    let mut own_panic = None;
    while let Some(i) = s.claim() {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(i))) {
            own_panic.get_or_insert(p);
        }
        s.done.fetch_add(1, Ordering::Release);
    }
    // Only indices claimed by helpers can still be running: wait for them.
    let mut spins = 0u32;
    while s.done.load(Ordering::Acquire) < n {
        if spins < SPINS {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    IN_LOOP.with(|l| l.set(false));
    let helper_panic = s.panic.lock().expect("pool panic slot").take();
    if let Some(p) = own_panic.or(helper_panic) {
        resume_unwind(p);
    }
}

#[cfg(test)]
mod tests {
    use super::run;
    use std::panic::catch_unwind;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_index_runs_once() {
        for threads in [2, 3] {
            for n in [0, 1, 2, 3, 64, 1000] {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                run(threads, n, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(
                    hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                    "n = {n}"
                );
            }
        }
    }

    #[test]
    fn nested_loops_run_inline() {
        let total = AtomicUsize::new(0);
        run(2, 8, &|_| {
            run(2, 8, &|j| {
                total.fetch_add(j, Ordering::Relaxed);
            })
        });
        assert_eq!(total.load(Ordering::Relaxed), 8 * 28);
    }

    #[test]
    fn a_panic_reaches_the_caller_and_the_pool_survives() {
        let r = catch_unwind(|| {
            run(2, 100, &|i| {
                if i == 57 {
                    panic!("index 57");
                }
            })
        });
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        run(2, 100, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 100);
    }
}
