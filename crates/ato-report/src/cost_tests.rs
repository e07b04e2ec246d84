//! ATO's cost rows: ratios by hand, the goal on the interval, pairing by seed and machine.

use super::super::markdown::tests::run;
use super::*;

fn timed(method: Method, seed: u64, wall: f64, budget: f64) -> RunRecord {
    let mut r = run(&format!("{method}-{budget}-s{seed}"), Some(true));
    r.summary.method = method;
    r.summary.seed = seed;
    r.summary.wall_seconds = Some(wall);
    r.summary.target_flops_reduction = (method == Method::Ato).then_some(budget);
    r
}

fn refs(v: &[RunRecord]) -> Vec<&RunRecord> {
    v.iter().collect()
}

#[test]
fn ratios_by_hand_and_the_goal_judged_on_the_interval() {
    // per-seed ratios 1.0, 1.1, 1.2: logs 0, 0.09531, 0.18232, mean 0.09254, sd 0.09119,
    // t(0.975, 2) = 4.303: exp(0.09254) = 1.09696, exp(0.09254 ∓ 0.22656) = 0.87458, 1.37588
    let dense: Vec<_> = (0..3).map(|s| timed(Method::Dense, s, 10.0, 0.0)).collect();
    let ato: Vec<_> = (0..3)
        .map(|s| timed(Method::Ato, s, 10.0 + s as f64, 0.5))
        .collect();
    let c = WallCost::of(&refs(&ato), &refs(&dense), Some(0.5)).unwrap();
    assert!((c.ratio_of_means - 1.1).abs() < 1e-12);
    let p = c.per_seed.unwrap();
    let (lo, hi) = p.interval.unwrap();
    assert_eq!(p.n, 3);
    // the geometric mean, below the arithmetic 1.1 (a slow dense run does not pull it up)
    assert!((p.geometric_mean - 1.096_961).abs() < 1e-6, "{p:?}");
    assert!(
        (lo - 0.874_583).abs() < 1e-6 && (hi - 1.375_884).abs() < 1e-6,
        "{p:?}"
    );
    assert_eq!(c.per_seed_text(), "1.097× [0.875, 1.376] (n = 3)");
    // the interval holds 1.15: met by the estimate only; with ratios 1.06, 1.16, 1.26
    // (geometric mean 1.157) missed by it
    assert_eq!(c.goal(), Goal::MetByEstimate);
    let dearer: Vec<_> = (0..3)
        .map(|s| timed(Method::Ato, s, 10.6 + s as f64, 0.5))
        .collect();
    let c = WallCost::of(&refs(&dearer), &refs(&dense), Some(0.5)).unwrap();
    assert_eq!(c.goal(), Goal::MissedByEstimate);
}

#[test]
fn a_tight_interval_meets_or_misses_and_one_seed_says_it_has_none() {
    let dense: Vec<_> = (0..4).map(|s| timed(Method::Dense, s, 10.0, 0.0)).collect();
    let at = |base: f64| -> Vec<RunRecord> {
        (0..4)
            .map(|s| timed(Method::Ato, s, base + 0.01 * s as f64, 0.5))
            .collect()
    };
    let (cheap, dear) = (at(10.5), at(12.5));
    let cost = |a: &[RunRecord], d: &[RunRecord]| WallCost::of(&refs(a), &refs(d), None);
    assert_eq!(cost(&cheap, &dense).unwrap().goal(), Goal::Met);
    // negative control: the same runs 2 s dearer miss
    assert_eq!(cost(&dear, &dense).unwrap().goal(), Goal::Missed);
    let one = cost(&dear[..1], &dense[..1]).unwrap();
    assert_eq!(one.goal(), Goal::MissedOneSeed);
    assert_eq!(one.per_seed_text(), "1.250× (n = 1)");
    assert_eq!(
        one.line(),
        "ATO/dense wall time, synth10 resnet20, all budgets: 1.250× (n = 1), ratio of \
         means 1.250×; ≤ 1.15×: missed (one seed, no interval)"
    );
    // a seed without a dense partner is not paired: the ratio of means alone, and it says
    // so; no wall time on a side gives no row
    let other = [timed(Method::Ato, 9, 11.0, 0.5)];
    let unpaired = cost(&other, &dense).unwrap();
    assert!(unpaired.per_seed.is_none());
    assert_eq!(unpaired.goal(), Goal::MetUnpaired);
    let far = [timed(Method::Ato, 9, 12.0, 0.5)];
    assert_eq!(cost(&far, &dense).unwrap().goal(), Goal::MissedUnpaired);
    let mut blank = timed(Method::Dense, 0, 1.0, 0.0);
    blank.summary.wall_seconds = None;
    assert!(cost(&cheap, &[blank]).is_none());
}

