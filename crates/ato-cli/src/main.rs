//! # ato — Auto-Train-Once from the command line
//!
//! One binary for the whole research loop (docs/design.md §7):
//!
//! - `ato train [CONFIG] [key=value …]` — one run (dense, ATO, OTO, OTOv2, HESSO or magnitude) into
//!   `results/<name>/<run-id>/`: config, per-epoch metrics, convergence probes, mask, compact
//!   model, summary row; resumable.
//! - `ato sweep NAME|FILE` — a grid of runs with skip/resume/shard/SLURM support and an
//!   atomically rewritten `summary.csv`.
//! - `ato report DIR` — Markdown tables and PNG plots in `paper/`.
//! - `ato eval`, `ato export` — evaluate a compact model, or export it (ONNX or safetensors).
//! - `ato bench train|infer MODEL` — images/s of the kernels, against stock candle and PyTorch;
//!   `ato bench train|infer RUN_DIR` — a run's compact model against the dense one.
//! - `ato check-gpu` — CUDA vs CPU numerics, CUDA benchmarks and demo epochs, in one table.
//! - `ato data synth|fetch|check` — the synthetic set and the CIFAR archives.
//! - `ato info MODEL` — params, MACs and gates of a model.
//!
//! Errors are one line on stderr and a non-zero exit code. The binary parses arguments and
//! prints; what it calls is library code: runs in `ato-train`, the sweep plan and the
//! matched-FLOPs search in `ato-sweep`, the report in `ato-report`.

mod bench;
mod check_gpu;
mod data_cmd;
mod eval_cmd;
mod export_cmd;
mod info;
mod report_cmd;
mod sweep;
mod train_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Auto-Train-Once: structured pruning from scratch, guided by a controller network.
#[derive(Parser, Debug)]
#[command(name = "ato", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train one run (dense | ato | oto | otov2 | hesso | magnitude), prune, compact and evaluate.
    Train(train_cmd::TrainArgs),
    /// Run a sweep of runs (skips finished ones, resumes interrupted ones).
    Sweep(sweep::SweepArgs),
    /// Write Markdown tables and PNG plots for a results folder into paper/.
    Report(report_cmd::ReportArgs),
    /// Evaluate a compact model (a run folder or a saved model file) on a test set.
    Eval(eval_cmd::EvalArgs),
    /// A finished run's compact model as an ONNX file (--onnx) or a model file of ato's own (--out).
    Export(export_cmd::ExportArgs),
    /// Images/s of training steps or inference, fast kernels vs stock candle; a run folder's
    /// compact model against the dense one.
    Bench(bench::BenchArgs),
    /// CUDA against CPU numerics of every model, CUDA benchmarks, one-epoch demo runs: one table.
    CheckGpu(check_gpu::CheckGpuArgs),
    /// Generate the synthetic set, fetch or check CIFAR.
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
    /// Parameters, MACs (conv + fc multiply-accumulates), prunable MACs and gates of a model.
    Info(info::InfoArgs),
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    pin_thread_count();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train_cmd::run_cmd(&a),
        Command::Sweep(a) => sweep::run_cmd(&a),
        Command::Report(a) => report_cmd::run_cmd(&a),
        Command::Eval(a) => eval_cmd::eval_cmd(&a),
        Command::Export(a) => export_cmd::export_cmd(&a),
        Command::Bench(a) => bench::run(&a),
        Command::CheckGpu(a) => check_gpu::run_cmd(&a),
        Command::Data(c) => data_cmd::run(c),
        Command::Info(a) => info::run(&a),
    };
    ato_train::parallel::finish_mpi();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// Fixes candle's thread count once, before any thread starts.
///
/// candle-core 0.11.1 recomputes its thread count on every CPU matmul, and without
/// `RAYON_NUM_THREADS` that reads `/proc/cpuinfo` each time (`num_cpus::get_physical`): 5% of
/// a dense demo run and a quarter of ATO's controller step, which runs a bi-GRU of small
/// matmuls. Setting the variable to the count candle computes anyway leaves every result
/// unchanged; rayon's global pool is built first, so it keeps its own default size.
fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let _ = rayon::ThreadPoolBuilder::new().build_global();
    let threads = candle_core::utils::get_num_threads();
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
}

/// `ato sweep demo --dry-run | head` ends quietly when `head` closes the pipe, as other Unix
/// tools do, instead of panicking in `println!` (Rust ignores SIGPIPE by default).
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default action of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
