//! Where one ATO controller step spends its time (issue 27): the controller's logits (the
//! bi-GRU), the mask sample, the frozen network's forward with the gates, the backward to θ,
//! and AdamW, each timed alone over many repetitions on the demo's model (ResNet-20, width 8,
//! digits 8×8, a batch of IMAGES, 9 by default: the demo's controller batch under
//! `hyper_step = "auto"`).
//!
//! ```sh
//! cargo run --release -p ato-train --example controller_step_parts [-- REPS [portable|machine [IMAGES]]]
//! ```

use ato_controller::{sample_masks, Controller, ControllerConfig, FlopsRegulariser};
use ato_models::{Model, ModelConfig, ModelName, ShortcutKind};
use ato_optim::{AdamW, AdamWConfig, DecayRule, Optimizer, ParamSet};
use ato_train::cross_entropy;
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

fn time<T>(label: &str, reps: usize, mut f: impl FnMut() -> T) -> f64 {
    drop(f());
    let t = Instant::now();
    for _ in 0..reps {
        drop(f());
    }
    let ms = 1e3 * t.elapsed().as_secs_f64() / reps as f64;
    println!("{label:<44} {ms:8.3} ms");
    ms
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reps: usize = std::env::args().nth(1).map_or(Ok(200), |a| a.parse())?;
    if std::env::args().nth(2).as_deref() == Some("portable") {
        ato_kernels::set_reproducibility(ato_kernels::Reproducibility::Portable);
    }
    let dev = Device::Cpu;
    let mut cfg = ModelConfig::new(ModelName::Resnet20, 10, 8);
    cfg.in_channels = 1;
    cfg.base_width = Some(8);
    cfg.shortcut = ShortcutKind::B;
    let model = Model::new(&cfg, &dev, 0)?;
    let widths = model.arch().gate_widths();
    let controller = Controller::new(&widths, ControllerConfig::default(), &dev, 1)?;
    let flops = FlopsRegulariser::new(model.arch(), 0.5)?;
    let mut opt = AdamW::new(
        ParamSet::new(controller.trainable_vars(), DecayRule::ExcludeBnAndBias),
        AdamWConfig::default(),
    )?;
    let images: usize = std::env::args().nth(3).map_or(Ok(9), |a| a.parse())?;
    let x = Tensor::randn(0f32, 1.0, (images, 1, 8, 8), &dev)?;
    let y = Tensor::from_vec(
        (0..images as u32).map(|i| i % 10).collect::<Vec<_>>(),
        images,
        &dev,
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let frozen = model.frozen_copy()?;

    let logits = controller.logits()?;
    let sample = sample_masks(&logits, controller.config(), &mut rng)?;
    time("controller logits (bi-GRU forward)", reps, || {
        controller.logits().unwrap()
    });
    time("mask sample (relaxed + hard)", reps, || {
        sample_masks(&logits, controller.config(), &mut rng).unwrap()
    });
    time("frozen copy of the weights", reps, || {
        model.frozen_copy().unwrap()
    });
    time(
        &format!("network forward, gated ({images} images)"),
        reps,
        || frozen.forward(&x, Some(&sample.relaxed)).unwrap(),
    );
    time("network forward, ungated", reps, || {
        frozen.forward(&x, None).unwrap()
    });
    let full = time("whole objective + backward + AdamW", reps, || {
        let logits = controller.logits().unwrap();
        let s = sample_masks(&logits, controller.config(), &mut rng).unwrap();
        let out = frozen.forward(&x, Some(&s.relaxed)).unwrap();
        let ce = cross_entropy(&out, &y, 0.0).unwrap();
        let j = (ce + flops.penalty(&s.hard).unwrap().affine(4.0, 0.0).unwrap()).unwrap();
        let g = j.backward().unwrap();
        opt.step(&g, 1e-3).unwrap();
    });
    let only_gru = time("GRU logits + penalty + backward + AdamW", reps, || {
        let logits = controller.logits().unwrap();
        let s = sample_masks(&logits, controller.config(), &mut rng).unwrap();
        let sum = s
            .relaxed
            .iter()
            .map(|t| t.sum_all().unwrap())
            .reduce(|a, b| (a + b).unwrap());
        let j = (sum.unwrap() + flops.penalty(&s.hard).unwrap()).unwrap();
        let g = j.backward().unwrap();
        opt.step(&g, 1e-3).unwrap();
    });
    let logits = controller.logits()?;
    let s = sample_masks(&logits, controller.config(), &mut rng)?;
    let sum = s
        .relaxed
        .iter()
        .map(|t| t.sum_all().unwrap())
        .reduce(|a, b| (a + b).unwrap());
    let j = (sum.unwrap() + flops.penalty(&s.hard)?)?;
    time("backward through the GRU alone", reps, || {
        j.backward().unwrap()
    });
    let g = j.backward()?;
    time("AdamW on θ alone", reps, || opt.step(&g, 1e-3).unwrap());
    let n: usize = controller
        .trainable_vars()
        .iter()
        .map(|(_, v)| v.elem_count())
        .sum();
    println!(
        "θ: {} tensors, {n} values",
        controller.trainable_vars().len()
    );
    println!(
        "the network's share of a step: {:.0}%",
        100.0 * (1.0 - only_gru / full)
    );
    Ok(())
}
