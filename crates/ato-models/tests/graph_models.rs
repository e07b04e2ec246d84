//! Imported graphs (issue 29): the group finder on hand-built graphs, built-in models read
//! back from their own graphs (same gates, same logits), and zero invariance of graph models.

mod common;

use ato_models::graph::{NetworkGraph, Op};
use ato_models::graph_groups::GroupPolicy;
use ato_models::graph_net::GraphSpec;
use ato_models::graph_sketch::{vgg_with_concat, GraphSketch};
use ato_models::{Model, ModelConfig, ModelName, ShortcutKind};
use candle_core::{Device, Tensor};
use common::{check_zero_invariance, max_abs_diff, random_batch, small, train_steps};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn model_of(graph: &NetworkGraph, policy: GroupPolicy) -> Result<Model, ato_models::ModelError> {
    let spec = GraphSpec::of(graph, policy, "hand-built");
    let cfg = ModelConfig::graph(spec, graph.input, graph.num_classes);
    let tensors = graph.params.iter().cloned().collect();
    Model::from_tensors(&cfg, tensors, &Device::Cpu)
}

/// (gate name, width, member tensors, consumer (tensor, axis, offset)) of every gate.
type GateView = (String, usize, Vec<String>, Vec<(String, usize, usize)>);

fn gate_view(m: &Model) -> Vec<GateView> {
    m.gates()
        .iter()
        .map(|g| {
            (
                g.name.clone(),
                g.width,
                g.members.iter().map(|t| t.tensor.clone()).collect(),
                g.consumers
                    .iter()
                    .map(|t| (t.tensor.clone(), t.axis, t.offset))
                    .collect(),
            )
        })
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// stem → block (c1, c2) with an identity residual → classifier.
fn residual_chain() -> NetworkGraph {
    let mut n = GraphSketch::new((3, 8, 8), 7);
    let stem = n.conv_bn_relu(0, "stem", 3, 8);
    let h = n.conv_bn_relu(stem, "c1", 8, 6);
    let c2 = n.conv(h, "c2", 6, 8, 1);
    let b2 = n.bn(c2, "c2.bn", 8);
    let sum = n.push(Op::Add, &[b2, stem]);
    let out = n.push(Op::Relu, &[sum]);
    n.classifier(out, 8, 4)
}

#[test]
fn a_residual_chain_gates_the_inner_channels_and_with_policy_all_the_stream() {
    let g = residual_chain();
    let inner = gate_view(&model_of(&g, GroupPolicy::Inner).unwrap());
    assert_eq!(
        inner,
        vec![(
            "c1".into(),
            6,
            s(&["c1.weight", "c1.bn.weight", "c1.bn.bias"]),
            vec![("c2.weight".into(), 1, 0)]
        )]
    );
    // policy All: the stem and c2 are joined by the Add — one gate over both producers
    let all = gate_view(&model_of(&g, GroupPolicy::All).unwrap());
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, "stem");
    assert_eq!(
        all[0].2,
        s(&[
            "stem.weight",
            "stem.bn.weight",
            "stem.bn.bias",
            "c2.weight",
            "c2.bn.weight",
            "c2.bn.bias"
        ])
    );
    assert_eq!(
        all[0].3,
        vec![("c1.weight".into(), 1, 0), ("fc.weight".into(), 1, 0)]
    );
    assert_eq!(all[1].0, "c1");
}

#[test]
fn an_add_of_two_branches_couples_them_into_one_group() {
    // negative control of the union: two convs whose outputs are only added must share a gate
    let mut n = GraphSketch::new((3, 8, 8), 7);
    let stem = n.conv_bn_relu(0, "stem", 3, 4);
    let a = n.conv(stem, "a", 4, 6, 1);
    let b = n.conv(stem, "b", 4, 6, 1);
    let sum = n.push(Op::Add, &[a, b]);
    let h = n.push(Op::Relu, &[sum]);
    let h = n.conv_bn_relu(h, "c", 6, 5);
    let h = n.conv_bn_relu(h, "d", 5, 5);
    let g = n.classifier(h, 5, 3);
    let all = gate_view(&model_of(&g, GroupPolicy::All).unwrap());
    let joined: Vec<_> = all
        .iter()
        .filter(|v| v.2.contains(&"a.weight".into()))
        .collect();
    assert_eq!(joined.len(), 1, "{all:?}");
    assert_eq!(joined[0].1, 6);
    assert_eq!(joined[0].2, s(&["a.weight", "b.weight"]));
    // as built-ins do, policy Inner keeps the joined channels
    let inner = gate_view(&model_of(&g, GroupPolicy::Inner).unwrap());
    assert!(
        inner.iter().all(|v| !v.2.contains(&"a.weight".into())),
        "{inner:?}"
    );
}

