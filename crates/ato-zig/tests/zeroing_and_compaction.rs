//! Group norms, zeroing dropped groups and compaction on a tiny block, by hand.

use ato_zig::blocks::{basic_block, ShortcutKind};
use ato_zig::*;
use candle_core::{Device, Tensor, Var};
use std::collections::HashMap;

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
