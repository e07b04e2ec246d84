//! Ranks as threads of one process: the CPU communicator, built on a barrier and one slot per
//! rank.

use super::Communicator;
use candle_core::Result;
use std::sync::{Arc, Barrier, Mutex};

struct Shared {
    barrier: Barrier,
    slots: Mutex<Vec<Vec<f32>>>,
}

/// One rank of a group made by [`ThreadCommunicator::group`]; move each into its own thread.
pub struct ThreadCommunicator {
    rank: usize,
    world: usize,
    shared: Arc<Shared>,
}

impl ThreadCommunicator {
    /// `world_size` connected ranks, rank i at index i.
    pub fn group(world_size: usize) -> Vec<ThreadCommunicator> {
        assert!(world_size > 0, "a group needs at least one rank");
        let shared = Arc::new(Shared {
            barrier: Barrier::new(world_size),
            slots: Mutex::new(vec![Vec::new(); world_size]),
        });
        (0..world_size)
            .map(|rank| ThreadCommunicator {
                rank,
                world: world_size,
                shared: shared.clone(),
            })
            .collect()
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Vec<f32>>> {
        // A rank that panicked poisons the lock; the others still read consistent slots.
        self.shared.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Communicator for ThreadCommunicator {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world
    }

    fn all_reduce_sum(&self, data: &mut [f32]) -> Result<()> {
        self.slots()[self.rank] = data.to_vec();
        self.shared.barrier.wait();
        let outcome = {
            let slots = self.slots();
            match slots.iter().position(|s| s.len() != data.len()) {
                Some(bad) => Err(candle_core::Error::Msg(format!(
                    "all_reduce: rank {bad} sent {} values, rank {} sent {}",
                    slots[bad].len(),
                    self.rank,
                    data.len()
                ))),
                None => {
                    data.iter_mut().for_each(|v| *v = 0.0);
                    for s in slots.iter() {
                        for (d, v) in data.iter_mut().zip(s) {
                            *d += v;
                        }
                    }
                    Ok(())
                }
            }
        };
        // Nobody refills a slot before every rank has read them all (also on error, so no rank
        // is left waiting).
        self.shared.barrier.wait();
        outcome
    }

    fn broadcast(&self, data: &mut [f32], root: usize) -> Result<()> {
        if root >= self.world {
            candle_core::bail!("broadcast: root {root} is not a rank of {}", self.world);
        }
        if self.rank == root {
            self.slots()[root] = data.to_vec();
        }
        self.shared.barrier.wait();
        let outcome = {
            let slots = self.slots();
            if slots[root].len() == data.len() {
                data.copy_from_slice(&slots[root]);
                Ok(())
            } else {
                Err(candle_core::Error::Msg(format!(
                    "broadcast: root sent {} values, rank {} expects {}",
                    slots[root].len(),
                    self.rank,
                    data.len()
                )))
            }
        };
        self.shared.barrier.wait();
        outcome
    }
}