#[test]
fn a_depthwise_block_is_one_group_with_its_expansion() {
    let mut n = GraphSketch::new((3, 8, 8), 7);
    let stem = n.conv_bn_relu(0, "stem", 3, 4);
    let e = n.conv_bn_relu(stem, "expand", 4, 12);
    let dw = n.conv(e, "dw", 12, 12, 12);
    let dwb = n.bn(dw, "dw.bn", 12);
    let dwr = n.push(Op::Relu6, &[dwb]);
    let p = n.conv(dwr, "project", 12, 6, 1);
    let pb = n.bn(p, "project.bn", 6);
    let h = n.conv_bn_relu(pb, "head", 6, 8);
    let g = n.classifier(h, 8, 3);
    let inner = gate_view(&model_of(&g, GroupPolicy::Inner).unwrap());
    assert_eq!(
        inner,
        vec![(
            "expand".into(),
            12,
            s(&[
                "expand.weight",
                "expand.bn.weight",
                "expand.bn.bias",
                "dw.weight",
                "dw.bn.weight",
                "dw.bn.bias"
            ]),
            vec![("project.weight".into(), 1, 0)]
        )]
    );
    // policy All adds the linear bottleneck (project) and the head the classifier reads
    let all = gate_view(&model_of(&g, GroupPolicy::All).unwrap());
    let names: Vec<&str> = all.iter().map(|v| v.0.as_str()).collect();
    assert_eq!(names, ["stem", "expand", "project", "head"]);
}

/// stem → two branches (4 and 6 channels) → concat → c2 → classifier.
fn concat_net() -> NetworkGraph {
    let mut n = GraphSketch::new((3, 8, 8), 7);
    let stem = n.conv_bn_relu(0, "stem", 3, 8);
    let a = n.conv_bn_relu(stem, "a", 8, 4);
    let b = n.conv_bn_relu(stem, "b", 8, 6);
    let cat = n.push(Op::Concat, &[a, b]);
    let h = n.conv_bn_relu(cat, "c2", 10, 8);
    n.classifier(h, 8, 3)
}

#[test]
fn a_concat_cuts_its_consumer_at_offsets() {
    let inner = gate_view(&model_of(&concat_net(), GroupPolicy::Inner).unwrap());
    assert_eq!(
        inner,
        vec![
            (
                "a".into(),
                4,
                s(&["a.weight", "a.bn.weight", "a.bn.bias"]),
                vec![("c2.weight".into(), 1, 0)]
            ),
            (
                "b".into(),
                6,
                s(&["b.weight", "b.bn.weight", "b.bn.bias"]),
                vec![("c2.weight".into(), 1, 4)]
            ),
        ]
    );
}

#[test]
fn a_graph_without_a_prunable_group_is_refused() {
    let mut n = GraphSketch::new((3, 8, 8), 7);
    let stem = n.conv_bn_relu(0, "stem", 3, 8);
    let g = n.classifier(stem, 8, 3);
    let Err(err) = model_of(&g, GroupPolicy::Inner) else {
        panic!("a graph without a gate must be refused")
    };
    assert!(
        err.to_string().contains("no prunable channel group"),
        "{err}"
    );
    // the same graph under policy All prunes the stem
    assert_eq!(model_of(&g, GroupPolicy::All).unwrap().gates().len(), 1);
}

fn graph_config(model: &Model, policy: GroupPolicy) -> ModelConfig {
    let graph = model.graph().unwrap();
    let spec = GraphSpec::of(&graph, policy, "built-in");
    ModelConfig::graph(spec, graph.input, graph.num_classes)
}

fn builtins() -> Vec<ModelConfig> {
    let mut a = small(ModelName::Resnet20, 16, Some(8));
    a.shortcut = ShortcutKind::A;
    let mut b = small(ModelName::Resnet56, 16, Some(4));
    b.shortcut = ShortcutKind::B;
    let mut m = small(ModelName::Mobilenetv2, 16, None);
    m.width_mult = 0.25;
    vec![
        a,
        b,
        small(ModelName::Resnet18, 32, Some(8)),
        small(ModelName::Resnet50, 32, Some(8)),
        m,
    ]
}

