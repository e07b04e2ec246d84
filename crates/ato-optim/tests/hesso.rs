//! HESSO (OTOv3): saliency by hand, the shrink schedule by hand for D = 3, exact group-count
//! and MACs targets, the last-group guard, tie order, determinism and resume.

mod common;

use ato_optim::budget::reduction;
use ato_optim::saliency::hesso_saliency;
use ato_optim::{DecoupledDecay, GroupSet, Hesso, HessoConfig, HessoTarget, LastGroup, StateDict};
use ato_zig::NamedVars;
use candle_core::{Device, Tensor};
use common::{assert_close, chain, linear_gates, values, vars};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use std::sync::Arc;

#[test]
fn hesso_saliency_matches_hand_values() {
    // gate A (D = 2): x = [(3, 4), (0, 1)], d = [(1, 0), (0, −2)];
    // gate B (D = 3): x = [(0, 0, 2)], d = 0
    let dev = Device::Cpu;
    let xa = Tensor::new(&[[3f32, 4.0], [0.0, 1.0]], &dev).unwrap();
    let da = Tensor::new(&[[1f32, 0.0], [0.0, -2.0]], &dev).unwrap();
    let xb = Tensor::new(&[[0f32, 0.0, 2.0]], &dev).unwrap();
    let db = Tensor::new(&[[0f32, 0.0, 0.0]], &dev).unwrap();
    let s = hesso_saliency(&[xa, xb], &[da, db]).unwrap();
    // magnitude 5, 1, 2 (norm √30); avg magnitude 5/2, 1/2, 2/3 (norm √250/6); cosine
    // 3/5 + 1 = 1.6, −1 + 1 = 0, 0 + 1 = 1 (norm √3.56); Taylor-1 3, 2, 0 (norm √13);
    // Taylor-2 4.5, 2, 0 (norm √24.25)
    let (m, a, c) = (30f64.sqrt(), 250f64.sqrt() / 6.0, 3.56f64.sqrt());
    let (t1, t2) = (13f64.sqrt(), 24.25f64.sqrt());
    let want = [
        0.2 * (5.0 / m + 2.5 / a + 1.6 / c + 3.0 / t1 + 4.5 / t2),
        0.2 * (1.0 / m + 0.5 / a + 0.0 / c + 2.0 / t1 + 2.0 / t2),
        0.2 * (2.0 / m + (2.0 / 3.0) / a + 1.0 / c),
    ];
    for (g, w) in s.concat().iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "saliency {g} vs {w}");
    }
    // Negative controls: a cosine without the +1, an average magnitude over √D instead of
    // D + 1e-6 (the gates' D differ), or a per-gate normalisation moves these values.
}

/// Gate a: groups (w, b) = (3,4), (0.6,0.8), (1.2,1.6); gate b: (0,3), (0,4).
fn five_groups() -> (NamedVars, GroupSet) {
    let v = vars(&[
        ("a.weight", &[3, 1], &[3.0, 0.6, 1.2]),
        ("a.bias", &[3], &[4.0, 0.8, 1.6]),
        ("b.weight", &[2, 1], &[0.0, 0.0]),
        ("b.bias", &[2], &[3.0, 4.0]),
    ]);
    let groups = linear_gates(&[("a", 1, 3), ("b", 1, 2)], &v);
    (v, groups)
}

/// One HESSO step with no base step (x̂ = x, so d = 0).
fn idle_step(h: &mut Hesso, groups: &GroupSet) -> usize {
    let before = groups.snapshot().unwrap();
    h.after_step(groups, Some(&before), 1.0, &DecoupledDecay::none())
        .unwrap()
}

