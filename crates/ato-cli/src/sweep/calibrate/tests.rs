//! The knob search on fake monotone responses and the calibration cache with a fake pilot
//! runner that counts its calls.

use super::search::{search, Evaluation, KnobScale, SearchStatus};
use super::{apply, MatchSettings, PilotOutcome, SearchPilot, CALIBRATION_FILE, PILOTS_FILE};
use crate::sweep::PlannedRun;
use ato_train::{Method, RunConfig};

const LOG: KnobScale = KnobScale {
    log: true,
    lo: 1e-6,
    hi: 1e3,
};

/// r(λ) = 0.5 + 0.1·log10(λ / 0.037): linear in log λ, 0.5 at λ = 0.037.
pub(super) fn log_response(l: f64) -> f64 {
    0.5 + 0.1 * (l / 0.037).log10()
}

#[test]
fn search_brackets_by_four_then_lands_by_secant() {
    let mut seen = Vec::new();
    let mut f = |l: f64, _: usize| -> anyhow::Result<Evaluation> {
        seen.push(l);
        Ok(Evaluation::one(log_response(l)))
    };
    let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 8).unwrap();
    // 1e-3 → 0.343, 4e-3 → 0.403, 1.6e-2 → 0.464, 6.4e-2 → 0.524 (bracket), then the secant
    // in log λ is exact on a log-linear response: λ = 0.037
    assert_eq!(out.pilots, 5, "{seen:?}");
    assert!((seen[3] - 6.4e-2).abs() < 1e-12);
    assert!((out.value - 0.037).abs() < 1e-9, "{out:?}");
    assert_eq!(out.status, SearchStatus::Matched);
    // no other pilot within 0.1% of λ = 0.037
    assert_eq!(out.near, None);
}

#[test]
fn search_says_when_the_bound_cannot_reach_the_reference() {
    // saturates at 30%: λ climbs by ×4 to the bound 1e3 and stops there
    let mut f = |l: f64, _: usize| -> anyhow::Result<Evaluation> {
        Ok(Evaluation::one((0.3 * l / (l + 1.0)).min(0.3)))
    };
    let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 20).unwrap();
    assert_eq!(out.status, SearchStatus::Unreachable);
    assert!((out.value - 1e3).abs() < 1e-6, "{out:?}");
    // ⌈log4(1e6)⌉ = 10 steps up from 1e-3, plus the start
    assert_eq!(out.pilots, 11);
}

#[test]
fn search_out_of_pilots_keeps_the_closest() {
    let mut f =
        |l: f64, _: usize| -> anyhow::Result<Evaluation> { Ok(Evaluation::one(log_response(l))) };
    let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 3).unwrap();
    assert_eq!(out.status, SearchStatus::Closest);
    assert!((out.value - 1.6e-2).abs() < 1e-12, "{out:?}");
}

/// A group-lasso-like response: flat at zero up to λ ≈ 0.14, 90% by λ ≈ 0.26, 50% at
/// λ = 0.19·e^{0.05·ln(1.25)} ≈ 0.1921 (a logistic in log λ of scale 0.05).
fn steep_response(l: f64) -> f64 {
    0.9 / (1.0 + (-(l / 0.19).ln() / 0.05).exp())
}

#[test]
fn a_steep_response_flat_at_zero_needs_more_than_six_pilots_and_lands_in_nine() {
    // the ×4 bracket from 1e-3 ends at [0.064 (0.000), 0.256 (0.898)] after 5 pilots; the
    // safeguarded secant then lands in 4 more. With the old budget of 6 the search ends
    // "closest" at 0.256 (+40 points), as it did on 1,437 digits
    let mut seen = Vec::new();
    let mut f = |l: f64, _: usize| -> anyhow::Result<Evaluation> {
        seen.push((l, steep_response(l)));
        Ok(Evaluation::one(steep_response(l)))
    };
    let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 12).unwrap();
    assert_eq!(out.status, SearchStatus::Matched, "{seen:?}");
    assert!((out.achieved - 0.5).abs() <= 0.01, "{out:?}");
    assert_eq!(out.pilots, 9, "{seen:?}");
    let mut f =
        |l: f64, _: usize| -> anyhow::Result<Evaluation> { Ok(Evaluation::one(steep_response(l))) };
    let short = search(&mut f, 1e-3, 0.5, 0.01, LOG, 6).unwrap();
    assert_eq!(short.status, SearchStatus::Closest);
}

#[test]
fn a_response_that_jumps_across_the_reference_is_called_a_jump() {
    // 40% below λ = 0.2095, 56% from it: the bracket shrinks to < 1e-6 in log λ and stops
    let jump = |l: f64| if l < 0.2095 { 0.40 } else { 0.56 };
    let mut f = |l: f64, _: usize| -> anyhow::Result<Evaluation> { Ok(Evaluation::one(jump(l))) };
    let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 40).unwrap();
    assert_eq!(out.status, SearchStatus::Jump, "{out:?}");
    assert!(out.pilots < 30, "{out:?}");
    assert!((out.value / 0.2095).ln().abs() < 1e-6, "{out:?}");
    // the pilots near the end saw both sides of the jump
    assert_eq!(out.near, Some((0.40, 0.56)), "{out:?}");
    // negative controls: continuous responses as steep as OTO's on 1,500 images (40% → 56%
    // within a 4.3e-5 bracket in log λ; these cliffs are 1e-5 and 4e-6 wide, narrower than the
    // old jump width 1e-4) and steeper are matched
    for steepness in [1e-3, 1e-5, 4e-6] {
        let cliff = |l: f64| 0.40 + 0.16 * ((l / 0.2095).ln() / steepness + 0.5).clamp(0.0, 1.0);
        let mut f =
            |l: f64, _: usize| -> anyhow::Result<Evaluation> { Ok(Evaluation::one(cliff(l))) };
        let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 40).unwrap();
        assert_eq!(out.status, SearchStatus::Matched, "{steepness}: {out:?}");
    }
}

