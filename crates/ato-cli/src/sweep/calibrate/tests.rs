//! The knob search on fake monotone responses and the calibration cache with a fake pilot
//! runner that counts its calls.

use super::search::{search, KnobScale, SearchStatus};
use super::{apply, MatchSettings, CALIBRATION_FILE};
use crate::sweep::PlannedRun;
use ato_train::{Method, RunConfig};

const LOG: KnobScale = KnobScale {
    log: true,
    lo: 1e-6,
    hi: 1e3,
};

/// r(λ) = 0.5 + 0.1·log10(λ / 0.037): linear in log λ, 0.5 at λ = 0.037.
fn log_response(l: f64) -> f64 {
    0.5 + 0.1 * (l / 0.037).log10()
}

#[test]
fn search_brackets_by_four_then_lands_by_secant() {
    let mut seen = Vec::new();
    let mut f = |l: f64| -> anyhow::Result<f64> {
        seen.push(l);
        Ok(log_response(l))
    };
    let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 8).unwrap();
    // 1e-3 → 0.343, 4e-3 → 0.403, 1.6e-2 → 0.464, 6.4e-2 → 0.524 (bracket), then the secant
    // in log λ is exact on a log-linear response: λ = 0.037
    assert_eq!(out.evaluations, 5, "{seen:?}");
    assert!((seen[3] - 6.4e-2).abs() < 1e-12);
    assert!((out.value - 0.037).abs() < 1e-9, "{out:?}");
    assert_eq!(out.status, SearchStatus::Matched);
}

#[test]
fn search_says_when_the_bound_cannot_reach_the_reference() {
    // saturates at 30%: λ climbs by ×4 to the bound 1e3 and stops there
    let mut f = |l: f64| -> anyhow::Result<f64> { Ok((0.3 * l / (l + 1.0)).min(0.3)) };
    let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 20).unwrap();
    assert_eq!(out.status, SearchStatus::Unreachable);
    assert!((out.value - 1e3).abs() < 1e-6, "{out:?}");
    // ⌈log4(1e6)⌉ = 10 steps up from 1e-3, plus the start
    assert_eq!(out.evaluations, 11);
}

#[test]
fn search_out_of_pilots_keeps_the_closest() {
    let mut f = |l: f64| -> anyhow::Result<f64> { Ok(log_response(l)) };
    let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 3).unwrap();
    assert_eq!(out.status, SearchStatus::Closest);
    assert!((out.value - 1.6e-2).abs() < 1e-12, "{out:?}");
}

fn planned(method: Method, seed: u64) -> PlannedRun {
    let mut config = RunConfig {
        method,
        seed,
        name: "sweep".into(),
        ..RunConfig::default()
    };
    config.train.epochs = 4;
    PlannedRun {
        index: 0,
        config,
        point: vec![("method".into(), method.as_str().into())],
    }
}

fn runs() -> Vec<PlannedRun> {
    vec![
        planned(Method::Oto, 0),
        planned(Method::Oto, 1),
        planned(Method::Hesso, 0),
    ]
}

#[test]
fn the_cache_serves_every_seed_and_a_second_sweep_runs_no_pilots() {
    let dir = tempfile::tempdir().unwrap();
    let settings = MatchSettings {
        pilot_epochs: Some(2),
        max_pilots: 8,
    };
    let none = |_: &RunConfig| None;
    let mut calls = 0;
    let mut pilot = |c: &RunConfig| -> anyhow::Result<f64> {
        calls += 1;
        assert_eq!(c.train.epochs, 2, "pilots run pilot_epochs");
        Ok(log_response(c.oto.lambda))
    };
    let mut first = runs();
    apply(&mut first, dir.path(), settings, &none, Some(&mut pilot)).unwrap();
    // the default λ = 1e-3 takes the 5 evaluations of the search above, for seed 0 only
    assert_eq!(calls, 5);
    assert!((first[0].config.oto.lambda - 0.037).abs() < 1e-9);
    assert_eq!(first[0].config.oto.lambda, first[1].config.oto.lambda);
    // no ATO run: HESSO aims at the runs' own target
    assert_eq!(first[2].config.prune.target_flops_reduction, 0.5);
    let cache = std::fs::read_to_string(dir.path().join(CALIBRATION_FILE)).unwrap();
    assert_eq!(cache.lines().count(), 3, "header, oto, hesso:\n{cache}");

    let second_calls = std::cell::Cell::new(0);
    let mut counting = |_: &RunConfig| -> anyhow::Result<f64> {
        second_calls.set(second_calls.get() + 1);
        Ok(0.0)
    };
    let mut second = runs();
    apply(
        &mut second,
        dir.path(),
        settings,
        &none,
        Some(&mut counting),
    )
    .unwrap();
    assert_eq!(second_calls.get(), 0, "the cache answers");
    assert_eq!(second[0].config.run_id(), first[0].config.run_id());

    // a new reference (an ATO run finished at 45%) is a new search, and HESSO follows it
    let mut third = runs();
    third.push(planned(Method::Ato, 0));
    let ato_at_45 = |c: &RunConfig| (c.method == Method::Ato).then_some(0.45);
    apply(
        &mut third,
        dir.path(),
        settings,
        &ato_at_45,
        Some(&mut counting),
    )
    .unwrap();
    assert!(second_calls.get() > 0, "another reference, another search");
    assert_eq!(third[2].config.prune.target_flops_reduction, 0.45);
}

#[test]
fn a_listing_writes_nothing_and_a_sweep_creates_its_folder() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("not-yet");
    let settings = MatchSettings {
        pilot_epochs: None,
        max_pilots: 8,
    };
    let none = |_: &RunConfig| None;
    // --dry-run: HESSO's by-construction row is listed, the folder is not created
    let mut listed = runs();
    let lines = apply(&mut listed, &dir, settings, &none, None).unwrap();
    assert!(
        lines.iter().any(|l| l.contains("not calibrated yet")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("ByConstruction")),
        "{lines:?}"
    );
    assert!(!dir.exists(), "a listing wrote {}", dir.display());
    // a real sweep into a folder that does not exist yet writes its cache there
    let mut pilot = |c: &RunConfig| -> anyhow::Result<f64> { Ok(log_response(c.oto.lambda)) };
    let mut swept = runs();
    apply(&mut swept, &dir, settings, &none, Some(&mut pilot)).unwrap();
    assert!(dir.join(CALIBRATION_FILE).is_file());
}
