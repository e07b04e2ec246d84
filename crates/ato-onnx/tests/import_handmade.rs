//! A hand-built ONNX file from "another framework" imports with canonical names and computes
//! what a hand-written candle computation does.

mod common;

use ato_models::graph::{Node, Op};
use ato_onnx::from_proto;
use candle_core::{Device, Tensor};
use common::*;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::TensorProto;

#[test]
fn a_hand_built_network_imports_with_canonical_names() {
    let mut o = Onnx::default();
    let mut seed = 10;
    let mut r = |shape: &[usize]| {
        seed += 1;
        random(shape, seed)
    };
    let w1 = o.init("features.0.weight", r(&[4, 3, 3, 3]));
    let b1 = o.init("conv1_b", r(&[4]));
    let y = conv_node(&mut o, "conv1", "x", &w1, Some(&b1), 1);
    let bn_var = (r(&[4]).abs().unwrap() + 0.5).unwrap();
    let bn: Vec<String> = [
        ("gamma", r(&[4])),
        ("beta", r(&[4])),
        ("mu", r(&[4])),
        ("sigma2", bn_var),
    ]
    .into_iter()
    .map(|(n, t)| o.init(n, t))
    .collect();
    let y = o.node(
        "bn",
        "BatchNormalization",
        &[&y, &bn[0], &bn[1], &bn[2], &bn[3]],
        vec![attr_float("epsilon", 1e-3)],
    );
    let y = o.node("relu1", "Relu", &[&y], vec![]);
    let pooled = o.node(
        "pool1",
        "MaxPool",
        &[&y],
        vec![square("kernel_shape", 3), square("strides", 2), pads(1)],
    );
    // branch a: 1×1 conv (a weight name of its own), ReLU6 from Constant bounds
    let wa = o.init("w_a", r(&[2, 4, 1, 1]));
    let a = conv_node(&mut o, "conv_a", &pooled, &wa, None, 0);
    let lo = o.constant("lo", &Tensor::new(0f32, &Device::Cpu).unwrap());
    let hi = o.constant("hi", &Tensor::new(6f32, &Device::Cpu).unwrap());
    let a = o.node("clip", "Clip", &[&a, &lo, &hi], vec![]);
    // branch b: 3×3 conv whose bias is a Constant node
    let wb = o.init("branch_b.weight", r(&[3, 4, 3, 3]));
    let bb_t = r(&[3]);
    let bb = o.constant("bb", &bb_t);
    let b = conv_node(&mut o, "conv_b", &pooled, &wb, Some(&bb), 1);
    let b = o.node("relu_b", "Relu", &[&b], vec![]);
    let y = o.node("cat", "Concat", &[&a, &b], vec![attr_int("axis", 1)]);
    let y = o.node(
        "avg1",
        "AveragePool",
        &[&y],
        vec![square("kernel_shape", 2), square("strides", 2)],
    );
    let y = o.node(
        "avg2",
        "AveragePool",
        &[&y],
        vec![
            square("kernel_shape", 3),
            pads(1),
            attr_int("count_include_pad", 1),
        ],
    );
    let y = o.node("gap", "GlobalAveragePool", &[&y], vec![]);
    let y = o.node("flat", "Flatten", &[&y], vec![attr_int("axis", 1)]);
    // Gemm with B as (in, out) and transB = 0
    let fc_w = o.init("fc1_w", r(&[5, 6]));
    let fc_b = o.init("fc1_b", r(&[6]));
    let y = o.node(
        "fc1",
        "Gemm",
        &[&y, &fc_w, &fc_b],
        vec![attr_int("transB", 0)],
    );
    let y = o.node("relu_fc", "Relu", &[&y], vec![]);
    let y = o.node("drop", "Dropout", &[&y], vec![]);
    let hw = o.init("head.weight", r(&[6, 3]));
    let hb = o.init("head_bias", r(&[3]));
    let y = o.node("head", "MatMul", &[&y, &hw], vec![]);
    let logits = o.node("head_add", "Add", &[&hb, &y], vec![]);

    let w = |n: &str| o.w(n).clone();
    let (w1t, b1t, wat, wbt) = (w(&w1), w(&b1), w(&wa), w(&wb));
    let bnt: Vec<Tensor> = bn.iter().map(|n| w(n)).collect();
    let (fcw, fcb, hwt, hbt) = (w(&fc_w), w(&fc_b), w(&hw), w(&hb));
    let proto = o.model(3, 8, &logits, 3);
    let g = from_proto(&proto).unwrap();

    let conv = |weight: &str, bias: Option<&str>, padding| Op::Conv {
        weight: weight.into(),
        bias: bias.map(String::from),
        stride: 1,
        padding,
        groups: 1,
    };
    let linear = |p: &str| Op::Linear {
        weight: format!("{p}.weight"),
        bias: format!("{p}.bias"),
    };
    let want = [
        (
            conv("features.0.weight", Some("features.0.bias"), 1),
            vec![0],
        ),
        (
            Op::BatchNorm {
                scale: "bn2.weight".into(),
                bias: "bn2.bias".into(),
                mean: "bn2.running_mean".into(),
                var: "bn2.running_var".into(),
                eps: 1e-3,
            },
            vec![1],
        ),
        (Op::Relu, vec![2]),
        (
            Op::MaxPool {
                kernel: 3,
                stride: 2,
                padding: 1,
            },
            vec![3],
        ),
        (conv("node5.weight", None, 0), vec![4]),
        (Op::Relu6, vec![5]),
        (conv("branch_b.weight", Some("branch_b.bias"), 1), vec![4]),
        (Op::Relu, vec![7]),
        (Op::Concat, vec![6, 8]),
        (
            Op::AvgPool {
                kernel: 2,
                stride: 2,
                padding: 0,
            },
            vec![9],
        ),
        (
            Op::AvgPool {
                kernel: 3,
                stride: 1,
                padding: 1,
            },
            vec![10],
        ),
        (Op::GlobalAvgPool, vec![11]),
        (linear("node13"), vec![12]),
        (Op::Relu, vec![13]),
        (linear("head"), vec![14]),
    ]
    .map(|(op, inputs)| Node { op, inputs });
    assert_eq!(g.nodes, want);
    assert_eq!((g.input, g.num_classes), ((3, 8, 8), 3));
    let names: Vec<&str> = g.params.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "features.0.weight",
            "features.0.bias",
            "bn2.weight",
            "bn2.bias",
            "bn2.running_mean",
            "bn2.running_var",
            "node5.weight",
            "branch_b.weight",
            "branch_b.bias",
            "node13.weight",
            "node13.bias",
            "head.weight",
            "head.bias",
        ]
    );
    assert_eq!(g.shapes().unwrap()[12], vec![5]);

    // the same network, written out with candle's ops
    let x = random(&[2, 3, 8, 8], 99);
    let ch = |t: &Tensor| t.reshape((1, (), 1, 1)).unwrap();
    let y = x
        .conv2d(&w1t, 1, 1, 1, 1)
        .unwrap()
        .broadcast_add(&ch(&b1t))
        .unwrap();
    let std = (bnt[3].clone() + 1e-3).unwrap().sqrt().unwrap();
    let y = y
        .broadcast_sub(&ch(&bnt[2]))
        .unwrap()
        .broadcast_div(&ch(&std))
        .unwrap();
    let y = y
        .broadcast_mul(&ch(&bnt[0]))
        .unwrap()
        .broadcast_add(&ch(&bnt[1]))
        .unwrap();
    let y = y.relu().unwrap();
    // after a ReLU, zero padding is −∞ padding for a max
    let pad = |t: &Tensor, p| {
        t.pad_with_zeros(2, p, p)
            .unwrap()
            .pad_with_zeros(3, p, p)
            .unwrap()
    };
    let p = pad(&y, 1).max_pool2d_with_stride(3, 2).unwrap();
    let a = p
        .conv2d(&wat, 0, 1, 1, 1)
        .unwrap()
        .clamp(0f32, 6f32)
        .unwrap();
    let b = p
        .conv2d(&wbt, 1, 1, 1, 1)
        .unwrap()
        .broadcast_add(&ch(&bb_t))
        .unwrap();
    let y = Tensor::cat(&[&a, &b.relu().unwrap()], 1).unwrap();
    let y = y.avg_pool2d_with_stride(2, 2).unwrap();
    let y = pad(&y, 1).avg_pool2d_with_stride(3, 1).unwrap();
    let y = y.mean((2, 3)).unwrap();
    let y = y
        .matmul(&fcw)
        .unwrap()
        .broadcast_add(&fcb)
        .unwrap()
        .relu()
        .unwrap();
    let want = y.matmul(&hwt).unwrap().broadcast_add(&hbt).unwrap();
    let got = g.evaluate(&x).unwrap();
    assert!(gap(&want, &got) <= 1e-5, "{}", gap(&want, &got));
}

