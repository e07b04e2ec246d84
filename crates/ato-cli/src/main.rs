//! # ato — Auto-Train-Once from the command line
//!
//! `ato info` prints a model's parameter and MAC counts and its gates. Training, sweeps,
//! reports, benchmarks and data commands are added by their issues (DESIGN.md §7).

mod info;
mod overrides;

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
    /// Parameters, MACs (conv + fc multiply-accumulates), prunable MACs and gates of a model.
    Info(info::InfoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Info(a) => info::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
