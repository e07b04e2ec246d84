//! Inference speed of compact (pruned) models against the dense one: CIFAR ResNet-20 with base
//! width 8 (stage widths 8/16/32, shortcut B, 32×32 inputs, 10 classes), eval mode, at batch
//! 64 and batch 1, for several random keep patterns at about half the MACs, and the same
//! patterns with every kept width rounded to a multiple of 4 and of 8.
//!
//! ```text
//! cargo run --release -p ato-models --example compact_speed [-- --reps 7 --layers]
//! ```
//!
//! Every model runs in the same process, interleaved (the order rotates each repetition), and
//! the figure of a model is the median over the repetitions of its mean time per forward, so
//! a shared machine's noise hits all models alike. `--layers` adds a per-conv breakdown (each
//! fused conv-BN op timed on its own, batch 64) for the dense model and the first pattern.
//! The threads are candle's (`CANDLE_NUM_THREADS`, default: every core).

use ato_kernels::{conv_batch_norm, conv_batch_norm_add, Activation, BatchNorm2d, ConvParams};
use ato_models::{Model, ModelConfig, ModelName, ShortcutKind};
use ato_zig::{KeptChannels, Layer};
use candle_core::{Device, Tensor};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

fn config() -> ModelConfig {
    let mut c = ModelConfig::new(ModelName::Resnet20, 10, 32);
    c.base_width = Some(8);
    c.shortcut = ShortcutKind::B;
    c
}

/// Kept widths from per-gate keep fractions scaled by one factor, chosen so the MACs come
/// closest to `target` × the dense MACs.
fn widths_for_target(model: &Model, fractions: &[f64], target: f64) -> Vec<usize> {
    let full = model.arch().gate_widths();
    let poly = model.macs_polynomial();
    let dense = model.macs() as f64;
    let at = |s: f64| -> Vec<usize> {
        full.iter()
            .zip(fractions)
            .map(|(&w, &f)| ((s * f * w as f64).round() as usize).clamp(1, w))
            .collect()
    };
    let mut best = at(1.0);
    for step in 1..=400 {
        let w = at(step as f64 / 100.0);
        let err = |w: &[usize]| (poly.eval(w) as f64 / dense - target).abs();
        if err(&w) < err(&best) {
            best = w;
        }
    }
    best
}

/// `w` rounded to the nearest multiple of `m` (at least `m`, at most `full`).
fn rounded(widths: &[usize], full: &[usize], m: usize) -> Vec<usize> {
    widths
        .iter()
        .zip(full)
        .map(|(&w, &f)| (((w + m / 2) / m) * m).clamp(m.min(f), f))
        .collect()
}

/// A compact model keeping a random `widths[g]` channels of every gate.
fn compact(model: &Model, widths: &[usize], rng: &mut ChaCha8Rng) -> Model {
    let per_gate = model
        .gates()
        .iter()
        .zip(widths)
        .map(|(g, &k)| {
            let mut kept = sample(rng, g.width, k).into_vec();
            kept.sort_unstable();
            kept
        })
        .collect();
    model
        .compact(&KeptChannels { per_gate })
        .expect("compaction")
}

fn random_input(rng: &mut ChaCha8Rng, dims: &[usize]) -> Tensor {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).expect("input")
}

/// CPU time (ms) the process's threads have run so far (`CLOCK_PROCESS_CPUTIME_ID`; 0 off
/// Linux): unlike wall time, it leaves out the time other processes on a shared machine held
/// the cores (but includes candle's workers spinning between jobs).
fn cpu_ms() -> f64 {
    #[cfg(target_os = "linux")]
    {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
        }
        const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
        let mut t = Timespec { sec: 0, nsec: 0 };
        // SAFETY: `t` is a valid, writable timespec (two 64-bit fields on 64-bit Linux).
        if unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut t) } == 0 {
            return t.sec as f64 * 1e3 + t.nsec as f64 / 1e6;
        }
    }
    0.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median over `reps` interleaved repetitions of each closure's mean wall ms and CPU ms per
