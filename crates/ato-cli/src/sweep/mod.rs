//! `ato sweep NAME|FILE`: runs a grid of configurations into `results/<sweep>/`.
//!
//! Every run is validated before the first one starts (a bad key or value stops the sweep
//! with nothing written). Finished runs are skipped, an interrupted run resumes from its
//! checkpoint, a failing run is recorded with `status=failed` and the sweep goes on, and
//! `results/<sweep>/summary.csv` is rewritten atomically after every run. `--shard i/n` runs
//! every n-th run starting at i, so n processes (or a SLURM job array, `--slurm`) share a
//! sweep. `seeds`, `[per_method.*]` and `match_flops` are described in [`spec`] and
//! [`calibrate`].

pub mod calibrate;
mod execute;
pub mod spec;

use execute::{check_data, finished_reduction, pilot_run, run_one, Tally};

#[cfg(test)]
mod tests;

use crate::config_layers;
use anyhow::{anyhow, bail, Result};
use ato_train::run_dir::SUMMARY_FILE;
use ato_train::{write_csv_atomically, RunConfig, RunDir, SummaryRow};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(after_help = "\
Sweeps live in experiments/sweeps/: demo (the main job: a ranked comparison on the embedded \
digits, ~4 min), ablations (ATO's λ, γ, T_start, T_end on the digits), synth, small and small30 \
(pipeline checks on the synthetic set), cifar10, cifar100 and imagenet (data sets and GPUs); see \
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
#[derive(Clone)]
pub struct PlannedRun {
    pub index: usize,
    pub config: RunConfig,
    pub point: Vec<(String, String)>,
    /// The `calibration.csv` row that set this run's knob (matched FLOPs only).
    pub calibration_key: Option<String>,
    /// The FLOPs↓ target planned for the run, before matching (`budget` in `summary.csv`).
    pub budget: Option<f64>,
}

/// Expands and validates every run of a sweep; duplicates (same run id, and with matched
/// FLOPs the same budget) are kept once.
pub fn plan(sweep: &spec::Sweep, overrides: &[String]) -> Result<Vec<PlannedRun>> {
    let mut out: Vec<PlannedRun> = Vec::new();
    for (i, r) in sweep.runs.iter().enumerate() {
        let extract = |values: &[(String, figment::value::Value)]| -> Result<RunConfig> {
            let fig =
                config_layers::finish(config_layers::base(r.base.as_deref(), values)?, overrides)?;
            config_layers::extract(&fig).map_err(|e| {
                let point: Vec<String> = r.point.iter().map(|(k, v)| format!("{k}={v}")).collect();
                anyhow!("sweep run {} ({}): {e}", i + 1, point.join(" "))
            })
        };
        let mut cfg = extract(&r.values)?;
        if let Some(extra) = sweep.per_method.get(cfg.method.as_str()) {
            let mut values = r.values[..r.set_len].to_vec();
            values.extend(extra.iter().cloned());
            values.extend(r.values[r.set_len..].iter().cloned());
            cfg = extract(&values)?;
        }
        cfg.name = sweep.name.clone();
        // with matched FLOPs, OTO's and OTOv2's runs at two budgets share an id until their
        // knobs are matched: the budget tells them apart
        let same = |p: &PlannedRun| {
            p.config.run_id() == cfg.run_id()
                && (!sweep.match_flops || p.config.flops_target() == cfg.flops_target())
        };
        if !out.iter().any(same) {
            out.push(PlannedRun {
                index: out.len(),
                budget: cfg.flops_target(),
                config: cfg,
                point: r.point.clone(),
                calibration_key: None,
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

/// Rewrites `<sweep dir>/summary.csv` from the run folders, in sweep order: one row per run
/// folder and budget (two matched runs at two budgets whose knobs ended equal share a folder
/// and get a row each, so neither budget loses its row), with the sweep's own view of each run
/// (its budget, the ATO run it is paired with, the search that set its knob, and its target
/// and `target_met` against today's reference, which a run reused from an earlier sweep or
/// trained as a pilot for another reference may not have recorded).
pub fn write_summary(runs: &[PlannedRun]) -> Result<usize> {
    let mut rows: Vec<SummaryRow> = Vec::new();
    for r in runs {
        let Some(mut row) = RunDir::of(&r.config).summary() else {
            continue;
        };
        if r.calibration_key.is_some() {
            row.reference_run = r.config.prune.reference_run.clone();
            row.budget = r.budget;
            row.calibration_key = r.calibration_key.clone();
            let p = &r.config.prune;
            row.judge_against(p.target_flops_reduction, p.tolerance);
        }
        if rows
            .iter()
            .any(|o| o.run_id == row.run_id && o.budget == row.budget)
        {
            continue;
        }
        rows.push(row);
    }
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
    let mut runs = plan(&sweep, &args.overrides)?;
    let shard = args.shard.unwrap_or((0, 1));
    let is_mine = |i: usize| i % shard.1 == shard.0;
    if sweep.match_flops && shard.1 > 1 && !(args.dry_run || args.print_config || args.slurm) {
        // each shard runs only its own ATO runs before the searches, and every shard rewrites
        // calibration.csv whole: a baseline whose seed's ATO run (in another shard) has not
        // finished is matched to a mean and reported unpaired, and searches may run twice
        eprintln!(
            "warning: sweep `{}` matches FLOPs per seed; with --shard a baseline is paired only \
             with ATO runs that have finished when its shard searches. Run the ATO runs first \
             (or the sweep unsharded)",
            sweep.name
        );
    }
    let settings = calibrate::MatchSettings {
        pilot_epochs: sweep.pilot_epochs,
        max_pilots: sweep.max_pilots.unwrap_or(calibrate::DEFAULT_MAX_PILOTS),
        tolerance: sweep.match_tolerance.unwrap_or(calibrate::MATCH_TOLERANCE),
    };
    if sweep.match_flops && (args.dry_run || args.print_config) {
        // the cache alone: a listing never starts a pilot run
        let dir = sweep_dir(&runs);
        for line in calibrate::apply(&mut runs, &dir, settings, &finished_reduction, None)? {
            println!("{line}");
        }
    }
    if args.slurm {
        print!("{}", slurm_script(args, &runs, &sweep));
        return Ok(());
    }
    if args.print_config {
        for r in runs.iter().filter(|r| is_mine(r.index)) {
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
            let mark = if is_mine(r.index) { ' ' } else { '-' };
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
    for r in runs.iter().filter(|r| is_mine(r.index)) {
        let d = &r.config.dataset;
        if checked.insert((d.name, d.root.clone(), d.synth_train, d.synth_test)) {
            check_data(&r.config)?;
        }
    }
    let mine = runs.iter().filter(|r| is_mine(r.index)).count();
    println!(
        "sweep `{}`: {} runs ({mine} in this shard) into {}",
        sweep.name,
        runs.len(),
        sweep_dir(&runs).display()
    );
    let mut tally = Tally::default();
    // with matched FLOPs the reference (main ATO) runs go first, then the search, then the rest
    let mut order: Vec<usize> = (0..runs.len()).filter(|&i| is_mine(i)).collect();
    if sweep.match_flops {
        let refs = calibrate::references(&runs);
        order.sort_by_key(|i| !refs.contains(i));
        for &i in order.iter().filter(|i| refs.contains(i)) {
            run_one(&runs, i, &mut tally, mine, args.quiet);
        }
        let dir = sweep_dir(&runs);
        let mut pilot = |c: &RunConfig| pilot_run(c);
        for line in calibrate::apply(
            &mut runs,
            &dir,
            settings,
            &finished_reduction,
            Some(&mut pilot),
        )? {
            println!("matched FLOPs: {line}");
        }
        order.retain(|i| !refs.contains(i));
    }
    for i in order {
        run_one(&runs, i, &mut tally, mine, args.quiet);
    }
    if sweep.match_flops && shard.1 == 1 {
        // short pilots: a run that landed off its reference is searched again at full length
        let dir = sweep_dir(&runs);
        let mut pilot = |c: &RunConfig| pilot_run(c);
        let before: Vec<String> = runs.iter().map(|r| r.config.run_id()).collect();
        for line in calibrate::search_missed_again(
            &mut runs,
            &dir,
            settings,
            &finished_reduction,
            &mut pilot,
        )? {
            println!("matched FLOPs: {line}");
        }
        // the value a search settles on is one of its full-length pilots, so these runs have
        // finished; run_one is the guard for one that has not
        for i in 0..runs.len() {
            let finished = RunDir::of(&runs[i].config).status() == ato_train::RunStatus::Finished;
            if runs[i].config.run_id() != before[i] && !finished {
                run_one(&runs, i, &mut tally, mine, args.quiet);
            }
        }
    }
    let rows = write_summary(&runs)?;
    if sweep.match_flops && shard.1 == 1 {
        // a by-construction row records what its run measured, not the reference it aimed at
        calibrate::record_measured(&runs, &sweep_dir(&runs), &finished_reduction)?;
    }
    println!(
        "sweep `{}`: {} finished, {} failed; {rows} rows in {}",
        sweep.name,
        tally.done,
        tally.failed,
        sweep_dir(&runs).join(SUMMARY_FILE).display()
    );
    if tally.failed > 0 {
        bail!("{} run(s) failed; their folders hold error.txt, and running the sweep again retries them", tally.failed);
    }
    Ok(())
}
