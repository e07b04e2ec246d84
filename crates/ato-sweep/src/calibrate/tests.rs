//! The calibration cache with a fake pilot runner that counts its calls.

use super::{apply, MatchSettings, PilotOutcome, SearchPilot, CALIBRATION_FILE, PILOTS_FILE};
use crate::PlannedRun;
use ato_train::{Method, RunConfig};

/// r(λ) = 0.5 + 0.1·log10(λ / 0.037): linear in log λ, 0.5 at λ = 0.037.
pub(super) fn log_response(l: f64) -> f64 {
    0.5 + 0.1 * (l / 0.037).log10()
}

/// A group-lasso-like response: flat at zero up to λ ≈ 0.14, 90% by λ ≈ 0.26, 50% at
/// λ = 0.19·e^{0.05·ln(1.25)} ≈ 0.1921 (a logistic in log λ of scale 0.05).
pub(super) fn steep_response(l: f64) -> f64 {
    0.9 / (1.0 + (-(l / 0.19).ln() / 0.05).exp())
}

fn config_budget(method: Method) -> Option<f64> {
    (method != Method::Dense).then_some(0.5)
}

pub(super) fn planned(method: Method, seed: u64) -> PlannedRun {
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
        calibration_key: None,
        budget: config_budget(method),
    }
}

pub(super) fn flops(flops_reduction: f64) -> PilotOutcome {
    PilotOutcome {
        flops_reduction,
        group_sparsity: None,
    }
}

/// The search settings of most tests: pilots of the run's own epochs, ±1 point.
pub(super) fn budget(max_pilots: usize) -> MatchSettings {
    MatchSettings {
        pilot_epochs: None,
        max_pilots,
        tolerance: super::MATCH_TOLERANCE,
    }
}

/// No ATO run has finished: the baselines aim at their own target.
pub(super) fn no_ato(_: &RunConfig) -> Option<f64> {
    None
}

pub(super) fn runs() -> Vec<PlannedRun> {
    vec![
        planned(Method::Oto, 0),
        planned(Method::Oto, 1),
        planned(Method::Hesso, 0),
    ]
}

/// One seed: one OTO search (the tests of a search's budget and trace).
pub(super) fn one_seed() -> Vec<PlannedRun> {
    vec![planned(Method::Oto, 0), planned(Method::Hesso, 0)]
}

