//! A run that misses its reference after short pilots is searched again at full length.

use super::research::missed;
use super::tests::{budget, log_response, one_seed};
use super::{apply, search_missed_again, MatchSettings, PilotOutcome};
use ato_train::{Method, RunConfig};

/// OTO's FLOPs reduction: the log response, `shift` higher for a run of the full 4 epochs than
/// for the 2-epoch pilots.
fn response(c: &RunConfig, shift: f64) -> f64 {
    log_response(c.oto.lambda) + if c.train.epochs == 4 { shift } else { 0.0 }
}

fn short() -> MatchSettings {
    MatchSettings {
        pilot_epochs: Some(2),
        ..budget(12)
    }
}

/// The runs after a search with 2-epoch pilots, and the FLOPs a finished run reports.
fn searched_with_short_pilots(dir: &std::path::Path, shift: f64) -> Vec<crate::PlannedRun> {
    let mut runs = one_seed();
    let mut pilot = |c: &RunConfig| -> anyhow::Result<PilotOutcome> {
        Ok(super::tests::flops(response(c, shift)))
    };
    let none = |_: &RunConfig| None;
    apply(&mut runs, dir, short(), &none, Some(&mut pilot)).unwrap();
    runs
}

#[test]
fn a_run_off_its_reference_after_short_pilots_is_searched_again_at_full_length() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = searched_with_short_pilots(dir.path(), 0.05);
    let short_lambda = runs[0].config.oto.lambda;
    // the 4-epoch run lands 5 points over its reference
    let achieved = |c: &RunConfig| (c.method == Method::Oto).then(|| response(c, 0.05));
    assert_eq!(missed(&runs, short(), &achieved), [0]);
    let mut asked = Vec::new();
    let mut pilot = |c: &RunConfig| -> anyhow::Result<PilotOutcome> {
        asked.push((c.train.epochs, c.oto.lambda));
        Ok(super::tests::flops(response(c, 0.05)))
    };
    let lines = search_missed_again(&mut runs, dir.path(), short(), &achieved, &mut pilot).unwrap();
    assert!(lines[0].starts_with("1 run(s) missed"), "{lines:?}");
    // full-length pilots, the first of them the run as it ran
    assert!(asked.iter().all(|a| a.0 == 4), "{asked:?}");
    assert_eq!(asked[0].1, short_lambda);
    let run = &runs[0].config;
    assert!(
        (response(run, 0.05) - 0.5).abs() <= 0.01,
        "{}",
        run.oto.lambda
    );
    assert_eq!(
        (run.train.epochs, run.prune.target_flops_reduction),
        (4, 0.5)
    );
    assert!(runs[0].calibration_key.as_deref().unwrap().contains("-p4-"));
    // the HESSO run is left as the first search set it
    assert_eq!(runs[1].config.method, Method::Hesso);

    // a second sweep: the same miss, answered by the cache without a pilot
    let mut again = searched_with_short_pilots(dir.path(), 0.05);
    let mut never = |_: &RunConfig| -> anyhow::Result<PilotOutcome> { panic!("cached") };
    search_missed_again(&mut again, dir.path(), short(), &achieved, &mut never).unwrap();
    assert_eq!(again[0].config.oto.lambda, run.oto.lambda);
}

#[test]
fn nothing_is_searched_again_when_the_runs_land_on_their_reference_or_pilots_are_full_length() {
    // negative controls: the same response at every length, and full-length pilots
    let dir = tempfile::tempdir().unwrap();
    let runs = searched_with_short_pilots(dir.path(), 0.0);
    let achieved = |c: &RunConfig| (c.method == Method::Oto).then(|| response(c, 0.0));
    assert!(missed(&runs, short(), &achieved).is_empty());
    let off = |c: &RunConfig| (c.method == Method::Oto).then(|| response(c, 0.05));
    assert_eq!(missed(&runs, short(), &off), [0]);
    assert!(missed(&runs, budget(12), &off).is_empty());
}
