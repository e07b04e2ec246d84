//! Zero-invariance, per family: after a few training steps, zero a random 30–70% of the
//! groups of every gate, compact, and check that the compact model computes the same logits
//! as the masked model, that its counts equal the polynomials, and that it survives a
//! safetensors round trip.

use ato_models::{Model, ModelConfig, ModelName, ShortcutKind};
use ato_zig::{set_dropped_to_zero, KeptChannels, Mask, WidthPolynomial};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{loss, Optimizer, SGD};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_batch(rng: &mut ChaCha8Rng, n: usize, size: usize, classes: usize) -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..n * 3 * size * size)
        .map(|_| rng.random_range(-2.0..2.0))
        .collect();
    let y: Vec<u32> = (0..n)
        .map(|_| rng.random_range(0..classes as u32))
        .collect();
    (
        Tensor::from_vec(x, (n, 3, size, size), &Device::Cpu).unwrap(),
        Tensor::from_vec(y, n, &Device::Cpu).unwrap(),
    )
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn train_steps(model: &Model, rng: &mut ChaCha8Rng, steps: usize) {
    let vars = model.trainable_vars().into_iter().map(|(_, v)| v).collect();
    let mut opt = SGD::new(vars, 0.05).unwrap();
    let cfg = model.config();
    for _ in 0..steps {
        let (x, y) = random_batch(rng, 4, cfg.input_size, cfg.num_classes);
        let logits = model.forward_t(&x, None, true).unwrap();
        let l = loss::cross_entropy(&logits, &y).unwrap();
        opt.backward_step(&l).unwrap();
    }
    // Let the running statistics (momentum 0.1) settle on the trained weights, so eval-mode
    // logits have a realistic scale and 1e-4 is a meaningful bound.
    for _ in 0..25 {
        let (x, _) = random_batch(rng, 4, cfg.input_size, cfg.num_classes);
        drop(model.forward_t(&x, None, true).unwrap());
    }
}