#[test]
fn every_seed_has_its_search_and_a_second_sweep_runs_no_pilots() {
    let dir = tempfile::tempdir().unwrap();
    let settings = MatchSettings {
        pilot_epochs: Some(2),
        ..budget(8)
    };
    let mut calls = 0;
    let mut pilot = |c: &RunConfig| -> anyhow::Result<PilotOutcome> {
        calls += 1;
        assert_eq!(c.train.epochs, 2, "pilots run pilot_epochs");
        Ok(flops(log_response(c.oto.lambda)))
    };
    let mut first = runs();
    apply(&mut first, dir.path(), settings, &no_ato, Some(&mut pilot)).unwrap();
    // seed 0 from the default λ = 1e-3 takes the 5 evaluations of the search above; seed 1
    // has a search of its own, started where seed 0's landed: one pilot on this response
    assert_eq!(calls, 5 + 1);
    assert!((first[0].config.oto.lambda - 0.037).abs() < 1e-9);
    assert_eq!(first[0].config.oto.lambda, first[1].config.oto.lambda);
    // no ATO run: HESSO aims at the runs' own target
    assert_eq!(first[2].config.prune.target_flops_reduction, 0.5);
    let cache = std::fs::read_to_string(dir.path().join(CALIBRATION_FILE)).unwrap();
    assert_eq!(
        cache.lines().count(),
        4,
        "header, oto seed 0, oto seed 1, hesso:\n{cache}"
    );

    let second_calls = std::cell::Cell::new(0);
    let mut counting = |_: &RunConfig| -> anyhow::Result<PilotOutcome> {
        second_calls.set(second_calls.get() + 1);
        Ok(flops(0.0))
    };
    let mut second = runs();
    apply(
        &mut second,
        dir.path(),
        settings,
        &no_ato,
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
    let settings = budget(8);
    // --dry-run: HESSO's by-construction row is listed, the folder is not created
    let mut listed = runs();
    let lines = apply(&mut listed, &dir, settings, &no_ato, None).unwrap();
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
    let mut pilot =
        |c: &RunConfig| -> anyhow::Result<PilotOutcome> { Ok(flops(log_response(c.oto.lambda))) };
    let mut swept = runs();
    apply(&mut swept, &dir, settings, &no_ato, Some(&mut pilot)).unwrap();
    assert!(dir.join(CALIBRATION_FILE).is_file());
}

#[test]
fn a_search_that_missed_is_searched_again_with_a_larger_budget_only() {
    let dir = tempfile::tempdir().unwrap();
    let with = budget;
    let calls = std::cell::Cell::new(0);
    let mut pilot = |c: &RunConfig| -> anyhow::Result<PilotOutcome> {
        calls.set(calls.get() + 1);
        Ok(flops(log_response(c.oto.lambda)))
    };
    // 3 pilots end "closest" (the search above needs 5)
    apply(
        &mut one_seed(),
        dir.path(),
        with(3),
        &no_ato,
        Some(&mut pilot),
    )
    .unwrap();
    assert_eq!(calls.get(), 3);
    // the same budget: the cached miss stands
    apply(
        &mut one_seed(),
        dir.path(),
        with(3),
        &no_ato,
        Some(&mut pilot),
    )
    .unwrap();
    assert_eq!(calls.get(), 3, "the same budget reuses the row");
    // a larger one searches again and matches
    let mut again = one_seed();
    apply(&mut again, dir.path(), with(8), &no_ato, Some(&mut pilot)).unwrap();
    assert_eq!(calls.get(), 3 + 5);
    assert!((again[0].config.oto.lambda - 0.037).abs() < 1e-9);
    let cache = std::fs::read_to_string(dir.path().join(CALIBRATION_FILE)).unwrap();
    assert_eq!(cache.matches(",oto.lambda,").count(), 1, "{cache}");
    assert!(cache.contains(",matched,5,"), "{cache}");
}

#[test]
fn a_closer_match_tolerance_refines_a_cached_match() {
    let dir = tempfile::tempdir().unwrap();
    let with = |tolerance| MatchSettings {
        tolerance,
        ..budget(12)
    };
    // r(λ) = 0.5 + 0.1·log10(λ/0.037) + a wiggle that keeps the secant off the exact value
    let response = |l: f64| log_response(l) + 0.008 * (40.0 * l).sin();
    let calls = std::cell::Cell::new(0);
    let mut pilot = |c: &RunConfig| -> anyhow::Result<PilotOutcome> {
        calls.set(calls.get() + 1);
        Ok(flops(response(c.oto.lambda)))
    };
    let mut first = runs();
    apply(
        &mut first,
        dir.path(),
        with(0.01),
        &no_ato,
        Some(&mut pilot),
    )
    .unwrap();
    let loose = (response(first[0].config.oto.lambda) - 0.5).abs();
    assert!(loose <= 0.01 && loose > 0.001, "{loose}");
    let after_first = calls.get();
    // the same tolerance: cached
    apply(
        &mut runs(),
        dir.path(),
        with(0.01),
        &no_ato,
        Some(&mut pilot),
    )
    .unwrap();
    assert_eq!(calls.get(), after_first);
    // a tenth of a point: searched again, and closer
    let mut second = runs();
    apply(
        &mut second,
        dir.path(),
        with(0.001),
        &no_ato,
        Some(&mut pilot),
    )
    .unwrap();
    assert!(calls.get() > after_first);
    let close = (response(second[0].config.oto.lambda) - 0.5).abs();
    assert!(close <= 0.001, "{close}");
}

#[test]
fn a_jump_is_a_conclusion_that_a_larger_budget_does_not_search_again() {
    let dir = tempfile::tempdir().unwrap();
    let with = budget;
    let calls = std::cell::Cell::new(0);
    let mut pilot = |c: &RunConfig| -> anyhow::Result<PilotOutcome> {
        calls.set(calls.get() + 1);
        Ok(flops(if c.oto.lambda < 0.2095 { 0.40 } else { 0.56 }))
    };
    apply(&mut runs(), dir.path(), with(40), &no_ato, Some(&mut pilot)).unwrap();
    let cache = std::fs::read_to_string(dir.path().join(CALIBRATION_FILE)).unwrap();
    assert!(cache.contains(",jump,"), "{cache}");
    // with the spread of the pilots beside it (both sides of the jump)
    let jump = cache.lines().find(|l| l.contains(",jump,")).unwrap();
    assert!(jump.ends_with(",,0.4,0.56"), "{cache}");
    let first = calls.get();
    apply(&mut runs(), dir.path(), with(80), &no_ato, Some(&mut pilot)).unwrap();
    assert_eq!(calls.get(), first, "the jump stands");
    // a jump row without its near range was concluded at the old, wider jump width (1e-4):
    // it is searched again
    let path = dir.path().join(CALIBRATION_FILE);
    let old = cache.replace(",,0.4,0.56", ",,,");
    std::fs::write(&path, old).unwrap();
    apply(&mut runs(), dir.path(), with(80), &no_ato, Some(&mut pilot)).unwrap();
    assert!(calls.get() > first, "an old jump is searched again");
}

#[test]
fn every_pilot_of_a_search_is_written_in_order_and_a_cached_sweep_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let asked = std::cell::RefCell::new(Vec::new());
    let mut pilot = |c: &RunConfig| -> anyhow::Result<PilotOutcome> {
        asked.borrow_mut().push(c.oto.lambda);
        Ok(flops(log_response(c.oto.lambda)))
    };
    apply(
        &mut one_seed(),
        dir.path(),
        budget(8),
        &no_ato,
        Some(&mut pilot),
    )
    .unwrap();
    let path = dir.path().join(PILOTS_FILE);
    let rows: Vec<SearchPilot> = ato_train::read_csv(&path).unwrap();
    let asked = asked.borrow().clone();
    // one search (OTO's), HESSO has none
    assert_eq!(rows.len(), asked.len(), "{rows:?}");
    assert!(asked.len() >= 2, "{asked:?}");
    for (i, (row, l)) in rows.iter().zip(&asked).enumerate() {
        assert_eq!((row.method.as_str(), row.pilot), ("oto", i + 1));
        assert_eq!(row.value, *l);
        assert!((row.achieved - log_response(*l)).abs() < 1e-12, "{row:?}");
    }
    // a second sweep answered by the cache leaves the trace as it was
    let before = std::fs::read_to_string(&path).unwrap();
    let mut never = |_: &RunConfig| -> anyhow::Result<PilotOutcome> { panic!("the cache answers") };
    apply(
        &mut one_seed(),
        dir.path(),
        budget(8),
        &no_ato,
        Some(&mut never),
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}

#[test]
fn a_search_run_again_replaces_its_own_pilots_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut pilot =
        |c: &RunConfig| -> anyhow::Result<PilotOutcome> { Ok(flops(steep_response(c.oto.lambda))) };
    // two searches: ResNet-20's and ResNet-32's (two keys)
    let mut resnet32 = vec![planned(Method::Oto, 0)];
    resnet32[0].config.model.name = ato_models::ModelName::Resnet32;
    apply(
        &mut resnet32,
        dir.path(),
        budget(20),
        &no_ato,
        Some(&mut pilot),
    )
    .unwrap();
    apply(
        &mut one_seed(),
        dir.path(),
        budget(20),
        &no_ato,
        Some(&mut pilot),
    )
    .unwrap();
    let path = dir.path().join(PILOTS_FILE);
    let before: Vec<SearchPilot> = ato_train::read_csv(&path).unwrap();
    let resnet20_key = before.last().unwrap().key.clone();
    let kept: Vec<&SearchPilot> = before.iter().filter(|r| r.key != resnet20_key).collect();
    assert!(!kept.is_empty());
    // ResNet-20's searched again, closer (the steep response lands within 0.01, not 0.001):
    // its rows are the new search's only, from pilot 1
    let closer = MatchSettings {
        tolerance: 0.001,
        ..budget(20)
    };
    let asked = std::cell::Cell::new(0);
    let mut counted = |c: &RunConfig| -> anyhow::Result<PilotOutcome> {
        asked.set(asked.get() + 1);
        Ok(flops(steep_response(c.oto.lambda)))
    };
    apply(
        &mut one_seed(),
        dir.path(),
        closer,
        &no_ato,
        Some(&mut counted),
    )
    .unwrap();
    let after: Vec<SearchPilot> = ato_train::read_csv(&path).unwrap();
    let mine: Vec<usize> = after
        .iter()
        .filter(|r| r.key == resnet20_key)
        .map(|r| r.pilot)
        .collect();
    assert_eq!(mine, (1..=asked.get()).collect::<Vec<_>>(), "{after:?}");
    let others: Vec<&SearchPilot> = after.iter().filter(|r| r.key != resnet20_key).collect();
    assert_eq!(others, kept);
}

