//! Matched FLOPs (`match_flops = true` in a sweep): every baseline is put at the FLOPs
//! reduction of the sweep's reference before it runs.
//!
//! - A baseline's reference is the achieved FLOPs reduction of the sweep's main ATO run on the
//!   same data set and model, at the same budget and with the same seed (main ATO runs are
//!   grid points that set nothing but `method`, `seed` and `prune.target_flops_reduction`);
//!   the run records it as `prune.reference_run` (column `reference_run` of `summary.csv`),
//!   which is how the report pairs it with ATO seed by seed. Without a same-seed ATO run, the
//!   mean over the other seeds' runs; with none, or when ATO pruned less than 1%, the run's
//!   own `prune.target_flops_reduction`.
//! - OTO's knob is `oto.lambda` (log scale), OTOv2's `otov2.target_group_sparsity`; each is
//!   searched with pilot runs ([`search::search`]) until the pilot's reduction is within
//!   ±`match_tolerance` of the reference (default [`MATCH_TOLERANCE`], one point).
//! - OTOv2's λ sets how fast DHSPG zeroes its redundant groups, the target how many. When a
//!   pilot ends short of its own group-sparsity target (by more than [`SHORT_OF_TARGET`]), its
//!   λ was too small for the run's steps: λ is raised ×4 (up to [`OTOV2_MAX_LAMBDA`], the
//!   authors' largest default) and the pilot re-run before the target moves, and the raised λ
//!   is kept for the rest of the search and the run (column `lambda` of the cache). A budget
//!   DHSPG cannot reach within that range stays unmatched and is reported so.
//! - HESSO and magnitude aim at `prune.target_flops_reduction` by
//!   construction: it is set to the reference, no pilots. Every matched run's
//!   `prune.target_flops_reduction` becomes the reference, so `target_met` in `summary.csv`
//!   judges it against the budget it was matched to.
//! - Results are cached in `<sweep dir>/calibration.csv` (method, key, knob, value, achieved,
//!   reference, status, pilots, lambda, near_low, near_high), keyed by the run's settings
//!   without the knob: one search per seed (it starts from the value another seed's search
//!   found, the one whose reference was closest), and a second `ato sweep` runs no pilots. A cached row is reused only for the same reference; a match only while it is as
//!   close as today's `match_tolerance`; a jump or an unreachable budget (conclusions about the
//!   response) while they are still a miss (a jump only with its near range, which rows
//!   concluded at the older, wider jump width lack); and a search that ran out of pilots
//!   (closest) only when today's `max_pilots` is no larger. A search run again replays its
//!   pilots from their finished run folders at no cost.
//! - `near_low`/`near_high` is the range of the FLOPs reductions the search measured within
//!   0.1% of the result's λ, or 0.001 of OTOv2's group-sparsity target
//!   ([`search::NEIGHBOURHOOD`]). The report prints it beside a row when it spans more than two
//!   points: a result that rests on the knob's last digits is flagged when the search's own
//!   pilots show it (values it did not try cannot).

mod cache;
mod knob;
mod reference;
mod research;
mod rows;
pub mod search;

pub use cache::{record_pilots, CalibrationCache};
use knob::{key, key_at_seed, knob};
pub use reference::{reference_of, references, usable_reference, MIN_REFERENCE};
pub use research::search_missed_again;
pub use rows::{CalibrationRow, MatchSettings, PilotOutcome, SearchPilot};

#[cfg(test)]
mod knob_tests;
#[cfg(test)]
mod otov2_tests;
#[cfg(test)]
mod research_tests;
#[cfg(test)]
mod search_tests;
#[cfg(test)]
mod tests;

use crate::PlannedRun;
use anyhow::Result;
use ato_train::{Method, RunConfig};
use search::{Evaluation, SearchStatus};
use std::path::Path;

/// The cache file in the sweep folder.
pub const CALIBRATION_FILE: &str = "calibration.csv";

/// Every pilot of every search, in the order the search ran them (the report plots them).
pub const PILOTS_FILE: &str = "calibration_pilots.csv";

/// Pilot runs per search unless the sweep sets `max_pilots`: a steep group-lasso response
/// started far from its reference takes up to 11 ([`search`]). Concluding a jump from
/// λ = 1e-3 takes about 25 (`small` sets 30); with fewer the search ends `closest`.
pub const DEFAULT_MAX_PILOTS: usize = 12;

/// A run's FLOPs reduction is matched when within this of its reference (one point); a sweep
/// may search closer (`match_tolerance`).
pub const MATCH_TOLERANCE: f64 = 0.01;

/// Runs the pilots of a search: trains `cfg` (or finds it trained) and says what it achieved.
/// [`crate::TrainingPilots`] trains them into the sweep folder; any
/// `FnMut(&RunConfig) -> Result<PilotOutcome>` is one too (tests use closures that model a
/// response).
pub trait PilotRunner {
    fn run_pilot(&mut self, cfg: &RunConfig) -> Result<PilotOutcome>;
}

