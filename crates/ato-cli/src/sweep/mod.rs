//! `ato sweep NAME|FILE`: runs a grid of configurations into `results/<sweep>/`.
//!
//! Every run is validated before the first one starts (a bad key or value stops the sweep
//! with nothing written). Finished runs are skipped, an interrupted run resumes from its
//! checkpoint, a failing run is recorded with `status=failed` and the sweep goes on, and
//! `results/<sweep>/summary.csv` is rewritten atomically after every run. `--shard i/n` runs
//! every n-th run starting at i, so n processes (or a SLURM job array, `--slurm`) share a
//! sweep.

pub mod spec;

use crate::layers;
use anyhow::{anyhow, bail, Result};
use ato_train::run_dir::SUMMARY_FILE;
use ato_train::{run, write_csv_atomically, RunConfig, RunDir, RunOptions, RunStatus, SummaryRow};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(after_help = "\
Sweeps live in experiments/sweeps/ (demo, cifar10, cifar100, imagenet); see \
experiments/README.md for the file format. KEY=VALUE arguments override every run \
(e.g. train.epochs=1 for a smoke test), after the sweep's own values and ATO_* variables.\n\n\
Examples:\n  ato sweep demo\n  ato sweep cifar100 --dry-run\n  ato sweep cifar100 \
--shard 0/4\n  ato sweep cifar100 --slurm --tasks 16 > sweep.sbatch")]
pub struct SweepArgs {
    /// A sweep name from experiments/sweeps/ or a path to a sweep file.
    pub sweep: String,
    /// Overrides applied to every run, e.g. `train.epochs=1 dataset.root=/data`.
    #[arg(value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Run only the runs with index ≡ i (mod n).
    #[arg(long, value_name = "i/n", value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// List the runs (index, shard, status, values) and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Print an sbatch job-array script that runs the sweep with --shard, and exit.
    #[arg(long)]
    pub slurm: bool,
    /// Array tasks of the --slurm script [default: one per run].
    #[arg(long, requires = "slurm")]
    pub tasks: Option<usize>,
    /// Print every run's merged configuration and exit.
    #[arg(long)]
    pub print_config: bool,
    /// No progress bars or per-epoch lines (one line per run is still printed).
    #[arg(long)]
    pub quiet: bool,
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not of the form i/n"))?;
    let (i, n): (usize, usize) = (
        i.trim()
            .parse()
            .map_err(|_| format!("`{i}` is not a number"))?,
        n.trim()
            .parse()
            .map_err(|_| format!("`{n}` is not a number"))?,
    );
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 ≤ i < n"));
    }
    Ok((i, n))
}

/// One run of the sweep with its merged config and what distinguishes it.
pub struct PlannedRun {
    pub index: usize,
    pub config: RunConfig,
    pub point: Vec<(String, String)>,
}

/// Expands and validates every run of a sweep; duplicates (same run id) are kept once.
pub fn plan(sweep: &spec::Sweep, overrides: &[String]) -> Result<Vec<PlannedRun>> {
    let mut out: Vec<PlannedRun> = Vec::new();
    for (i, r) in sweep.runs.iter().enumerate() {
        let fig = layers::finish(layers::base(r.base.as_deref(), &r.values)?, overrides)?;
        let mut cfg = layers::extract(&fig).map_err(|e| {
            let point: Vec<String> = r.point.iter().map(|(k, v)| format!("{k}={v}")).collect();
            anyhow!("sweep run {} ({}): {e}", i + 1, point.join(" "))
        })?;
        cfg.name = sweep.name.clone();
        if out.iter().all(|p| p.config.run_id() != cfg.run_id()) {
            out.push(PlannedRun {
                index: out.len(),
                config: cfg,
                point: r.point.clone(),
            });
        }
    }
    if out.is_empty() {
        bail!("sweep {} has no runs", sweep.path.display());
    }
    Ok(out)
}

/// The sweep's folder: `<out_dir>/<sweep name>`.
pub fn sweep_dir(runs: &[PlannedRun]) -> PathBuf {
    let c = &runs[0].config;
    Path::new(&c.out_dir).join(&c.name)
}

/// Rewrites `<sweep dir>/summary.csv` from the run folders, in sweep order.
pub fn write_summary(runs: &[PlannedRun]) -> Result<usize> {
    let rows: Vec<SummaryRow> = runs
        .iter()
        .filter_map(|r| RunDir::of(&r.config).summary())
        .collect();
    let dir = sweep_dir(runs);
    std::fs::create_dir_all(&dir).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
    write_csv_atomically(&dir.join(SUMMARY_FILE), &rows)?;
    Ok(rows.len())
}

