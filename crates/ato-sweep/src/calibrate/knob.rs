//! The search's view of a run's matched knob (`RunConfig::matched_knob` in ato-train says
//! which it is and how to read and set it), and the cache key of a search.

use super::search::KnobScale;
use ato_train::RunConfig;

/// The knob a run is matched by (`RunConfig::matched_knob`), with its range as the search's
/// scale (`None`: by construction).
pub(super) fn knob(cfg: &RunConfig) -> Option<(&'static str, Option<KnobScale>)> {
    cfg.matched_knob().map(|k| (k.key, k.search))
}

/// The cache key: the run id of the settings with the knob at 0 (seed kept: each seed is
/// matched to its own reference), the pilot epochs and the budget (the planned
/// `prune.target_flops_reduction`, which OTO's and OTOv2's run ids leave out).
pub(super) fn key(cfg: &RunConfig, pilot_epochs: usize, budget: f64) -> String {
    let mut c = cfg.clone();
    c.set_knob_value(0.0);
    c.prune.reference_run = None;
    format!("{}-p{pilot_epochs}-b{budget:.4}", c.run_id())
}

/// The key of the same search at another seed (a search starts from the value another
/// seed's search found).
pub(super) fn key_at_seed(cfg: &RunConfig, seed: u64, pilot_epochs: usize, budget: f64) -> String {
    let mut c = cfg.clone();
    c.seed = seed;
    key(&c, pilot_epochs, budget)
}
