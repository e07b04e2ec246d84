//! `ato export`: a run's compact model (or a saved model file) as a model file of ato's own
//! (`--out`, safetensors + `.arch.json`) and/or a standard ONNX file (`--onnx`, `ato-onnx`).

use crate::eval_cmd::compact_model_file;
use anyhow::{anyhow, bail, Result};
use ato_data::DatasetName;
use ato_models::Model;
use ato_train::RunDir;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(after_help = "\
PATH is a finished run folder (its compact model; the data set of its config.toml states the \
input normalisation) or a model file saved by ato (NAME.safetensors beside NAME.arch.json; \
--onnx then needs --dataset). The ONNX file is opset 17 with a dynamic batch dimension: one \
input `input` (N, C, H, W), normalised as its metadata says (normalization_mean, \
normalization_std), one output `logits`.\n\n\
Examples:\n  ato export results/demo/ato-resnet20-s0-8121a973 --onnx resnet20.onnx\n  \
ato export results/demo/ato-resnet20-s0-8121a973 --out compact.safetensors")]
pub struct ExportArgs {
    /// A finished run folder, or a `.safetensors` model file saved by ato.
    pub path: PathBuf,
    /// Destination `.safetensors` file; its `.arch.json` goes beside it.
    #[arg(long, required_unless_present = "onnx")]
    pub out: Option<PathBuf>,
    /// Destination `.onnx` file.
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// The data set the model was trained on (its normalisation goes into the ONNX metadata);
    /// a run folder's config says it.
    #[arg(long, value_parser = parse_dataset)]
    pub dataset: Option<DatasetName>,
}

fn parse_dataset(s: &str) -> Result<DatasetName, String> {
    serde_json::from_value(serde_json::Value::String(s.into())).map_err(|_| {
        format!("`{s}` is not a data set (synth10, synth100, cifar10, cifar100, imagenet, digits)")
    })
}

pub fn export_cmd(args: &ExportArgs) -> Result<()> {
    let (src, dataset) = if args.path.is_dir() {
        let dir = RunDir::new(&args.path);
        let cfg = dir.read_config()?;
        (compact_model_file(&dir)?, Some(cfg.dataset.name))
    } else {
        (args.path.clone(), None)
    };
    let model = Model::load(&src, &candle_core::Device::Cpu)?;
    if let Some(out) = &args.out {
        make_parent(out)?;
        model.save(out)?;
        println!(
            "wrote {} and {} ({} params, {} MACs, gate widths {:?})",
            out.display(),
            ato_models::io::arch_path(out).display(),
            model.param_count(),
            model.macs(),
            model.arch().gate_widths()
        );
    }
    if let Some(onnx) = &args.onnx {
        let Some(dataset) = args.dataset.or(dataset) else {
            bail!(
                "{} is a model file: pass --dataset NAME so the ONNX metadata can state the \
                 input normalisation",
                args.path.display()
            );
        };
        let c = model.config().in_channels;
        let n = dataset.normalize();
        let spec = ato_onnx::InputSpec {
            mean: n.mean[..c].to_vec(),
            std: n.std[..c].to_vec(),
            source: format!("{} ({dataset})", args.path.display()),
        };
        make_parent(onnx)?;
        let bytes = ato_onnx::write_onnx(onnx, &model.graph()?, &spec)?;
        println!(
            "wrote {} (ONNX opset {}, {} bytes; input (batch, {c}, {s}, {s}) normalised with mean {:?} std {:?}; output (batch, {}))",
            onnx.display(),
            ato_onnx::OPSET,
            bytes,
            spec.mean,
            spec.std,
            model.config().num_classes,
            s = model.config().input_size,
        );
    }
    Ok(())
}

fn make_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| anyhow!("{}: {e}", parent.display()))?;
    }
    Ok(())
}