fn point_text(run: &PlannedRun) -> String {
    if run.point.is_empty() {
        "(base config)".into()
    } else {
        run.point
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The opening lines of a SLURM job-array script for this sweep.
fn slurm_script(args: &SweepArgs, runs: &[PlannedRun], sweep: &spec::Sweep) -> String {
    let tasks = args.tasks.unwrap_or(runs.len()).clamp(1, runs.len());
    let dir = sweep_dir(runs);
    let overrides: String = args.overrides.iter().map(|o| format!(" '{o}'")).collect();
    format!(
        "#!/bin/bash\n\
         # {runs} runs of sweep `{name}` in {tasks} array tasks; submit with `sbatch`.\n\
         #SBATCH --job-name=ato-{name}\n\
         #SBATCH --array=0-{last}\n\
         #SBATCH --gres=gpu:1\n\
         #SBATCH --cpus-per-task=8\n\
         #SBATCH --time=72:00:00\n\
         #SBATCH --output={dir}/slurm-%A_%a.out\n\
         set -euo pipefail\n\
         mkdir -p {dir}\n\
         ato sweep {path}{overrides} --quiet --shard ${{SLURM_ARRAY_TASK_ID}}/{tasks}\n",
        runs = runs.len(),
        name = sweep.name,
        last = tasks - 1,
        dir = dir.display(),
        path = sweep.path.display(),
    )
}

pub fn run_cmd(args: &SweepArgs) -> Result<()> {
    let path = spec::locate(&args.sweep)?;
    let sweep = spec::load(&path)?;
    let runs = plan(&sweep, &args.overrides)?;
    let shard = args.shard.unwrap_or((0, 1));
    let mine: Vec<&PlannedRun> = runs
        .iter()
        .filter(|r| r.index % shard.1 == shard.0)
        .collect();
    if args.slurm {
        print!("{}", slurm_script(args, &runs, &sweep));
        return Ok(());
    }
    if args.print_config {
        for r in &mine {
            println!(
                "# run {} of {}: {}\n{}",
                r.index + 1,
                runs.len(),
                r.config.run_id(),
                r.config.to_toml()
            );
        }
        return Ok(());
    }
    if args.dry_run {
        println!(
            "sweep `{}` ({}): {} runs into {}",
            sweep.name,
            path.display(),
            runs.len(),
            sweep_dir(&runs).display()
        );
        if !sweep.description.is_empty() {
            println!("{}", sweep.description.trim());
        }
        for r in &runs {
            let mark = if mine.iter().any(|m| m.index == r.index) {
                ' '
            } else {
                '-'
            };
            println!(
                "{mark}{:>4}  shard {}/{}  {:<11} {}  {}",
                r.index,
                r.index % shard.1,
                shard.1,
                RunDir::of(&r.config).status().as_str(),
                r.config.run_id(),
                point_text(r)
            );
        }
        return Ok(());
    }
    // data problems (e.g. CIFAR not downloaded) stop the sweep before anything is written
    let mut checked = std::collections::HashSet::new();
    for r in &mine {
        let d = &r.config.dataset;
        if checked.insert((d.name, d.root.clone(), d.synth_train, d.synth_test)) {
            check_data(&r.config)?;
        }
    }
    println!(
        "sweep `{}`: {} runs ({} in this shard) into {}",
        sweep.name,
        runs.len(),
        mine.len(),
        sweep_dir(&runs).display()
    );
    let (mut done, mut failed) = (0, 0);
    for (k, r) in mine.iter().enumerate() {
        let dir = RunDir::of(&r.config);
        let head = format!(
            "[{}/{}] {} {}",
            k + 1,
            mine.len(),
            r.config.run_id(),
            point_text(r)
        );
        if dir.status() == RunStatus::Finished {
            println!("{head}: finished earlier, skipped");
            done += 1;
            continue;
        }
        let opts = RunOptions {
            progress: !args.quiet,
            ..RunOptions::default()
        };
        println!("{head}");
        // a run that panics is recorded as failed like one that returns an error: one run
        // never stops the others
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&r.config, &opts)));
        let error = match outcome {
            Ok(Ok(out)) => {
                done += 1;
                println!("[{}/{}] {}", k + 1, mine.len(), out.summary.headline());
                None
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(panic) => Some(format!("panicked: {}", panic_text(panic.as_ref()))),
        };
        if let Some(e) = error {
            failed += 1;
            eprintln!("{head}: failed: {e}");
            if let Err(w) = record_failure(&r.config, &dir, &e) {
                eprintln!("{head}: could not record the failure: {w}");
            }
        }
        // another shard may be rewriting the summary at the same time: a failure here is
        // repaired by the next rewrite, so it only warns
        if let Err(e) = write_summary(&runs) {
            eprintln!(
                "warning: {}: {e}",
                sweep_dir(&runs).join(SUMMARY_FILE).display()
            );
        }
    }
    let rows = write_summary(&runs)?;
    println!(
        "sweep `{}`: {done} finished, {failed} failed; {rows} rows in {}",
        sweep.name,
        sweep_dir(&runs).join(SUMMARY_FILE).display()
    );
    if failed > 0 {
        bail!("{failed} run(s) failed; their folders hold error.txt, and running the sweep again retries them");
    }
    Ok(())
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Opens a run's data (without training) so that a missing data set stops the sweep early.
fn check_data(cfg: &RunConfig) -> Result<()> {
    ato_train::RunData::open(cfg, &candle_core::Device::Cpu)?;
    Ok(())
}

/// A failed run: its `summary.csv` row says `failed`, `error.txt` says why.
fn record_failure(cfg: &RunConfig, dir: &RunDir, error: &str) -> Result<()> {
    std::fs::create_dir_all(dir.path()).map_err(|e| anyhow!("{}: {e}", dir.path().display()))?;
    ato_train::write_text_atomically(&dir.error_file(), &format!("{error}\n"))?;
    let row = SummaryRow::planned(cfg, RunStatus::Failed)?;
    write_csv_atomically(&dir.summary_file(), &[row])?;
    Ok(())
}
