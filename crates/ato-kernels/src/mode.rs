//! The process-wide reproducibility mode (`train.reproducible`): which matrix products the
//! kernels take. One mode per process at a time: a run holds a [`ModeLease`] for its whole
//! length, and a run asking for the other mode while one is held is refused, never run on
//! products it did not ask for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// What the results of a run may depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reproducibility {
    /// Bit-identical on the same machine (the fastest kernels it has; the default).
    Machine,
    /// Bit-identical on every x86-64 CPU with AVX2 and FMA (fixed-order products; slower).
    Portable,
}

impl Reproducibility {
    /// Every mode with its name (`train.reproducible`, `ato bench --reproducible`,
    /// `machine.json`'s `mode`): the one table of names.
    pub const ALL: [(&'static str, Reproducibility); 2] = [
        ("machine", Reproducibility::Machine),
        ("portable", Reproducibility::Portable),
    ];

    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("", |(n, _)| n)
    }
}

impl std::str::FromStr for Reproducibility {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, m)| *m)
            .ok_or_else(|| format!("`{s}` is not a mode: machine or portable"))
    }
}

static PORTABLE: AtomicBool = AtomicBool::new(false);

/// Sets the process-wide mode (a run sets it from `train.reproducible` before it starts).
pub fn set_reproducibility(mode: Reproducibility) {
    PORTABLE.store(mode == Reproducibility::Portable, Ordering::Relaxed);
}

/// The process-wide mode.
pub fn reproducibility() -> Reproducibility {
    if PORTABLE.load(Ordering::Relaxed) {
        Reproducibility::Portable
    } else {
        Reproducibility::Machine
    }
}

/// Runs holding the current mode.
static HOLDERS: Mutex<usize> = Mutex::new(0);

/// A run's hold on the process-wide mode; the mode is free to change once every lease is
/// dropped.
#[derive(Debug)]
pub struct ModeLease(());

impl Drop for ModeLease {
    fn drop(&mut self) {
        let mut held = HOLDERS.lock().unwrap_or_else(|p| p.into_inner());
        *held = held.saturating_sub(1);
    }
}

/// Sets the mode for a run and holds it until the lease is dropped. Refused while another
/// run of this process holds the other mode (runs in threads of one process share the
/// kernels' mode).
pub fn lease_reproducibility(mode: Reproducibility) -> Result<ModeLease, String> {
    let mut held = HOLDERS.lock().unwrap_or_else(|p| p.into_inner());
    if *held > 0 && reproducibility() != mode {
        return Err(format!(
            "another run in this process trains in `{}` mode; runs of one process share the \
             kernels' mode: run `{}` in its own process",
            reproducibility().as_str(),
            mode.as_str()
        ));
    }
    set_reproducibility(mode);
    *held += 1;
    Ok(ModeLease(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_mode_refuses_the_other_until_released() {
        let first = lease_reproducibility(Reproducibility::Portable).unwrap();
        let same = lease_reproducibility(Reproducibility::Portable).unwrap();
        let other = lease_reproducibility(Reproducibility::Machine).unwrap_err();
        assert!(other.contains("`portable` mode"), "{other}");
        drop(first);
        assert!(
            lease_reproducibility(Reproducibility::Machine).is_err(),
            "still held once"
        );
        drop(same);
        let machine = lease_reproducibility(Reproducibility::Machine).unwrap();
        assert_eq!(reproducibility(), Reproducibility::Machine);
        drop(machine);
    }
}
