//! Controller acceptance tests (issue: ATO controller).

use ato_controller::*;
use ato_models::{describe, ModelConfig, ModelName};
use ato_zig::Mask;
use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn widths_of(name: ModelName, size: usize) -> (ato_zig::Arch, Vec<usize>) {
    let arch = describe(&ModelConfig::new(name, 10, size)).unwrap();
    let w = arch.gate_widths();
    (arch, w)
}

#[test]
fn heads_match_gate_widths_and_masks_start_all_ones() {
    for (name, size) in [
        (ModelName::Resnet56, 32),
        (ModelName::Resnet50, 224),
        (ModelName::Mobilenetv2, 224),
    ] {
        let (_, widths) = widths_of(name, size);
        let ctrl = Controller::new(&widths, ControllerConfig::default(), &Device::Cpu, 3).unwrap();
        let z = ctrl.logits().unwrap();
        let dims: Vec<usize> = z.iter().map(|t| t.dims1().unwrap()).collect();
        assert_eq!(dims, widths, "{name}");
        let m = eval_masks(&z, ctrl.config()).unwrap();
        assert!(m.is_full(), "{name}: mask not all ones at init");
        // with the default single Gumbel sample g, P(z + b + g ≥ 0) = 1 − exp(−e^(z+b)): the
        // sampled share of kept channels matches its mean (≈ 1 − e^(−e³) ≈ 1.0) within
        // binomial noise (logistic noise would give σ(z + b) ≈ 0.95)
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let s = sample_masks(&z, ctrl.config(), &mut rng)
            .unwrap()
            .hard_mask()
            .unwrap();
        let n = widths.iter().sum::<usize>() as f64;
        let kept = s.kept_counts().iter().sum::<usize>() as f64 / n;
        let expected: f64 = z
            .iter()
            .flat_map(|t| t.to_vec1::<f32>().unwrap())
            .map(|v| 1.0 - (-(v as f64 + 3.0).exp()).exp())
            .sum::<f64>()
            / n;
        assert!(
            (kept - expected).abs() < 0.03,
            "{name}: kept {kept}, expected {expected}"
        );
    }
}

#[test]
fn tokens_are_orthonormal_and_fixed() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let l = 27;
    let t = orthogonal_tokens(l, 64, &mut rng);
    for i in 0..l {
        for j in 0..l {
            let dot: f32 = (0..64).map(|k| t[i * 64 + k] * t[j * 64 + k]).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((dot - want).abs() < 1e-5, "({i},{j}) {dot}");
        }
    }
    // more gates than dimensions: the 64 columns are orthonormal instead
    let t = orthogonal_tokens(100, 64, &mut rng);
    let col_dot =
        |a: usize, b: usize| -> f32 { (0..100).map(|r| t[r * 64 + a] * t[r * 64 + b]).sum() };
    assert!((col_dot(5, 5) - 1.0).abs() < 1e-5 && col_dot(5, 7).abs() < 1e-5);
    let ctrl = Controller::new(&[4, 4], ControllerConfig::default(), &Device::Cpu, 0).unwrap();
    let names: Vec<String> = ctrl.trainable_vars().into_iter().map(|(n, _)| n).collect();
    assert!(
        names.iter().all(|n| !n.contains("token")),
        "tokens are not trained"
    );
    // two GRUs of 4 tensors, one shared LayerNorm (γ, β), one head per gate
    assert_eq!(names.len(), 8 + 2 + 2);
}

