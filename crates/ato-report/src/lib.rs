//! # ato-report
//!
//! The report of a sweep: a results folder (`results/<sweep>/`, with `summary.csv`, the
//! calibration files and run folders) becomes `<out>/<name>.md` and PNG plots in
//! `<out>/figures/<name>/` ([`write_report`]; `ato report DIR` is its command line):
//!
//! - the main table: per data set, model and method, top-1, FLOPs↓ and params↓ of the run at
//!   the sweep's central settings (mean ± std over its seeds, and n), whether its FLOPs↓ is
//!   matched to the reference (every seed within ±1 point) or the largest gap, published
//!   numbers beside it (`paper/published.toml`);
//! - each baseline's paired difference to ATO with a 95% t-interval and a verdict; degenerate
//!   rows (far below dense, near chance) and rows off their matched FLOPs are marked, never
//!   ranked silently;
//! - ATO's cost: its training wall time against dense's, per budget, with the per-seed ratio's
//!   95% interval judged against ≤ 1.15× ([`cost`]; also one line each on `ato report`'s output);
//! - one ablation table (and plot) per ATO axis that the sweep varies (λ, γ, T_start, T_end,
//!   hyper_step, settle_steps, settle_lr_mult), the other axes held at their central values;
//! - accuracy vs FLOPs reduction per method, test accuracy over epochs, the pilots of the
//!   matched-FLOPs searches in search order, and the convergence ratio LHS/RHS over training;
//! - every run, for completeness.
//!
//! Rows are joined on what the sweep recorded (`reference_run`, `calibration_key`), not derived
//! again; the row types are `ato_train::SummaryRow` and `ato_sweep::calibrate`'s.

mod convergence;
pub mod cost;
mod figures;
mod markdown;
mod matched;
mod paired;
mod plots;
mod published;
mod ranking;
mod seeds;
mod selection;

use anyhow::{anyhow, bail, Context, Result};
use ato_train::run_dir::SUMMARY_FILE;
use ato_train::{read_csv, ConvergenceRow, EpochMetrics, Fault, ProbeMode, RunDir, SummaryRow};
use std::path::{Path, PathBuf};

/// One run of the sweep with its per-epoch and convergence records.
pub struct RunRecord {
    pub summary: SummaryRow,
    pub metrics: Vec<EpochMetrics>,
    pub convergence: Vec<ConvergenceRow>,
    /// The run probed the theorems' regime (`convergence.mode = "theorem"`: no momentum, h
    /// fixed): its optimiser differs from the recipe's, so it stays out of the tables' main
    /// rows and ablations and gets a convergence figure of its own.
    pub theorem_regime: bool,
    /// How the run was probed (mode, optimiser, injected fault), for the convergence figures'
    /// labels and lines.
    pub probing: Probing,
    /// An ATO run's controller schedule as configured (the ablation axes `hyper_step`,
    /// `settle_steps` and `settle_lr_mult`); `None` for other methods and for folders without
    /// a config.
    pub controller: Option<ControllerSettings>,
    /// The machine its wall time was measured on ([`timing_machine`]); `None` for a folder
    /// without `machine.json`.
    pub machine: Option<String>,
}

/// The machine of a run's starts, as far as it sets the wall time: CPU model and flags,
/// threads and device; a run resumed on another machine gets a label naming each, which no
/// other run shares. `None` for no record.
pub fn timing_machine(records: &[ato_train::MachineRecord]) -> Option<String> {
    let label = |m: &ato_train::MachineRecord| {
        format!(
            "{} [{}], {} threads, {}",
            m.cpu_name(),
            m.cpu_flags.join(" "),
            m.threads,
            m.device
        )
    };
    let mut labels: Vec<String> = records.iter().map(label).collect();
    labels.dedup();
    match labels.len() {
        0 => None,
        1 => labels.pop(),
        _ => Some(format!(
            "resumed on several machines: {}",
            labels.join("; ")
        )),
    }
}

/// The configured controller schedule of an ATO run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ControllerSettings {
    /// `ato.hyper_step`: `None` for "auto", `Some(n)` for one step every n target steps.
    pub hyper_step: Option<usize>,
    /// `ato.settle_steps`, the cap on settling steps ("auto" only).
    pub settle_steps: usize,
    /// `ato.settle_lr_mult`, the factor on the settling steps' lr.
    pub settle_lr_mult: f64,
}

/// How a run was probed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Probing {
    /// `None` when the run folder has no config (an old or foreign folder).
    pub mode: Option<ProbeMode>,
    /// `sgd` | `adamw`.
    pub optimizer: String,
    pub inject: Fault,
}

