//! End to end on a tiny synthetic set: every method trains, prunes, compacts and writes its
//! files; a killed run resumes to the same numbers; a diverging run stops with one clear error.

use ato_models::Model;
use ato_train::config::HyperStep;
use ato_train::{run, MachineRecord, Method, RunConfig, RunOptions, TrainError};
use std::path::Path;

mod same_numbers;
use same_numbers::assert_same_numbers;

/// A run of a few seconds: ResNet-20 at base width 4 on 512 synthetic images, 4 epochs.
fn tiny(method: Method, root: &Path) -> RunConfig {
    let mut cfg = RunConfig::from_toml(
        r#"
        name = "tiny"
        device = "cpu"
        [dataset]
        name = "synth10"
        synth_train = 512
        synth_test = 256
        [model]
        name = "resnet20"
        base_width = 4
        [train]
        epochs = 4
        batch_size = 64
        [optim]
        lr = 0.1
        [ato]
        t_start = 1
        t_prox = 2
        t_end = 3
        hyper_step = 2
        controller_fraction = 0.25
        lambda = 20.0
        gamma = 4.0
        controller_lr = 0.05
        [oto]
        lambda = 1.0
        n_p = 2
        [otov2]
        lambda = 1.0
        start_pruning = 1
        target_group_sparsity = 0.3
        [convergence]
        every = 0
        [bench]
        after_run = false
        "#,
    )
    .unwrap();
    cfg.method = method;
    cfg.dataset.root = root.join("data").display().to_string();
    cfg.out_dir = root.join("results").display().to_string();
    cfg
}

fn quiet() -> RunOptions {
    RunOptions::default()
}

/// ATO's controller steps on a worker thread beside the training.
fn threaded() -> RunOptions {
    RunOptions {
        controller_thread: true,
        ..quiet()
    }
}

