//! One rank's run: resume, the epochs, and on rank 0 the run's files and its finish.

use super::{Loop, RunOptions};
use crate::config::RunConfig;
use crate::data::RunData;
use crate::finish::{finish, RunOutcome, TrainingCost};
use crate::parallel::DataParallel;
use crate::records::{write_csv_atomically, write_text_atomically};
use crate::run_dir::RunDir;
use crate::TrainError;
use candle_core::Device;

/// One rank's part of the run of `cfg` (on one rank, the whole run): resume from the newest
/// checkpoint, the epochs, and on rank 0 the run's files (`config.toml`, `machine.json`,
/// `metrics.csv`, checkpoints) and its finish. Other ranks return `None`.
pub(crate) fn run_rank(
    cfg: &RunConfig,
    opts: &RunOptions,
    data: &RunData,
    device: &Device,
    ranks: Option<DataParallel>,
) -> Result<Option<RunOutcome>, TrainError> {
    let writes = ranks.as_ref().is_none_or(|dp| dp.rank() == 0);
    let run_dir = RunDir::of(cfg);
    let mut lp = Loop::new(cfg, data, device, &run_dir, opts, ranks)?;
    if writes {
        std::fs::create_dir_all(run_dir.path())
            .map_err(|e| TrainError::Io(format!("{}: {e}", run_dir.path().display())))?;
        write_text_atomically(&run_dir.config_file(), &cfg.to_toml())?;
    }
    let mut metrics = lp.resume(&run_dir)?;
    if writes {
        crate::records::append_machine(
            &run_dir.machine_file(),
            crate::records::MachineRecord::here(device, lp.state.epochs_done),
        )?;
    }
    let epochs = cfg.train.epochs;
    for epoch in lp.state.epochs_done..epochs {
        let row = lp.epoch(data, epoch, opts)?;
        lp.state.epochs_done = epoch + 1;
        if let Some(row) = row {
            if opts.progress {
                println!("{}", row.summary_line(epochs));
            }
            metrics.push(row);
            write_csv_atomically(&run_dir.metrics_file(), &metrics)?;
            lp.save_checkpoint(&run_dir)?;
        }
        if opts.stop_after_epochs == Some(lp.state.epochs_done) && lp.state.epochs_done < epochs {
            return Err(TrainError::Stopped(lp.state.epochs_done));
        }
    }
    if !writes {
        return Ok(None);
    }
    let kept = lp.pruner.kept(&lp.groups)?;
    let outcome = finish(
        cfg,
        &lp.model,
        &lp.groups,
        &kept,
        &data.test,
        &run_dir,
        TrainingCost {
            seconds: lp.state.seconds,
            controller: lp.pruner.controller_record(),
        },
    )?;
    if let (true, Some(t)) = (opts.progress, &outcome.latency) {
        println!(
            "latency (batch {}, median of {} interleaved forwards): dense {:.2} ms, compact {:.2} ms, speedup {:.2}x (MACs ratio {:.2}x)",
            t.batch, t.repeats, t.dense_ms, t.compact_ms, t.speedup, t.macs_ratio
        );
    }
    let convergence = lp.probe.as_ref().map(|p| {
        crate::CheckVerdicts::of(p.rows()).line(cfg.convergence.mode, cfg.convergence.inject)
    });
    Ok(Some(RunOutcome {
        metrics,
        convergence,
        ..outcome
    }))
}
