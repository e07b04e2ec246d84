//! `ato bench train|infer MODEL`: images/s and ms/step of full training steps (train-mode
//! forward, cross-entropy, backward, plain SGD update) or eval-mode inference on random input,
//! with the fast (`ato-kernels`) or stock (candle) backend, on the CPU or a CUDA device. With
//! `--pytorch` the PyTorch reference is measured in the same run and the ratio printed; without it
//! a stored reference is shown labelled "stored, <date>, <machine>" and no ratio.
//!
//! `ato bench train|infer RUN_DIR`: the run's compact model against the dense model of the same
//! architecture, side by side (`ato_models::latency`), and their ratio.

pub mod pytorch;
mod run_folder;

use anyhow::{bail, Result};
use ato_data::DatasetName;
use ato_kernels::{Backend, Reproducibility};
use ato_models::{Model, ModelConfig, ModelName};
use candle_core::{DType, Tensor};
use candle_nn::{Optimizer, SGD};
use clap::{Args, ValueEnum};
use pytorch::StoredPytorch;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::path::Path;
use std::path::PathBuf;
use std::time::Instant;

/// What one step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchMode {
    /// Train-mode forward + cross-entropy + backward + SGD update.
    Train,
    /// Eval-mode forward.
    Infer,
}

/// Kernel backend selectable on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchBackend {
    /// ato-kernels' CPU kernels (the default on CPU).
    Fast,
    /// candle's own conv2d / BatchNorm.
    Stock,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// `train` (forward + loss + backward + SGD step) or `infer` (eval-mode forward).
    #[arg(value_enum)]
    pub mode: BenchMode,
    /// Model name: resnet20, resnet32, resnet56, resnet110, resnet18, resnet34, resnet50,
    /// mobilenetv2; or a finished run folder, whose compact model is timed against the dense
    /// model of the same architecture, width and input shape, side by side.
    #[arg(value_name = "MODEL|RUN_DIR")]
    pub model: String,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Timed steps (with a run folder: interleaved rounds of one step per model, at least 5).
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Kernels [default: `ATO_BACKEND`, else fast].
    #[arg(long, value_enum)]
    pub backend: Option<BenchBackend>,
    /// `machine` (the fastest products this CPU has) or `portable` (fixed-order products,
    /// the same bits on every CPU: what `train.reproducible = "portable"` runs).
    #[arg(long, default_value = "machine")]
    pub reproducible: Reproducibility,
    /// Size the model for this data set: cifar10, cifar100, imagenet (synth10/synth100 have
    /// the CIFAR shapes).
    #[arg(long, default_value = "cifar10")]
    pub dataset: DatasetName,
    /// Device: cpu, cuda or cuda:N (CUDA needs a `--features cuda` build).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Run benches/pytorch_reference.py now with the same model, mode, data set, batch, threads
    /// and device (python from `ATO_PYTHON`, else python3, with torch), its steps alternating
    /// with ours one by one, and print the ratio of the median steps.
    #[arg(long)]
    pub pytorch: bool,
    /// Stored PyTorch results shown (labelled, no ratio) without --pytorch [default:
    /// benches/pytorch_reference_results.json, from the working directory or the source tree].
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also print where a step's time goes: each of ato-kernels' ops (conv, conv+BN, their
    /// backward passes, BN, add+ReLU, channel scaling) per step, and the rest (candle's ops,
    /// autograd, the optimiser).
    #[arg(long)]
    pub profile: bool,
}