#[test]
fn ato_prunes_compacts_and_writes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(Method::Ato, dir.path());
    cfg.convergence.every = 4;
    cfg.convergence.batches = 2;
    // the after-run latency, at a tiny batch to keep the test short
    cfg.bench.after_run = true;
    cfg.bench.batch = 2;
    cfg.bench.repeats = 3;
    let out = run(&cfg, &quiet()).unwrap();
    for f in [
        "config.toml",
        "metrics.csv",
        "convergence.csv",
        "mask.json",
        "compact.safetensors",
        "compact.arch.json",
        "summary.csv",
        "checkpoint/state.json",
    ] {
        assert!(out.run_dir.join(f).exists(), "{f} is written");
    }
    assert_eq!(out.metrics.len(), 4);
    assert!(
        out.compact_max_abs_diff < 1e-4,
        "compact = masked: {}",
        out.compact_max_abs_diff
    );
    let s = &out.summary;
    assert!(
        s.flops_reduction.unwrap() > 0.05,
        "the controller pruned something: {s:?}"
    );
    assert!(s.pruned_params.unwrap() < s.base_params);
    let t = out
        .latency
        .as_ref()
        .expect("bench.after_run measured the latency");
    assert_eq!((t.batch, t.repeats), (2, 3));
    assert_eq!(
        (s.dense_ms, s.compact_ms, s.speedup),
        (
            Some(t.dense_ms),
            Some(t.compact_ms),
            Some(t.dense_ms / t.compact_ms)
        )
    );
    assert_eq!(t.compact_macs, s.pruned_macs.unwrap());
    assert!(
        (s.top1.unwrap() - s.compact_top1.unwrap()).abs() < 1e-9,
        "same predictions: {s:?}"
    );
    // the saved compact model loads on its own and has the kept widths
    let compact = Model::load(
        &out.run_dir.join("compact.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let mask: Vec<Vec<bool>> =
        serde_json::from_str(&std::fs::read_to_string(out.run_dir.join("mask.json")).unwrap())
            .unwrap();
    let kept: Vec<usize> = mask
        .iter()
        .map(|m| m.iter().filter(|&&k| k).count().max(1))
        .collect();
    assert_eq!(compact.arch().gate_widths(), kept);
    assert_eq!(Some(compact.macs()), s.pruned_macs);
    // the controller ran in epochs 1 and 2, and its regulariser was logged
    assert!(out.metrics[1].controller_loss > 0.0 && out.metrics[0].controller_loss == 0.0);
    // …and its cost is in the row: hyper_step = 2 over the 16 target steps of epochs 1–2 is
    // 8 steps (a fixed rate never settles), on 25% of the 512 training images
    let logged: usize = out.metrics.iter().map(|m| m.controller_steps).sum();
    assert_eq!(s.controller_steps, Some(8));
    assert_eq!(logged, 8);
    assert_eq!(s.settle_steps, Some(0));
    assert_eq!(s.controller_images, Some(128));
    let c = s.controller_seconds.unwrap();
    assert!(c > 0.0 && c < s.wall_seconds.unwrap(), "{c}");
    let probes = std::fs::read_to_string(out.run_dir.join("convergence.csv")).unwrap();
    assert_eq!(
        probes.lines().count(),
        1 + 1 + 32 / 4,
        "header, step 0, every 4 steps"
    );
}

#[test]
fn oto_otov2_and_half_space_ato_end_with_exact_zero_groups_and_a_compact_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut half_space = tiny(Method::Ato, dir.path());
    half_space.ato.projector = ato_train::Projector::HalfSpace;
    half_space.ato.lambda = 200.0;
    for cfg in [
        tiny(Method::Oto, dir.path()),
        tiny(Method::Otov2, dir.path()),
        half_space,
    ] {
        let method = cfg.method;
        let out = run(&cfg, &quiet()).unwrap();
        let last = out.metrics.last().unwrap();
        assert!(last.zero_groups > 0, "{method:?} zeroed groups: {last:?}");
        // only ATO rows carry the controller's columns
        assert_eq!(
            out.summary.controller_steps.is_some(),
            method == Method::Ato,
            "{method:?}"
        );
        assert!(out.compact_max_abs_diff < 1e-4);
        assert!(
            out.summary.pruned_macs.unwrap() < out.summary.base_macs,
            "{:?}",
            out.summary
        );
    }
}

#[test]
fn a_run_killed_mid_epoch_resumes_to_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny(Method::Ato, dir.path());
    let whole = run(&cfg, &quiet()).unwrap();
    let mut other = cfg.clone();
    other.out_dir = dir.path().join("resumed").display().to_string();
    // 8 steps an epoch: stop in the middle of epoch 2, where controller and prox both act
    let killed = run(
        &other,
        &RunOptions {
            stop_at_step: Some(20),
            ..quiet()
        },
    );
    assert!(matches!(killed, Err(TrainError::Stopped(2))), "{killed:?}");
    let resumed = run(&other, &quiet()).unwrap();
    // the controller's steps survive the kill too (the checkpoint keeps the count)
    assert_same_numbers(&resumed, &whole);
    // machine.json: one record per start, the resumed one from the checkpoint's epoch
    let starts = |cfg: &RunConfig| -> Vec<MachineRecord> {
        ato_train::read_machines(&ato_train::RunDir::of(cfg).machine_file()).unwrap()
    };
    let (one, two) = (starts(&cfg), starts(&other));
    assert_eq!(one.len(), 1);
    assert_eq!(two.iter().map(|m| m.from_epoch).collect::<Vec<_>>(), [0, 2]);
    let m = &two[1];
    assert_eq!((m.device.as_str(), m.mode.as_str()), ("cpu", "machine"));
    assert!(["avx512", "avx2+fma", "baseline"].contains(&m.kernel_simd.as_str()));
    assert!(m.threads >= 1 && !m.cpu_model.is_empty(), "{m:?}");
}

