//! `ato bench train|infer RUN_DIR`: the run's compact model and the dense model of the same
//! architecture, width and input shape, timed side by side in this process
//! ([`ato_models::latency::compare`]), printed with their ratio (or as one JSON object).

use super::{BenchArgs, BenchMode};
use crate::eval_cmd::compact_model_file;
use anyhow::{bail, Result};
use ato_models::latency::{compare, dense_twin, LatencyOptions, SideBySide, StepKind};
use ato_models::Model;
use ato_train::RunDir;
use candle_core::Device;
use serde::Serialize;

/// The fewest interleaved rounds a run folder's bench accepts (the figures are medians).
pub const MIN_ROUNDS: usize = 5;

/// The `--json` object of a run folder's bench.
#[derive(Debug, Serialize)]
struct RunBenchReport {
    run_dir: String,
    model: String,
    backend: String,
    /// The CPU ([`super::cpu_text`]).
    cpu: String,
    dense_widths: Vec<usize>,
    compact_widths: Vec<usize>,
    #[serde(flatten)]
    timing: SideBySide,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.batch == 0 {
        bail!("--batch must be positive");
    }
    if args.iters < MIN_ROUNDS {
        bail!(
            "--iters {} is too few for a run folder: the figures are medians of at least {MIN_ROUNDS} interleaved rounds",
            args.iters
        );
    }
    let dir = RunDir::new(&args.model);
    let weights = compact_model_file(&dir)?;
    let compact = Model::load(&weights, &Device::Cpu)?;
    let dense = dense_twin(&compact, 0)?;
    let opts = LatencyOptions {
        kind: match args.mode {
            BenchMode::Infer => StepKind::Infer,
            BenchMode::Train => StepKind::Train,
        },
        batch: args.batch,
        warmup: args.warmup,
        repeats: args.iters,
        iters: 1,
    };
    let timing = compare(&dense, &compact, &opts)?;
    let report = RunBenchReport {
        run_dir: dir.path().display().to_string(),
        model: compact.config().name.as_str().to_string(),
        backend: ato_kernels::backend().to_string(),
        cpu: super::cpu_text(),
        dense_widths: dense.arch().gate_widths(),
        compact_widths: compact.arch().gate_widths(),
        timing,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let t = &report.timing;
        println!("CPU: {}", report.cpu);
        println!(
            "{} {:?} of {} (batch {}, {} backend, {} threads, median of {} interleaved rounds):",
            report.model, args.mode, report.run_dir, t.batch, report.backend, t.threads, t.repeats
        );
        println!(
            "  dense   {:>9.3} ms/step  {:>12} MACs/image",
            t.dense_ms, t.dense_macs
        );
        println!(
            "  compact {:>9.3} ms/step  {:>12} MACs/image",
            t.compact_ms, t.compact_macs
        );
        println!(
            "  speedup {:.2}x (MACs ratio {:.2}x)",
            t.speedup, t.macs_ratio
        );
    }
    Ok(())
}