#[test]
fn penalty_and_target_match_hand_values() {
    // R(r, p) = log(max/min): symmetric in the ratio, zero at r = p
    assert!((log_ratio_penalty(0.25, 0.5) - 2f64.ln()).abs() < 1e-12);
    assert!((log_ratio_penalty(0.5, 0.25) - 2f64.ln()).abs() < 1e-12);
    assert_eq!(log_ratio_penalty(0.3, 0.3), 0.0);
    // ResNet-20 (B): F_total = 40,813,184, non-prunable 705,152, prunable 40,108,032.
    // ρ = 0.5: p = (0.5 · 40,813,184 − 705,152) / 40,108,032 = 19,701,440 / 40,108,032
    let (arch, w) = widths_of(ModelName::Resnet20, 32);
    let reg = FlopsRegulariser::new(&arch, 0.5).unwrap();
    assert!((reg.target() - 19_701_440.0 / 40_108_032.0).abs() < 1e-12);
    // r for half of every gate: each term is linear in one gate width → exactly 1/2
    let half = Mask::from_keep(
        w.iter()
            .map(|&c| (0..c).map(|i| i < c / 2).collect())
            .collect(),
    );
    assert_eq!(reg.ratio_of(&half), 0.5);
    // the tensor path agrees: r = 0.5 → R = |ln 0.5 − ln p|
    let t: Vec<Tensor> = half
        .gates()
        .iter()
        .map(|m| {
            Tensor::from_vec(
                m.iter().map(|&k| k as u8 as f32).collect(),
                m.len(),
                &Device::Cpu,
            )
            .unwrap()
        })
        .collect();
    let r = reg.ratio(&t).unwrap().to_scalar::<f32>().unwrap();
    assert!((r - 0.5).abs() < 1e-6);
    let pen = reg.penalty(&t).unwrap().to_scalar::<f32>().unwrap() as f64;
    assert!((pen - log_ratio_penalty(0.5, reg.target())).abs() < 1e-5);
    // a sample that masks every channel: r = 0 is clamped, so R and its gradient stay finite
    let off: Vec<candle_core::Var> = w
        .iter()
        .map(|&c| candle_core::Var::zeros(c, candle_core::DType::F32, &Device::Cpu).unwrap())
        .collect();
    let t: Vec<Tensor> = off.iter().map(|v| v.as_tensor().clone()).collect();
    let pen = reg.penalty(&t).unwrap();
    let want = log_ratio_penalty(ato_controller::regulariser::MIN_RATIO, reg.target());
    assert!((pen.to_scalar::<f32>().unwrap() as f64 - want).abs() < 1e-3);
    let g = pen.backward().unwrap();
    for v in &off {
        let d: Vec<f32> = g
            .get(v.as_tensor())
            .map_or(vec![0.0], |d| d.to_vec1().unwrap());
        assert!(d.iter().all(|x| x.is_finite()));
    }
    // bad targets name the key
    for rho in [0.0, 1.0, -0.2, f64::NAN] {
        let e = FlopsRegulariser::new(&arch, rho).unwrap_err().to_string();
        assert!(e.contains("prune.target_flops_reduction"), "{e}");
    }
    let e = FlopsRegulariser::new(&arch, 0.99).unwrap_err().to_string();
    assert!(e.contains("unreachable"), "{e}");
}

#[test]
fn a_gradient_reaches_theta_through_the_straight_through_mask() {
    let ctrl = Controller::new(&[6, 5], ControllerConfig::default(), &Device::Cpu, 1).unwrap();
    let z = ctrl.logits().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let s = sample_masks(&z, ctrl.config(), &mut rng).unwrap();
    // forward values of the hard masks are exactly 0/1
    for h in &s.hard {
        assert!(h
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .all(|&v| v == 0.0 || v == 1.0));
    }
    // a loss that weights each hard mask entry differently
    let w0 = Tensor::arange(0f32, 6., &Device::Cpu).unwrap();
    let w1 = Tensor::arange(0f32, 5., &Device::Cpu).unwrap();
    let loss = ((&s.hard[0] * &w0).unwrap().sum_all().unwrap()
        + (&s.hard[1] * &w1).unwrap().sum_all().unwrap())
    .unwrap();
    let grads = loss.backward().unwrap();
    for (name, var) in ctrl.trainable_vars() {
        let g = grads
            .get(&var)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let v: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{name}");
        assert!(v.iter().any(|&x| x != 0.0), "{name}: zero gradient");
    }
}

