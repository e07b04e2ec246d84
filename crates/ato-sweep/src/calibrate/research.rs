//! A searched run that misses its reference after short pilots is searched again at full length.
//!
//! With `pilot_epochs` shorter than the runs (the GPU sweeps), a search's last pilot is not the
//! run, and the run can land off the reference its pilots matched: the response at 50 epochs is
//! not the response at 200. After the sweep's runs finish, every run whose knob was searched
//! (OTO, OTOv2, HESSO's group target) and whose achieved FLOPs reduction is more than
//! `match_tolerance` from its reference is searched again with pilots of the run's own length,
//! from its knob value: the finished run is the first pilot (its folder answers at no cost), and
//! the search's last pilot is the run the sweep reports. The full-length searches are cached
//! under their own keys, so a second sweep runs no pilot.

use super::{apply, knob, MatchSettings, PilotRunner};
use crate::PlannedRun;
use anyhow::Result;
use ato_train::RunConfig;
use std::path::Path;

/// The searched runs that finished off their reference after shorter pilots.
pub fn missed(
    runs: &[PlannedRun],
    settings: MatchSettings,
    achieved: &dyn Fn(&RunConfig) -> Option<f64>,
) -> Vec<usize> {
    runs.iter()
        .enumerate()
        .filter(|(_, r)| {
            let c = &r.config;
            let short = settings.pilot_epochs.is_some_and(|p| p < c.train.epochs);
            let searched = knob(c).is_some_and(|(_, scale)| scale.is_some());
            short
                && searched
                && r.calibration_key.is_some()
                && achieved(c).is_some_and(|a| {
                    (a - c.prune.target_flops_reduction).abs() > settings.tolerance + 1e-12
                })
        })
        .map(|(i, _)| i)
        .collect()
}

/// Searches the [`missed`] runs again with pilots of their own length and updates them in
/// `runs`; the lines say what happened (none when nothing missed).
pub fn search_missed_again(
    runs: &mut [PlannedRun],
    dir: &Path,
    settings: MatchSettings,
    achieved: &dyn Fn(&RunConfig) -> Option<f64>,
    pilot: &mut dyn PilotRunner,
) -> Result<Vec<String>> {
    let missed = missed(runs, settings, achieved);
    if missed.is_empty() {
        return Ok(Vec::new());
    }
    // the runs references come from (those without a knob), then the missed runs as planned:
    // their budget back in place of the reference the first search wrote
    let mut sub: Vec<PlannedRun> = runs
        .iter()
        .filter(|r| knob(&r.config).is_none())
        .cloned()
        .collect();
    let first = sub.len();
    for &i in &missed {
        let mut r = runs[i].clone();
        if let Some(b) = r.budget {
            r.config.prune.target_flops_reduction = b;
        }
        sub.push(r);
    }
    let full = MatchSettings {
        pilot_epochs: None,
        ..settings
    };
    let mut lines = vec![format!(
        "{} run(s) missed their reference after {}-epoch pilots: searched again with \
         full-length pilots, each run its own first pilot",
        missed.len(),
        settings.pilot_epochs.unwrap_or_default()
    )];
    lines.extend(apply(&mut sub, dir, full, achieved, Some(pilot))?);
    for (&i, r) in missed.iter().zip(sub.drain(first..)) {
        runs[i] = r;
    }
    Ok(lines)
}
