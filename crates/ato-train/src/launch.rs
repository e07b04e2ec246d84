//! [`run`]: the run of a config, on one rank or on `dist.world_size` ranks, each with its shard
//! of every batch ([`crate::parallel`]); rank 0 writes the run's files and finishes it. Ranks
//! are threads of this process (`dist.backend = "threads"`): a rank that fails stops the others
//! at their next collective, and the run reports the failure that came first (not the others'
//! "rank k stopped"). Or this process is one rank of an MPI job (`"mpi"`, feature `mpi`): a
//! rank that fails prints its error and ends the job.

use crate::config::{DistBackend, Precision, Reproducible, RunConfig};
use crate::data::RunData;
use crate::device::select_device;
use crate::finish::RunOutcome;
use crate::parallel::{Communicator, DataParallel, ThreadCommunicator};
use crate::trainer::{run_rank, RunOptions};
use crate::TrainError;

/// Why `train.precision = "bf16"` does not run here, in one line naming what the machine has:
/// no bf16 kernel is built yet, and training in fp32 under a bf16 label would make the run's
/// record wrong.
pub fn bf16_refusal(device: &candle_core::Device) -> String {
    let fix = "set train.precision = \"fp32\"";
    if !device.is_cpu() {
        return format!(
            "train.precision = \"bf16\": not built for device `{:?}` yet; {fix}",
            device.location()
        );
    }
    let machine = crate::MachineRecord::here(device, 0);
    let cpu = machine.cpu_name();
    match ato_kernels::cpu::bf16_units() {
        ato_kernels::cpu::Bf16Units::None => format!(
            "train.precision = \"bf16\": this CPU ({cpu}) has neither AMX nor AVX512-BF16, so \
             bf16 would run as fp32; refused rather than recorded as bf16: {fix}"
        ),
        units => format!(
            "train.precision = \"bf16\": this CPU ({cpu}) has {} bf16 units, but ato-rs has no \
             bf16 kernels yet (issue 31); {fix}",
            units.as_str()
        ),
    }
}

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
    if cfg.train.precision == Precision::Bf16 {
        return Err(TrainError::Config(bf16_refusal(&device)));
    }
    let world = cfg.dist.world_size;
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
    let devices = rank_devices(cfg, &device, world)?;
    let comms = communicators(&devices)?;
    let shards = devices
        .iter()
        .enumerate()
        .map(|(rank, device)| data.shard(rank, world, device))
        .collect::<Result<Vec<_>, _>>()?;
    let results: Vec<Result<Option<RunOutcome>, TrainError>> = std::thread::scope(|s| {
        let ranks: Vec<_> = comms
            .into_iter()
            .zip(&shards)
            .zip(&devices)
            .map(|((comm, shard), device)| {
                let opts = RunOptions {
                    progress: opts.progress && comm.rank() == 0,
                    ..opts.clone()
                };
                s.spawn(move || run_rank(cfg, &opts, shard, device, Some(DataParallel::new(comm))))
            })
            .collect();
        ranks
            .into_iter()
            .map(|r| r.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    first_failure(results)
}

/// The device of each thread rank: the CPU for all, or consecutive GPUs from the configured
/// one (`cuda` = `cuda:0`; ranks on `cuda:0` and `cuda:1` for two).
fn rank_devices(
    cfg: &RunConfig,
    device: &candle_core::Device,
    world: usize,
) -> Result<Vec<candle_core::Device>, TrainError> {
    if device.is_cpu() {
        return Ok(vec![device.clone(); world]);
    }
    let first = match device.location() {
        candle_core::DeviceLocation::Cuda { gpu_id } => gpu_id,
        other => {
            return Err(TrainError::Config(format!(
                "dist.world_size: ranks run on the CPU or on CUDA GPUs, not on {other:?}"
            )))
        }
    };
    (first..first + world)
        .map(|gpu| {
            select_device(&format!("cuda:{gpu}")).map_err(|e| {
                TrainError::Config(format!(
                    "dist.world_size: {world} ranks from device `{}` need GPUs {first}..{}: {e}",
                    cfg.device,
                    first + world - 1
                ))
            })
        })
        .collect()
}

/// One communicator per thread rank: NCCL between GPUs, a shared barrier between CPU ranks.
fn communicators(
    devices: &[candle_core::Device],
) -> Result<Vec<Box<dyn Communicator + Send>>, TrainError> {
    if devices.iter().all(|d| d.is_cpu()) {
        return Ok(ThreadCommunicator::group(devices.len())
            .into_iter()
            .map(|c| Box::new(c) as Box<dyn Communicator + Send>)
            .collect());
    }
    #[cfg(feature = "cuda")]
    {
        Ok(crate::parallel::NcclCommunicator::group(devices)
            .map_err(|e| TrainError::Ranks(e.to_string()))?
            .into_iter()
            .map(|c| Box::new(c) as Box<dyn Communicator + Send>)
            .collect())
    }
    #[cfg(not(feature = "cuda"))]
    Err(TrainError::Config(
        "dist.world_size: ranks on GPUs need a build with `--features cuda`".into(),
    ))
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
        // one write of the whole line: `eprintln!` writes a formatted line in pieces, and
        // mpirun's own messages on the shared stderr could land between them
        use std::io::Write;
        let line = format!("error: rank {rank} of {size}: {e}\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
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
    // on GPUs: this process's GPU on its node, and NCCL between the ranks' GPUs
    let gpu;
    let device = if device.is_cpu() {
        device
    } else {
        gpu = node_gpu(device).unwrap_or_else(|e| fail(e));
        &gpu
    };
    let shard = data.shard(rank, world, device).unwrap_or_else(|e| fail(e));
    let opts = RunOptions {
        progress: opts.progress && rank == 0,
        ..opts.clone()
    };
    let link: Box<dyn Communicator> = if device.is_cpu() {
        Box::new(MpiCommunicator::world().map_err(TrainError::Ranks)?)
    } else {
        nccl_link(&comm, device).unwrap_or_else(|e| fail(e))
    };
    let ranks = Some(DataParallel::new(link));
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

/// An MPI rank's GPU: the configured ordinal plus the rank's place on its node (Open MPI's
/// `OMPI_COMM_WORLD_LOCAL_RANK`, Slurm's `SLURM_LOCALID`, MPICH's `MPI_LOCALRANKID`).
#[cfg(feature = "mpi")]
fn node_gpu(device: &candle_core::Device) -> Result<candle_core::Device, TrainError> {
    let local = [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "SLURM_LOCALID",
        "MPI_LOCALRANKID",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok()?.parse::<usize>().ok())
    .ok_or_else(|| {
        TrainError::Config(
            "dist.backend = \"mpi\" on GPUs: no local rank in the environment \
                 (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID or MPI_LOCALRANKID) to pick this \
                 process's GPU"
                .into(),
        )
    })?;
    let first = match device.location() {
        candle_core::DeviceLocation::Cuda { gpu_id } => gpu_id,
        _ => 0,
    };
    select_device(&format!("cuda:{}", first + local))
}

/// NCCL between the GPUs of an MPI job (its id sent over MPI).
#[cfg(feature = "mpi")]
fn nccl_link(
    mpi: &crate::parallel::MpiCommunicator,
    device: &candle_core::Device,
) -> Result<Box<dyn Communicator>, TrainError> {
    #[cfg(feature = "cuda")]
    {
        Ok(Box::new(
            crate::parallel::NcclCommunicator::from_mpi(mpi, device)
                .map_err(|e| TrainError::Ranks(e.to_string()))?,
        ))
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (mpi, device);
        Err(TrainError::Config(
            "dist.backend = \"mpi\" on GPUs needs a build with `--features cuda`".into(),
        ))
    }
}
