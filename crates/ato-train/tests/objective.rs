//! The objective against hand-computed values.

use ato_models::{Model, ModelConfig, ModelName};
use ato_train::*;
use candle_core::{Device, Tensor};

#[test]
fn cross_entropy_with_and_without_smoothing() {
    // logits (0, ln 3) → p = (1/4, 3/4); label 1 → −ln(3/4) = 0.2876821
    let logits = Tensor::new(&[[0.0f32, 3f32.ln()]], &Device::Cpu).unwrap();
    let y = Tensor::new(&[1u32], &Device::Cpu).unwrap();
    let ce = cross_entropy(&logits, &y, 0.0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((ce - 0.287_682_1).abs() < 1e-6, "{ce}");
    // ε = 0.1, K = 2: target (0.05, 0.95) → 0.05·ln 4 + 0.95·(−ln 3/4) = 0.3426127
    let ls = cross_entropy(&logits, &y, 0.1)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((ls - 0.342_612_7).abs() < 1e-6, "{ls}");
    // mixup 0.3 / 0.7 between labels 0 and 1: 0.3·1.3862944 + 0.7·0.2876821 = 0.6172658
    let y0 = Tensor::new(&[0u32], &Device::Cpu).unwrap();
    let mx = mixup_cross_entropy(&logits, &y0, &y, 0.3, 0.0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((mx - 0.617_265_8).abs() < 1e-6, "{mx}");
}

#[test]
fn topk_counts_and_tally() {
    let logits = Tensor::new(&[[1f32, 3., 2.], [5., 1., 0.]], &Device::Cpu).unwrap();
    let y = Tensor::new(&[2u32, 0], &Device::Cpu).unwrap();
    assert_eq!(topk_correct(&logits, &y, 1).unwrap(), 1);
    assert_eq!(topk_correct(&logits, &y, 2).unwrap(), 2);
    let mut t = Tally::default();
    t.add(&logits, &y, 1.5).unwrap();
    t.add(&logits, &y, 0.5).unwrap();
    assert_eq!((t.samples, t.top1, t.top5), (4, 2, 4));
    assert_eq!(t.mean_loss(), 1.0);
    assert_eq!(t.top1(), 0.5);
}

#[test]
fn non_finite_logits_are_misses() {
    let logits = Tensor::new(&[[f32::NAN, 1., 0.], [2., 1., 0.]], &Device::Cpu).unwrap();
    let labels = Tensor::new(&[0u32, 0], &Device::Cpu).unwrap();
    assert_eq!(topk_correct(&logits, &labels, 1).unwrap(), 1);
    assert_eq!(topk_correct(&logits, &labels, 3).unwrap(), 1);
}

#[test]
fn a_non_finite_loss_names_the_step() {
    let nan = Tensor::new(f32::NAN, &Device::Cpu).unwrap();
    let e = finite_loss(&nan, 3, 7).unwrap_err().to_string();
    assert!(e.contains("NaN") && e.contains("epoch 3, step 7"), "{e}");
    let inf = Tensor::new(f32::INFINITY, &Device::Cpu).unwrap();
    assert!(finite_loss(&inf, 0, 0)
        .unwrap_err()
        .to_string()
        .contains("inf"));
    assert_eq!(
        finite_loss(&Tensor::new(0.5f32, &Device::Cpu).unwrap(), 0, 0).unwrap(),
        0.5
    );
}

#[test]
fn evaluation_counts_argmax_hits() {
    let mut cfg = ModelConfig::new(ModelName::Resnet20, 4, 8);
    cfg.base_width = Some(4);
    let model = Model::new(&cfg, &Device::Cpu, 0).unwrap();
    let x = Tensor::arange(0f32, (6 * 3 * 8 * 8) as f32, &Device::Cpu)
        .unwrap()
        .affine(1e-3, -0.5)
        .unwrap()
        .reshape((6, 3, 8, 8))
        .unwrap();
    let logits = model.forward_t(&x, None, false).unwrap();
    let pred: Vec<u32> = logits.argmax(1).unwrap().to_vec1().unwrap();
    // labels: the prediction for the first four rows, something else for the last two
    let labels: Vec<u32> = pred
        .iter()
        .enumerate()
        .map(|(i, &p)| if i < 4 { p } else { (p + 1) % 4 })
        .collect();
    let y = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
    let batches = vec![
        Ok((x.narrow(0, 0, 4).unwrap(), y.narrow(0, 0, 4).unwrap())),
        Ok((x.narrow(0, 4, 2).unwrap(), y.narrow(0, 4, 2).unwrap())),
    ];
    let t = evaluate(&model, batches, None).unwrap();
    assert_eq!((t.samples, t.top1), (6, 4));
    assert_eq!(t.top5, 6, "4 classes: every label is within the top 4");
}

#[test]
fn sparsity_and_masked_macs() {
    let mut cfg = ModelConfig::new(ModelName::Resnet20, 10, 32);
    cfg.base_width = Some(4);
    let model = Model::new(&cfg, &Device::Cpu, 0).unwrap();
    let s = GroupSparsity::of(&model).unwrap();
    assert_eq!((s.zero_groups, s.total_groups), (0, 3 * (4 + 8 + 16)));
    // zero the first two channels of the first gate
    let g = &model.gates()[0];
    ato_zig::set_dropped_to_zero(g, &model.named_vars(), &[false, false, true, true]).unwrap();
    let s = GroupSparsity::of(&model).unwrap();
    assert_eq!(s.zero_groups, 2);
    assert!((s.ratio() - 2.0 / 84.0).abs() < 1e-12);
    // keeping half of every gate halves the prunable MACs (each term is linear in one gate).
    // Not prunable at base 4 on 32×32: stem 27·4·1024 + fc 16·10 + shortcuts 4·8·256 + 8·16·64
    let fixed = ato_zig::WidthPolynomial::macs(model.arch()).constant as f64;
    assert_eq!(fixed, (110_592 + 160 + 8_192 + 8_192) as f64);
    let full = model.macs() as f64;
    let half = ato_zig::Mask::from_keep(
        model
            .gates()
            .iter()
            .map(|g| (0..g.width).map(|c| c % 2 == 0).collect())
            .collect(),
    );
    assert!((mask_macs_ratio(&model, &half) - (fixed + (full - fixed) / 2.0) / full).abs() < 1e-12);
    let full_mask = ato_zig::Mask::full(&model.arch().gate_widths());
    assert_eq!(mask_macs_ratio(&model, &full_mask), 1.0);
}
