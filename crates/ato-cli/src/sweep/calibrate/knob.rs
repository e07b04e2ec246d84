//! The knob each matched method is searched by (OTO's λ, OTOv2's and HESSO's group share) or
//! set by construction (HESSO's and magnitude's FLOPs target), and the cache key of a search.

use super::search::KnobScale;
use ato_train::{Method, RunConfig};

/// A group-sparsity share searched on a linear scale (OTOv2's target, HESSO's group target).
const SHARE: KnobScale = KnobScale {
    log: false,
    lo: 0.01,
    hi: 0.95,
};

/// The knob a run is matched by, if any, and how it is searched (`None`: by construction).
pub(super) fn knob(cfg: &RunConfig) -> Option<(&'static str, Option<KnobScale>)> {
    match cfg.method {
        Method::Oto => Some((
            "oto.lambda",
            Some(KnobScale {
                log: true,
                lo: 1e-6,
                hi: 1e3,
            }),
        )),
        Method::Otov2 => Some(("otov2.target_group_sparsity", Some(SHARE))),
        // the reference's group-count target is searched like OTOv2's
        Method::Hesso if cfg.hesso.target_group_sparsity.is_some() => {
            Some(("hesso.target_group_sparsity", Some(SHARE)))
        }
        Method::Hesso | Method::Magnitude => Some(("prune.target_flops_reduction", None)),
        Method::Dense | Method::Ato => None,
    }
}

pub(super) fn get(cfg: &RunConfig) -> f64 {
    match (cfg.method, cfg.hesso.target_group_sparsity) {
        (Method::Oto, _) => cfg.oto.lambda,
        (Method::Otov2, _) => cfg.otov2.target_group_sparsity,
        (Method::Hesso, Some(share)) => share,
        _ => cfg.prune.target_flops_reduction,
    }
}

pub(super) fn set(cfg: &mut RunConfig, v: f64) {
    match (cfg.method, cfg.hesso.target_group_sparsity) {
        (Method::Oto, _) => cfg.oto.lambda = v,
        (Method::Otov2, _) => cfg.otov2.target_group_sparsity = v,
        (Method::Hesso, Some(_)) => cfg.hesso.target_group_sparsity = Some(v),
        _ => cfg.prune.target_flops_reduction = v,
    }
}

/// The cache key: the run id of the settings with the knob at 0 (seed kept: each seed is
/// matched to its own reference), the pilot epochs and the budget (the planned
/// `prune.target_flops_reduction`, which OTO's and OTOv2's run ids leave out).
pub(super) fn key(cfg: &RunConfig, pilot_epochs: usize, budget: f64) -> String {
    let mut c = cfg.clone();
    set(&mut c, 0.0);
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
