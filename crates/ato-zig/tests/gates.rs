//! Gates and their zero-invariant groups derived from each block kind, and width overrides.

mod common;
use common::bottleneck_arch;

use ato_zig::blocks::{bottleneck, inverted_residual};
use ato_zig::*;

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
