//! Tests of the ranking: pairing by the recorded reference run, per-seed gaps, verdicts.
use super::super::markdown::tests::run;
use super::super::paired::Verdict;
use super::super::selection::Report;
use super::super::RunRecord;
use ato_train::Method;

/// An ATO run and an OTO run matched to it, per seed: ATO at `ato[s]` top-1 and 50%
/// FLOPs↓, OTO at `oto[s]` and `oto_flops[s]`, the OTO runs' λ and target differing per
/// seed as a per-seed search leaves them.
fn paired_sweep(ato: &[f64], oto: &[f64], oto_flops: &[f64]) -> Vec<RunRecord> {
    let mut out = Vec::new();
    for (s, ((&a, &o), &f)) in ato.iter().zip(oto).zip(oto_flops).enumerate() {
        let mut x = run(&format!("ato-s{s}"), Some(true));
        x.summary.seed = s as u64;
        x.summary.top1 = Some(a);
        x.summary.flops_reduction = Some(0.5);
        let mut y = run(&format!("oto-s{s}"), Some(true));
        y.summary.method = Method::Oto;
        y.summary.seed = s as u64;
        y.summary.top1 = Some(o);
        y.summary.flops_reduction = Some(f);
        y.summary.lambda = Some(0.1 + s as f64 * 0.01);
        y.summary.target_flops_reduction = Some(0.5 + s as f64 * 0.001);
        y.summary.reference_run = Some(format!("ato-s{s}"));
        out.push(x);
        out.push(y);
    }
    let mut dense = run("dense-s0", None);
    dense.summary.method = Method::Dense;
    dense.summary.top1 = Some(0.95);
    dense.summary.target_flops_reduction = None;
    out.push(dense);
    out
}

fn oto_row<'a>(report: &Report<'a>) -> &'a RunRecord {
    report
        .main_rows()
        .into_iter()
        .find(|r| r.summary.method == Method::Oto)
        .unwrap()
}

#[test]
fn baselines_pair_with_the_ato_run_they_name_and_are_ranked_by_the_interval() {
    // differences +0.02, +0.01, +0.04, +0.03: [+0.45, +4.55] points → better
    let runs = paired_sweep(
        &[0.90, 0.91, 0.88, 0.89],
        &[0.92, 0.92, 0.92, 0.92],
        &[0.5; 4],
    );
    let report = Report::new("t", &runs);
    let oto = oto_row(&report);
    assert_eq!(report.seed_mates(oto).len(), 4, "one row over the seeds");
    assert_eq!(report.budget_of(oto), Some(0.5), "the ATO run's budget");
    let p = report.paired(oto).unwrap();
    assert_eq!(p.n, 4);
    assert_eq!(p.verdict(), Some(Verdict::Better));
    assert_eq!(p.text(), "+2.50 [+0.45, +4.55]");
    let md = report.markdown("results/t", &[]);
    assert!(md.contains("| +2.50 [+0.45, +4.55] | better |"), "{md}");
    assert!(md.contains("matched (largest gap +0.0)"), "{md}");
    assert!(md.contains("a comparison"), "{md}");
}

#[test]
fn a_stale_row_of_the_same_method_and_model_is_not_joined() {
    let mut runs = paired_sweep(&[0.90, 0.91, 0.88], &[0.92, 0.92, 0.92], &[0.5; 3]);
    // a row of an older search: same method, model and seed, naming an ATO run that is
    // not in the sweep; and one naming no run at all
    let mut stale = run("oto-stale", Some(true));
    stale.summary.method = Method::Oto;
    stale.summary.top1 = Some(0.10);
    stale.summary.reference_run = Some("ato-gone".into());
    runs.push(stale);
    let report = Report::new("t", &runs);
    let pairs = report.pairs(oto_row(&report));
    assert_eq!(pairs.len(), 3);
    assert!(pairs.iter().all(|(b, a)| b.summary.reference_run.as_deref()
        == Some(a.summary.run_id.as_str())
        && b.summary.run_id != "oto-stale"));
}