#[test]
fn a_diverging_run_stops_with_an_error_naming_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(Method::Dense, dir.path());
    cfg.optim.lr = 1e30;
    let e = run(&cfg, &quiet()).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, TrainError::NonFinite { .. }), "{text}");
    assert!(text.contains("epoch") && text.contains("step"), "{text}");
    assert_eq!(text.lines().count(), 1);
}

/// `prune.round_to = 4` on ATO and OTOv2 (base width 8: gates of 8, 16 and 32 channels):
/// every kept width of the compact model is a multiple of 4, and the summary counts those
/// widths. (The FLOPs target itself is not reachable in 4 tiny epochs; the rounded FLOPs
/// term is tested in ato-controller's `round_to` tests.)
#[test]
fn round_to_keeps_multiples_of_n_channels_in_every_gate() {
    let dir = tempfile::tempdir().unwrap();
    for method in [Method::Ato, Method::Otov2] {
        let mut cfg = tiny(method, dir.path());
        cfg.model.base_width = Some(8);
        cfg.prune.round_to = 4;
        let out = run(&cfg, &quiet()).unwrap();
        let compact = Model::load(
            &out.run_dir.join("compact.safetensors"),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let widths = compact.arch().gate_widths();
        assert!(widths.iter().all(|w| w % 4 == 0), "{method:?}: {widths:?}");
        let s = &out.summary;
        assert!(
            s.flops_reduction.unwrap() > 0.0,
            "{method:?} pruned: {widths:?}"
        );
        assert_eq!(Some(compact.macs()), s.pruned_macs, "{method:?}");
        let mask: Vec<Vec<bool>> =
            serde_json::from_str(&std::fs::read_to_string(out.run_dir.join("mask.json")).unwrap())
                .unwrap();
        let kept: Vec<usize> = mask
            .iter()
            .map(|m| m.iter().filter(|&&k| k).count())
            .collect();
        assert_eq!(kept, widths, "{method:?}: mask.json holds the rounded mask");
        assert!(out.compact_max_abs_diff < 1e-4, "{method:?}");
    }
}

#[test]
fn hesso_aims_at_a_group_count_when_asked_as_the_reference_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(Method::Hesso, dir.path());
    cfg.hesso.start_epoch = Some(ato_train::EpochSpec::Epoch(1));
    cfg.hesso.pruning_epochs = Some(ato_train::EpochSpec::Epoch(2));
    cfg.hesso.periods = 2;
    cfg.hesso.target_group_sparsity = Some(0.3);
    let out = run(&cfg, &quiet()).unwrap();
    let s = &out.summary;
    assert_eq!(s.target_group_sparsity, Some(0.3));
    // ⌊0.3 · N⌋ of the N = 4+4+4+8+8+8+16+16+16 = 84 gated groups are dropped: 25
    let dropped = (s.group_sparsity.unwrap() * 84.0).round() as usize;
    assert_eq!(dropped, 25, "{s:?}");
    // the default aims at the FLOPs target instead: another selection
    let mut flops = tiny(Method::Hesso, dir.path());
    flops.hesso = cfg.hesso.clone();
    flops.hesso.target_group_sparsity = None;
    let other = run(&flops, &quiet()).unwrap();
    assert_eq!(other.summary.target_group_sparsity, None);
    assert_ne!(other.summary.group_sparsity, s.group_sparsity);
}

/// The tiny ATO run with `hyper_step = "auto"` (40 controller steps in the window) and a
/// tolerance tight enough that the window ends with settling steps.
fn settling(root: &Path, out: &str) -> RunConfig {
    let mut cfg = tiny(Method::Ato, root);
    cfg.ato.hyper_step = HyperStep::Auto;
    cfg.ato.settle_steps = 20;
    cfg.prune.target_flops_reduction = 0.6;
    cfg.prune.tolerance = 0.001;
    cfg.out_dir = root.join(out).display().to_string();
    cfg
}