#[test]
fn hesso_shrinks_selected_rows_linearly_to_zero_for_d_three() {
    let (v, groups) = five_groups();
    // S = 2, P = 2 over 6 steps: D = 3; target ⌊5·0.5⌋ = 2 groups, 1 per period
    let cfg = HessoConfig {
        start_step: 2,
        pruning_steps: 6,
        periods: 2,
    };
    let mut h = Hesso::new(cfg, HessoTarget::GroupSparsity(0.5), &[3, 2]).unwrap();
    assert_eq!(h.per_period(), &[1, 1]);
    let a = |v: &NamedVars| [values(v, "a.weight"), values(v, "a.bias")].concat();
    let mut due = Vec::new();
    for n in 1..=9u64 {
        if h.needs_snapshot() {
            due.push(n);
        }
        let selected = idle_step(&mut h, &groups);
        let want: &[f64] = match n {
            // d = 0: saliency orders by norm, a1 (1) first; t = 1 → ×(3−1−1)/(3−1) = 1/2
            3 => &[3.0, 0.3, 1.2, 4.0, 0.4, 1.6],
            // t = 2 → ×0: exactly zero, committed
            4 | 5 => &[3.0, 0.0, 1.2, 4.0, 0.0, 1.6],
            // period 2: a2 (norm 2) before b0 (3); ×1/2 then ×0
            6 => &[3.0, 0.0, 0.6, 4.0, 0.0, 0.8],
            7..=9 => &[3.0, 0.0, 0.0, 4.0, 0.0, 0.0],
            _ => &[3.0, 0.6, 1.2, 4.0, 0.8, 1.6],
        };
        assert_close(&a(&v), want, 1e-6);
        assert_eq!(selected, usize::from(n == 3 || n == 6), "step {n}");
    }
    assert_eq!(due, vec![3, 6]);
    assert_eq!(h.pruned(), &[vec![false, true, true], vec![false, false]]);
    assert_eq!(values(&v, "a.weight")[1..], [0.0, 0.0]);
    assert_close(&values(&v, "b.bias"), &[3.0, 4.0], 0.0);
    // Negative controls: a period starting at t = 0 (×2/3, ×1/2, ×0) gives a1 = (0.4, 0.533)
    // at step 3; a shrink that forgets pruned rows lets the base step revive them.
}

#[test]
fn hesso_needs_the_snapshot_when_it_selects() {
    let (_, groups) = five_groups();
    let cfg = HessoConfig {
        start_step: 0,
        pruning_steps: 1,
        periods: 1,
    };
    let mut h = Hesso::new(cfg, HessoTarget::GroupSparsity(0.5), &[3, 2]).unwrap();
    assert!(h.needs_snapshot());
    assert!(h
        .after_step(&groups, None, 1.0, &DecoupledDecay::none())
        .is_err());
    assert!(Hesso::new(cfg, HessoTarget::GroupSparsity(1.0), &[3, 2]).is_err());
    let no_steps = HessoConfig {
        pruning_steps: 0,
        ..cfg
    };
    assert!(Hesso::new(no_steps, HessoTarget::GroupSparsity(0.5), &[3, 2]).is_err());
}

#[test]
fn hesso_ties_go_by_gate_then_channel_and_every_gate_keeps_a_group() {
    // four identical groups (1, 0) in two gates of 2; target ⌊4·0.5⌋ = 2, D = 1
    let v = vars(&[
        ("a.weight", &[2, 1], &[1.0, 1.0]),
        ("a.bias", &[2], &[0.0, 0.0]),
        ("b.weight", &[2, 1], &[1.0, 1.0]),
        ("b.bias", &[2], &[0.0, 0.0]),
    ]);
    let groups = linear_gates(&[("a", 1, 2), ("b", 1, 2)], &v);
    let cfg = HessoConfig {
        start_step: 0,
        pruning_steps: 1,
        periods: 1,
    };
    let mut h = Hesso::new(cfg, HessoTarget::GroupSparsity(0.5), &[2, 2]).unwrap();
    assert_eq!(idle_step(&mut h, &groups), 2);
    // a0 first; a1 would be gate a's last group → skipped; then b0. D = 1: ×0 at once.
    assert_eq!(h.pruned(), &[vec![true, false], vec![true, false]]);
    assert_eq!(values(&v, "a.weight"), vec![0.0, 1.0]);
    assert_eq!(values(&v, "b.weight"), vec![0.0, 1.0]);
    // Negative controls: without the guard gate a loses both groups; an unstable or
    // descending tie order selects other groups (a1, b1).
}

