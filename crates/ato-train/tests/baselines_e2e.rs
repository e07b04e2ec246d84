//! End to end on a tiny synthetic set for the baselines that hit the FLOPs target by
//! construction: HESSO and magnitude land within `prune.tolerance` of
//! `prune.target_flops_reduction`, say so in `target_met`, and compact to an output-equal model.

use ato_train::{run, Method, RunConfig, RunOptions, SummaryRow};
use std::path::Path;

/// Three epochs of four steps: ResNet-20 at base width 8 on 200 synthetic images.
fn tiny(method: Method, root: &Path, extra: &str) -> RunConfig {
    let mut cfg = RunConfig::from_toml(&format!(
        r#"
        name = "tiny"
        device = "cpu"
        [dataset]
        name = "synth10"
        synth_train = 200
        synth_test = 100
        [model]
        name = "resnet20"
        base_width = 8
        [train]
        epochs = 3
        batch_size = 50
        [prune]
        target_flops_reduction = 0.5
        [convergence]
        every = 0
        {extra}
        "#
    ))
    .unwrap();
    cfg.method = method;
    cfg.dataset.root = root.join("data").display().to_string();
    cfg.out_dir = root.join("results").display().to_string();
    cfg
}

fn check_on_target(s: &SummaryRow, diff: f32) {
    let r = s.flops_reduction.unwrap();
    assert!(
        (r - 0.5).abs() <= 0.02,
        "{}: FLOPs reduction {r} within 0.02 of 0.5",
        s.method
    );
    assert_eq!(s.target_flops_reduction, Some(0.5));
    assert_eq!(s.target_met, Some(true));
    assert!(
        s.headline().contains("FLOPs target −50.0%: met"),
        "{}",
        s.headline()
    );
    assert!(diff < 1e-4, "compact = masked: {diff}");
    assert!((s.top1.unwrap() - s.compact_top1.unwrap()).abs() < 1e-9);
}

#[test]
fn hesso_reaches_the_flops_target_over_its_periods_and_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[hesso]\nstart_epoch = 0\npruning_epochs = 2\nperiods = 2";
    let out = run(
        &tiny(Method::Hesso, dir.path(), extra),
        &RunOptions::default(),
    )
    .unwrap();
    check_on_target(&out.summary, out.compact_max_abs_diff);
    // the periods end with epoch 1: from then on the dropped groups are exact zeros
    assert!(out.metrics[0].zero_groups < out.metrics[1].zero_groups);
    assert_eq!(out.metrics[1].zero_groups, out.metrics[2].zero_groups);
}

#[test]
fn magnitude_prunes_once_to_the_flops_target_and_compacts() {
    let dir = tempfile::tempdir().unwrap();
    for scope in ["global", "per_gate"] {
        let extra = format!("[magnitude]\nprune_epoch = 1\nscope = \"{scope}\"");
        let out = run(
            &tiny(Method::Magnitude, dir.path(), &extra),
            &RunOptions::default(),
        )
        .unwrap();
        check_on_target(&out.summary, out.compact_max_abs_diff);
        assert_eq!(out.metrics[0].zero_groups, 0, "dense until the prune epoch");
        assert!(out.metrics[1].zero_groups > 0);
        assert_eq!(out.metrics[1].zero_groups, out.metrics[2].zero_groups);
    }
}
