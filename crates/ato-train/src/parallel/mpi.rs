//! Ranks as MPI processes (`dist.backend = "mpi"`, cargo feature `mpi`): one rank per process,
//! started by `mpirun -np N` or Slurm's `srun`. MPI starts at the first run that asks for it
//! and ends with [`finish_mpi`], which the `ato` binary calls before it exits.
//!
//! The all-reduce gathers every rank's buffer and sums them in rank order on every rank, the
//! same sum, in the same order, as [`super::ThreadCommunicator`]: a job on N processes trains
//! the same bits as N thread ranks (tested), and every rank holds the same bits.

use super::Communicator;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator as _, CommunicatorCollectives, Root};
use std::sync::Mutex;

/// MPI's global state, from the first [`MpiCommunicator::world`] to [`finish_mpi`].
static UNIVERSE: Mutex<Option<Universe>> = Mutex::new(None);

/// This process's rank of `MPI_COMM_WORLD`.
pub struct MpiCommunicator {
    world: SimpleCommunicator,
}

impl MpiCommunicator {
    /// The world communicator; starts MPI on first use.
    pub fn world() -> Result<Self, String> {
        let mut universe = UNIVERSE.lock().unwrap_or_else(|p| p.into_inner());
        if universe.is_none() {
            if mpi::environment::is_finalized() {
                return Err("MPI was finished already in this process".into());
            }
            *universe = Some(mpi::initialize().ok_or("MPI could not be started")?);
        }
        Ok(Self {
            world: SimpleCommunicator::world(),
        })
    }

    /// Fails unless every rank calls with the same length (MPI would read past a buffer).
    fn same_length(&self, n: usize, what: &str) -> candle_core::Result<()> {
        let mut lengths = vec![0u64; self.world_size()];
        self.world.all_gather_into(&(n as u64), &mut lengths[..]);
        match lengths.iter().position(|&l| l != n as u64) {
            Some(bad) => candle_core::bail!(
                "{what}: rank {bad} sent {} values, rank {} sent {n}",
                lengths[bad],
                self.rank()
            ),
            None => Ok(()),
        }
    }

    /// Ends the whole job (`MPI_Abort`): after a rank's error the others would wait in their
    /// next collective for ever.
    pub fn abort_job(&self) -> ! {
        self.world.abort(1)
    }
}

impl Communicator for MpiCommunicator {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn world_size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_reduce_sum(&self, data: &mut [f32]) -> candle_core::Result<()> {
        let n = data.len();
        self.same_length(n, "all_reduce")?;
        let mut all = vec![0f32; n * self.world_size()];
        self.world.all_gather_into(&data[..], &mut all[..]);
        data.iter_mut().for_each(|v| *v = 0.0);
        for part in all.chunks_exact(n.max(1)).take(self.world_size()) {
            for (d, v) in data.iter_mut().zip(part) {
                *d += v;
            }
        }
        Ok(())
    }

    fn broadcast(&self, data: &mut [f32], root: usize) -> candle_core::Result<()> {
        if root >= self.world_size() {
            candle_core::bail!(
                "broadcast: root {root} is not a rank of {}",
                self.world_size()
            );
        }
        self.same_length(data.len(), "broadcast")?;
        self.world
            .process_at_rank(root as i32)
            .broadcast_into(&mut data[..]);
        Ok(())
    }
}

/// Ends MPI (`MPI_Finalize`) if a run started it; call once, before the process exits.
pub fn finish_mpi() {
    UNIVERSE.lock().unwrap_or_else(|p| p.into_inner()).take();
}
