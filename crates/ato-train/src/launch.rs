//! [`run`]: the run of a config, on one rank or on `dist.world_size` ranks. Ranks are threads
//! of this process, each with its shard of every batch ([`crate::parallel`]); rank 0 writes the
//! run's files and finishes it. A rank that fails stops the others at their next collective,
//! and the run reports the failure that came first (not the others' "rank k stopped").

use crate::config::{Reproducible, RunConfig};
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
            "dist.world_size: {world} ranks run as threads on the CPU (device `{}`: no \
             communicator between GPUs yet); set device = \"cpu\" or dist.world_size = 1",
            cfg.device
        )));
    }
    let _mode = ato_kernels::lease_reproducibility(cfg.train.reproducible.kernels())
        .map_err(|e| TrainError::Config(format!("train.reproducible: {e}")))?;
    let data = RunData::open(cfg, &device)?;
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
