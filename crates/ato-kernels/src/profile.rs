//! Where the kernels' time goes (issue 31): with [`enable`], every custom op's CPU pass adds
//! its wall time and a call to a table keyed by the op's name; [`take`] returns and clears it.
//! Off (the default), a pass pays one relaxed atomic load. `ato bench train MODEL --profile`
//! prints the table per step, with the remainder (candle's own ops: linear, pooling, loss,
//! autograd's bookkeeping, the optimiser) as the last line.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ON: AtomicBool = AtomicBool::new(false);
static TABLE: Mutex<BTreeMap<&'static str, (Duration, u64)>> = Mutex::new(BTreeMap::new());

/// Starts (or stops) recording.
pub fn enable(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// Seconds and calls per op name since the last `take`, sorted by time (largest first);
/// the table is cleared.
pub fn take() -> Vec<(&'static str, f64, u64)> {
    let mut table = TABLE.lock().expect("profile lock");
    let mut rows: Vec<_> = std::mem::take(&mut *table)
        .into_iter()
        .map(|(name, (d, n))| (name, d.as_secs_f64(), n))
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    rows
}

/// Times one pass of the op `name` until dropped (when recording).
pub(crate) struct Pass {
    name: &'static str,
    started: Option<Instant>,
}

impl Pass {
    pub(crate) fn start(name: &'static str) -> Self {
        let started = ON.load(Ordering::Relaxed).then(Instant::now);
        Self { name, started }
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        if let Some(t) = self.started {
            let mut table = TABLE.lock().expect("profile lock");
            let e = table.entry(self.name).or_default();
            e.0 += t.elapsed();
            e.1 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_are_counted_only_while_recording() {
        drop(Pass::start("off"));
        enable(true);
        for _ in 0..3 {
            let _p = Pass::start("on");
        }
        enable(false);
        // (other tests' kernels may run meanwhile: only this test's names are looked at)
        let ours = |rows: Vec<(&'static str, f64, u64)>| -> Vec<(&'static str, u64)> {
            rows.into_iter()
                .filter(|r| r.0 == "on" || r.0 == "off")
                .map(|r| (r.0, r.2))
                .collect()
        };
        assert_eq!(ours(take()), [("on", 3)]);
        assert!(ours(take()).is_empty(), "take clears the table");
    }
}