/// Gate a with one group (1, 0), gate b with three.
fn one_and_three() -> (NamedVars, GroupSet) {
    let v = vars(&[
        ("a.weight", &[1, 1], &[1.0]),
        ("a.bias", &[1], &[0.0]),
        ("b.weight", &[3, 1], &[1.0, 1.0, 1.0]),
        ("b.bias", &[3], &[0.0, 0.0, 0.0]),
    ]);
    let groups = linear_gates(&[("a", 1, 1), ("b", 1, 3)], &v);
    (v, groups)
}

#[test]
fn the_reference_last_group_rule_lowers_the_target_instead_of_taking_another_gate() {
    // four identical groups (1, 0): gate a has 1, gate b has 3; target ⌊4·0.5⌋ = 2, D = 1.
    // Tie order a0, b0, b1, b2; a0 is gate a's last group and is passed over by both rules:
    // `Next` fills the quota with b0 and b1; `Lower` counts a0 against the quota, prunes b0
    // only and lowers the target from 2 to 1.
    let (_v, groups) = one_and_three();
    let cfg = HessoConfig {
        start_step: 0,
        pruning_steps: 1,
        periods: 1,
    };
    let target = || HessoTarget::GroupSparsity(0.5);
    // ⌊4·0.5⌋ = 2 groups: a0 (a's last), then b0, b1
    let mut next = Hesso::new(cfg, target(), &[1, 3]).unwrap();
    assert_eq!(next.target_groups(), 2);
    assert_eq!(idle_step(&mut next, &groups), 2);
    assert_eq!(next.pruned(), &[vec![false], vec![true, true, false]]);
    assert_eq!(next.target_groups(), 2);

    let (_v, groups) = one_and_three();
    let mut lower = Hesso::new(cfg, target(), &[1, 3])
        .unwrap()
        .with_last_group(LastGroup::Lower)
        .unwrap();
    assert_eq!(idle_step(&mut lower, &groups), 1);
    assert_eq!(lower.pruned(), &[vec![false], vec![true, false, false]]);
    assert_eq!(lower.target_groups(), 1);
    // the lowered target survives a checkpoint
    let mut resumed = Hesso::new(cfg, target(), &[1, 3])
        .unwrap()
        .with_last_group(LastGroup::Lower)
        .unwrap();
    resumed.load_state(&lower.state()).unwrap();
    assert_eq!(resumed.target_groups(), 1);
    // `Lower` has no group count to lower under a MACs target
    let macs = HessoTarget::Macs {
        reduction: 0.5,
        cost: std::sync::Arc::new(|w: &[usize]| w.iter().sum::<usize>() as u64),
    };
    assert!(Hesso::new(cfg, macs, &[1, 3])
        .unwrap()
        .with_last_group(LastGroup::Lower)
        .is_err());
}

/// A deterministic stand-in for a base step: x ← 0.97·x + 0.05·N(0, 1), seeded by the step.
fn noisy_step(v: &NamedVars, step: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1000 + step);
    let mut names: Vec<&String> = v.keys().collect();
    names.sort();
    for name in names {
        let x = v[name].as_tensor();
        let noise: Vec<f32> = (0..x.elem_count())
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                0.05 * z as f32
            })
            .collect();
        let noise = Tensor::from_vec(noise, x.shape(), x.device()).unwrap();
        v[name]
            .set(&(x.affine(0.97, 0.0).unwrap() + noise).unwrap())
            .unwrap();
    }
}

/// `steps` steps of noisy base step + HESSO from step `from` on.
fn run(h: &mut Hesso, v: &NamedVars, groups: &GroupSet, from: u64, steps: u64) {
    for n in from..from + steps {
        let before = groups.snapshot().unwrap();
        noisy_step(v, n);
        h.after_step(groups, Some(&before), 0.1, &DecoupledDecay::none())
            .unwrap();
    }
}

const CHAIN_CFG: HessoConfig = HessoConfig {
    start_step: 4,
    pruning_steps: 9,
    periods: 3,
};