/// Issue 32: an ATO reference that moves a little (another CPU's last bits) reuses the cached
/// match without a pilot, and says so; a move beyond the band (negative control) searches again.
#[test]
fn a_match_answers_a_reference_moved_within_the_band_and_only_there() {
    let dir = tempfile::tempdir().unwrap();
    let settings = budget(8);
    let calls = std::cell::Cell::new(0);
    let mut pilot = |c: &RunConfig| -> anyhow::Result<PilotOutcome> {
        calls.set(calls.get() + 1);
        Ok(flops(log_response(c.oto.lambda)))
    };
    let at = |reference: f64| move |c: &RunConfig| (c.method == Method::Ato).then_some(reference);
    let with_ato = || {
        let mut r = one_seed();
        r.push(planned(Method::Ato, 0));
        r
    };
    // the search at 50%: λ = 0.037 lands on 50.0%
    let mut first = with_ato();
    apply(&mut first, dir.path(), settings, &at(0.5), Some(&mut pilot)).unwrap();
    let searched = calls.get();
    assert!(searched > 0);
    // ATO now lands at 50.57%: within the band, and λ's 50.0% is within 1 point of it
    let mut moved = with_ato();
    let lines = apply(
        &mut moved,
        dir.path(),
        settings,
        &at(0.5057),
        Some(&mut pilot),
    )
    .unwrap();
    assert_eq!(calls.get(), searched, "no pilot for a small move");
    assert_eq!(moved[0].config.oto.lambda, first[0].config.oto.lambda);
    assert_eq!(moved[0].config.prune.target_flops_reduction, 0.5057);
    assert_eq!(moved[0].calibration_key, first[0].calibration_key);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("searched at reference −50.00%, reused")),
        "{lines:?}"
    );
    // negative controls: moves past the band (1.2 and 1.3 points) are searched again
    for far in [0.512, 0.487] {
        let before = calls.get();
        let mut r = with_ato();
        apply(&mut r, dir.path(), settings, &at(far), Some(&mut pilot)).unwrap();
        assert!(calls.get() > before, "reference {far}: a new search");
    }
}
