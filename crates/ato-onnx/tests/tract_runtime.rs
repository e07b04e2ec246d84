//! A model's graph is the model, and the exported ONNX file is the graph: per family, full
//! and compact, `Model::graph` evaluated with candle's plain ops and the ONNX file run by an
//! independent runtime (sonos' `tract`) both give ato-rs's own eval-mode logits (fast kernels)
//! within 1e-4 of their scale. Negative controls: a graph with a changed stride or BN ε, a file
//! with a changed BN ε.

use ato_models::graph::{NetworkGraph, Op};
use ato_models::{Model, ModelConfig, ModelName, ShortcutKind};
use ato_onnx::{to_onnx, InputSpec};
use ato_zig::{KeptChannels, Mask};
use candle_core::{Device, Tensor};
use onnx_protobuf::{Message, ModelProto};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn small(name: ModelName, size: usize, base: Option<usize>) -> ModelConfig {
    let mut c = ModelConfig::new(name, 10, size);
    c.base_width = base;
    c
}

/// A model whose BN statistics and affine parameters are random (BN matters in eval mode).
fn model(cfg: &ModelConfig, seed: u64) -> Model {
    let m = Model::new(cfg, &Device::Cpu, seed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (name, var) in m.named_vars() {
        let n = var.elem_count();
        let range = if name.ends_with("running_var") {
            0.5..2.0
        } else if name.ends_with("running_mean") || name.contains("bn") && name.ends_with("bias") {
            -0.3..0.3
        } else if name.contains("bn") && name.ends_with("weight") {
            0.5..1.5
        } else {
            continue;
        };
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(range.clone())).collect();
        var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    m
}

fn spec() -> InputSpec {
    InputSpec {
        mean: vec![0.5; 3],
        std: vec![0.25; 3],
        source: "test".into(),
    }
}

/// Logits of `x` computed by tract from `proto`'s bytes.
fn run_tract(proto: &ModelProto, x: &[f32], shape: [usize; 4]) -> Vec<f32> {
    use tract_onnx::prelude::*;
    let bytes = proto.write_to_bytes().unwrap();
    let plan = tract_onnx::onnx()
        .model_for_read(&mut bytes.as_slice())
        .unwrap()
        .with_input_fact(0, f32::fact(shape).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = Tensor::from_shape(&shape, x).unwrap();
    let out = plan.run(tvec!(input.into_tvalue())).unwrap();
    out[0]
        .to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

fn batch(size: usize, seed: u64) -> (Vec<f32>, [usize; 4]) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let shape = [2, 3, size, size];
    let x = (0..shape.iter().product::<usize>())
        .map(|_| rng.random_range(-2.0f32..2.0))
        .collect();
    (x, shape)
}

/// Largest |a − b| and the scale (largest |a|, at least 1).
fn gap(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let d = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    (d, a.iter().map(|x| x.abs()).fold(1.0, f32::max))
}

fn ours(m: &Model, x: &[f32], shape: [usize; 4]) -> Vec<f32> {
    let t = Tensor::from_slice(x, &shape, &Device::Cpu).unwrap();
    let l = m.forward_t(&t, None, false).unwrap();
    l.flatten_all().unwrap().to_vec1().unwrap()
}

/// Logits of the graph evaluated with candle's plain ops.
fn graph_logits(g: &NetworkGraph, x: &[f32], shape: [usize; 4]) -> Option<Vec<f32>> {
    let t = Tensor::from_slice(x, &shape, &Device::Cpu).unwrap();
    let l = g.evaluate(&t).ok()?;
    Some(l.flatten_all().unwrap().to_vec1().unwrap())
}

/// The graph and the ONNX file of `m` against its own forward.
fn check_model(m: &Model, x: &[f32], shape: [usize; 4], what: &str) {
    let want = ours(m, x, shape);
    let graph = m.graph().unwrap();
    let (d, scale) = gap(&want, &graph_logits(&graph, x, shape).unwrap());
    assert!(d < 1e-4 * scale, "{what}: graph vs ato {d} (scale {scale})");
    let names = m.named_vars();
    assert!(graph.params.iter().all(|(n, _)| names.contains_key(n)));
    let got = run_tract(&to_onnx(&graph, &spec()).unwrap(), x, shape);
    let (d, scale) = gap(&want, &got);
    assert!(d < 1e-4 * scale, "{what}: tract vs ato {d} (scale {scale})");
}

fn check(cfg: ModelConfig, seed: u64) {
    let m = model(&cfg, seed);
    let (x, shape) = batch(cfg.input_size, seed + 100);
    check_model(&m, &x, shape, &format!("{:?}", cfg.name));
    // the compact model (every other channel of every gate)
    let keep = Mask::from_keep(
        m.arch()
            .gate_widths()
            .iter()
            .map(|&w| (0..w).map(|c| c % 2 == 0).collect())
            .collect(),
    );
    let small = m.compact(&KeptChannels::from_mask(&keep)).unwrap();
    check_model(&small, &x, shape, &format!("{:?} compact", cfg.name));
}

#[test]
fn cifar_resnets_run_in_tract() {
    let mut a = small(ModelName::Resnet20, 16, Some(8));
    a.shortcut = ShortcutKind::A;
    check(a, 1);
    check(small(ModelName::Resnet56, 16, Some(4)), 2);
}

#[test]
fn imagenet_resnets_run_in_tract() {
    check(small(ModelName::Resnet18, 32, Some(8)), 3);
    check(small(ModelName::Resnet50, 32, Some(8)), 4);
}

#[test]
fn mobilenetv2_runs_in_tract() {
    let mut c = small(ModelName::Mobilenetv2, 16, None);
    c.width_mult = 0.25;
    check(c, 5);
}

#[test]
fn a_changed_attribute_in_the_file_is_seen_by_the_runtime() {
    let cfg = small(ModelName::Resnet20, 16, Some(8));
    let m = model(&cfg, 6);
    let (x, shape) = batch(16, 7);
    let want = ours(&m, &x, shape);
    let proto = to_onnx(&m.graph().unwrap(), &spec()).unwrap();
    let mut eps = proto.clone();
    for n in &mut eps.graph.as_mut().unwrap().node {
        if n.op_type == "BatchNormalization" {
            n.attribute[0].f = 0.1;
        }
    }
    assert!(gap(&want, &run_tract(&eps, &x, shape)).0 > 1e-3);
    // the graph's own controls: a changed ε, a stride-1 conv where the model subsamples
    let mut g = m.graph().unwrap();
    for n in &mut g.nodes {
        if let Op::BatchNorm { eps, .. } = &mut n.op {
            *eps = 0.1;
        }
    }
    assert!(gap(&want, &graph_logits(&g, &x, shape).unwrap()).0 > 1e-3);
    let mut g = m.graph().unwrap();
    let strided = g.nodes.iter_mut().find_map(|n| match &mut n.op {
        Op::Conv { stride, .. } if *stride == 2 => Some(stride),
        _ => None,
    });
    *strided.unwrap() = 1;
    if let Some(l) = graph_logits(&g, &x, shape) {
        assert!(gap(&want, &l).0 > 1e-3);
    }
    // the file's metadata says how to normalise the input
    let meta: Vec<(&str, &str)> = proto
        .metadata_props
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    assert!(
        meta.contains(&("normalization_mean", "0.5,0.5,0.5")),
        "{meta:?}"
    );
    assert!(
        meta.contains(&("normalization_std", "0.25,0.25,0.25")),
        "{meta:?}"
    );
}
