//! `ato eval`: a saved model (a run's compact model, or a model file) on a test set.

use anyhow::{bail, Result};
use ato_models::Model;
use ato_sweep::config_layers;
use ato_train::{RunData, RunDir};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "\
PATH is a run folder (its compact.safetensors is evaluated on the data set of its config.toml) \
or a model file saved by ato (NAME.safetensors beside NAME.arch.json), evaluated on the data \
set that KEY=VALUE arguments name, e.g. dataset.name=cifar10 dataset.root=data.")]
pub struct EvalArgs {
    /// A run folder or a `.safetensors` model file.
    pub path: PathBuf,
    /// Data set keys as in configs (`dataset.name=…`, `dataset.root=…`, `device=…`).
    #[arg(value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// The compact model of a finished run folder; the error says when there is none.
pub fn compact_model_file(dir: &RunDir) -> Result<PathBuf> {
    let w = dir.compact_model_file();
    if !w.is_file() {
        bail!(
            "{} has no compact.safetensors: the run has not finished",
            dir.path().display()
        );
    }
    Ok(w)
}

pub fn eval_cmd(args: &EvalArgs) -> Result<()> {
    let (weights, base) = if args.path.is_dir() {
        let dir = RunDir::new(&args.path);
        let cfg = dir.read_config()?;
        (compact_model_file(&dir)?, Some(cfg))
    } else {
        (args.path.clone(), None)
    };
    let mut fig = config_layers::base(None, &[])?;
    if let Some(cfg) = &base {
        fig = fig.merge(figment::providers::Serialized::defaults(cfg));
    }
    let cfg = config_layers::extract(&config_layers::finish(fig, &args.overrides)?)?;
    let device = ato_train::select_device(&cfg.device)?;
    let model = Model::load(&weights, &device)?;
    let (classes, size) = cfg.dataset.name.shape();
    let mc = model.config();
    let channels = cfg.dataset.name.channels();
    if mc.num_classes != classes || mc.input_size != size || mc.in_channels != channels {
        bail!(
            "the model takes {}×{}×{} images into {} classes; dataset {} has {channels}×{size}×{size} and {classes} (set dataset.name=…)",
            mc.in_channels, mc.input_size, mc.input_size, mc.num_classes, cfg.dataset.name
        );
    }
    let data = RunData::open(&cfg, &device)?;
    let t = ato_train::evaluate_loader(&model, &data.test, None)?;
    println!(
        "{}: {} on {} test images of {}: top-1 {:.2}%  top-5 {:.2}%  loss {:.4}  params {}  MACs {}",
        weights.display(),
        mc.name,
        t.samples,
        cfg.dataset.name,
        100.0 * t.top1(),
        100.0 * t.top5(),
        t.mean_loss(),
        model.param_count(),
        model.macs()
    );
    Ok(())
}