#[test]
fn a_builtin_read_back_from_its_graph_has_its_gates_counts_and_logits() {
    for (i, cfg) in builtins().into_iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
        let model = Model::new(&cfg, &Device::Cpu, i as u64).unwrap();
        train_steps(&model, &mut rng, 2);
        let g = Model::from_tensors(
            &graph_config(&model, GroupPolicy::Inner),
            model.tensors(),
            &Device::Cpu,
        )
        .unwrap();
        let widths = |m: &Model| m.gates().iter().map(|g| g.width).collect::<Vec<_>>();
        assert_eq!(widths(&g), widths(&model), "{}", cfg.name);
        assert_eq!(g.arch().gated_channels(), model.arch().gated_channels());
        assert_eq!(g.macs_polynomial(), model.macs_polynomial(), "{}", cfg.name);
        assert_eq!(g.param_count(), model.param_count());
        for (a, b) in g.gates().iter().zip(model.gates()) {
            let sorted = |v: &[ato_zig::TensorAxis]| {
                let mut n: Vec<_> = v.iter().map(|t| (t.tensor.clone(), t.axis)).collect();
                n.sort();
                n
            };
            assert_eq!(
                sorted(&a.members),
                sorted(&b.members),
                "{}: {}",
                cfg.name,
                b.name
            );
            assert_eq!(
                sorted(&a.consumers),
                sorted(&b.consumers),
                "{}: {}",
                cfg.name,
                b.name
            );
        }
        let (x, _) = random_batch(&mut rng, 2, cfg.input_size, 10);
        let d = max_abs_diff(
            &g.forward_t(&x, None, false).unwrap(),
            &model.forward_t(&x, None, false).unwrap(),
        );
        assert!(d < 1e-4, "{}: {d}", cfg.name);
        // hard gates: the same masked logits (the gate is applied elsewhere, the cut is the same)
        let gates: Vec<Tensor> = model
            .gates()
            .iter()
            .map(|gt| {
                let v: Vec<f32> = (0..gt.width)
                    .map(|_| rng.random_range(0..2) as f32)
                    .collect();
                Tensor::from_vec(v, gt.width, &Device::Cpu).unwrap()
            })
            .collect();
        let d = max_abs_diff(
            &g.forward_t(&x, Some(&gates), false).unwrap(),
            &model.forward_t(&x, Some(&gates), false).unwrap(),
        );
        assert!(d < 1e-4, "{} gated: {d}", cfg.name);
    }
}

#[test]
fn graph_models_are_zero_invariant() {
    let mut cfgs = Vec::new();
    for (policy, builtin) in [
        (GroupPolicy::Inner, &builtins()[0]),
        (GroupPolicy::All, &builtins()[2]),
        (GroupPolicy::All, &builtins()[4]),
    ] {
        let model = Model::new(builtin, &Device::Cpu, 0).unwrap();
        cfgs.push(graph_config(&model, policy));
    }
    let vgg = vgg_with_concat((3, 16, 16), 10, 8, 1);
    let names: Vec<String> = gate_view(&model_of(&vgg, GroupPolicy::Inner).unwrap())
        .into_iter()
        .map(|v| format!("{}:{}", v.0, v.1))
        .collect();
    assert_eq!(
        names,
        [
            "conv1:8",
            "branch_a:8",
            "branch_b1:4",
            "branch_b2:8",
            "conv2:16"
        ]
    );
    cfgs.push(ModelConfig::graph(
        GraphSpec::of(&vgg, GroupPolicy::Inner, "vgg"),
        vgg.input,
        vgg.num_classes,
    ));
    for policy in [GroupPolicy::Inner, GroupPolicy::All] {
        let g = concat_net();
        cfgs.push(ModelConfig::graph(
            GraphSpec::of(&g, policy, "concat"),
            g.input,
            g.num_classes,
        ));
    }
    for (i, mut cfg) in cfgs.into_iter().enumerate() {
        cfg.num_classes = 10;
        if let Some(spec) = &mut cfg.graph {
            // a 10-class head for the shared check
            let last = spec.nodes.last().unwrap().clone();
            if let Op::Linear { weight, bias } = &last.op {
                let f = spec.tensor_shapes[weight][1];
                spec.tensor_shapes.insert(weight.clone(), vec![10, f]);
                spec.tensor_shapes.insert(bias.clone(), vec![10]);
            }
        }
        check_zero_invariance(cfg, 10 + i as u64);
    }
}

/// `GraphSpec::explain` says, layer by layer, which gate a layer's channels are or why they
/// are fixed (what `ato info FILE.onnx` prints).
#[test]
fn every_channel_starting_layer_is_explained() {
    let vgg = vgg_with_concat((3, 16, 16), 10, 8, 1);
    let spec = GraphSpec::of(&vgg, GroupPolicy::Inner, "vgg");
    let rows: Vec<(String, usize, Option<usize>, Option<&str>)> = spec
        .explain([3, 16, 16])
        .unwrap()
        .into_iter()
        .map(|l| (l.layer, l.channels, l.gate, l.fixed_because))
        .collect();
    let fixed = |name: &str, c, why| (name.to_string(), c, None, Some(why));
    let gate = |name: &str, c, g| (name.to_string(), c, Some(g), None);
    assert_eq!(
        rows,
        [
            fixed("stem", 8, "the stem's output"),
            gate("conv1", 8, 0),
            gate("branch_a", 8, 1),
            gate("branch_b1", 4, 2),
            gate("branch_b2", 8, 3),
            gate("conv2", 16, 4),
            fixed("conv3", 16, "read by the classifier"),
            fixed("fc", 10, "the classifier's outputs"),
        ]
    );
}