#[test]
fn same_seed_same_logits_and_samples() {
    let a = Controller::new(&[8, 3], ControllerConfig::default(), &Device::Cpu, 5).unwrap();
    let b = Controller::new(&[8, 3], ControllerConfig::default(), &Device::Cpu, 5).unwrap();
    let (za, zb) = (a.logits().unwrap(), b.logits().unwrap());
    assert_eq!(
        za[0].to_vec1::<f32>().unwrap(),
        zb[0].to_vec1::<f32>().unwrap()
    );
    let cfg = ControllerConfig {
        noise: NoiseKind::Gumbel,
        ..Default::default()
    };
    let ya = sample_masks(&za, &cfg, &mut ChaCha8Rng::seed_from_u64(4)).unwrap();
    let yb = sample_masks(&zb, &cfg, &mut ChaCha8Rng::seed_from_u64(4)).unwrap();
    assert_eq!(
        ya.relaxed[0].to_vec1::<f32>().unwrap(),
        yb.relaxed[0].to_vec1::<f32>().unwrap()
    );
    assert!(Controller::new(&[], ControllerConfig::default(), &Device::Cpu, 0).is_err());
}

/// With the target network frozen (no CE term), γ·R alone drives the kept share of prunable
/// MACs to p: within 2% for the deterministic mask.
#[test]
fn the_flops_term_alone_drives_r_to_p() {
    let (arch, widths) = widths_of(ModelName::Resnet20, 32);
    let ctrl = Controller::new(&widths, ControllerConfig::default(), &Device::Cpu, 0).unwrap();
    let reg = FlopsRegulariser::new(&arch, 0.5).unwrap();
    let vars = ctrl.trainable_vars().into_iter().map(|(_, v)| v).collect();
    let mut opt = AdamW::new(
        vars,
        ParamsAdamW {
            lr: 1e-2,
            weight_decay: 1e-2,
            ..Default::default()
        },
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut last = Vec::new();
    for step in 0..300 {
        let z = ctrl.logits().unwrap();
        let s = sample_masks(&z, ctrl.config(), &mut rng).unwrap();
        let loss = reg.penalty(&s.hard).unwrap().affine(2.0, 0.0).unwrap(); // γ = 2
        opt.backward_step(&loss).unwrap();
        if step >= 250 {
            last.push(reg.ratio_of(&s.hard_mask().unwrap()));
        }
    }
    let p = reg.target();
    let r_eval = reg.ratio_of(&eval_masks(&ctrl.logits().unwrap(), ctrl.config()).unwrap());
    let r_mean = last.iter().sum::<f64>() / last.len() as f64;
    eprintln!(
        "p = {p:.4}, deterministic r = {r_eval:.4}, sampled r (mean of last 50) = {r_mean:.4}"
    );
    assert!(
        (r_eval - p).abs() / p < 0.02,
        "deterministic r {r_eval} vs p {p}"
    );
    assert!((r_mean - p).abs() / p < 0.02, "sampled r {r_mean} vs p {p}");
}

/// The dead band: inside (p − δ, p + δ) R is a constant and its gradient is exactly zero; just
/// outside, and without the band, the gradient is not.
#[test]
fn the_dead_band_switches_the_flops_gradient_off_at_the_target() {
    let (arch, widths) = widths_of(ModelName::Resnet20, 32);
    let plain = FlopsRegulariser::new(&arch, 0.5).unwrap();
    let banded = plain.clone().with_dead_band(0.005).unwrap();
    let p = plain.target();
    // soft masks with every entry s: r = s exactly (each term is linear in one gate width)
    let grad_at = |reg: &FlopsRegulariser, s: f64| -> (f64, f64) {
        let vars: Vec<Var> = widths
            .iter()
            .map(|&c| Var::from_tensor(&Tensor::full(s as f32, c, &Device::Cpu).unwrap()).unwrap())
            .collect();
        let masks: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let pen = reg.penalty(&masks).unwrap();
        let g = pen.backward().unwrap();
        let g0 = g.get(vars[0].as_tensor()).map_or(0.0, |g| {
            g.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap() as f64
        });
        (pen.to_scalar::<f32>().unwrap() as f64, g0)
    };
    for s in [p + 0.004, p - 0.004, p + 0.0001] {
        let (v, g) = grad_at(&banded, s);
        assert_eq!(g, 0.0, "gradient inside the band at r = {s}");
        // the constant is log((p + δ)/p) above p, log(p/(p − δ)) below
        let want = if s > p {
            ((p + 0.005) / p).ln()
        } else {
            (p / (p - 0.005)).ln()
        };
        assert!((v - want).abs() < 1e-5, "{v} vs {want}");
        // negative control: without the band the same r has a gradient
        assert!(grad_at(&plain, s).1 > 0.0, "no band at r = {s}");
    }
    for s in [p + 0.02, p - 0.02] {
        assert!(grad_at(&banded, s).1 > 0.0, "outside the band at r = {s}");
    }
    assert!(plain.clone().with_dead_band(-0.1).is_err());
}

#[test]
fn one_layer_norm_is_shared_or_one_per_gate() {
    let shared = Controller::new(&[8, 3, 5], ControllerConfig::default(), &Device::Cpu, 1).unwrap();
    let names: Vec<String> = shared
        .trainable_vars()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.contains(&"norm.weight".to_string()));
    assert!(!names.iter().any(|n| n.contains("heads.0.norm")));
    let own = Controller::new(
        &[8, 3, 5],
        ControllerConfig {
            shared_norm: false,
            ..Default::default()
        },
        &Device::Cpu,
        1,
    )
    .unwrap();
    let names: Vec<String> = own.trainable_vars().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names.iter().filter(|n| n.ends_with("norm.weight")).count(),
        3
    );
    // the heads are drawn from the same stream either way: equal logits at initialisation
    // (LayerNorm starts as γ = 1, β = 0 in both), compared through candle's ops per gate (a
    // shared LayerNorm on the CPU otherwise takes the fused heads, equal within rounding)
    let (a, b) = (shared.logits_by(false).unwrap(), own.logits().unwrap());
    assert_eq!(
        a[2].to_vec1::<f32>().unwrap(),
        b[2].to_vec1::<f32>().unwrap()
    );
}

