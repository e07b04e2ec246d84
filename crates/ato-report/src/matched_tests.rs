//! The report's matched-FLOPs pairing and search lookup.

use super::super::markdown::tests::run;
use super::*;
use ato_sweep::calibrate::CalibrationRow;

fn searched(status: SearchStatus) -> CalibrationRow {
    CalibrationRow {
        method: Method::Oto,
        key: "oto-resnet20-s0-00000000-p15".into(),
        knob: "oto.lambda".into(),
        value: 0.20956,
        achieved: 0.586,
        reference: 0.51,
        status,
        pilots: 15,
        lambda: None,
        near_low: None,
        near_high: None,
    }
}

/// The main ATO row at 51% and one `method` row at `flops`, run at the knob values of
/// [`searched`] (λ 0.20956 for OTO, target 0.626 for OTOv2).
fn ato_and(method: &str, flops: f64) -> [RunRecord; 2] {
    let mut ato = run("ato-a", Some(true));
    ato.summary.flops_reduction = Some(0.51);
    let mut other = run(&format!("{method}-a"), Some(true));
    other.summary.method = method.parse().unwrap();
    other.summary.lambda = Some(0.20956);
    other.summary.target_group_sparsity = Some(0.626);
    other.summary.flops_reduction = Some(flops);
    [ato, other]
}

#[test]
fn a_search_that_cannot_land_says_why_beside_the_gap() {
    let runs = ato_and("oto", 0.586);
    let mut report = Report::new("t", &runs);
    assert_eq!(report.match_text(&runs[0]), "reference");
    // out of pilots: the gap alone
    report.calibration = vec![searched(SearchStatus::Closest)];
    assert_eq!(report.match_text(&runs[1]), "gap +7.6 pt");
    report.calibration = vec![searched(SearchStatus::Jump)];
    assert_eq!(
        report.match_text(&runs[1]),
        "no λ tried lands (the response jumps or scatters): gap +7.6 pt"
    );
    report.calibration = vec![searched(SearchStatus::Unreachable)];
    assert_eq!(
        report.match_text(&runs[1]),
        "cannot reach the budget: gap +7.6 pt"
    );
    // a search for another reference, another model, or another λ (a stale row of
    // settings the sweep no longer runs) says nothing about this row
    let mut other = searched(SearchStatus::Jump);
    other.reference = 0.45;
    let mut other_model = searched(SearchStatus::Jump);
    other_model.key = "oto-resnet56-s0-00000000-p15".into();
    let mut stale = searched(SearchStatus::Jump);
    stale.value = 0.3;
    for row in [other, other_model, stale] {
        report.calibration = vec![row];
        assert_eq!(report.match_text(&runs[1]), "gap +7.6 pt");
    }
}

#[test]
fn a_recorded_calibration_key_is_joined_and_a_look_alike_row_is_not() {
    let mut runs = ato_and("oto", 0.586);
    runs[1].summary.calibration_key = Some("oto-resnet20-s0-11111111-p15-b0.5000".into());
    let mut report = Report::new("t", &runs);
    // the old derivation would take this row (same method, model, reference and λ), but
    // the run names another search
    report.calibration = vec![searched(SearchStatus::Jump)];
    assert_eq!(report.match_text(&runs[1]), "gap +7.6 pt");
    // its own search, found by key even where the derivation would fail (another λ)
    let mut own = searched(SearchStatus::Unreachable);
    own.key = "oto-resnet20-s0-11111111-p15-b0.5000".into();
    own.value = 0.3;
    report.calibration = vec![searched(SearchStatus::Jump), own];
    assert_eq!(
        report.match_text(&runs[1]),
        "cannot reach the budget: gap +7.6 pt"
    );
}

