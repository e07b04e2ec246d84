//! Ranks as threads of one process: the CPU communicator, built on a barrier that a departing
//! rank breaks and one slot per rank.

use super::Communicator;
use candle_core::Result;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Where the ranks meet: how many have arrived in this round, the round's number, and why the
/// group broke (a rank left before the others stopped calling collectives).
#[derive(Default)]
struct Meeting {
    arrived: usize,
    round: u64,
    broken: Option<String>,
}

struct Shared {
    world: usize,
    meeting: Mutex<Meeting>,
    all_here: Condvar,
    slots: Mutex<Vec<Vec<f32>>>,
}

impl Shared {
    fn meeting(&self) -> MutexGuard<'_, Meeting> {
        self.meeting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for every rank; an error once a rank has left (the others would wait forever).
    fn wait(&self) -> Result<()> {
        let mut m = self.meeting();
        if let Some(why) = &m.broken {
            candle_core::bail!("{why}");
        }
        let round = m.round;
        m.arrived += 1;
        if m.arrived == self.world {
            m.arrived = 0;
            m.round += 1;
            self.all_here.notify_all();
            return Ok(());
        }
        loop {
            m = self.all_here.wait(m).unwrap_or_else(|p| p.into_inner());
            if m.round != round {
                return Ok(());
            }
            if let Some(why) = &m.broken {
                candle_core::bail!("{why}");
            }
        }
    }
}

/// One rank of a group made by [`ThreadCommunicator::group`]; move each into its own thread.
/// Dropping a rank (its thread returned or panicked) breaks the group: the others' next or
/// pending collective fails instead of waiting forever.
pub struct ThreadCommunicator {
    rank: usize,
    shared: Arc<Shared>,
}

impl ThreadCommunicator {
    /// `world_size` connected ranks, rank i at index i.
    pub fn group(world_size: usize) -> Vec<ThreadCommunicator> {
        assert!(world_size > 0, "a group needs at least one rank");
        let shared = Arc::new(Shared {
            world: world_size,
            meeting: Mutex::new(Meeting::default()),
            all_here: Condvar::new(),
            slots: Mutex::new(vec![Vec::new(); world_size]),
        });
        (0..world_size)
            .map(|rank| ThreadCommunicator {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Vec<f32>>> {
        // A rank that panicked poisons the lock; the others still read consistent slots.
        self.shared.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for ThreadCommunicator {
    fn drop(&mut self) {
        let mut m = self.shared.meeting();
        if m.broken.is_none() {
            m.broken = Some(format!(
                "rank {} of {} stopped",
                self.rank, self.shared.world
            ));
        }
        self.shared.all_here.notify_all();
    }
}

impl Communicator for ThreadCommunicator {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.shared.world
    }

    fn all_reduce_sum(&self, data: &mut [f32]) -> Result<()> {
        self.slots()[self.rank] = data.to_vec();
        self.shared.wait()?;
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
        self.shared.wait()?;
        outcome
    }

    fn broadcast(&self, data: &mut [f32], root: usize) -> Result<()> {
        if root >= self.shared.world {
            candle_core::bail!(
                "broadcast: root {root} is not a rank of {}",
                self.shared.world
            );
        }
        if self.rank == root {
            self.slots()[root] = data.to_vec();
        }
        self.shared.wait()?;
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
        self.shared.wait()?;
        outcome
    }
}
