//! The budget promise on a small data set (issue 12): with five target steps per epoch the old
//! fixed `hyper_step = 20` gave the controller a handful of updates and the mask stayed nearly
//! full, silently. With the default `hyper_step = "auto"` the frozen mask must land within
//! `prune.tolerance` of the FLOPs target, and a run that misses says so in `summary.csv`.

use ato_train::{run, RunConfig, RunOptions};
use std::path::Path;

/// ResNet-20 at base width 4 on 320 synthetic images (5 steps of 64 per epoch), 5 epochs,
/// the `[ato]` section at its defaults apart from the two epochs; portable products, so the
/// mask — a threshold on the controller's logits — is the same on every CPU and under any
/// machine-mode kernel (in machine mode with the 8-lane weight-gradient sums of 2026-12-06 this
/// run settled at 47.4% and said `MISSED`).
fn small(root: &Path, extra: &str) -> RunConfig {
    let mut cfg = RunConfig::from_toml(&format!(
        r#"
        name = "small"
        device = "cpu"
        method = "ato"
        [dataset]
        name = "synth10"
        synth_train = 320
        synth_test = 128
        [model]
        name = "resnet20"
        base_width = 4
        [train]
        epochs = 5
        batch_size = 64
        reproducible = "portable"
        [prune]
        target_flops_reduction = 0.5
        [ato]
        t_start = 1
        t_end = 3
        {extra}
        [convergence]
        every = 0
        [bench]
        after_run = false
        "#
    ))
    .unwrap();
    cfg.dataset.root = root.join("data").display().to_string();
    cfg.out_dir = root.join("results").display().to_string();
    cfg
}

#[test]
fn the_default_controller_meets_the_flops_target_on_a_small_data_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&small(dir.path(), ""), &RunOptions::default()).unwrap();
    let s = &out.summary;
    let achieved = s.flops_reduction.unwrap();
    assert!(
        (achieved - 0.5).abs() <= 0.02,
        "FLOPs reduction {achieved:.4} within ±2 points of 0.5: {s:?}"
    );
    assert_eq!(s.target_met, Some(true), "{s:?}");
    let steps: usize = out.metrics.iter().map(|m| m.controller_steps).sum();
    assert!(
        steps >= 40,
        "auto gives at least min_controller_steps: {steps}"
    );
    // subset 16 images (5%) over 2 window epochs in 40 steps: one image per step, each seen
    // about once per epoch (the authors' coupling); the summary records the subset
    assert_eq!(s.controller_images, Some(16), "{s:?}");
    assert!(out.compact_max_abs_diff < 1e-4);
}

#[test]
fn too_few_controller_steps_miss_the_target_and_the_summary_says_so() {
    // negative control: the old fixed hyper_step on the same data (two controller steps in all)
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &small(dir.path(), "hyper_step = 20"),
        &RunOptions::default(),
    )
    .unwrap();
    let s = &out.summary;
    assert_eq!(s.target_met, Some(false), "{s:?}");
    assert!(s.flops_reduction.unwrap() < 0.48, "{s:?}");
    assert!(s.headline().contains("MISSED"), "{}", s.headline());
}

#[test]
fn rounded_widths_still_meet_the_flops_target() {
    // prune.round_to = 2: every gate keeps an even number of channels, and the controller's
    // FLOPs term and settling see the rounded widths, so the budget is still met
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small(dir.path(), "");
    cfg.prune.round_to = 2;
    let out = run(&cfg, &RunOptions::default()).unwrap();
    let s = &out.summary;
    assert!(
        (s.flops_reduction.unwrap() - 0.5).abs() <= 0.02,
        "FLOPs reduction within ±2 points of 0.5 with round_to = 2: {s:?}"
    );
    let mask: Vec<Vec<bool>> =
        serde_json::from_str(&std::fs::read_to_string(out.run_dir.join("mask.json")).unwrap())
            .unwrap();
    for gate in &mask {
        assert_eq!(gate.iter().filter(|&&k| k).count() % 2, 0, "{mask:?}");
    }
}