#[test]
fn one_seed_gets_no_interval_and_no_ranking_word() {
    let runs = paired_sweep(&[0.90], &[0.99], &[0.5]);
    let report = Report::new("t", &runs);
    let oto = oto_row(&report);
    assert_eq!(report.paired(oto).unwrap().interval, None);
    assert_eq!(report.verdict_text(oto), "none (one seed)");
    let md = report.markdown("results/t", &[]);
    assert!(md.contains("+9.00 (n = 1, no interval)"), "{md}");
    for word in ["| better", "| worse", "| indistinguishable"] {
        assert!(!md.contains(word), "{word}: {md}");
    }
    assert!(md.contains("a pipeline check, not a comparison"), "{md}");
}

#[test]
fn a_collapsed_row_is_marked_degenerate_and_a_healthy_one_is_not() {
    // dense 95%: OTO at 12% (within 5 points of chance 10%) and at 70% (25 below dense)
    for (oto, why) in [(0.12, "of chance"), (0.70, "below dense")] {
        let runs = paired_sweep(&[0.90, 0.91, 0.89], &[oto; 3], &[0.5; 3]);
        let report = Report::new("t", &runs);
        let text = report.verdict_text(oto_row(&report));
        assert!(
            text.contains("**degenerate: ") && text.contains(why),
            "{text}"
        );
    }
    // negative control: 80% is 15 below dense and far from chance
    let runs = paired_sweep(&[0.90, 0.91, 0.89], &[0.80; 3], &[0.5; 3]);
    let report = Report::new("t", &runs);
    assert_eq!(report.degenerate(oto_row(&report)), None);
    assert_eq!(report.verdict_text(oto_row(&report)), "worse");
}

#[test]
fn one_seed_off_its_budget_unmatches_the_row() {
    // seeds 0 and 2 within ±1 point, seed 1 1.6 points above its ATO run
    let runs = paired_sweep(&[0.9; 3], &[0.9; 3], &[0.505, 0.516, 0.495]);
    let report = Report::new("t", &runs);
    let oto = oto_row(&report);
    assert!((report.largest_gap(oto).unwrap() - 0.016).abs() < 1e-12);
    assert_eq!(
        report.per_seed_match_text(oto).unwrap(),
        "gap up to +1.6 pt (1/3 seeds outside ±1)"
    );
    assert!(report
        .verdict_text(oto)
        .ends_with("**not at matched FLOPs**"));
    // negative control: the mean (0.5053) alone would have called it matched
    let all = paired_sweep(&[0.9; 3], &[0.9; 3], &[0.505, 0.509, 0.495]);
    let report = Report::new("t", &all);
    assert_eq!(
        report.per_seed_match_text(oto_row(&report)).unwrap(),
        "matched (largest gap +0.9)"
    );
}

#[test]
fn a_seed_is_paired_once_and_an_unpaired_seed_is_counted_not_dropped() {
    let mut runs = paired_sweep(&[0.90, 0.91, 0.88], &[0.92, 0.92, 0.92], &[0.5; 3]);
    for r in runs.iter_mut().filter(|r| r.summary.method == Method::Oto) {
        r.summary.budget = Some(0.5);
    }
    // the same OTO run listed twice (two planned runs that ended in one folder)
    let twin = RunRecord {
        summary: runs[1].summary.clone(),
        metrics: Vec::new(),
        convergence: Vec::new(),
        theorem_regime: false,
        probing: Default::default(),
        controller: None,
        machine: None,
    };
    runs.push(twin);
    // seed 3's ATO run pruned nothing, so its OTO run names none: same budget, unpaired
    let mut lone = run("oto-s3", Some(true));
    lone.summary.method = Method::Oto;
    lone.summary.seed = 3;
    lone.summary.budget = Some(0.5);
    lone.summary.target_flops_reduction = Some(0.5);
    runs.push(lone);
    let report = Report::new("t", &runs);
    let oto = oto_row(&report);
    let pairs = report.pairs(oto);
    let mut seeds: Vec<u64> = pairs.iter().map(|(b, _)| b.summary.seed).collect();
    seeds.sort();
    assert_eq!(seeds, vec![0, 1, 2], "each seed once");
    let text = report.paired_text(oto);
    assert!(text.contains("(3 of 5 seeds paired)"), "{text}");
    // negative control: without the twin and the lone seed every seed is paired
    let clean = paired_sweep(&[0.90, 0.91, 0.88], &[0.92, 0.92, 0.92], &[0.5; 3]);
    let report = Report::new("t", &clean);
    assert!(!report.paired_text(oto_row(&report)).contains("paired)"));
}
