//! Trains a small CIFAR ResNet on the synthetic 10-class set and prints its test accuracy —
//! the evidence that the set is solvable by a conv net (a linear model on raw pixels stays
//! near chance: see `tests/synth_needs_a_conv_net.rs`).
//!
//! ```text
//! cargo run --release -p ato-data --example synth_separability -- [epochs] [train] [test] [width] [batch]
//! ```
//! Defaults: 6 epochs, the default synth10 size (10,000 train / 2,000 test), ResNet-20 with
//! base width 8, batch 64, AdamW with a cosine learning rate from 3e-3.

use std::time::Instant;

use ato_data::synth::ensure_synth_sized;
use ato_data::{Dataset, Loader, LoaderConfig, Split, SynthSize};
use ato_models::{Model, ModelConfig};
use candle_core::{DType, Device, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let arg = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let defaults = SynthSize::default_for(10);
    let (epochs, train_count, test_count, width, batch_size) = (
        arg(0, 6),
        arg(1, defaults.train),
        arg(2, defaults.test),
        arg(3, 8),
        arg(4, 64),
    );
    let seed = 0;
    let device = Device::Cpu;

    let root = tempfile::tempdir()?;
    let started = Instant::now();
    let size = SynthSize {
        train: train_count,
        test: test_count,
    };
    let dir = ensure_synth_sized(root.path(), 10, seed, size)?;
    let train = Dataset::synth_from_dir(&dir, 10, Split::Train)?;
    let test = Dataset::synth_from_dir(&dir, 10, Split::Test)?;
    println!(
        "synth10: {} train / {} test images generated in {:.1}s",
        train.len(),
        test.len(),
        started.elapsed().as_secs_f64()
    );

    let mut config = ModelConfig::cifar("resnet20", 10);
    config.base_width = Some(width);
    let model = Model::new(&config, &device, seed)?;
    let vars = model.trainable_vars().into_iter().map(|(_, v)| v).collect();
    let base_lr = 3e-3;
    let mut optimizer = AdamW::new(
        vars,
        ParamsAdamW {
            lr: base_lr,
            weight_decay: 5e-4,
            ..Default::default()
        },
    )?;
    let train_loader = Loader::new(&train, LoaderConfig::train(batch_size, seed), &device)?;
    let test_loader = Loader::new(&test, LoaderConfig::eval(500), &device)?;
    let total_steps = (epochs * train_loader.batches_per_epoch()) as f64;
    let mut step = 0usize;

    for epoch in 0..epochs {
        let epoch_start = Instant::now();
        let (mut loss_sum, mut batches) = (0f32, 0usize);
        for batch in train_loader.epoch(epoch as u64) {
            let batch = batch?;
            let progress = step as f64 / total_steps;
            optimizer
                .set_learning_rate(base_lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()));
            let logits = model.forward_t(&batch.images, None, true)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &batch.labels)?;
            optimizer.backward_step(&loss)?;
            loss_sum += loss.to_scalar::<f32>()?;
            batches += 1;
            step += 1;
        }
        let (mut correct, mut seen) = (0f32, 0usize);
        for batch in test_loader.epoch(0) {
            let batch = batch?;
            let logits = model.forward_t(&batch.images.detach(), None, false)?;
            let hits = logits
                .argmax(D::Minus1)?
                .eq(&batch.labels)?
                .to_dtype(DType::F32)?;
            correct += hits.sum_all()?.to_scalar::<f32>()?;
            seen += batch.labels.dims1()?;
        }
        println!(
            "epoch {:>2}: train loss {:.3}, test accuracy {:.2}% ({:.0}s; {:.0}s total)",
            epoch + 1,
            loss_sum / batches.max(1) as f32,
            100.0 * correct / seen as f32,
            epoch_start.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