/// What `ato bench` reports (the `--json` object).
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub model: String,
    pub mode: BenchMode,
    pub dataset: DatasetName,
    pub batch: usize,
    pub backend: String,
    pub reproducible: &'static str,
    pub threads: usize,
    pub iters: usize,
    /// Median over the timed steps.
    pub ms_per_step: f64,
    pub best_ms_per_step: f64,
    /// `batch / median step time`.
    pub images_per_second: f64,
    /// Conv + linear multiply-accumulates of one image's forward pass.
    pub macs_per_image: u64,
    /// 2 · MACs · (3 for a training step, 1 for inference) · images/s.
    pub gflops_per_second: f64,
    pub device: String,
    /// The CPU: `/proc/cpuinfo`'s model name, the flags that pick a code path, the kernels'
    /// SIMD path, its bf16 units (`AMD EPYC [sse4_2 avx avx2 fma], kernels avx2+fma, bf16 units
    /// none`).
    pub cpu: String,
    /// PyTorch's images/s measured in this run (`--pytorch`).
    pub pytorch_images_per_second: Option<f64>,
    /// `images_per_second / pytorch_images_per_second`, only for a same-run measurement.
    pub ratio_to_pytorch: Option<f64>,
    /// The stored reference for these settings (another run, labelled; no ratio is taken).
    pub stored_pytorch: Option<StoredPytorch>,
    /// `--profile`: (op, ms per step, calls per step), largest first, then `rest`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<(String, f64, f64)>,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if let Some(b) = args.backend {
        ato_kernels::set_backend(match b {
            BenchBackend::Fast => Backend::Fast,
            BenchBackend::Stock => Backend::Stock,
        });
    }
    ato_kernels::set_reproducibility(args.reproducible);
    if Path::new(&args.model).is_dir() {
        return run_folder::run(args);
    }
    let report = measure(args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

/// Steps per block when ours and PyTorch's alternate (`--pytorch`).
const PYTORCH_BLOCK: usize = 5;

/// Runs the benchmark with the current backend.
pub fn measure(args: &BenchArgs) -> Result<BenchReport> {
    if args.batch == 0 || args.iters == 0 {
        bail!("--batch and --iters must be positive");
    }
    if args.pytorch {
        // Fail before minutes of measuring, not after.
        pytorch::require_torch()?;
    }
    let name = ModelName::parse(&args.model)?;
    let (classes, side) = args.dataset.shape();
    let mut config = ModelConfig::new(name, classes, side);
    config.in_channels = args.dataset.channels();
    let channels = config.in_channels;
    let device = ato_train::select_device(&args.device)?;
    let model = Model::new(&config, &device, 0)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let pixels: Vec<f32> = (0..args.batch * channels * side * side)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let x = Tensor::from_vec(pixels, (args.batch, channels, side, side), &device)?;
    let labels: Vec<u32> = (0..args.batch)
        .map(|_| rng.random_range(0..classes as u32))
        .collect();
    let y = Tensor::from_vec(labels, args.batch, &device)?;

    let mut step: Box<dyn FnMut() -> Result<()>> = match args.mode {
        BenchMode::Train => {
            let vars = model.trainable_vars().into_iter().map(|(_, v)| v).collect();
            let mut sgd = SGD::new(vars, 0.01)?;
            let model = &model;
            let (x, y) = (&x, &y);
            Box::new(move || {
                let logits = model.forward_t(x, None, true)?;
                let loss = candle_nn::loss::cross_entropy(&logits, y)?;
                sgd.backward_step(&loss)?;
                loss.device().synchronize()?;
                Ok(())
            })
        }
        BenchMode::Infer => {
            let (model, x) = (&model, &x);
            Box::new(move || {
                let logits = model.forward_t(x, None, false)?;
                // Make sure the result is materialised before the clock stops.
                let _ = logits.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()?;
                Ok(())
            })
        }
    };
    let threads = candle_core::utils::get_num_threads();
    // PyTorch warms up first, alone; then the timed steps alternate in blocks, ours and
    // PyTorch's, each block led by one untimed step, so no timed step starts right behind the
    // other process's (at a one-step rhythm ours ran ~5% slower than alone).
    let mut pytorch_steps = if args.pytorch {
        Some(pytorch::PytorchSteps::start(args, threads)?)
    } else {
        None
    };
    for _ in 0..args.warmup {
        step()?;
    }
    let mut times = Vec::with_capacity(args.iters);
    let mut pytorch_times = Vec::with_capacity(args.iters);
    drop(ato_kernels::profile::take());
    for block in (0..args.iters).collect::<Vec<_>>().chunks(PYTORCH_BLOCK) {
        if pytorch_steps.is_some() {
            step()?;
        }
        ato_kernels::profile::enable(args.profile);
        for _ in block {
            let t0 = Instant::now();
            step()?;
            times.push(t0.elapsed().as_secs_f64());
        }
        ato_kernels::profile::enable(false);
        if let Some(p) = pytorch_steps.as_mut() {
            p.step()?;
            for _ in block {
                pytorch_times.push(p.step()?);
            }
        }
    }
    drop(pytorch_steps);
    drop(step);
    let profile = per_step_profile(args.profile, &times);
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let images_per_second = args.batch as f64 / median;
    let macs = model.macs();
    let passes = match args.mode {
        BenchMode::Train => 3.0,
        BenchMode::Infer => 1.0,
    };
    let same_run = (!pytorch_times.is_empty()).then(|| {
        pytorch_times.sort_by(f64::total_cmp);
        args.batch as f64 / pytorch_times[pytorch_times.len() / 2]
    });
    let stored = pytorch::find_stored(args, threads)?;
    Ok(BenchReport {
        model: name.as_str().to_string(),
        mode: args.mode,
        dataset: args.dataset,
        batch: args.batch,
        backend: ato_kernels::backend().to_string(),
        reproducible: args.reproducible.as_str(),
        threads,
        iters: args.iters,
        ms_per_step: median * 1e3,
        best_ms_per_step: times[0] * 1e3,
        images_per_second,
        macs_per_image: macs,
        gflops_per_second: 2.0 * macs as f64 * passes * images_per_second / 1e9,
        device: args.device.clone(),
        cpu: cpu_text(),
        pytorch_images_per_second: same_run,
        ratio_to_pytorch: same_run.map(|r| images_per_second / r),
        stored_pytorch: stored,
        profile,
    })
}

/// The kernels' ops per step (ms, calls) and the rest of the mean step, when profiled.
fn per_step_profile(on: bool, times: &[f64]) -> Vec<(String, f64, f64)> {
    let rows = ato_kernels::profile::take();
    if !on {
        return Vec::new();
    }
    let n = times.len() as f64;
    let mean_ms = 1e3 * times.iter().sum::<f64>() / n;
    let mut out: Vec<(String, f64, f64)> = rows
        .into_iter()
        .map(|(name, s, calls)| (name.to_string(), 1e3 * s / n, calls as f64 / n))
        .collect();
    // the parts of an op ("↳ …", summed over threads) are not added again
    out.sort_by_key(|r| r.0.starts_with('↳'));
    let ours: f64 = out
        .iter()
        .filter(|r| !r.0.starts_with('↳'))
        .map(|r| r.1)
        .sum();
    let at = out
        .iter()
        .position(|r| r.0.starts_with('↳'))
        .unwrap_or(out.len());
    out.insert(
        at,
        (
            "rest: candle's ops, autograd, optimiser".into(),
            mean_ms - ours,
            0.0,
        ),
    );
    out
}

/// This CPU as [`BenchReport::cpu`] names it.
pub fn cpu_text() -> String {
    let m = ato_train::MachineRecord::here(&candle_core::Device::Cpu, 0);
    format!(
        "{} [{}], kernels {}, bf16 units {}",
        m.cpu_name(),
        m.cpu_flags.join(" "),
        m.kernel_simd,
        ato_kernels::cpu::bf16_units().as_str()
    )
}

fn print_text(r: &BenchReport) {
    println!("CPU: {}", r.cpu);
    println!(
        "{} {:?} ({}, batch {}, {} backend, {:?} products, {}, {} threads): {:.1} images/s, {:.1} ms/step (best {:.1}), {:.1} GFLOP/s",
        r.model,
        r.mode,
        r.dataset.as_str(),
        r.batch,
        r.backend,
        r.reproducible,
        r.device,
        r.threads,
        r.images_per_second,
        r.ms_per_step,
        r.best_ms_per_step,
        r.gflops_per_second
    );
    println!(
        "{}",
        pytorch::pytorch_line(
            r.images_per_second,
            r.pytorch_images_per_second,
            r.stored_pytorch.as_ref()
        )
    );
    if !r.profile.is_empty() {
        let total: f64 = r
            .profile
            .iter()
            .filter(|p| !p.0.starts_with('↳'))
            .map(|p| p.1)
            .sum();
        println!(
            "where a step's time goes (mean over {} steps, {:.1} ms):",
            r.iters, total
        );
        for (name, ms, calls) in &r.profile {
            let calls = if *calls > 0.0 {
                format!("{calls:>6.1} calls")
            } else {
                String::new()
            };
            println!(
                "  {name:<56} {ms:>9.2} ms {:>5.1}% {calls}",
                100.0 * ms / total
            );
        }
    }
}
