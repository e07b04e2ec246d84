//! Single-core throughput of the two hot paths:
//! * CIFAR batches with augmentation (crop + flip + normalise + tensor), target ≥ 20,000 img/s;
//! * JPEG decode + RandomResizedCrop(224) + flip + normalise, target ≥ 300 img/s per core.

use std::hint::black_box;
use std::path::PathBuf;

use ato_data::augment::seeded_rng;
use ato_data::imagenet::load_image_sample;
use ato_data::resize::ResizeScratch;
use ato_data::synth::render_split;
use ato_data::{
    CifarFormat, CifarImages, Dataset, ImageNetOptions, Loader, LoaderConfig, Normalize, Split,
};
use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use image::{Rgb, RgbImage};
use rand::Rng;

const BATCH: usize = 128;

fn cifar_batches(c: &mut Criterion) {
    let (pixels, labels) = render_split(10, 1024, 0, Split::Train);
    let format = CifarFormat::Cifar10;
    let data = Dataset::from_images(
        "bench",
        Split::Train,
        CifarImages { pixels, labels },
        10,
        Normalize::new(format.mean(), format.std()),
    );
    let config = LoaderConfig {
        workers: 0, // build on the benchmark thread: one core
        ..LoaderConfig::train(BATCH, 0)
    };
    let loader = Loader::new(&data, config, &Device::Cpu).unwrap();
    let mut group = c.benchmark_group("cifar");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut batch = 0;
    group.bench_function("augmented_batch_128_one_core", |b| {
        b.iter(|| {
            batch = (batch + 1) % loader.batches_per_epoch();
            black_box(loader.load_batch(3, batch).unwrap())
        })
    });
    group.finish();
}

/// ImageNet-like JPEGs (500×375, smooth content plus noise), written once.
fn jpeg_files(dir: &std::path::Path, count: usize) -> Vec<PathBuf> {
    let mut rng = seeded_rng(&[11]);
    (0..count)
        .map(|i| {
            let (fx, fy) = (
                rng.random_range(0.01..0.05f32),
                rng.random_range(0.01..0.05f32),
            );
            let image = RgbImage::from_fn(500, 375, |x, y| {
                let base = ((x as f32 * fx).sin() + (y as f32 * fy).cos()) * 60.0 + 128.0;
                let noise: f32 = rng.random_range(-20.0..20.0);
                Rgb([
                    (base + noise) as u8,
                    (base * 0.8 + noise) as u8,
                    (255.0 - base + noise).clamp(0.0, 255.0) as u8,
                ])
            });
            let path = dir.join(format!("img{i}.jpg"));
            image.save(&path).unwrap();
            path
        })
        .collect()
}

fn jpeg_random_resized_crop(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let files = jpeg_files(dir.path(), 16);
    let options = ImageNetOptions::default();
    let norm = Normalize::imagenet();
    let mut out = vec![0f32; 3 * 224 * 224];
    let mut scratch = ResizeScratch::default();
    let mut rng = seeded_rng(&[5]);
    let mut group = c.benchmark_group("imagenet");
    group.throughput(Throughput::Elements(1));
    let mut next = 0;
    group.bench_function("jpeg_500x375_decode_rrc224_one_core", |b| {
        b.iter(|| {
            next = (next + 1) % files.len();
            load_image_sample(
                &files[next],
                true,
                &options,
                &norm,
                &mut rng,
                &mut scratch,
                &mut out,
            )
            .unwrap();
            black_box(out[0])
        })
    });
    group.bench_function("jpeg_500x375_decode_resize_center_crop224_one_core", |b| {
        b.iter(|| {
            next = (next + 1) % files.len();
            load_image_sample(
                &files[next],
                false,
                &options,
                &norm,
                &mut rng,
                &mut scratch,
                &mut out,
            )
            .unwrap();
            black_box(out[0])
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = cifar_batches, jpeg_random_resized_crop
}
criterion_main!(benches);
