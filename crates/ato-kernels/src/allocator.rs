//! glibc malloc settings for training loops that allocate and free the same large
//! activation buffers every step.
//!
//! By default glibc serves blocks above a (dynamic) threshold with fresh `mmap`s and gives the
//! top of the heap back to the kernel once more than twice that is free, so every step
//! page-faults its activations in again: a third of a CIFAR ResNet training step on this
//! project's 2-core machine. Serving every block from the heap (`M_MMAP_MAX = 0`; glibc still
//! falls back to `mmap` where the heap cannot grow) and keeping the freed heap mapped removes
//! those faults. The cost is that the process keeps its peak heap (up to 1 GiB free memory
//! before trimming).

use std::sync::Once;

static TUNE: Once = Once::new();

/// Applies the malloc settings once per process (glibc on Linux only; elsewhere a no-op).
/// Called by the fast kernels on first use unless `ATO_TUNE_MALLOC=0`; returns whether the
/// settings are in force.
pub fn tune_allocator() -> bool {
    TUNE.call_once(|| {
        if std::env::var("ATO_TUNE_MALLOC").is_ok_and(|v| v.trim() == "0") {
            return;
        }
        apply();
    });
    applied()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
static APPLIED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() {
    // SAFETY: mallopt only changes allocator parameters; it is thread-safe in glibc.
    let ok = unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
            && libc::mallopt(libc::M_MMAP_MAX, 0) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
            && libc::mallopt(libc::M_TOP_PAD, 64 << 20) == 1
    };
    APPLIED.store(ok, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn applied() -> bool {
    APPLIED.load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() {}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn applied() -> bool {
    false
}
