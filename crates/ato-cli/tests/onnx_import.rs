//! Every built-in, exported to ONNX and imported back (issue 29): `ato info FILE.onnx` counts
//! exactly what `ato info NAME` counts (params, MACs, prunable MACs, gates, gated channels),
//! and the imported model computes the built-in's logits within 1e-4.

use ato_models::graph_groups::GroupPolicy;
use ato_models::graph_net::GraphSpec;
use ato_models::{Model, ModelConfig, ModelName, ShortcutKind};
use ato_onnx::{read_onnx, write_onnx, InputSpec};
use candle_core::{Device, Tensor};
use std::process::Command;

fn ato_info_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ato"))
        .arg("info")
        .args(args)
        .arg("--json")
        .output()
        .expect("run ato");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn every_builtin_round_trips_through_onnx_with_its_gates_counts_and_logits() {
    let dir = tempfile::tempdir().unwrap();
    let cifar = |name, classes| ModelConfig::new(name, classes, 32);
    let mut r20 = cifar(ModelName::Resnet20, 10);
    r20.shortcut = ShortcutKind::A;
    let mut r56 = cifar(ModelName::Resnet56, 10);
    r56.shortcut = ShortcutKind::B;
    let mut r18 = cifar(ModelName::Resnet18, 100);
    r18.base_width = Some(16);
    let mut r50 = cifar(ModelName::Resnet50, 100);
    r50.base_width = Some(8);
    let mut mb = cifar(ModelName::Mobilenetv2, 10);
    mb.width_mult = 0.5;
    let cases: [(ModelConfig, &str, &[&str]); 6] = [
        (r20, "cifar10", &["model.shortcut=A"]),
        (r56, "cifar10", &["model.shortcut=B"]),
        (r18, "cifar100", &["model.base_width=16"]),
        (r50, "cifar100", &["model.base_width=8"]),
        (mb, "cifar10", &["model.width_mult=0.5"]),
        // ImageNet geometry (224 px, stride-2 stem, max-pool): the full ResNet-18
        (ModelConfig::imagenet("resnet18"), "imagenet", &[]),
    ];
    for (i, (cfg, dataset, overrides)) in cases.into_iter().enumerate() {
        let name = cfg.name.as_str();
        let model = Model::new(&cfg, &Device::Cpu, i as u64).unwrap();
        let file = dir.path().join(format!("{name}-{i}.onnx"));
        let spec = InputSpec {
            mean: vec![0.0; 3],
            std: vec![1.0; 3],
            source: name.into(),
        };
        write_onnx(&file, &model.graph().unwrap(), &spec).unwrap();
        let mut args = vec![name, "--dataset", dataset];
        args.extend(overrides);
        let builtin = ato_info_json(&args);
        let imported = ato_info_json(&[file.to_str().unwrap()]);
        assert_eq!(imported, builtin, "{name} on {dataset}");
        // the imported model, with the file's weights, computes the built-in's logits
        let graph = read_onnx(&file).unwrap();
        let gcfg = ModelConfig::graph(
            GraphSpec::of(&graph, GroupPolicy::Inner, name),
            graph.input,
            graph.num_classes,
        );
        let tensors = graph.params.into_iter().collect();
        let back = Model::from_tensors(&gcfg, tensors, &Device::Cpu).unwrap();
        let n = if dataset == "imagenet" { 1 } else { 2 };
        let x = Tensor::randn(
            0f32,
            1.0,
            (n, 3, cfg.input_size, cfg.input_size),
            &Device::Cpu,
        )
        .unwrap();
        let (a, b) = (
            back.forward_t(&x, None, false).unwrap(),
            model.forward_t(&x, None, false).unwrap(),
        );
        let d = (a - &b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let scale = b
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            scale > 1e-3 && d < 1e-4 * scale.max(1.0),
            "{name}: {d} at scale {scale}"
        );
    }
}

#[test]
fn policy_all_gates_more_and_a_bad_file_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ModelConfig::new(ModelName::Resnet18, 10, 32);
    cfg.base_width = Some(8);
    let model = Model::new(&cfg, &Device::Cpu, 0).unwrap();
    let file = dir.path().join("r18.onnx");
    let spec = InputSpec {
        mean: vec![0.0; 3],
        std: vec![1.0; 3],
        source: "r18".into(),
    };
    write_onnx(&file, &model.graph().unwrap(), &spec).unwrap();
    let inner = ato_info_json(&[file.to_str().unwrap()]);
    let all = ato_info_json(&[file.to_str().unwrap(), "--groups", "all"]);
    // the stem/stage streams (4) and nothing else join the 8 inner gates
    assert_eq!((&inner["gates"], &all["gates"]), (&8.into(), &12.into()));
    assert!(all["prunable_macs"].as_u64() > inner["prunable_macs"].as_u64());
    assert_eq!(all["macs"], inner["macs"]);
    // a truncated file
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ato"))
        .args(["info", cut.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("cut.onnx") && err.contains("not a readable ONNX model"),
        "{err}"
    );
}
