//! A model's graph is the model, and the exported ONNX file is the graph: per family, full
//! and compact, `Model::graph` evaluated with candle's plain ops and the ONNX file run by an
//! independent runtime (sonos' `tract`) both give ato-rs's own eval-mode logits (fast kernels)
//! within 1e-4 of their scale. Negative controls: a graph with a changed stride or BN ε, a file
//! with a changed BN ε.

mod common;

use ato_models::graph::{NetworkGraph, Op};
use ato_models::{Model, ModelConfig, ModelName, ShortcutKind};
use ato_onnx::{to_onnx, InputSpec};
use ato_zig::{KeptChannels, Mask};
use candle_core::{Device, Tensor};
use common::{model, small};
use onnx_protobuf::{Message, ModelProto};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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

/// The operators the built-in models do not use — a biased conv, a general (padded) max
/// pool, average pools with and without padding (padded zeros counted), a channel concat,
/// a flatten — exported and run by tract give the graph's own logits; the file imports back
/// as the same graph.
#[test]
fn imported_operators_run_in_tract() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut t = |shape: &[usize]| {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    };
    let params = vec![
        ("a.weight".to_string(), t(&[4, 3, 3, 3])),
        ("a.bias".to_string(), t(&[4])),
        ("b.weight".to_string(), t(&[2, 4, 1, 1])),
        ("fc.weight".to_string(), t(&[5, 24])),
        ("fc.bias".to_string(), t(&[5])),
    ];
    let conv = |w: &str, bias: Option<&str>, padding| Op::Conv {
        weight: w.into(),
        bias: bias.map(String::from),
        stride: 1,
        padding,
        groups: 1,
    };
    let ops = [
        (conv("a.weight", Some("a.bias"), 1), vec![0]),
        (
            Op::MaxPool {
                kernel: 3,
                stride: 2,
                padding: 1,
            },
            vec![1],
        ),
        (conv("b.weight", None, 0), vec![2]),
        (Op::Concat, vec![2, 3]),
        (
            Op::AvgPool {
                kernel: 3,
                stride: 1,
                padding: 1,
            },
            vec![4],
        ),
        (
            Op::AvgPool {
                kernel: 2,
                stride: 2,
                padding: 0,
            },
            vec![5],
        ),
        (Op::Flatten, vec![6]),
        (
            Op::Linear {
                weight: "fc.weight".into(),
                bias: "fc.bias".into(),
            },
            vec![7],
        ),
    ];
    let graph = NetworkGraph {
        nodes: ops
            .into_iter()
            .map(|(op, inputs)| ato_models::graph::Node { op, inputs })
            .collect(),
        params,
        input: (3, 8, 8),
        num_classes: 5,
    };
    let (x, shape) = batch(8, 9);
    let want = graph_logits(&graph, &x, shape).unwrap();
    let proto = to_onnx(&graph, &spec()).unwrap();
    let (d, scale) = gap(&want, &run_tract(&proto, &x, shape));
    assert!(d < 1e-4 * scale, "tract vs graph {d} (scale {scale})");
    // control: without count_include_pad the runtime leaves padded zeros out of the mean
    let mut excluded = proto.clone();
    for n in &mut excluded.graph.as_mut().unwrap().node {
        n.attribute.retain(|a| a.name != "count_include_pad");
    }
    assert!(gap(&want, &run_tract(&excluded, &x, shape)).0 > 1e-3);
    let back = ato_onnx::from_proto(&proto).unwrap();
    assert_eq!(back.nodes, graph.nodes);
}