impl<F: FnMut(&RunConfig) -> Result<PilotOutcome>> PilotRunner for F {
    fn run_pilot(&mut self, cfg: &RunConfig) -> Result<PilotOutcome> {
        self(cfg)
    }
}

/// An OTOv2 pilot whose group sparsity is below its target by more than this fell short.
pub const SHORT_OF_TARGET: f64 = 0.02;

/// The largest λ OTOv2's search raises to: the largest of the authors' defaults (AdamW's
/// 1e-2 in only_train_once's hyperparameter.py; SGD's is 1e-3). Beyond it the baseline is no
/// longer the authors' method, so a budget DHSPG cannot reach below it stays unmatched.
pub const OTOV2_MAX_LAMBDA: f64 = 1e-2;

/// The response of a search: one pilot at the knob's value, and for OTOv2 another at λ ×4 as
/// long as the pilot falls short of its own group-sparsity target. The raised λ is kept for
/// every later value; a value measured earlier at a smaller λ had reached its target, which
/// λ only makes DHSPG reach sooner (the final run's own `target_met` judges the outcome).
struct PilotResponse<'a> {
    cfg: &'a RunConfig,
    epochs: usize,
    pilot: &'a mut dyn PilotRunner,
    start_lambda: f64,
    lambda: f64,
    /// (knob value, OTOv2's λ, FLOPs reduction) of every pilot so far.
    trace: Vec<(f64, Option<f64>, f64)>,
}

impl<'a> PilotResponse<'a> {
    fn new(cfg: &'a RunConfig, epochs: usize, pilot: &'a mut dyn PilotRunner) -> Self {
        let lambda = cfg.otov2_lambda();
        Self {
            cfg,
            epochs,
            pilot,
            start_lambda: lambda,
            lambda,
            trace: Vec::new(),
        }
    }

    /// OTOv2's λ if the search raised it.
    fn raised_lambda(&self) -> Option<f64> {
        (self.lambda != self.start_lambda).then_some(self.lambda)
    }

    /// Pilots at knob value `v`, at most `left` of them.
    fn evaluate(&mut self, v: f64, left: usize) -> Result<Evaluation> {
        let mut c = self.cfg.clone();
        c.train.epochs = self.epochs;
        c.set_knob_value(v);
        let mut pilots = 0;
        loop {
            if let Some(l) = self.raised_lambda() {
                c.otov2.lambda = Some(l);
            }
            let out = self.pilot.run_pilot(&c)?;
            pilots += 1;
            let lambda = (c.method == Method::Otov2).then(|| c.otov2_lambda());
            self.trace.push((v, lambda, out.flops_reduction));
            let short = c.method == Method::Otov2
                && out.group_sparsity.is_some_and(|s| s < v - SHORT_OF_TARGET);
            if !short || pilots >= left || self.lambda * 4.0 > OTOV2_MAX_LAMBDA {
                return Ok(Evaluation {
                    response: out.flops_reduction,
                    pilots,
                });
            }
            self.lambda *= 4.0;
        }
    }
}