/// call.
fn interleaved(runs: &[&dyn Fn()], reps: usize, iters: usize) -> Vec<(f64, f64)> {
    for r in runs {
        for _ in 0..2 {
            r();
        }
    }
    let mut wall = vec![Vec::new(); runs.len()];
    let mut cpu = vec![Vec::new(); runs.len()];
    for rep in 0..reps {
        for k in 0..runs.len() {
            let i = (k + rep) % runs.len();
            let (start, cpu_start) = (Instant::now(), cpu_ms());
            for _ in 0..iters {
                runs[i]();
            }
            wall[i].push(start.elapsed().as_secs_f64() * 1e3 / iters as f64);
            cpu[i].push((cpu_ms() - cpu_start) / iters as f64);
        }
    }
    wall.into_iter()
        .map(median)
        .zip(cpu.into_iter().map(median))
        .collect()
}

/// Per-conv CPU times (ms, batch `n`) of `model`'s fused conv-BN ops, each timed on its
/// own.
fn layer_times(model: &Model, n: usize, reps: usize) -> Vec<(String, String, f64)> {
    let widths = model.arch().gate_widths();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut out = Vec::new();
    for layer in &model.arch().layers {
        let Layer::Conv(c) = layer else { continue };
        let (ci, co) = (c.in_dim.resolve(&widths), c.out_dim.resolve(&widths));
        let x = random_input(&mut rng, &[n, ci, c.in_hw.0, c.in_hw.1]);
        let w = random_input(&mut rng, &[co, ci, c.kernel, c.kernel]);
        let ones = Tensor::ones(co, candle_core::DType::F32, &Device::Cpu).expect("ones");
        let zeros = Tensor::zeros(co, candle_core::DType::F32, &Device::Cpu).expect("zeros");
        let bn = BatchNorm2d::new(ones.clone(), zeros.clone(), zeros, ones, 1e-5).expect("bn");
        let p = ConvParams::new(c.stride, c.padding, 1);
        let r = random_input(&mut rng, &[n, co, c.out_hw.0, c.out_hw.1]);
        let run = || {
            let y = if c.path.ends_with("conv2") {
                conv_batch_norm_add(&x, &w, p, &bn, &r, false, Activation::Relu)
            } else {
                conv_batch_norm(&x, &w, p, &bn, false, Activation::Relu)
            };
            drop(y.expect("conv-bn"));
        };
        let ms = interleaved(&[&run], reps, 5)[0].1;
        let shape = format!(
            "{ci:>2}→{co:<2} {}x{} s{} @{}",
            c.kernel, c.kernel, c.stride, c.in_hw.0
        );
        out.push((c.path.clone(), shape, ms));
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .map_or(7, |v| v.parse().expect("--reps N"));
    let layers = args.iter().any(|a| a == "--layers");
    // `--ab`: every model also with the direct conv kernel off (the gemm paths), interleaved.
    let ab = args.iter().any(|a| a == "--ab");
    let variants: &[bool] = if ab { &[false, true] } else { &[true] };

    let cfg = config();
    // `--profile N [--batch B]`: only run N dense forwards at batch B (64) (for callgrind).
    if let Some(n) = args
        .iter()
        .position(|a| a == "--profile")
        .and_then(|i| args.get(i + 1))
    {
        let model = Model::new(&cfg, &Device::Cpu, 0).expect("model");
        let batch = args
            .iter()
            .position(|a| a == "--batch")
            .and_then(|i| args.get(i + 1))
            .map_or(64, |v| v.parse().expect("--batch B"));
        let x = random_input(&mut ChaCha8Rng::seed_from_u64(1), &[batch, 3, 32, 32]);
        for _ in 0..n.parse::<usize>().expect("--profile N") {
            drop(model.forward_t(&x, None, false).expect("forward"));
        }
        return;
    }
    let dense = Model::new(&cfg, &Device::Cpu, 0).expect("model");
    let full = dense.arch().gate_widths();
    let dense_macs = dense.macs() as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(17);

    // (name, widths): two patterns of mild jitter around one keep fraction, one skewed.
    let mut patterns: Vec<(String, Vec<usize>)> = Vec::new();
    for (name, spread) in [("jitter-a", 0.15), ("jitter-b", 0.15), ("skewed", 0.35)] {
        let fractions: Vec<f64> = full
            .iter()
            .map(|_| 0.5 + rng.random_range(-spread..=spread))
            .collect();
        let w = widths_for_target(&dense, &fractions, 0.5);
        patterns.push((name.to_string(), w.clone()));
        patterns.push((format!("{name} ×4"), rounded(&w, &full, 4)));
        patterns.push((format!("{name} ×8"), rounded(&w, &full, 8)));
    }
    let compacts: Vec<(String, Vec<usize>, Model)> = patterns
        .iter()
        .map(|(n, w)| (n.clone(), w.clone(), compact(&dense, w, &mut rng)))
        .collect();
    let mut models = vec![("dense".to_string(), full.clone(), dense)];
    models.extend(compacts);

    println!(
        "ResNet-20 (base width 8, shortcut B), eval, {} threads, median of {reps} interleaved reps",
        candle_core::utils::barrier_pool().n_workers() + 1
    );
    for (batch, iters) in [(64usize, 5usize), (1, 100)] {
        let x = random_input(&mut rng, &[batch, 3, 32, 32]);
        let x = &x;
        let closures: Vec<Box<dyn Fn() + '_>> = variants
            .iter()
            .flat_map(|&direct| {
                models.iter().map(move |(_, _, m)| {
                    Box::new(move || {
                        ato_kernels::set_direct_conv(direct);
                        drop(m.forward_t(x, None, false).expect("forward"))
                    }) as Box<dyn Fn() + '_>
                })
            })
            .collect();
        let runs: Vec<&dyn Fn()> = closures.iter().map(|c| c.as_ref()).collect();
        let ms = interleaved(&runs, reps, iters);
        ato_kernels::set_direct_conv(true);
        for (v, &direct) in variants.iter().enumerate() {
            let ms = &ms[v * models.len()..][..models.len()];
            let kernel = if direct { "direct" } else { "gemm only" };
            println!("\nbatch {batch}, {kernel}:");
            println!(
                "{:<12} {:<34} {:>7} {:>6} {:>6} {:>5} {:>7} {:>6} {:>5}",
                "model", "widths", "wall ms", "MACs×", "speed×", "eff", "cpu ms", "speed×", "eff"
            );
            for ((name, w, m), (t, c)) in models.iter().zip(ms) {
                let macs_ratio = dense_macs / m.macs() as f64;
                let (speedup, cpu_speedup) = (ms[0].0 / t, ms[0].1 / c);
                println!(
                    "{name:<12} {:<34} {t:>7.3} {macs_ratio:>6.2} {speedup:>6.2} {:>5.2} {c:>7.3} {cpu_speedup:>6.2} {:>5.2}",
                    format!("{w:?}"),
                    speedup / macs_ratio,
                    cpu_speedup / macs_ratio,
                );
            }
        }
    }

    if layers {
        for (name, _, m) in models
            .iter()
            .filter(|(n, _, _)| n == "dense" || n == "jitter-a" || n == "jitter-a ×8")
        {
            println!("\nper conv, batch 64, {name} (CPU ms):");
            let t = layer_times(m, 64, reps);
            for (path, shape, ms) in &t {
                println!("  {path:<22} {shape:<20} {ms:>7.3} ms");
            }
            println!(
                "  {:<43} {:>7.3} ms",
                "sum",
                t.iter().map(|(_, _, ms)| ms).sum::<f64>()
            );
        }
    }
}