#[test]
fn an_evaluation_that_takes_several_pilots_counts_them_all() {
    // every evaluation takes 3 pilots: a budget of 7 allows three evaluations (3 + 3 + 1 left)
    let mut lefts = Vec::new();
    let mut f = |l: f64, left: usize| -> anyhow::Result<Evaluation> {
        lefts.push(left);
        Ok(Evaluation {
            response: log_response(l),
            pilots: 3.min(left),
        })
    };
    let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 7).unwrap();
    assert_eq!(lefts, vec![7, 4, 1]);
    assert_eq!(out.pilots, 7);
    assert_eq!(out.status, SearchStatus::Closest);
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

fn runs() -> Vec<PlannedRun> {
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

/// A fake DHSPG: it reaches its group-sparsity target only when λ ≥ 0.3 (else it zeroes
/// nothing), and the FLOPs reduction is 0.8 × the group sparsity.
fn dhspg_pilot(c: &RunConfig) -> PilotOutcome {
    let lambda = c.otov2_lambda();
    let sparsity = if lambda >= 0.3 {
        c.otov2.target_group_sparsity
    } else {
        0.0
    };
    PilotOutcome {
        flops_reduction: 0.8 * sparsity,
        group_sparsity: Some(sparsity),
    }
}

/// OTOv2's search from λ = `start` against the fake DHSPG: the (target, λ) of every pilot,
/// the run as calibrated, and its row of the cache.
fn otov2_search(start: f64) -> (Vec<(f64, f64)>, RunConfig, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut asked = Vec::new();
    let mut pilot = |c: &RunConfig| -> anyhow::Result<PilotOutcome> {
        asked.push((c.otov2.target_group_sparsity, c.otov2_lambda()));
        Ok(dhspg_pilot(c))
    };
    let mut planned_runs = vec![planned(Method::Otov2, 0)];
    planned_runs[0].config.otov2.lambda = Some(start);
    apply(
        &mut planned_runs,
        dir.path(),
        budget(10),
        &no_ato,
        Some(&mut pilot),
    )
    .unwrap();
    let cache = std::fs::read_to_string(dir.path().join(CALIBRATION_FILE)).unwrap();
    let row = cache.lines().nth(1).unwrap().to_string();
    (asked, planned_runs.remove(0).config, row)
}

#[test]
fn otov2_raises_its_lambda_when_a_pilot_falls_short_of_its_own_target() {
    let (asked, run, row) = otov2_search(0.05);
    // target 0.5: λ 0.05 and 0.2 fall short, 0.8 reaches it (40% FLOPs↓); then the target
    // moves at λ 0.8: 0.65 → 52%, and the secant 0.625 → 50%
    let lambdas: Vec<f64> = asked.iter().map(|a| a.1).collect();
    assert_eq!(lambdas.len(), 5, "{asked:?}");
    for (got, want) in lambdas.iter().zip([0.05, 0.2, 0.8, 0.8, 0.8]) {
        assert!((got - want).abs() < 1e-12, "{asked:?}");
    }
    assert!(
        (run.otov2.target_group_sparsity - 0.625).abs() < 1e-9,
        "{asked:?}"
    );
    assert!((run.otov2_lambda() - 0.8).abs() < 1e-12);
    // no other pilot within 0.001 of the target 0.625: no spread
    assert!(row.ends_with(",matched,5,0.8,,"), "{row}");

    // negative control: a λ that already reaches the target is never raised
    let (asked, run, row) = otov2_search(0.4);
    assert!(asked.iter().all(|a| a.1 == 0.4), "{asked:?}");
    assert_eq!(run.otov2.lambda, Some(0.4));
    assert!(row.ends_with(",matched,3,,,"), "{row}");
}

#[test]
fn a_cache_written_before_the_lambda_column_is_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let settings = budget(8);
    // write the current cache, then drop its last three columns (lambda, near_low, near_high)
    // as an older binary wrote it
    let mut pilot =
        |c: &RunConfig| -> anyhow::Result<PilotOutcome> { Ok(flops(log_response(c.oto.lambda))) };
    apply(&mut runs(), dir.path(), settings, &no_ato, Some(&mut pilot)).unwrap();
    let path = dir.path().join(CALIBRATION_FILE);
    let old: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| format!("{}\n", l.rsplitn(4, ',').last().unwrap()))
        .collect();
    assert!(old.starts_with("method,key,knob,value,achieved,reference,status,pilots\n"));
    std::fs::write(&path, old).unwrap();
    let mut never = |_: &RunConfig| -> anyhow::Result<PilotOutcome> { panic!("the cache answers") };
    let mut again = runs();
    apply(&mut again, dir.path(), settings, &no_ato, Some(&mut never)).unwrap();
    assert!((again[0].config.oto.lambda - 0.037).abs() < 1e-9);
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