/// Reads `DIR/summary.csv` and, for every run listed, its `metrics.csv` and
/// `convergence.csv` (missing files are empty).
pub fn collect(dir: &Path) -> Result<Vec<RunRecord>> {
    let summary = dir.join(SUMMARY_FILE);
    if !summary.is_file() {
        bail!(
            "{} has no summary.csv: run a sweep into it first (e.g. `ato sweep demo`)",
            dir.display()
        );
    }
    let rows: Vec<SummaryRow> = read_csv(&summary)?;
    rows.into_iter()
        .map(|summary| {
            let run = RunDir::new(dir.join(&summary.run_id));
            let cfg = if run.config_file().is_file() {
                Some(run.read_config()?)
            } else {
                None
            };
            let probing = cfg.as_ref().map_or_else(Probing::default, |cfg| Probing {
                mode: Some(cfg.convergence.mode),
                optimizer: cfg.optim.name.as_str().to_string(),
                inject: cfg.convergence.inject,
            });
            let controller =
                cfg.filter(|c| c.method == ato_train::Method::Ato)
                    .map(|c| ControllerSettings {
                        hyper_step: match c.ato.hyper_step {
                            ato_train::config::HyperStep::Auto => None,
                            ato_train::config::HyperStep::Every(n) => Some(n),
                        },
                        settle_steps: c.ato.settle_steps,
                        settle_lr_mult: c.ato.settle_lr_mult,
                    });
            Ok(RunRecord {
                machine: timing_machine(&ato_train::read_machines(&run.machine_file())?),
                metrics: read_csv(&run.metrics_file())?,
                convergence: read_csv(&run.convergence_file())?,
                summary,
                theorem_regime: probing.mode.is_some_and(ProbeMode::is_theorem),
                probing,
                controller,
            })
        })
        .collect()
}

/// What [`write_report`] wrote.
#[derive(Clone, Debug)]
pub struct Written {
    /// The Markdown file.
    pub path: PathBuf,
    /// Runs listed in the sweep's `summary.csv`.
    pub runs: usize,
    /// PNG figures written into `figures_dir`.
    pub figures: usize,
    pub figures_dir: PathBuf,
    /// One line per row of the "ATO's cost" section (its wall-time ratio and verdict).
    pub cost_lines: Vec<String>,
}

/// The "ATO's cost" rows of the results folder `dir` as lines of output (none without dense
/// and ATO runs): what `ato sweep` prints at its end and `ato report` after writing.
pub fn cost_lines(dir: &Path) -> Result<Vec<String>> {
    let records = collect(dir)?;
    Ok(lines_of(&selection::Report::new("", &records)))
}

fn lines_of(report: &selection::Report) -> Vec<String> {
    report
        .wall_costs()
        .iter()
        .map(cost::WallCost::line)
        .collect()
}

/// Writes the report of the results folder `dir` into `out`: `<out>/<name>.md` and
/// `<out>/figures/<name>/*.png`, `name` defaulting to the folder's name.
pub fn write_report(dir: &Path, out: &Path, name: Option<&str>) -> Result<Written> {
    let shown = dir.display().to_string();
    let dir = dir
        .canonicalize()
        .with_context(|| format!("{shown} does not exist"))?;
    let name = match name {
        Some(n) => n.to_string(),
        None => dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .ok_or_else(|| anyhow!("{} has no folder name; pass --name", dir.display()))?,
    };
    let records = collect(&dir)?;
    let figures_dir = out.join("figures").join(&name);
    std::fs::create_dir_all(&figures_dir).map_err(|e| anyhow!("{}: {e}", figures_dir.display()))?;
    let mut report = selection::Report::new(&name, &records);
    let calibration = dir.join(ato_sweep::calibrate::CALIBRATION_FILE);
    if calibration.is_file() {
        report.calibration = read_csv(&calibration)?;
    }
    let pilots = dir.join(ato_sweep::calibrate::PILOTS_FILE);
    if pilots.is_file() {
        report.pilots = read_csv(&pilots)?;
    }
    let figures = report.draw_figures(&figures_dir)?;
    let md = report.markdown(&shown, &figures);
    let cost_lines = lines_of(&report);
    let path = out.join(format!("{name}.md"));
    ato_train::write_text_atomically(&path, &md)?;
    Ok(Written {
        path,
        runs: records.len(),
        figures: figures.len(),
        figures_dir,
        cost_lines,
    })
}
