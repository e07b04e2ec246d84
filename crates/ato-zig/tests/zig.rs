//! ato-zig against hand-computed values.

use ato_zig::blocks::{basic_block, bottleneck, inverted_residual, ShortcutKind};
use ato_zig::*;
use candle_core::{Device, Tensor, Var};
use std::collections::HashMap;

fn bottleneck_arch() -> Arch {
    let mut b = ArchBuilder::new();
    bottleneck(&mut b, "l", 64, 16, 1, (8, 8));
    b.finish().unwrap()
}

#[test]
fn bottleneck_macs_and_params_match_hand_counts() {
    let arch = bottleneck_arch();
    let macs = WidthPolynomial::macs(&arch);
    // conv1 1×1 64→g1, conv2 3×3 g1→g2, conv3 1×1 g2→64, all on 8×8 = 64 pixels; identity shortcut.
    let hand = |g1: u64, g2: u64| 64 * 64 * g1 + 9 * 64 * g1 * g2 + 64 * 64 * g2;
    assert_eq!(macs.eval(&[16, 16]), hand(16, 16));
    assert_eq!(macs.eval(&[16, 16]), 278_528);
    assert_eq!(macs.eval(&[8, 4]), hand(8, 4));
    assert_eq!(
        macs.constant, 0,
        "every conv of a bottleneck touches a gate"
    );
    let params = WidthPolynomial::params(&arch);
    // 64·g1 + 2g1 + 9·g1·g2 + 2g2 + 64·g2 + 2·64
    assert_eq!(params.eval(&[16, 16]), 1024 + 32 + 2304 + 32 + 1024 + 128);
    assert_eq!(params.constant, 128);
    assert_eq!(params.prunable(&[1, 1]), 64 + 2 + 9 + 2 + 64);
}

#[test]
fn differentiable_polynomial_equals_integer_one_and_has_gradients() {
    let arch = bottleneck_arch();
    let macs = WidthPolynomial::macs(&arch);
    let w1 = Var::new(8f32, &Device::Cpu).unwrap();
    let w2 = Var::new(4f32, &Device::Cpu).unwrap();
    let t = macs
        .eval_tensor(&[w1.as_tensor().clone(), w2.as_tensor().clone()])
        .unwrap();
    assert_eq!(t.to_scalar::<f32>().unwrap(), macs.eval(&[8, 4]) as f32);
    let grads = t.backward().unwrap();
    // ∂/∂g1 = 64·64 + 9·64·g2 = 4096 + 2304 at g2 = 4
    assert_eq!(grads.get(&w1).unwrap().to_scalar::<f32>().unwrap(), 6400.0);
    assert_eq!(
        grads.get(&w2).unwrap().to_scalar::<f32>().unwrap(),
        4096.0 + 9.0 * 64.0 * 8.0
    );
}

#[test]
fn groups_of_each_block_kind_are_derived_from_the_layers() {
    let arch = bottleneck_arch();
    let g = gates(&arch);
    assert_eq!(g.len(), 2);
    let names = |v: &Vec<TensorAxis>| {
        v.iter()
            .map(|s| (s.tensor.clone(), s.axis))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&g[0].members),
        vec![
            ("l.conv1.weight".into(), 0),
            ("l.bn1.weight".into(), 0),
            ("l.bn1.bias".into(), 0)
        ]
    );
    assert_eq!(names(&g[0].consumers), vec![("l.conv2.weight".into(), 1)]);
    assert_eq!(names(&g[1].consumers), vec![("l.conv3.weight".into(), 1)]);
    assert_eq!(
        names(&g[1].buffers),
        vec![
            ("l.bn2.running_mean".into(), 0),
            ("l.bn2.running_var".into(), 0)
        ]
    );

    let mut b = ArchBuilder::new();
    let ir = inverted_residual(&mut b, "f", 16, 24, 2, 6, (8, 8));
    let arch = b.finish().unwrap();
    let g = gates(&arch);
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].width, 96);
    assert!(!ir.residual);
    // expand conv + its BN + depthwise filter + its BN form one group
    assert_eq!(
        names(&g[0].members),
        vec![
            ("f.expand.conv.weight".into(), 0),
            ("f.expand.bn.weight".into(), 0),
            ("f.expand.bn.bias".into(), 0),
            ("f.dw.conv.weight".into(), 0),
            ("f.dw.bn.weight".into(), 0),
            ("f.dw.bn.bias".into(), 0),
        ]
    );
    assert_eq!(
        names(&g[0].consumers),
        vec![("f.project.conv.weight".into(), 1)]
    );
    // MACs: expand 16·96·64 + depthwise 9·96·16 (stride 2 → 4×4) + project 96·24·16
    let macs = WidthPolynomial::macs(&arch);
    assert_eq!(macs.eval(&[96]), 16 * 96 * 64 + 9 * 96 * 16 + 96 * 24 * 16);
    assert_eq!(macs.eval(&[10]), 16 * 10 * 64 + 9 * 10 * 16 + 10 * 24 * 16);

    // an expansion-1 block has no gate
    let mut b = ArchBuilder::new();
    let ir = inverted_residual(&mut b, "f", 32, 16, 1, 1, (8, 8));
    assert!(ir.gate.is_none() && ir.expand.is_none());
    assert!(b.finish().unwrap().gates.is_empty());
}