/// Sets every baseline's knob in `runs` from the cache or, when `pilot` is given, a search
/// (written to the cache as it goes). Without `pilot` an uncached run is left as planned.
/// Returns one line per baseline for the terminal.
pub fn apply(
    runs: &mut [PlannedRun],
    dir: &Path,
    settings: MatchSettings,
    achieved: &dyn Fn(&RunConfig) -> Option<f64>,
    mut pilot: Option<&mut dyn PilotRunner>,
) -> Result<Vec<String>> {
    let mut cache = CalibrationCache::load(dir)?;
    let mut lines = Vec::new();
    for i in 0..runs.len() {
        let mut cfg = runs[i].config.clone();
        let Some((knob_name, scale)) = knob(&cfg) else {
            continue;
        };
        let budget = cfg.prune.target_flops_reduction;
        let (reference, reference_run) = reference_of(&cfg, runs, achieved);
        // every matched run is judged against the reference (`target_met` in summary.csv)
        // and names the run it was matched to (`reference_run`)
        cfg.prune.target_flops_reduction = reference;
        cfg.prune.reference_run = reference_run;
        let pilot_epochs = settings.pilot_epochs.unwrap_or(cfg.train.epochs);
        let k = key(&cfg, pilot_epochs, budget);
        let key_at = |r: f64| {
            let mut c = cfg.clone();
            c.prune.target_flops_reduction = r;
            key(&c, pilot_epochs, budget)
        };
        let cached = cache
            .lookup(&k, reference, &settings)
            .or_else(|| cache.lookup_moved(key_at, reference, &settings))
            .cloned();
        let from_cache = cached.is_some();
        // the pilots of a search run now, written after its row
        let mut trace = None;
        let row = match (cached, scale, pilot.as_deref_mut()) {
            (Some(c), _, _) => c,
            (None, None, _) => CalibrationRow {
                method: cfg.method,
                key: k,
                knob: knob_name.into(),
                value: reference,
                achieved: reference,
                reference,
                status: SearchStatus::ByConstruction,
                pilots: 0,
                lambda: None,
                near_low: None,
                near_high: None,
            },
            (None, Some(scale), Some(pilot)) => {
                // another seed's result of the same search (closest reference first): where
                // this one starts
                let other_seeds: Vec<String> = runs
                    .iter()
                    .map(|r| r.config.seed)
                    .filter(|&s| s != cfg.seed)
                    .map(|s| key_at_seed(&cfg, s, pilot_epochs, budget))
                    .collect();
                let start = cache.closest(&other_seeds, reference).map(|c| c.value);
                let mut pilots = PilotResponse::new(&cfg, pilot_epochs, pilot);
                let mut response = |v: f64, left: usize| pilots.evaluate(v, left);
                let found = search::search(
                    &mut response,
                    start.unwrap_or_else(|| cfg.knob_value()),
                    reference,
                    settings.tolerance,
                    scale,
                    settings.max_pilots,
                )?;
                trace = Some(std::mem::take(&mut pilots.trace));
                CalibrationRow {
                    method: cfg.method,
                    key: k,
                    knob: knob_name.into(),
                    value: found.value,
                    achieved: found.achieved,
                    reference,
                    status: found.status,
                    pilots: found.pilots,
                    lambda: pilots.raised_lambda(),
                    near_low: found.near.map(|n| n.0),
                    near_high: found.near.map(|n| n.1),
                }
            }
            (None, Some(_), None) => {
                lines.push(format!(
                    "{}: not calibrated yet (the sweep searches {knob_name} before it runs)",
                    cfg.run_id()
                ));
                continue;
            }
        };
        set_matched(&mut runs[i], &cfg, &row);
        lines.push(matched_line(&runs[i], &row, from_cache));
        // a listing (no pilot runner) reads the cache and never writes it
        if pilot.is_some() {
            let method = row.method;
            let key = row.key.clone();
            if cache.upsert(row) {
                cache.save()?;
            }
            if let Some(trace) = trace {
                record_pilots(dir, method, &key, &trace)?;
            }
        }
    }
    Ok(lines)
}

/// Puts `row`'s knob (and OTOv2's raised λ) into `run`, with the reference `matched` carries.
fn set_matched(run: &mut PlannedRun, matched: &RunConfig, row: &CalibrationRow) {
    let c = &mut run.config;
    c.prune.target_flops_reduction = matched.prune.target_flops_reduction;
    c.prune.reference_run = matched.prune.reference_run.clone();
    c.set_knob_value(row.value);
    if let Some(l) = row.lambda {
        c.otov2.lambda = Some(l);
    }
    run.calibration_key = Some(row.key.clone());
}

/// The terminal line of a matched run.
fn matched_line(run: &PlannedRun, row: &CalibrationRow, from_cache: bool) -> String {
    let reference = run.config.prune.target_flops_reduction;
    let cached = match (from_cache, (row.reference - reference).abs() > 1e-9) {
        (false, _) => String::new(),
        (true, false) => ", cached".into(),
        (true, true) => format!(
            ", cached: searched at reference −{:.2}%, reused within the matching band",
            100.0 * row.reference
        ),
    };
    format!(
        "{}: {} = {:.4e}{} → FLOPs −{:.1}% vs reference −{:.1}% ({:?}, {} pilot runs{cached})",
        run.config.run_id(),
        row.knob,
        row.value,
        row.lambda
            .map_or(String::new(), |l| format!(" (λ raised to {l:.4e})")),
        100.0 * row.achieved,
        100.0 * reference,
        row.status,
        row.pilots,
    )
}

/// Writes each finished by-construction run's measured FLOPs reduction (`measured`) into its
/// `calibration.csv` row, in place of the reference it aimed at; rows of runs that have not
/// finished keep the reference. The cache still answers by the reference and the status.
pub fn record_measured(
    runs: &[PlannedRun],
    dir: &Path,
    measured: &dyn Fn(&RunConfig) -> Option<f64>,
) -> Result<()> {
    if !dir.join(CALIBRATION_FILE).is_file() {
        return Ok(());
    }
    let mut cache = CalibrationCache::load(dir)?;
    let mut changed = false;
    for r in runs {
        if let (Some(key), Some(got)) = (&r.calibration_key, measured(&r.config)) {
            changed |= cache.record_measured(key, r.config.prune.target_flops_reduction, got);
        }
    }
    if changed {
        cache.save()?;
    }
    Ok(())
}