fn check_zero_invariance(cfg: ModelConfig, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let model = Model::new(&cfg, &Device::Cpu, seed).unwrap();
    train_steps(&model, &mut rng, 3);
    let stats_moved = model.named_vars().iter().any(|(n, v)| {
        n.ends_with("running_var")
            && v.to_dtype(DType::F32)
                .unwrap()
                .mean_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                != 1.0
    });
    assert!(
        stats_moved,
        "training should move the BN running statistics"
    );

    // a random 30–70% of every gate's groups is dropped
    let masks: Vec<Vec<bool>> = model
        .gates()
        .iter()
        .map(|g| {
            let frac = rng.random_range(0.3..=0.7);
            let drop = ((g.width as f64 * frac).round() as usize).clamp(1, g.width - 1);
            let mut keep = vec![true; g.width];
            for c in sample(&mut rng, g.width, drop) {
                keep[c] = false;
            }
            keep
        })
        .collect();
    let (x, _) = random_batch(&mut rng, 3, cfg.input_size, cfg.num_classes);

    // 1. the masked model: original weights, gate vectors multiplied into the channels
    let gate_values: Vec<Tensor> = masks
        .iter()
        .map(|m| {
            Tensor::from_vec(
                m.iter().map(|&k| k as u8 as f32).collect(),
                m.len(),
                &Device::Cpu,
            )
            .unwrap()
        })
        .collect();
    let masked = model.forward_t(&x, Some(&gate_values), false).unwrap();
    // 2. the zeroed model: member slices of dropped groups set to exactly zero
    for (g, m) in model.gates().iter().zip(&masks) {
        set_dropped_to_zero(g, &model.named_vars(), m).unwrap();
    }
    let zeroed = model.forward_t(&x, None, false).unwrap();
    // 3. the compact model
    let kept = KeptChannels::from_mask(&Mask::from_keep(masks.clone()));
    assert_eq!(
        kept,
        KeptChannels::nonzero_groups(model.gates(), &model.named_vars()).unwrap()
    );
    let compact = model.compact(&kept).unwrap();
    let small = compact.forward_t(&x, None, false).unwrap();
    assert_eq!(small.dims(), [3, cfg.num_classes]);
    let scale = zeroed
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(scale > 1e-3, "logits should not be trivially zero");
    eprintln!("{}: logit scale {scale}", cfg.name);
    assert!(
        max_abs_diff(&masked, &zeroed) == 0.0,
        "{}: masked vs zeroed {} (must be bitwise equal: the trainer reuses the unmasked \
         evaluation as the masked one once the dropped groups are zero)",
        cfg.name,
        max_abs_diff(&masked, &zeroed)
    );
    assert!(
        max_abs_diff(&zeroed, &small) < 1e-4,
        "{}: zeroed vs compact {}",
        cfg.name,
        max_abs_diff(&zeroed, &small)
    );

    // counts: the full model's polynomials at the kept widths = the compact model's own
    let widths = kept.widths();
    assert!(widths
        .iter()
        .zip(model.arch().gate_widths())
        .all(|(k, f)| k < &f));
    let params_at_kept = WidthPolynomial::params(model.arch()).eval(&widths);
    assert_eq!(compact.param_count() as u64, params_at_kept);
    assert_eq!(
        WidthPolynomial::params(compact.arch()).eval(&widths),
        params_at_kept
    );
    assert_eq!(compact.macs(), model.macs_polynomial().eval(&widths));
    assert!(compact.macs() < model.macs());
    assert_eq!(
        model.param_count() as u64,
        WidthPolynomial::params(model.arch()).eval(&model.arch().gate_widths())
    );

    // safetensors round trip of the compact model: identical logits, config included
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("compact.safetensors");
    compact.save(&path).unwrap();
    assert!(dir.path().join("compact.arch.json").exists());
    let loaded = Model::load(&path, &Device::Cpu).unwrap();
    assert_eq!(loaded.config(), compact.config());
    assert_eq!(
        max_abs_diff(&loaded.forward_t(&x, None, false).unwrap(), &small),
        0.0
    );
    // and of the full model
    let full_path = dir.path().join("full.safetensors");
    model.save(&full_path).unwrap();
    let full = Model::load(&full_path, &Device::Cpu).unwrap();
    assert_eq!(
        max_abs_diff(&full.forward_t(&x, None, false).unwrap(), &zeroed),
        0.0
    );
}

fn small(name: ModelName, size: usize, base: Option<usize>) -> ModelConfig {
    let mut c = ModelConfig::new(name, 10, size);
    c.base_width = base;
    c
}

#[test]
fn cifar_resnet_shortcut_a_is_zero_invariant() {
    let mut c = small(ModelName::Resnet20, 16, Some(8));
    c.shortcut = ShortcutKind::A;
    check_zero_invariance(c, 1);
}

#[test]
fn cifar_resnet_shortcut_b_is_zero_invariant() {
    let mut c = small(ModelName::Resnet32, 16, Some(8));
    c.shortcut = ShortcutKind::B;
    check_zero_invariance(c, 2);
}

#[test]
fn imagenet_basic_resnet_is_zero_invariant() {
    check_zero_invariance(small(ModelName::Resnet18, 32, Some(8)), 3);
}

#[test]
fn imagenet_bottleneck_resnet_is_zero_invariant() {
    check_zero_invariance(small(ModelName::Resnet50, 32, Some(8)), 4);
}

#[test]
fn mobilenetv2_is_zero_invariant() {
    let mut c = small(ModelName::Mobilenetv2, 16, None);
    c.width_mult = 0.25;
    check_zero_invariance(c, 5);
}