#[test]
fn a_flattening_reshape_imports_as_flatten() {
    let mut o = Onnx::default();
    let w = o.init("c.weight", random(&[2, 1, 3, 3], 1));
    let y = conv_node(&mut o, "c", "x", &w, None, 0);
    let shape = TensorProto {
        name: "shape".into(),
        dims: vec![2],
        data_type: DataType::INT64 as i32,
        int64_data: vec![0, -1],
        ..Default::default()
    };
    o.g.initializer.push(shape);
    let y = o.node("reshape", "Reshape", &[&y, "shape"], vec![]);
    let fw = o.init("fc.weight", random(&[4, 8], 2));
    let fb = o.init("fc.bias", random(&[4], 3));
    // an Identity of an initializer (as PyTorch writes for tied names) is the initializer
    let fw = o.node("fw_id", "Identity", &[&fw], vec![]);
    let y = o.node("fc", "Gemm", &[&y, &fw, &fb], vec![attr_int("transB", 1)]);
    let g = from_proto(&o.model(1, 4, &y, 4)).unwrap();
    let names: Vec<&str> = g.params.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["c.weight", "fc.weight", "fc.bias"]);
    let ops: Vec<&Op> = g.nodes.iter().map(|n| &n.op).collect();
    assert!(
        matches!(ops[..], [Op::Conv { .. }, Op::Flatten, Op::Linear { .. }]),
        "{ops:?}"
    );
    assert_eq!(
        g.shapes().unwrap(),
        [vec![1, 4, 4], vec![2, 2, 2], vec![8], vec![4]]
    );
}

