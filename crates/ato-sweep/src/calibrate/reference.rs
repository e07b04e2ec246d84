//! Which ATO run a matched baseline is put at: the sweep's main ATO runs (references) and the
//! reference value and run of a planned baseline.

use crate::PlannedRun;
use ato_train::{Method, RunConfig};

/// Grid keys a main ATO run (a reference) may set besides `method` and `seed`: the budget.
const REFERENCE_KEYS: [&str; 3] = ["method", "seed", "prune.target_flops_reduction"];

/// Whether a planned run is a main ATO run (a reference).
fn is_reference(r: &PlannedRun) -> bool {
    r.config.method == Method::Ato
        && r.point
            .iter()
            .all(|(k, _)| REFERENCE_KEYS.contains(&k.as_str()))
}

/// The reference runs among `runs`.
pub fn references(runs: &[PlannedRun]) -> Vec<usize> {
    (0..runs.len())
        .filter(|&i| is_reference(&runs[i]))
        .collect()
}

/// The smallest ATO reduction taken as a reference: an ATO run that pruned (almost) nothing
/// gives no budget to match, and the baselines are then put at the target instead.
pub const MIN_REFERENCE: f64 = 0.01;

/// The reference from the main ATO runs' mean reduction (if any) and the run's own target.
pub fn usable_reference(ato_mean: Option<f64>, target: f64) -> f64 {
    match ato_mean {
        Some(r) if r >= MIN_REFERENCE => r,
        _ => target,
    }
}

/// The reference of `cfg` (planned, before matching) and the run it comes from: the main ATO
/// run on the same data set and model, at the same budget (`prune.target_flops_reduction`)
/// and with the same seed, when it has finished and pruned at least [`MIN_REFERENCE`]
/// (`achieved` gives a finished run's reduction). Without a same-seed run, the mean over the
/// main ATO runs of the other seeds (no run named); with none, the run's own target.
pub fn reference_of(
    cfg: &RunConfig,
    runs: &[PlannedRun],
    achieved: &dyn Fn(&RunConfig) -> Option<f64>,
) -> (f64, Option<String>) {
    let mates: Vec<&PlannedRun> = runs
        .iter()
        .filter(|r| {
            is_reference(r)
                && r.config.dataset.name == cfg.dataset.name
                && r.config.model.name == cfg.model.name
                && (r.config.prune.target_flops_reduction - cfg.prune.target_flops_reduction).abs()
                    < 1e-12
        })
        .collect();
    let target = cfg.prune.target_flops_reduction;
    if let Some(own) = mates.iter().find(|r| r.config.seed == cfg.seed) {
        return match achieved(&own.config) {
            Some(a) if a >= MIN_REFERENCE => (a, Some(own.config.run_id())),
            _ => (target, None),
        };
    }
    let same: Vec<f64> = mates.iter().filter_map(|r| achieved(&r.config)).collect();
    let mean = (!same.is_empty()).then(|| same.iter().sum::<f64>() / same.len() as f64);
    (usable_reference(mean, target), None)
}
