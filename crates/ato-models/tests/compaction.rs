//! Zero-invariance, per family: after a few training steps, zero a random 30–70% of the
//! groups of every gate, compact, and check that the compact model computes the same logits
//! as the masked model, that its counts equal the polynomials, and that it survives a
//! safetensors round trip.

mod common;

use ato_models::{Model, ModelName, ShortcutKind};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::loss;
use common::{check_zero_invariance, max_abs_diff, random_batch, small, train_steps};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

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