#[test]
fn a_match_whose_neighbours_spread_says_so() {
    let runs = ato_and("oto", 0.513);
    let mut report = Report::new("t", &runs);
    let mut row = searched(SearchStatus::Matched);
    (row.near_low, row.near_high) = (Some(0.405), Some(0.565));
    report.calibration = vec![row.clone()];
    assert_eq!(
        report.match_text(&runs[1]),
        "matched (+0.3); pilots within 0.1% of λ = 0.2095600000 gave 40.5–56.5%"
    );
    // negative controls: neighbours within two points, or none, add nothing
    (row.near_low, row.near_high) = (Some(0.505), Some(0.52));
    report.calibration = vec![row.clone()];
    assert_eq!(report.match_text(&runs[1]), "matched (+0.3)");
    (row.near_low, row.near_high) = (None, None);
    report.calibration = vec![row];
    assert_eq!(report.match_text(&runs[1]), "matched (+0.3)");
}

#[test]
fn the_search_figure_shows_this_models_searches_only() {
    use ato_sweep::calibrate::SearchPilot;
    let runs = ato_and("oto", 0.513);
    let mut report = Report::new("t", &runs);
    let row = searched(SearchStatus::Matched);
    let pilot = |key: &str, pilot: usize, achieved: f64| SearchPilot {
        method: Method::Oto,
        key: key.into(),
        pilot,
        value: 0.1 * pilot as f64,
        lambda: None,
        achieved,
    };
    report.calibration = vec![row.clone()];
    let dir = tempfile::tempdir().unwrap();
    let group: Vec<&RunRecord> = runs.iter().collect();
    let draw = |report: &Report<'_>| {
        report
            .search_figure(dir.path(), "tag", ("resnet20", "synth10"), &group)
            .unwrap()
    };
    // no pilots recorded (a cache written before the file): no figure
    assert!(draw(&report).is_none());
    report.pilots = vec![pilot(&row.key, 1, 0.2), pilot(&row.key, 2, 0.513)];
    let fig = draw(&report).expect("a figure");
    assert_eq!(fig.link, "figures/t/searches_tag.png");
    assert!(dir.path().join("searches_tag.png").is_file());
    assert!(fig
        .note
        .unwrap()
        .contains("minus the reference its search aimed at"));
    // negative control: the same pilots under another model's key are not this figure's
    let mut other = row.clone();
    other.key = "oto-resnet56-s0-00000000-p15".into();
    report.calibration = vec![other.clone()];
    report.pilots = vec![pilot(&other.key, 1, 0.2)];
    assert!(draw(&report).is_none());
}

#[test]
fn an_otov2_search_names_its_target_not_a_lambda() {
    let runs = ato_and("otov2", 0.586);
    let mut report = Report::new("t", &runs);
    let mut row = searched(SearchStatus::Jump);
    (row.method, row.knob, row.value) =
        (Method::Otov2, "otov2.target_group_sparsity".into(), 0.626);
    row.key = "otov2-resnet20-s0-00000000-p15".into();
    (row.near_low, row.near_high) = (Some(0.47), Some(0.55));
    report.calibration = vec![row];
    assert_eq!(
        report.match_text(&runs[1]),
        "no target tried lands (the response jumps or scatters): gap +7.6 pt; pilots within \
         0.001 of the group-sparsity target 0.6260 gave 47.0–55.0%"
    );
}

/// Issue 32: a match the sweep reused at a reference that moved within the band is named.
#[test]
fn a_match_reused_at_a_moved_reference_is_named() {
    let mut runs = ato_and("oto", 0.586);
    runs[1].summary.calibration_key = Some("oto-resnet20-s0-00000000-p15".into());
    runs[0].summary.flops_reduction = Some(0.5057);
    runs[1].summary.target_flops_reduction = Some(0.5057);
    let mut report = Report::new("t", &runs);
    let mut row = searched(SearchStatus::Matched);
    row.reference = 0.5;
    report.calibration = vec![row.clone()];
    assert!(
        report
            .match_text(&runs[1])
            .ends_with("; λ searched at −50.00%, reused"),
        "{}",
        report.match_text(&runs[1])
    );
    // negative control: searched at the run's own reference, nothing is said
    row.reference = 0.5057;
    report.calibration = vec![row];
    assert!(!report.match_text(&runs[1]).contains("reused"));
}
