//! [`run`]: the run of a config, on one rank or on `dist.world_size` ranks, each with its shard
//! of every batch ([`crate::parallel`]); rank 0 writes the run's files and finishes it. Ranks
//! are threads of this process (`dist.backend = "threads"`): a rank that fails stops the others
//! at their next collective, and the run reports the failure that came first (not the others'
//! "rank k stopped"). Or this process is one rank of an MPI job (`"mpi"`, feature `mpi`): a
//! rank that fails prints its error and ends the job.

use crate::config::{DistBackend, Reproducible, RunConfig};
use crate::data::RunData;
use crate::device::select_device;
use crate::finish::RunOutcome;
use crate::parallel::{Communicator, DataParallel, ThreadCommunicator};
use crate::trainer::{run_rank, RunOptions};
use crate::TrainError;

/// Runs (or resumes from its checkpoint) the run of `cfg` into `<out_dir>/<name>/<run-id>/`.
pub fn run(cfg: &RunConfig, opts: &RunOptions) -> Result<RunOutcome, TrainError> {
    cfg.validate()?;
    let device = select_device(&cfg.device)?;
    if cfg.train.reproducible == Reproducible::Portable && !device.is_cpu() {
        return Err(TrainError::Config(format!(
            "train.reproducible = \"portable\" needs the CPU (device `{}` takes its own kernels' \
             products): set device = \"cpu\", or train.reproducible = \"machine\"",
            cfg.device
        )));
    }
    let world = cfg.dist.world_size;
    if world > 1 && !device.is_cpu() {
        return Err(TrainError::Config(format!(
            "dist.world_size: {world} ranks run on the CPU, as threads or MPI processes \
             (device `{}`: no communicator between GPUs yet); set device = \"cpu\" or \
             dist.world_size = 1",
            cfg.device
        )));
    }
    #[cfg(not(feature = "mpi"))]
    if cfg.dist.backend == DistBackend::Mpi {
        return Err(TrainError::Config(
            "dist.backend: `mpi` needs a build with `--features mpi` (an MPI library and \
             libclang; docs/scaling.md)"
                .into(),
        ));
    }
    let _mode = ato_kernels::lease_reproducibility(cfg.train.reproducible.kernels())
        .map_err(|e| TrainError::Config(format!("train.reproducible: {e}")))?;
    let data = RunData::open(cfg, &device)?;
    #[cfg(feature = "mpi")]
    if cfg.dist.backend == DistBackend::Mpi {
        return mpi_rank(cfg, opts, &data, &device);
    }
    if world == 1 {
        return run_rank(cfg, opts, &data, &device, None)?.ok_or_else(no_outcome);
    }
    let shards = (0..world)
        .map(|rank| data.shard(rank, world, &device))
        .collect::<Result<Vec<_>, _>>()?;
    let results: Vec<Result<Option<RunOutcome>, TrainError>> = std::thread::scope(|s| {
        let ranks: Vec<_> = ThreadCommunicator::group(world)
            .into_iter()
            .zip(&shards)
            .map(|(comm, shard)| {
                let opts = RunOptions {
                    progress: opts.progress && comm.rank() == 0,
                    ..opts.clone()
                };
                let device = &device;
                s.spawn(move || {
                    run_rank(
                        cfg,
                        &opts,
                        shard,
                        device,
                        Some(DataParallel::new(Box::new(comm))),
                    )
                })
            })
            .collect();
        ranks
            .into_iter()
            .map(|r| r.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    first_failure(results)
}

/// Rank 0's outcome when every rank succeeded; otherwise the first rank's own error, before
/// the collectives' "rank k stopped" of the ranks it left waiting.
fn first_failure(
    results: Vec<Result<Option<RunOutcome>, TrainError>>,
) -> Result<RunOutcome, TrainError> {
    let mut errors: Vec<TrainError> = Vec::new();
    let mut outcome = None;
    for r in results {
        match r {
            Ok(Some(o)) => outcome = Some(o),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    let own = errors
        .iter()
        .position(|e| !matches!(e, TrainError::Ranks(_)));
    match own.or((!errors.is_empty()).then_some(0)) {
        Some(i) => Err(errors.swap_remove(i)),
        None => outcome.ok_or_else(no_outcome),
    }
}

fn no_outcome() -> TrainError {
    TrainError::Ranks("rank 0 ended without finishing the run".into())
}

/// This process's rank of an MPI job of `dist.world_size` processes: the ranks agree on the
/// config (its run id) before the first step; a rank's error is printed and ends the job
/// (`MPI_Abort`); at the end every rank waits for rank 0 to finish and returns what it wrote.
#[cfg(feature = "mpi")]
fn mpi_rank(
    cfg: &RunConfig,
    opts: &RunOptions,
    data: &RunData,
    device: &candle_core::Device,
) -> Result<RunOutcome, TrainError> {
    use crate::parallel::MpiCommunicator;
    let comm = MpiCommunicator::world().map_err(TrainError::Ranks)?;
    let (rank, size, world) = (comm.rank(), comm.world_size(), cfg.dist.world_size);
    let fail = |e: TrainError| -> ! {
        eprintln!("error: rank {rank} of {size}: {e}");
        comm.abort_job()
    };
    if size != world {
        fail(TrainError::Config(format!(
            "dist.world_size: {world}, but MPI started {size} processes (mpirun -np {world})"
        )));
    }
    // every rank must train the same run: compare run ids (their 32-bit hash, in two exact
    // 16-bit halves) with rank 0's
    let id = cfg.run_id();
    let hash = id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    });
    let mine = [(hash >> 16) as f32, (hash & 0xffff) as f32];
    let mut root = mine;
    comm.broadcast(&mut root, 0)
        .unwrap_or_else(|e| fail(e.into()));
    if root != mine {
        fail(TrainError::Config(format!(
            "dist: this rank's config (run id {id}) is not rank 0's; every rank must run the same config"
        )));
    }
    let shard = data.shard(rank, world, device).unwrap_or_else(|e| fail(e));
    let opts = RunOptions {
        progress: opts.progress && rank == 0,
        ..opts.clone()
    };
    let ranks = Some(DataParallel::new(Box::new(
        MpiCommunicator::world().map_err(TrainError::Ranks)?,
    )));
    let outcome = run_rank(cfg, &opts, &shard, device, ranks).unwrap_or_else(|e| fail(e));
    // rank 0 has written every file once it reaches this broadcast
    let mut done = [0f32];
    comm.broadcast(&mut done, 0)
        .unwrap_or_else(|e| fail(e.into()));
    match outcome {
        Some(o) => Ok(o),
        None => RunOutcome::written(&crate::RunDir::of(cfg), rank),
    }
}
