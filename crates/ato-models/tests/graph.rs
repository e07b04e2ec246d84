//! `Model::graph` is the model: its nodes, run with candle's plain ops, give the eval-mode
//! logits of the fast-kernel forward within 1e-4, per family, full and compact (the graph an
//! exporter writes). Negative controls: a changed stride, a changed BN ε.

use ato_models::graph::Op;
use ato_models::{Model, ModelConfig, ModelName, ShortcutKind};
use ato_zig::{KeptChannels, Mask};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn small(name: ModelName, size: usize, base: Option<usize>) -> ModelConfig {
    let mut c = ModelConfig::new(name, 10, size);
    c.base_width = base;
    c
}

/// A model with random BN statistics and affine parameters, so that BN matters in eval mode.
fn model(cfg: &ModelConfig, seed: u64) -> Model {
    let m = Model::new(cfg, &Device::Cpu, seed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (name, var) in m.named_vars() {
        let n = var.elem_count();
        let v: Vec<f32> = if name.ends_with("running_var") {
            (0..n).map(|_| rng.random_range(0.5..2.0)).collect()
        } else if name.ends_with("running_mean") || name.contains("bn") && name.ends_with("bias") {
            (0..n).map(|_| rng.random_range(-0.3..0.3)).collect()
        } else if name.contains("bn") && name.ends_with("weight") {
            (0..n).map(|_| rng.random_range(0.5..1.5)).collect()
        } else {
            continue;
        };
        var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    m
}

fn batch(cfg: &ModelConfig, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = 2 * 3 * cfg.input_size * cfg.input_size;
    let x: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
    Tensor::from_vec(x, (2, 3, cfg.input_size, cfg.input_size), &Device::Cpu).unwrap()
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

/// Every other channel of every gate kept (at least one).
fn half_mask(m: &Model) -> Mask {
    Mask::from_keep(
        m.arch()
            .gate_widths()
            .iter()
            .map(|&w| (0..w).map(|c| c % 2 == 0).collect())
            .collect(),
    )
}

fn check(cfg: ModelConfig, seed: u64) {
    let m = model(&cfg, seed);
    let x = batch(&cfg, seed + 100);
    let want = m.forward_t(&x, None, false).unwrap();
    let graph = m.graph().unwrap();
    let got = graph.evaluate(&x).unwrap();
    // 1e-4 of the logits' scale (deep nets with random BN statistics reach logits of 1e2)
    let scale = want
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
        .max(1.0);
    let d = max_abs_diff(&want, &got);
    assert!(
        d < 1e-4 * scale,
        "{:?}: graph vs model {d} (scale {scale})",
        cfg.name
    );
    assert_eq!(graph.input, (3, cfg.input_size, cfg.input_size));
    // the compact model's graph is the compact model
    let small = m.compact(&KeptChannels::from_mask(&half_mask(&m))).unwrap();
    let d = max_abs_diff(
        &small.forward_t(&x, None, false).unwrap(),
        &small.graph().unwrap().evaluate(&x).unwrap(),
    );
    assert!(
        d < 1e-4 * scale,
        "{:?}: compact graph vs compact model {d}",
        cfg.name
    );
    // every tensor the nodes name is in the graph, under the model's own names
    let names: Vec<&str> = graph.params.iter().map(|(n, _)| n.as_str()).collect();
    let vars = m.named_vars();
    assert!(names.iter().all(|n| vars.contains_key(*n)), "{names:?}");
}

#[test]
fn cifar_resnets_as_graphs() {
    let mut a = small(ModelName::Resnet20, 16, Some(8));
    a.shortcut = ShortcutKind::A;
    check(a, 1);
    check(small(ModelName::Resnet56, 16, Some(4)), 2);
}

#[test]
fn imagenet_resnets_as_graphs() {
    check(small(ModelName::Resnet18, 32, Some(8)), 3);
    check(small(ModelName::Resnet50, 32, Some(8)), 4);
}

#[test]
fn mobilenetv2_as_a_graph() {
    let mut c = small(ModelName::Mobilenetv2, 16, None);
    c.width_mult = 0.25;
    check(c, 5);
}

#[test]
fn a_wrong_stride_or_epsilon_is_seen() {
    let cfg = small(ModelName::Resnet20, 16, Some(8));
    let m = model(&cfg, 6);
    let x = batch(&cfg, 7);
    let want = m.forward_t(&x, None, false).unwrap();
    let mut wrong_eps = m.graph().unwrap();
    for n in &mut wrong_eps.nodes {
        if let Op::BatchNorm { eps, .. } = &mut n.op {
            *eps = 1e-1;
        }
    }
    assert!(max_abs_diff(&want, &wrong_eps.evaluate(&x).unwrap()) > 1e-3);
    let mut wrong_stride = m.graph().unwrap();
    let first_strided = wrong_stride
        .nodes
        .iter_mut()
        .find_map(|n| match &mut n.op {
            Op::Conv { stride, .. } if *stride == 2 => Some(stride),
            _ => None,
        })
        .unwrap();
    *first_strided = 1;
    // a stride-1 conv where the model subsamples: the join fails or the logits differ
    if let Ok(l) = wrong_stride.evaluate(&x) {
        assert!(max_abs_diff(&want, &l) > 1e-3);
    }
}
