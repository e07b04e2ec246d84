//! The plan of a sweep: every run of a sweep file expanded, merged with its layers and
//! validated ([`plan`]), the sweep's folder, and its `summary.csv` written from the run folders
//! with the sweep's own view of each run ([`write_summary`]).

use crate::{config_layers, spec};
use anyhow::{anyhow, bail, Result};
use ato_train::run_dir::SUMMARY_FILE;
use ato_train::{write_csv_atomically, RunConfig, RunDir, SummaryRow};
use std::path::{Path, PathBuf};

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

/// The grid values that distinguish `run`, as `key=value` words.
pub fn point_text(run: &PlannedRun) -> String {
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
