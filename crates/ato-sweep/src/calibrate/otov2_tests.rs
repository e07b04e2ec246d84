//! OTOv2's search: λ raised ×4 while a pilot falls short of its own group-sparsity target,
//! never past the authors' range, and a cache written before the `lambda` column.

use super::tests::{budget, flops, log_response, no_ato, planned, runs};
use super::{apply, PilotOutcome, CALIBRATION_FILE, OTOV2_MAX_LAMBDA};
use ato_train::{Method, RunConfig};

/// A fake DHSPG: it reaches its group-sparsity target only when λ ≥ `threshold` (else it
/// zeroes nothing), and the FLOPs reduction is 0.8 × the group sparsity.
fn dhspg_pilot(c: &RunConfig, threshold: f64) -> PilotOutcome {
    let sparsity = if c.otov2_lambda() >= threshold {
        c.otov2.target_group_sparsity
    } else {
        0.0
    };
    PilotOutcome {
        flops_reduction: 0.8 * sparsity,
        group_sparsity: Some(sparsity),
    }
}

/// OTOv2's search from λ = `start` against the fake DHSPG, with a cache already in `dir`
/// when given: the (target, λ) of every pilot, the run as calibrated, and its cache row's
/// (status, pilots, λ) columns.
fn otov2_search(
    start: f64,
    threshold: f64,
    dir: &std::path::Path,
) -> (Vec<(f64, f64)>, RunConfig, Vec<String>) {
    let mut asked = Vec::new();
    let mut pilot = |c: &RunConfig| -> anyhow::Result<PilotOutcome> {
        asked.push((c.otov2.target_group_sparsity, c.otov2_lambda()));
        Ok(dhspg_pilot(c, threshold))
    };
    let mut planned_runs = vec![planned(Method::Otov2, 0)];
    planned_runs[0].config.otov2.lambda = Some(start);
    apply(
        &mut planned_runs,
        dir,
        budget(10),
        &no_ato,
        Some(&mut pilot),
    )
    .unwrap();
    let cache = std::fs::read_to_string(dir.join(CALIBRATION_FILE)).unwrap();
    let cols: Vec<String> = cache
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    (asked, planned_runs.remove(0).config, cols[6..9].to_vec())
}

#[test]
fn otov2_raises_its_lambda_when_a_pilot_falls_short_of_its_own_target() {
    let dir = tempfile::tempdir().unwrap();
    let (asked, run, row) = otov2_search(5e-4, 3e-3, dir.path());
    // target 0.5: λ 5e-4 and 2e-3 fall short, 8e-3 reaches it (40% FLOPs↓); then the target
    // moves at λ 8e-3: 0.65 → 52%, and the secant 0.625 → 50%
    let lambdas: Vec<f64> = asked.iter().map(|a| a.1).collect();
    assert_eq!(lambdas.len(), 5, "{asked:?}");
    for (got, want) in lambdas.iter().zip([5e-4, 2e-3, 8e-3, 8e-3, 8e-3]) {
        assert!((got - want).abs() < 1e-12, "{asked:?}");
    }
    assert!(
        (run.otov2.target_group_sparsity - 0.625).abs() < 1e-9,
        "{asked:?}"
    );
    assert!((run.otov2_lambda() - 8e-3).abs() < 1e-12);
    assert_eq!(row[..2], ["matched", "5"], "{row:?}");
    assert!(
        (row[2].parse::<f64>().unwrap() - 8e-3).abs() < 1e-12,
        "{row:?}"
    );

    // negative control: a λ that already reaches the target is never raised
    let dir = tempfile::tempdir().unwrap();
    let (asked, run, row) = otov2_search(4e-3, 3e-3, dir.path());
    assert!(asked.iter().all(|a| a.1 == 4e-3), "{asked:?}");
    assert_eq!(run.otov2.lambda, Some(4e-3));
    assert_eq!(row, ["matched", "3", ""], "{row:?}");
}

#[test]
fn otov2_never_raises_its_lambda_past_the_authors_range() {
    // a DHSPG that needs λ ≥ 0.3 to reach any target: from 1e-3 the search raises λ to 4e-3
    // (×4 again would be 1.6e-2 > OTOV2_MAX_LAMBDA = 1e-2) and the budget stays out of reach
    let dir = tempfile::tempdir().unwrap();
    let (asked, run, row) = otov2_search(1e-3, 0.3, dir.path());
    assert!(asked.iter().all(|a| a.1 <= OTOV2_MAX_LAMBDA), "{asked:?}");
    assert!(
        asked.iter().any(|a| (a.1 - 4e-3).abs() < 1e-12),
        "{asked:?}"
    );
    assert!(run.otov2_lambda() <= OTOV2_MAX_LAMBDA);
    assert_ne!(row[0], "matched", "{row:?}");
    // a cached match whose λ was raised past the bound (an older binary went up to 10) is
    // run again rather than reused
    let path = dir.path().join(CALIBRATION_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut cols: Vec<String> = lines[1].split(',').map(String::from).collect();
    cols[4] = cols[5].clone();
    cols[6] = "matched".into();
    cols[8] = "0.256".into();
    lines[1] = cols.join(",");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let (asked, run, _) = otov2_search(1e-3, 0.3, dir.path());
    assert!(!asked.is_empty(), "the stale row was reused");
    assert!(run.otov2_lambda() <= OTOV2_MAX_LAMBDA);
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