/// A basic block with 1 input channel and 2 inner channels on 4×4, with its tensors.
fn tiny_block() -> (Arch, HashMap<String, Var>) {
    let mut b = ArchBuilder::new();
    basic_block(&mut b, "b", 2, 2, 1, ShortcutKind::A, (4, 4));
    let arch = b.finish().unwrap();
    let dev = Device::Cpu;
    let mut vars = HashMap::new();
    for (i, (name, shape)) in arch.tensor_shapes(true).into_iter().enumerate() {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|k| (k + i) as f32 * 0.5 - 1.0).collect();
        vars.insert(
            name,
            Var::from_tensor(&Tensor::from_vec(v, shape, &dev).unwrap()).unwrap(),
        );
    }
    (arch, vars)
}

fn set(vars: &HashMap<String, Var>, name: &str, v: Vec<f32>) {
    let var = &vars[name];
    var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
        .unwrap();
}

#[test]
fn group_norms_cover_members_only() {
    let (arch, vars) = tiny_block();
    let g = &gates(&arch)[0];
    // conv1.weight is (2, 2, 3, 3): row 0 all ones (‖·‖² = 18), row 1 a single 2 (4)
    let mut w = vec![1f32; 18];
    w.extend(std::iter::repeat_n(0.0, 18));
    w[18] = 2.0;
    set(&vars, "b.conv1.weight", w);
    set(&vars, "b.bn1.weight", vec![3.0, 0.0]);
    set(&vars, "b.bn1.bias", vec![0.0, 3.0]);
    let n = group_norms(g, &vars).unwrap().to_vec1::<f32>().unwrap();
    assert!((n[0] - 27f32.sqrt()).abs() < 1e-6, "{n:?}");
    assert!((n[1] - 13f32.sqrt()).abs() < 1e-6, "{n:?}");
}

#[test]
fn zeroing_sets_exactly_the_masked_member_slices_to_zero() {
    let (arch, vars) = tiny_block();
    let g = &gates(&arch)[0];
    let c2 = vars["b.conv2.weight"]
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    set_dropped_to_zero(g, &vars, &[true, false]).unwrap();
    let n = group_norms(g, &vars).unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(n[1], 0.0);
    assert!(n[0] > 0.0);
    let w = vars["b.conv1.weight"]
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(w[18..].iter().all(|&x| x == 0.0));
    assert!(w[..18].iter().any(|&x| x != 0.0));
    // consumers are untouched by zeroing
    assert_eq!(
        vars["b.conv2.weight"]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        c2
    );
    let kept = KeptChannels::nonzero_groups(&gates(&arch), &vars).unwrap();
    assert_eq!(kept.per_gate, vec![vec![0]]);
    let err = set_dropped_to_zero(g, &vars, &[true]).unwrap_err();
    assert!(err.to_string().contains("b.conv1"), "{err}");
}

#[test]
fn compaction_slices_members_buffers_and_consumers() {
    let (arch, vars) = tiny_block();
    let gs = gates(&arch);
    let tensors: HashMap<String, Tensor> = vars
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    let kept = KeptChannels {
        per_gate: vec![vec![1]],
    };
    let out = compact_tensors(&gs, &tensors, &kept).unwrap();
    assert_eq!(out["b.conv1.weight"].dims(), [1, 2, 3, 3]);
    assert_eq!(out["b.conv2.weight"].dims(), [2, 1, 3, 3]);
    assert_eq!(out["b.bn1.running_var"].dims(), [1]);
    assert_eq!(out["b.bn2.weight"].dims(), [2], "the stream is not gated");
    // the kept slice is channel 1 of the original
    let orig = tensors["b.conv2.weight"].narrow(1, 1, 1).unwrap();
    let diff = (orig - &out["b.conv2.weight"])
        .unwrap()
        .abs()
        .unwrap()
        .sum_all()
        .unwrap();
    assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
    let compact = arch.with_widths(&kept.widths());
    let shapes: HashMap<_, _> = compact.tensor_shapes(true).into_iter().collect();
    for (name, t) in &out {
        assert_eq!(t.dims(), shapes[name].as_slice(), "{name}");
    }
    // invalid keep sets are rejected with the gate's name
    for (bad, what) in [
        (vec![vec![]], "keeps no channel"),
        (vec![vec![2]], "has only 2"),
        (vec![vec![1, 0]], "ascending"),
    ] {
        let e = compact_tensors(&gs, &tensors, &KeptChannels { per_gate: bad }).unwrap_err();
        assert!(
            e.to_string().contains(what) && e.to_string().contains("b.conv1"),
            "{e}"
        );
    }
    let e = compact_tensors(&gs, &HashMap::new(), &kept).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
}

#[test]
fn width_overrides_must_fit_the_declared_gates() {
    let mut b = ArchBuilder::with_widths(Some(vec![4, 4, 4]));
    bottleneck(&mut b, "l", 64, 16, 1, (8, 8));
    assert!(matches!(
        b.finish(),
        Err(ZigError::WidthCount {
            expected: 2,
            got: 3
        })
    ));
    let mut b = ArchBuilder::with_widths(Some(vec![4, 5]));
    bottleneck(&mut b, "l", 64, 16, 2, (8, 8));
    let arch = b.finish().unwrap();
    assert_eq!(arch.gate_widths(), vec![4, 5]);
    // stride-2 3×3 on 8×8 gives 4×4; the projection shortcut is ungated
    let macs = WidthPolynomial::macs(&arch);
    assert_eq!(macs.constant, 64 * 64 * 16);
    assert_eq!(
        KeptChannels::from_mask(&Mask::from_keep(vec![
            vec![false, false],
            vec![true, false, true]
        ]))
        .per_gate,
        vec![vec![0], vec![0, 2]]
    );
}
