//! `ato train [CONFIG] [key=value …]`: one run into `<out_dir>/<name>/<run-id>/`.

use anyhow::Result;
use ato_sweep::config_layers;
use ato_train::{run, RunOptions};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = keys_help())]
pub struct TrainArgs {
    /// A TOML config (e.g. experiments/cifar10_resnet56.toml); defaults apply without one.
    #[arg(value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// Overrides as dotted keys, e.g. `ato.lambda=10 train.epochs=2`.
    #[arg(value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Print the merged configuration and exit.
    #[arg(long)]
    pub print_config: bool,
    /// No progress bar and no per-epoch lines.
    #[arg(long)]
    pub quiet: bool,
    /// ATO on a CPU: run the controller's steps on a worker thread beside the training instead
    /// of on the training thread. The same numbers either way; faster only where the training
    /// leaves cores idle (on 2 cores it is slower).
    #[arg(long)]
    pub controller_thread: bool,
}

/// The text after `ato train --help`: the layering rules, then every key with its default and
/// its doc comment, read from the config types (so the list cannot drift from the parser).
fn keys_help() -> String {
    let keys = ato_train::config::keys();
    let width = keys
        .iter()
        .map(|k| k.key.len() + k.default.len())
        .max()
        .unwrap_or(0)
        + 4;
    let mut text = String::from(
        "Layers, lowest first: built-in defaults < CONFIG < ATO_* environment \
         (ATO_TRAIN__EPOCHS=2) < KEY=VALUE arguments. Epoch keys (ato.t_*, oto.n_p, \
         otov2.start_pruning) take an epoch (25) or a fraction of train.epochs (0.1). A run that \
         was interrupted resumes from its checkpoint when started again.\n\nKeys (= default):\n",
    );
    for k in &keys {
        let head = if k.default.is_empty() {
            k.key.clone()
        } else {
            format!("{} = {}", k.key, k.default)
        };
        text += &format!("  {head:<width$}{}\n", k.doc);
    }
    text += "\nExample: ato train experiments/synth10_resnet20.toml method=ato ato.lambda=10 train.epochs=2";
    text
}

/// Splits positional arguments: the first one is the config file unless it is `key=value`.
pub fn split_config(
    config: &Option<PathBuf>,
    overrides: &[String],
) -> (Option<PathBuf>, Vec<String>) {
    match config {
        Some(p) if p.to_string_lossy().contains('=') => {
            let mut all = vec![p.to_string_lossy().into_owned()];
            all.extend(overrides.iter().cloned());
            (None, all)
        }
        other => (other.clone(), overrides.to_vec()),
    }
}

pub fn run_cmd(args: &TrainArgs) -> Result<()> {
    let (file, overrides) = split_config(&args.config, &args.overrides);
    let fig = config_layers::finish(config_layers::base(file.as_deref(), &[])?, &overrides)?;
    let cfg = config_layers::extract(&fig)?;
    if args.print_config {
        print!("{}", config_layers::to_toml(&cfg));
        return Ok(());
    }
    let out = run(
        &cfg,
        &RunOptions {
            progress: !args.quiet,
            controller_thread: args.controller_thread,
            ..RunOptions::default()
        },
    )?;
    if out.rank != 0 {
        // another rank of an MPI job: rank 0 reports the run
        return Ok(());
    }
    println!("{} → {}", out.summary.headline(), out.run_dir.display());
    if let Some(line) = &out.convergence {
        println!("{line}");
    }
    Ok(())
}
