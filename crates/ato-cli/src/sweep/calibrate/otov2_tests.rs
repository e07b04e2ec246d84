//! OTOv2's search: λ raised ×4 while a pilot falls short of its own group-sparsity target,
//! and a cache written before the `lambda` column.

use super::tests::{budget, flops, log_response, no_ato, planned, runs};
use super::{apply, PilotOutcome, CALIBRATION_FILE};
use ato_train::{Method, RunConfig};

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
