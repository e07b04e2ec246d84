//! `ato train [CONFIG] [key=value …]`: one run into `<out_dir>/<name>/<run-id>/`.

use crate::layers;
use anyhow::Result;
use ato_train::{run, RunOptions};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "\
Layers, lowest first: built-in defaults < CONFIG < ATO_* environment (ATO_TRAIN__EPOCHS=2) \
< KEY=VALUE arguments.\n\
Keys: dataset.{name,root,download,synth_train,synth_test,color_jitter}  model.{name,shortcut,base_width,\
width_mult,stem_stride}  method=dense|ato|oto|otov2  train.{epochs,batch_size,label_smoothing,\
mixup}  optim.{name,lr,momentum,nesterov,weight_decay,warmup_epochs,schedule,\
decay_norm_and_bias}  prune.target_flops_reduction  ato.{lambda,lambda_final_mult,gamma,\
t_start,t_prox,t_end,hyper_step,controller_fraction,projector,epsilon,noise,controller_lr,\
controller_weight_decay}  oto.{lambda,epsilon,n_p}  otov2.{target_group_sparsity,lambda,\
epsilon,start_pruning}  convergence.{every,batches}  name  seed  device=auto|cpu|cuda|cuda:N  \
out_dir.\n\
Epoch keys (ato.t_*, oto.n_p, otov2.start_pruning) take an epoch (25) or a fraction of \
train.epochs (0.1). A run that was interrupted resumes from its checkpoint when started again.\n\n\
Example: ato train experiments/synth10_resnet20.toml method=ato ato.lambda=10 train.epochs=2")]
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
    let fig = layers::finish(layers::base(file.as_deref(), &[])?, &overrides)?;
    let cfg = layers::extract(&fig)?;
    if args.print_config {
        print!("{}", layers::to_toml(&cfg));
        return Ok(());
    }
    let out = run(
        &cfg,
        &RunOptions {
            progress: !args.quiet,
            ..RunOptions::default()
        },
    )?;
    println!("{} → {}", out.summary.headline(), out.run_dir.display());
    Ok(())
}