#[test]
fn a_gradient_reaches_every_gate_vector() {
    for cfg in [
        small(ModelName::Resnet20, 16, Some(8)),
        small(ModelName::Resnet50, 32, Some(8)),
        {
            let mut c = small(ModelName::Mobilenetv2, 16, None);
            c.width_mult = 0.25;
            c
        },
    ] {
        let model = Model::new(&cfg, &Device::Cpu, 7).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (x, y) = random_batch(&mut rng, 4, cfg.input_size, 10);
        let gates: Vec<candle_core::Var> = model
            .gates()
            .iter()
            .map(|g| candle_core::Var::ones(g.width, DType::F32, &Device::Cpu).unwrap())
            .collect();
        let values: Vec<Tensor> = gates.iter().map(|v| v.as_tensor().clone()).collect();
        let logits = model.forward_t(&x, Some(&values), true).unwrap();
        let l = loss::cross_entropy(&logits, &y).unwrap();
        let grads = l.backward().unwrap();
        for (g, v) in model.gates().iter().zip(&gates) {
            let grad = grads
                .get(v)
                .unwrap_or_else(|| panic!("{}: no gradient for gate {}", cfg.name, g.name));
            let v: Vec<f32> = grad.to_vec1().unwrap();
            assert!(v.iter().all(|x| x.is_finite()), "{}", g.name);
            assert!(v.iter().any(|&x| x != 0.0), "{}: zero gradient", g.name);
        }
        let _ = logits.argmax(D::Minus1).unwrap();
    }
}

#[test]
fn the_frozen_forward_matches_eval_and_only_reaches_the_gates() {
    for cfg in [small(ModelName::Resnet20, 16, Some(8)), {
        let mut c = small(ModelName::Mobilenetv2, 16, None);
        c.width_mult = 0.25;
        c
    }] {
        let model = Model::new(&cfg, &Device::Cpu, 3).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        train_steps(&model, &mut rng, 2);
        let (x, y) = random_batch(&mut rng, 4, cfg.input_size, 10);
        let gates: Vec<candle_core::Var> = model
            .gates()
            .iter()
            .map(|g| candle_core::Var::ones(g.width, DType::F32, &Device::Cpu).unwrap())
            .collect();
        let values: Vec<Tensor> = gates.iter().map(|v| v.as_tensor().clone()).collect();
        let frozen = model.forward_frozen(&x, Some(&values)).unwrap();
        let eval = model.forward_t(&x, Some(&values), false).unwrap();
        assert!(max_abs_diff(&frozen, &eval) < 1e-5, "{}", cfg.name);
        let grads = loss::cross_entropy(&frozen, &y)
            .unwrap()
            .backward()
            .unwrap();
        for v in &gates {
            assert!(
                grads.get(v).is_some(),
                "{}: a gate got no gradient",
                cfg.name
            );
        }
        for (name, var) in model.named_vars() {
            assert!(
                grads.get(&var).is_none(),
                "{}: `{name}` got a gradient",
                cfg.name
            );
        }
        // the views share storage: an update of the model is seen by the next frozen forward
        train_steps(&model, &mut rng, 1);
        let after = model.forward_frozen(&x, Some(&values)).unwrap();
        let eval = model.forward_t(&x, Some(&values), false).unwrap();
        assert!(max_abs_diff(&after, &eval) < 1e-5 && max_abs_diff(&after, &frozen) > 0.0);
    }
}

#[test]
fn the_same_seed_gives_the_same_weights() {
    let cfg = small(ModelName::Resnet20, 16, Some(8));
    let a = Model::new(&cfg, &Device::Cpu, 11).unwrap().tensors();
    let b = Model::new(&cfg, &Device::Cpu, 11).unwrap().tensors();
    let c = Model::new(&cfg, &Device::Cpu, 12).unwrap().tensors();
    let w = "layer2.1.conv1.weight";
    assert_eq!(max_abs_diff(&a[w], &b[w]), 0.0);
    assert!(max_abs_diff(&a[w], &c[w]) > 0.0);
    // Kaiming fan-out: std = sqrt(2 / (16 · 9)) for a 16-channel 3×3 conv
    let v: Vec<f32> = a[w].flatten_all().unwrap().to_vec1().unwrap();
    let std = (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt();
    assert!((std - (2.0f32 / 144.0).sqrt()).abs() < 0.02, "{std}");
}
