//! What the compaction tests share: random batches, a few SGD steps, and the zero-invariance
//! check every model (built-in or imported) must pass.
#![allow(dead_code)]

use ato_models::{Model, ModelConfig, ModelName};
use ato_zig::{set_dropped_to_zero, KeptChannels, Mask, WidthPolynomial};
use candle_core::{DType, Device, Tensor};
use candle_nn::{loss, Optimizer, SGD};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn random_batch(
    rng: &mut ChaCha8Rng,
    n: usize,
    size: usize,
    classes: usize,
) -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..n * 3 * size * size)
        .map(|_| rng.random_range(-2.0..2.0))
        .collect();
    let y: Vec<u32> = (0..n)
        .map(|_| rng.random_range(0..classes as u32))
        .collect();
    (
        Tensor::from_vec(x, (n, 3, size, size), &Device::Cpu).unwrap(),
        Tensor::from_vec(y, n, &Device::Cpu).unwrap(),
    )
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

pub fn train_steps(model: &Model, rng: &mut ChaCha8Rng, steps: usize) {
    let vars = model.trainable_vars().into_iter().map(|(_, v)| v).collect();
    let mut opt = SGD::new(vars, 0.05).unwrap();
    let cfg = model.config();
    for _ in 0..steps {
        let (x, y) = random_batch(rng, 4, cfg.input_size, cfg.num_classes);
        let logits = model.forward_t(&x, None, true).unwrap();
        let l = loss::cross_entropy(&logits, &y).unwrap();
        opt.backward_step(&l).unwrap();
    }
    // Let the running statistics (momentum 0.1) settle on the trained weights, so eval-mode
    // logits have a realistic scale and 1e-4 is a meaningful bound.
    for _ in 0..25 {
        let (x, _) = random_batch(rng, 4, cfg.input_size, cfg.num_classes);
        drop(model.forward_t(&x, None, true).unwrap());
    }
}

pub fn check_zero_invariance(cfg: ModelConfig, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let model = Model::new(&cfg, &Device::Cpu, seed).unwrap();
    train_steps(&model, &mut rng, 3);
    let stats_moved = model.named_vars().iter().any(|(n, v)| {
        n.ends_with("running_var")
            && v.to_dtype(DType::F32)
                .unwrap()
                .mean_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                != 1.0
    });
    assert!(
        stats_moved,
        "training should move the BN running statistics"
    );

    // a random 30–70% of every gate's groups is dropped
    let masks: Vec<Vec<bool>> = model
        .gates()
        .iter()
        .map(|g| {
            let frac = rng.random_range(0.3..=0.7);
            let drop = ((g.width as f64 * frac).round() as usize).clamp(1, g.width - 1);
            let mut keep = vec![true; g.width];
            for c in sample(&mut rng, g.width, drop) {
                keep[c] = false;
            }
            keep
        })
        .collect();
    let (x, _) = random_batch(&mut rng, 3, cfg.input_size, cfg.num_classes);

    // 1. the masked model: original weights, gate vectors multiplied into the channels
    let gate_values: Vec<Tensor> = masks
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
    let masked = model.forward_t(&x, Some(&gate_values), false).unwrap();
    // 2. the zeroed model: member slices of dropped groups set to exactly zero
    for (g, m) in model.gates().iter().zip(&masks) {
        set_dropped_to_zero(g, &model.named_vars(), m).unwrap();
    }
    let zeroed = model.forward_t(&x, None, false).unwrap();
    // 3. the compact model
    let kept = KeptChannels::from_mask(&Mask::from_keep(masks.clone()));
    assert_eq!(
        kept,
        KeptChannels::nonzero_groups(model.gates(), &model.named_vars()).unwrap()
    );
    let compact = model.compact(&kept).unwrap();
    let small = compact.forward_t(&x, None, false).unwrap();
    assert_eq!(small.dims(), [3, cfg.num_classes]);
    let scale = zeroed
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(scale > 1e-3, "logits should not be trivially zero");
    eprintln!("{}: logit scale {scale}", cfg.name);
    assert!(
        max_abs_diff(&masked, &zeroed) == 0.0,
        "{}: masked vs zeroed {} (must be bitwise equal: the trainer reuses the unmasked \
         evaluation as the masked one once the dropped groups are zero)",
        cfg.name,
        max_abs_diff(&masked, &zeroed)
    );
    assert!(
        max_abs_diff(&zeroed, &small) < 1e-4,
        "{}: zeroed vs compact {}",
        cfg.name,
        max_abs_diff(&zeroed, &small)
    );

    // counts: the full model's polynomials at the kept widths = the compact model's own
    let widths = kept.widths();
    assert!(widths
        .iter()
        .zip(model.arch().gate_widths())
        .all(|(k, f)| k < &f));
    let params_at_kept = WidthPolynomial::params(model.arch()).eval(&widths);
    assert_eq!(compact.param_count() as u64, params_at_kept);
    assert_eq!(
        WidthPolynomial::params(compact.arch()).eval(&widths),
        params_at_kept
    );
    assert_eq!(compact.macs(), model.macs_polynomial().eval(&widths));
    assert!(compact.macs() < model.macs());
    assert_eq!(
        model.param_count() as u64,
        WidthPolynomial::params(model.arch()).eval(&model.arch().gate_widths())
    );

    // safetensors round trip of the compact model: identical logits, config included
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("compact.safetensors");
    compact.save(&path).unwrap();
    assert!(dir.path().join("compact.arch.json").exists());
    let loaded = Model::load(&path, &Device::Cpu).unwrap();
    assert_eq!(loaded.config(), compact.config());
    assert_eq!(
        max_abs_diff(&loaded.forward_t(&x, None, false).unwrap(), &small),
        0.0
    );
    // and of the full model
    let full_path = dir.path().join("full.safetensors");
    model.save(&full_path).unwrap();
    let full = Model::load(&full_path, &Device::Cpu).unwrap();
    assert_eq!(
        max_abs_diff(&full.forward_t(&x, None, false).unwrap(), &zeroed),
        0.0
    );
}

pub fn small(name: ModelName, size: usize, base: Option<usize>) -> ModelConfig {
    let mut c = ModelConfig::new(name, 10, size);
    c.base_width = base;
    c
}
