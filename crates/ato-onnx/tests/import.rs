//! ONNX in: ato's own exports come back as the same graph (same operators, same tensor names,
//! same logits), a hand-built file from "another framework" (initializer names of its own,
//! Gemm with transB = 0, MatMul + Add, Constant nodes, Flatten after GlobalAveragePool,
//! padded pooling, Dropout, a concat branch) imports with canonical names and computes what
//! a hand-written candle computation does, and bad files fail with messages that name the
//! cause.

mod common;

use ato_models::graph::NetworkGraph;
use ato_models::{ModelConfig, ModelName, ShortcutKind};
use ato_onnx::{from_proto, read_onnx, to_onnx};
use common::*;
use onnx_protobuf::{Message, ModelProto};

/// The graph of `cfg`'s model, exported, serialised, parsed and imported: the same graph.
fn round_trip(cfg: ModelConfig, seed: u64) {
    let what = format!("{:?}", cfg.name);
    let g = model(&cfg, seed).graph().unwrap();
    let bytes = to_onnx(&g, &spec()).unwrap().write_to_bytes().unwrap();
    let back = from_proto(&ModelProto::parse_from_bytes(&bytes).unwrap()).unwrap();
    assert_eq!(back.nodes, g.nodes, "{what}: nodes");
    assert_eq!(back.input, g.input, "{what}");
    assert_eq!(back.num_classes, g.num_classes, "{what}");
    let names = |g: &NetworkGraph| g.params.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&back), names(&g), "{what}: parameter names and order");
    for ((n, a), (_, b)) in g.params.iter().zip(&back.params) {
        assert_eq!(gap(a, b), 0.0, "{what}: `{n}`");
    }
    let x = random(
        &[2, cfg.in_channels, cfg.input_size, cfg.input_size],
        seed + 1,
    );
    let d = gap(&g.evaluate(&x).unwrap(), &back.evaluate(&x).unwrap());
    assert!(d <= 1e-5, "{what}: logits differ by {d}");
}

#[test]
fn cifar_resnets_round_trip() {
    let mut a = small(ModelName::Resnet20, 16, Some(4));
    a.shortcut = ShortcutKind::A;
    round_trip(a, 1);
    let mut b = small(ModelName::Resnet20, 16, Some(4));
    b.shortcut = ShortcutKind::B;
    round_trip(b, 2);
}

#[test]
fn imagenet_resnets_round_trip() {
    round_trip(small(ModelName::Resnet18, 32, Some(4)), 3);
    round_trip(small(ModelName::Resnet50, 32, Some(4)), 4);
}

#[test]
fn mobilenetv2_round_trips() {
    let mut c = small(ModelName::Mobilenetv2, 16, None);
    c.width_mult = 0.25;
    round_trip(c, 5);
}

#[test]
fn an_exported_file_reads_back() {
    let cfg = small(ModelName::Resnet20, 16, Some(4));
    let g = model(&cfg, 6).graph().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    ato_onnx::write_onnx(&path, &g, &spec()).unwrap();
    let back = read_onnx(&path).unwrap();
    assert_eq!(back.nodes, g.nodes);
    let x = random(&[2, 3, 16, 16], 7);
    assert!(gap(&g.evaluate(&x).unwrap(), &back.evaluate(&x).unwrap()) <= 1e-5);
}
