//! Running the planned runs of a sweep one by one: skip finished runs, resume interrupted
//! ones, record a failing run (error or panic) as `status=failed` and go on.

use anyhow::{anyhow, Result};
use ato_sweep::{point_text, sweep_dir, write_summary, PlannedRun};
use ato_train::run_dir::SUMMARY_FILE;
use ato_train::{run, write_csv_atomically, RunConfig, RunDir, RunOptions, RunStatus, SummaryRow};

/// Finished and failed runs so far.
#[derive(Default)]
pub(super) struct Tally {
    pub done: usize,
    pub failed: usize,
}

/// Runs (or skips, when finished) run `i`; a failure is recorded and counted, never raised.
pub(super) fn run_one(runs: &[PlannedRun], i: usize, tally: &mut Tally, total: usize, quiet: bool) {
    let r = &runs[i];
    let k = tally.done + tally.failed;
    let dir = RunDir::of(&r.config);
    let head = format!(
        "[{}/{total}] {} {}",
        k + 1,
        r.config.run_id(),
        point_text(r)
    );
    if dir.status() == RunStatus::Finished {
        println!("{head}: finished earlier, skipped");
        tally.done += 1;
        return;
    }
    let opts = RunOptions {
        progress: !quiet,
        ..RunOptions::default()
    };
    println!("{head}");
    // a run that panics is recorded as failed like one that returns an error: one run
    // never stops the others
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&r.config, &opts)));
    let error = match outcome {
        Ok(Ok(out)) => {
            tally.done += 1;
            println!("[{}/{total}] {}", k + 1, out.summary.headline());
            // the checks' verdict of a run probed in a theorem's regime (monitor-mode probes
            // are a monitor, reported by `ato report`)
            if let Some(line) = out
                .convergence
                .as_ref()
                .filter(|_| r.config.convergence.mode.is_theorem())
            {
                println!("[{}/{total}] {line}", k + 1);
            }
            None
        }
        Ok(Err(e)) => Some(e.to_string()),
        Err(panic) => Some(format!("panicked: {}", panic_text(panic.as_ref()))),
    };
    if let Some(e) = error {
        tally.failed += 1;
        eprintln!("{head}: failed: {e}");
        if let Err(w) = record_failure(&r.config, &dir, &e) {
            eprintln!("{head}: could not record the failure: {w}");
        }
    }
    // another shard may be rewriting the summary at the same time: a failure here is
    // repaired by the next rewrite, so it only warns
    if let Err(e) = write_summary(runs) {
        eprintln!(
            "warning: {}: {e}",
            sweep_dir(runs).join(SUMMARY_FILE).display()
        );
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Opens a run's data (without training) so that a missing data set stops the sweep early.
pub(super) fn check_data(cfg: &RunConfig) -> Result<()> {
    ato_train::RunData::open(cfg, &candle_core::Device::Cpu)?;
    Ok(())
}

/// A failed run: its `summary.csv` row says `failed`, `error.txt` says why.
pub(super) fn record_failure(cfg: &RunConfig, dir: &RunDir, error: &str) -> Result<()> {
    std::fs::create_dir_all(dir.path()).map_err(|e| anyhow!("{}: {e}", dir.path().display()))?;
    ato_train::write_text_atomically(&dir.error_file(), &format!("{error}\n"))?;
    let row = SummaryRow::planned(cfg, RunStatus::Failed)?;
    write_csv_atomically(&dir.summary_file(), &[row])?;
    Ok(())
}