fn int64(o: &mut Onnx, name: &str, v: &[i64], dims: &[i64]) -> String {
    o.g.initializer.push(TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::INT64 as i32,
        int64_data: v.to_vec(),
        ..Default::default()
    });
    name.into()
}

/// PyTorch's `x.view(x.size(0), -1)`: Shape → Gather(0) → Unsqueeze → Concat(·, [−1]) →
/// Reshape folds to a flatten; a Gather on a computed value is refused.
#[test]
fn pytorchs_view_flatten_pattern_imports_as_flatten() {
    let mut o = Onnx::default();
    let w = o.init("c.weight", random(&[2, 1, 3, 3], 1));
    let y = conv_node(&mut o, "c", "x", &w, None, 0);
    let y = o.node("relu", "Relu", &[&y], vec![]);
    let shape = o.node("shape", "Shape", &[&y], vec![]);
    let zero = int64(&mut o, "zero", &[0], &[]);
    let batch = o.node(
        "gather",
        "Gather",
        &[&shape, &zero],
        vec![attr_int("axis", 0)],
    );
    let axes = int64(&mut o, "axes", &[0], &[1]);
    let batch = o.node("unsqueeze", "Unsqueeze", &[&batch, &axes], vec![]);
    let minus = int64(&mut o, "minus_one", &[-1], &[1]);
    let target = o.node(
        "cat",
        "Concat",
        &[&batch, &minus],
        vec![attr_int("axis", 0)],
    );
    let flat = o.node("view", "Reshape", &[&y, &target], vec![]);
    let fw = o.init("fc.weight", random(&[3, 8], 2));
    let fb = o.init("fc.bias", random(&[3], 3));
    let out = o.node(
        "fc",
        "Gemm",
        &[&flat, &fw, &fb],
        vec![attr_int("transB", 1)],
    );
    let g = from_proto(&o.model(1, 4, &out, 3)).unwrap();
    let ops: Vec<&Op> = g.nodes.iter().map(|n| &n.op).collect();
    assert!(
        matches!(
            ops[..],
            [Op::Conv { .. }, Op::Relu, Op::Flatten, Op::Linear { .. }]
        ),
        "{ops:?}"
    );
    // the same file with the Gather reading the activations themselves is refused
    let mut bad = Onnx::default();
    let w = bad.init("c.weight", random(&[2, 1, 3, 3], 1));
    let y = conv_node(&mut bad, "c", "x", &w, None, 0);
    let zero = int64(&mut bad, "zero", &[0], &[]);
    let out = bad.node("gather", "Gather", &[&y, &zero], vec![]);
    let err = from_proto(&bad.model(1, 4, &out, 3))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("gather") && err.contains("constant shapes only"),
        "{err}"
    );
}