#[test]
fn the_fused_heads_give_the_composed_logits_and_gradients() {
    let (_, widths) = widths_of(ModelName::Resnet20, 32);
    let ctrl = Controller::new(&widths, ControllerConfig::default(), &Device::Cpu, 5).unwrap();
    let total: usize = widths.iter().sum();
    let mix: Vec<f32> = (0..total)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0)
        .collect();
    let run = |fused: bool| {
        let z = Tensor::cat(&ctrl.logits_by(fused).unwrap(), 0).unwrap();
        let mix = Tensor::from_vec(mix.clone(), total, &Device::Cpu).unwrap();
        let grads = (&z * &mix).unwrap().sum_all().unwrap().backward().unwrap();
        (z, grads)
    };
    let ((zf, gf), (zc, gc)) = (run(true), run(false));
    let gap = |a: &Tensor, b: &Tensor| -> f32 {
        let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
        let s = b.abs().unwrap().max_all().unwrap();
        (d / s).unwrap().to_scalar::<f32>().unwrap()
    };
    assert!(gap(&zf, &zc) < 1e-5, "logits {:e}", gap(&zf, &zc));
    for (name, v) in ctrl.trainable_vars() {
        let (a, b) = (gf.get(v.as_tensor()), gc.get(v.as_tensor()));
        let (a, b) = (a.expect(&name), b.expect(&name));
        let rel = gap(a, b);
        assert!(rel < 1e-4, "d{name}: {rel:e}");
    }
}