/// ATO's controller steps on a worker thread beside the training (`controller_thread`, opt-in)
/// give the numbers they give on the training thread (the default), bit for bit, settling
/// included. (Negative control, seen failing: queueing views of the weights instead of copies.)
#[test]
fn the_controller_thread_changes_no_number() {
    let dir = tempfile::tempdir().unwrap();
    let threaded = run(&settling(dir.path(), "threaded"), &threaded()).unwrap();
    let inline = run(&settling(dir.path(), "inline"), &quiet()).unwrap();
    assert_same_numbers(&threaded, &inline);
    let a = &threaded.summary;
    // the run exercised what it compares: window steps with a loss, and settling
    assert!(
        a.controller_steps.unwrap_or(0) >= 40,
        "{:?}",
        a.controller_steps
    );
    assert!(a.settle_steps.unwrap_or(0) > 0, "{:?}", a.settle_steps);
    assert!(threaded.metrics[1..3]
        .iter()
        .all(|m| m.controller_steps > 0 && m.controller_loss.is_finite()));
}

/// Settling steps run at `ato.settle_lr_mult` × the window's lr: the same run with the factor
/// at 1 (the window's lr) agrees up to the window's last epoch, then its settling ends at
/// another θ. (Negative control, seen failing: settling at the window's lr whatever the
/// factor — the two runs' θ are then the same.)
#[test]
fn settling_steps_take_the_settle_lr_factor() {
    let dir = tempfile::tempdir().unwrap();
    let fast = run(&settling(dir.path(), "fast"), &quiet()).unwrap();
    let mut cfg = settling(dir.path(), "slow");
    cfg.ato.settle_lr_mult = 1.0;
    let slow = run(&cfg, &quiet()).unwrap();
    let (f, s) = (&fast.summary, &slow.summary);
    // the same window: its first epoch and the training of its last one are equal
    assert_eq!(fast.metrics[0].masked_top1, slow.metrics[0].masked_top1);
    assert_eq!(fast.metrics[1].train_loss, slow.metrics[1].train_loss);
    assert_eq!(f.controller_steps, s.controller_steps, "{f:?}\n{s:?}");
    // both settled every allowed step (the tolerance is out of reach), and the factor moved
    // the controller elsewhere: other parameters θ after settling. (Not necessarily another
    // mask: a tiny run's mask, a threshold of θ's logits, may come out the same — with the
    // machine-mode weight gradient summed in 8 lanes per output row both ended at 54.2%. Which
    // run ends closer to the target is a property over many runs — 10× met it as often as 1×
    // over the ablation sweep's 22 settling runs, in fewer steps — not of one tiny run.)
    assert_eq!((f.settle_steps, s.settle_steps), (Some(20), Some(20)));
    // θ's tensors (the file's metadata holds timings, which differ run to run)
    let theta = |r: &ato_train::RunOutcome| -> Vec<(String, Vec<u32>)> {
        let file = r.run_dir.join("checkpoint").join("controller.safetensors");
        let tensors = candle_core::safetensors::load(file, &candle_core::Device::Cpu).unwrap();
        let mut named: Vec<_> = tensors.into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
            .into_iter()
            .map(|(name, t)| {
                let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                (name, v.iter().map(|x| x.to_bits()).collect())
            })
            .collect()
    };
    assert!(
        theta(&fast) != theta(&slow),
        "the same θ after settling at ×10 and ×1 (×10: {:?}, ×1: {:?})",
        f.flops_reduction,
        s.flops_reduction
    );
}

#[test]
fn a_controller_diverging_inline_or_on_its_thread_stops_the_run_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (name, opts) in [("inline", quiet()), ("threaded", threaded())] {
        let mut cfg = settling(dir.path(), name);
        cfg.ato.gamma = 1e300;
        let e = run(&cfg, &opts).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, TrainError::NonFiniteController { .. }),
            "{name}: {text}"
        );
        assert!(text.contains("controller step"), "{name}: {text}");
        assert_eq!(text.lines().count(), 1, "{name}: {text}");
    }
}
