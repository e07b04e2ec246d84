//! By-construction rows and HESSO's knob: a by-construction row records what its run
//! measured, and HESSO at a group count is matched by searching its share.

use super::tests::{budget, flops, log_response, no_ato, one_seed, planned};
use super::{apply, PilotOutcome, CALIBRATION_FILE};
use ato_train::{Method, RunConfig};

#[test]
fn a_by_construction_row_records_what_its_run_measured() {
    let dir = tempfile::tempdir().unwrap();
    let mut pilot =
        |c: &RunConfig| -> anyhow::Result<PilotOutcome> { Ok(flops(log_response(c.oto.lambda))) };
    let mut runs = one_seed();
    apply(&mut runs, dir.path(), budget(8), &no_ato, Some(&mut pilot)).unwrap();
    let read = || -> Vec<super::CalibrationRow> {
        ato_train::read_csv(&dir.path().join(CALIBRATION_FILE)).unwrap()
    };
    let hesso = |rows: &[super::CalibrationRow]| {
        rows.iter()
            .find(|r| r.method == Method::Hesso)
            .unwrap()
            .achieved
    };
    // before the run: the reference it aims at
    assert_eq!(hesso(&read()), 0.5);
    // a run that has not finished changes nothing
    super::record_measured(&runs, dir.path(), &|_| None).unwrap();
    assert_eq!(hesso(&read()), 0.5);
    // HESSO finished at 51.3%: its row says so; OTO's searched row is left as the search wrote
    let oto_before = read()
        .iter()
        .find(|r| r.method == Method::Oto)
        .unwrap()
        .clone();
    let measured = |c: &RunConfig| (c.method == Method::Hesso).then_some(0.513);
    super::record_measured(&runs, dir.path(), &measured).unwrap();
    assert_eq!(hesso(&read()), 0.513);
    assert_eq!(
        read().iter().find(|r| r.method == Method::Oto).unwrap(),
        &oto_before
    );
    // and the cache still answers the next sweep by the reference
    let mut never = |_: &RunConfig| -> anyhow::Result<PilotOutcome> { panic!("the cache answers") };
    let mut again = one_seed();
    apply(&mut again, dir.path(), budget(8), &no_ato, Some(&mut never)).unwrap();
    assert_eq!(again[1].config.prune.target_flops_reduction, 0.5);
}

#[test]
fn hesso_at_a_group_count_is_matched_by_searching_its_share() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = vec![planned(Method::Hesso, 0)];
    runs[0].config.hesso.target_group_sparsity = Some(0.5);
    // a fake HESSO whose FLOPs reduction is 0.8 × its group share: 0.5 lands at 0.625
    let mut asked = Vec::new();
    let mut pilot = |c: &RunConfig| -> anyhow::Result<PilotOutcome> {
        let share = c.hesso.target_group_sparsity.unwrap();
        asked.push(share);
        Ok(flops(0.8 * share))
    };
    let lines = apply(&mut runs, dir.path(), budget(8), &no_ato, Some(&mut pilot)).unwrap();
    assert!(asked.len() >= 2, "searched, not by construction: {asked:?}");
    let share = runs[0].config.hesso.target_group_sparsity.unwrap();
    assert!((0.8 * share - 0.5).abs() <= 0.01, "{share} {lines:?}");
    // the FLOPs target stays the budget the run is judged against
    assert_eq!(runs[0].config.prune.target_flops_reduction, 0.5);
    let cache = std::fs::read_to_string(dir.path().join(CALIBRATION_FILE)).unwrap();
    assert!(cache.contains(",hesso.target_group_sparsity,"), "{cache}");
    // negative control: without the share HESSO is matched by construction, no pilot
    let mut by_construction = vec![planned(Method::Hesso, 0)];
    let mut never = |_: &RunConfig| -> anyhow::Result<PilotOutcome> { panic!("no pilot") };
    let other = tempfile::tempdir().unwrap();
    apply(
        &mut by_construction,
        other.path(),
        budget(8),
        &no_ato,
        Some(&mut never),
    )
    .unwrap();
    assert_eq!(by_construction[0].config.hesso.target_group_sparsity, None);
}
