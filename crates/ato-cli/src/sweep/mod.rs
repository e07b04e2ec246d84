//! `ato sweep NAME|FILE`: runs a grid of configurations into `results/<sweep>/`.
//!
//! Every run is validated before the first one starts (a bad key or value stops the sweep
//! with nothing written). Finished runs are skipped, an interrupted run resumes from its
//! checkpoint, a failing run is recorded with `status=failed` and the sweep goes on, and
//! `results/<sweep>/summary.csv` is rewritten atomically after every run. `--shard i/n` runs
//! every n-th run starting at i, so n processes (or a SLURM job array, `--slurm`) share a
//! sweep. The plan, the matched-FLOPs search and its cache are the `ato-sweep` library
//! (`seeds`, `[per_method.*]` and `match_flops` are described in [`spec`] and [`calibrate`]);
//! this module parses the arguments, orders the runs and prints.

mod execute;

use execute::{check_data, run_one, Tally};

use anyhow::{bail, Result};
use ato_sweep::{
    calibrate, finished_reduction, plan, point_text, spec, sweep_dir, write_summary, PlannedRun,
    TrainingPilots,
};
use ato_train::run_dir::SUMMARY_FILE;
use ato_train::{Method, RunDir};
use clap::Args;

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
    if runs
        .iter()
        .any(|r| r.config.dist.backend == ato_train::config::DistBackend::Mpi)
    {
        // every process of the job would run the sweep's own bookkeeping and write its files
        anyhow::bail!(
            "dist.backend: a sweep's runs cannot be MPI jobs (every process would write the \
             sweep's files); run `ato train … dist.backend=mpi` per run, or use \
             dist.backend = \"threads\""
        );
    }
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
    // with matched FLOPs the reference (main ATO) runs go first, interleaved seed by seed with
    // the dense runs (so the ATO/dense wall-time ratio is measured side by side, not across a
    // machine's drift over the sweep), then the search, then the rest
    let mut order: Vec<usize> = (0..runs.len()).filter(|&i| is_mine(i)).collect();
    if sweep.match_flops {
        let refs = calibrate::references(&runs);
        let dense: Vec<bool> = runs
            .iter()
            .map(|r| r.config.method == Method::Dense)
            .collect();
        let seeds: Vec<u64> = runs.iter().map(|r| r.config.seed).collect();
        let first = |i: usize| refs.contains(&i) || dense[i];
        order.sort_by_key(|&i| match first(i) {
            true => (false, seeds[i], i),
            false => (true, 0, i),
        });
        for &i in order.iter().filter(|&&i| first(i)) {
            run_one(&runs, i, &mut tally, mine, args.quiet);
        }
        let dir = sweep_dir(&runs);
        for line in calibrate::apply(
            &mut runs,
            &dir,
            settings,
            &finished_reduction,
            Some(&mut TrainingPilots),
        )? {
            println!("matched FLOPs: {line}");
        }
        order.retain(|&i| !first(i));
    }
    for i in order {
        run_one(&runs, i, &mut tally, mine, args.quiet);
    }
    if sweep.match_flops && shard.1 == 1 {
        // short pilots: a run that landed off its reference is searched again at full length
        let dir = sweep_dir(&runs);
        let before: Vec<String> = runs.iter().map(|r| r.config.run_id()).collect();
        for line in calibrate::search_missed_again(
            &mut runs,
            &dir,
            settings,
            &finished_reduction,
            &mut TrainingPilots,
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
    if shard.1 == 1 && tally.failed == 0 {
        // the sweep's own word on what ATO cost against dense (the report has the table)
        // (the runs are done and recorded: a folder the report cannot read fails nothing)
        match ato_report::cost_lines(&sweep_dir(&runs)) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => eprintln!("ATO's cost not computed: {e}"),
        }
    }
    if tally.failed > 0 {
        bail!("{} run(s) failed; their folders hold error.txt, and running the sweep again retries them", tally.failed);
    }
    Ok(())
}