#[test]
fn hesso_reaches_its_group_target_exactly() {
    // 8 + 6 + 5 = 19 groups; target ⌊19·0.55⌋ = 10 → periods [3, 3, 4]
    let (v, groups, _) = chain(4, &[8, 6, 5], 3, 7);
    let mut h = Hesso::new(CHAIN_CFG, HessoTarget::GroupSparsity(0.55), &[8, 6, 5]).unwrap();
    assert_eq!(h.per_period(), &[3, 3, 4]);
    // periods select at steps 5, 8, 11 and commit at 6, 9, 12
    let mut zeros = Vec::new();
    for n in 0..20 {
        run(&mut h, &v, &groups, n, 1);
        zeros.push(groups.count_zero_groups().unwrap());
    }
    assert_eq!(&zeros[4..12], &[0, 3, 3, 3, 6, 6, 6, 10]);
    assert!(zeros[12..].iter().all(|&z| z == 10), "{zeros:?}");
    assert_eq!(groups.nonzero_mask().unwrap().dropped(), h.pruned());
    assert!(h.kept().kept_counts().iter().all(|&k| k > 0));
    // Negative control: a last period without the remainder (⌊10/3⌋ = 3) stops at 9.
}

#[test]
fn hesso_reaches_its_macs_target_within_one_group() {
    let (v, groups, macs) = chain(4, &[8, 6, 5], 3, 7);
    let full = macs.eval(&[8, 6, 5]) as f64;
    // the most one group can remove: its MACs at full widths (the cost is multilinear)
    let one_group = [[7, 6, 5], [8, 5, 5], [8, 6, 4]]
        .iter()
        .map(|w| full - macs.eval(w) as f64)
        .fold(0.0, f64::max)
        / full;
    let target = HessoTarget::Macs {
        reduction: 0.4,
        cost: Arc::new(macs.clone()),
    };
    let mut h = Hesso::new(CHAIN_CFG, target, &[8, 6, 5]).unwrap();
    run(&mut h, &v, &groups, 0, 9);
    // after period 1 (committed at step 9): at least 0.4·2/3 of the MACs removed
    let r2 = reduction(&macs, &groups.nonzero_mask().unwrap());
    assert!(
        (0.4 * 2.0 / 3.0..0.4 * 2.0 / 3.0 + one_group).contains(&r2),
        "{r2}"
    );
    run(&mut h, &v, &groups, 9, 11);
    let nonzero = groups.nonzero_mask().unwrap();
    assert_eq!(nonzero.dropped(), h.pruned());
    let r = reduction(&macs, &nonzero);
    assert!(
        (0.4..0.4 + one_group).contains(&r),
        "reduction {r}, one group {one_group}"
    );
    assert!(h.kept().kept_counts().iter().all(|&k| k > 0));
    // Negative control: a goal of r·p/P instead of r·(p+1)/P ends at 0.4·2/3.
}

#[test]
fn hesso_is_deterministic_and_resumes_exactly() {
    let target = || HessoTarget::GroupSparsity(0.55);
    let (va, ga, _) = chain(4, &[8, 6, 5], 3, 7);
    let mut a = Hesso::new(CHAIN_CFG, target(), &[8, 6, 5]).unwrap();
    run(&mut a, &va, &ga, 0, 20);

    // stop at step 8, mid-period (period 2 selected, its rows halved), save and reload
    let (vb, gb, _) = chain(4, &[8, 6, 5], 3, 7);
    let mut b = Hesso::new(CHAIN_CFG, target(), &[8, 6, 5]).unwrap();
    run(&mut b, &vb, &gb, 0, 8);
    assert!(b.active().iter().flatten().any(|&x| x));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hesso.safetensors");
    b.state().save(&path).unwrap();
    let mut resumed = Hesso::new(CHAIN_CFG, target(), &[8, 6, 5]).unwrap();
    resumed
        .load_state(&StateDict::load(&path, &Device::Cpu).unwrap())
        .unwrap();
    assert_eq!((resumed.steps(), resumed.period()), (8, 2));
    run(&mut resumed, &vb, &gb, 8, 12);

    assert_eq!(resumed.pruned(), a.pruned());
    for name in va.keys() {
        assert_eq!(values(&va, name), values(&vb, name), "{name}");
    }
    // Negative control: a state without `active` (or `steps`) resumes with the period's rows
    // never reaching zero (or a shifted schedule), and the values differ.
}