/// A seed whose ATO and dense runs ran on different machines (a sharded sweep) is left
/// out of the per-seed ratios and counted; with no seed paired on one machine the row
/// judges nothing. (Negative control: the same runs on one machine pair all three seeds.)
#[test]
fn seeds_whose_runs_ran_on_different_machines_are_not_paired() {
    let on = |mut r: RunRecord, m: &str| {
        r.machine = Some(m.to_string());
        r
    };
    let dense: Vec<_> = (0..3)
        .map(|s| on(timed(Method::Dense, s, 10.0, 0.0), "A"))
        .collect();
    // seed s's ATO run on machine `machine(s)`
    let ato_on = |machine: &dyn Fn(u64) -> &'static str| -> Vec<RunRecord> {
        (0..3)
            .map(|s| {
                on(
                    timed(Method::Ato, s, 10.0 + 5.0 * s as f64, 0.5),
                    machine(s),
                )
            })
            .collect()
    };
    let ato = ato_on(&|s| if s == 2 { "B" } else { "A" });
    let c = WallCost::of(&refs(&ato), &refs(&dense), Some(0.5)).unwrap();
    let p = c.per_seed.unwrap();
    // seeds 0 and 1: ratios 1.0 and 1.5, geometric mean √1.5
    assert_eq!((p.n, c.cross_machine_seeds, c.machines), (2, 1, 2));
    assert!((p.geometric_mean - 1.5f64.sqrt()).abs() < 1e-12, "{p:?}");
    assert!(
        c.line()
            .contains("1 seed(s) left out: ATO and dense on different machines"),
        "{}",
        c.line()
    );
    let one_machine = ato_on(&|_| "A");
    let c = WallCost::of(&refs(&one_machine), &refs(&dense), Some(0.5)).unwrap();
    assert_eq!((c.per_seed.unwrap().n, c.cross_machine_seeds), (3, 0));
    // every ATO run elsewhere: nothing paired, nothing judged
    let elsewhere = ato_on(&|_| "B");
    let c = WallCost::of(&refs(&elsewhere), &refs(&dense), Some(0.5)).unwrap();
    assert!(c.per_seed.is_none());
    assert_eq!((c.goal(), c.cross_machine_seeds), (Goal::NotJudged, 3));
    // a resumed run's label names both machines and matches neither
    let rec = |model: &str| ato_train::MachineRecord {
        from_epoch: 0,
        cpu_model: model.into(),
        cpu_flags: vec!["avx2".into()],
        kernel_backend: "fast".into(),
        kernel_simd: "avx2+fma".into(),
        threads: 2,
        device: "cpu".into(),
        mode: "portable".into(),
        ato_version: "0".into(),
    };
    let resumed = crate::timing_machine(&[rec("X"), rec("Y")]).unwrap();
    assert!(
        resumed.starts_with("resumed on several machines: X ["),
        "{resumed}"
    );
    assert_eq!(
        crate::timing_machine(&[rec("X"), rec("X")]),
        crate::timing_machine(&[rec("X")])
    );
    assert_eq!(crate::timing_machine(&[]), None);
}

#[test]
fn the_report_gives_a_row_per_budget_and_one_over_all() {
    let mut runs = Vec::new();
    for s in 0..3 {
        runs.push(timed(Method::Dense, s, 10.0, 0.0));
        runs.push(timed(Method::Ato, s, 10.0 + 0.1 * s as f64, 0.5));
        runs.push(timed(Method::Ato, s, 12.0 + 0.1 * s as f64, 0.7));
        // a shorter ATO run is not compared with the dense runs' length
        let mut short = timed(Method::Ato, s, 3.0, 0.9);
        short.summary.epochs = 3;
        runs.push(short);
    }
    let report = Report::new("t", &runs);
    let rows = report.wall_costs();
    let budgets: Vec<_> = rows.iter().map(|r| r.budget).collect();
    assert_eq!(budgets, [Some(0.5), Some(0.7), None]);
    assert!((rows[0].ratio_of_means - 1.01).abs() < 1e-12);
    assert!((rows[1].ratio_of_means - 1.21).abs() < 1e-12);
    // over all: per seed (10 + 0.1s + 12 + 0.1s) / 2 / 10 = 1.10, 1.11, 1.12, geometric
    // mean 1.10997
    let all = rows[2].per_seed.unwrap();
    assert_eq!((all.n, rows[2].ato_runs, rows[2].dense_runs), (3, 6, 3));
    assert!((all.geometric_mean - 1.109_970).abs() < 1e-6, "{all:?}");
}
