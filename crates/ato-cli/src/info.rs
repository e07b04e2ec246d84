//! `ato info`: parameter and MAC counts of a model of the registry or of an ONNX file.

use anyhow::{Context, Result};
use ato_data::DatasetName;
use ato_models::graph_groups::GroupPolicy;
use ato_models::graph_net::GraphSpec;
use ato_models::{describe, ModelConfig, ModelName};
use ato_sweep::overrides::merge_overrides;
use ato_zig::WidthPolynomial;
use clap::Args;
use figment::providers::Serialized;
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The data set a model is usually trained on: CIFAR-10 for the CIFAR ResNets, ImageNet
/// otherwise.
pub fn natural_dataset(name: ModelName) -> DatasetName {
    match name.family() {
        ato_models::Family::CifarResNet { .. } => DatasetName::Cifar10,
        _ => DatasetName::ImageNet,
    }
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Model name: resnet20, resnet32, resnet56, resnet110, resnet18, resnet34, resnet50,
    /// mobilenetv2; or an ONNX file (`*.onnx`), whose gates are listed.
    pub model: String,
    /// ONNX files: which coupled channels are gates, `inner` (as the built-ins) or `all`.
    #[arg(long, default_value = "inner", value_parser = parse_policy)]
    pub groups: GroupPolicy,
    /// Size the model for this data set: synth10, synth100, cifar10, cifar100, imagenet
    /// [default: cifar10 for CIFAR ResNets, else imagenet].
    #[arg(long)]
    pub dataset: Option<DatasetName>,
    /// Model keys as in configs, e.g. `model.shortcut=A`, `model.width_mult=0.5`,
    /// `model.widths=[8,8,8]`.
    #[arg(value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Print one JSON object: params, macs, prunable_macs, gates, gated_channels.
    #[arg(long)]
    pub json: bool,
}

/// The counts `ato info` prints.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ModelInfo {
    pub params: u64,
    pub macs: u64,
    pub prunable_macs: u64,
    pub gates: usize,
    pub gated_channels: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelOnly {
    model: ModelConfig,
}

fn parse_policy(s: &str) -> Result<GroupPolicy, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("`{s}` is not inner or all"))
}

/// The config of an imported model: the file's input shape and classes.
pub fn onnx_config(path: &Path, policy: GroupPolicy) -> Result<ModelConfig> {
    let graph = ato_onnx::read_onnx(path)?;
    let spec = GraphSpec::of(&graph, policy, &path.display().to_string());
    let cfg = ModelConfig::graph(spec, graph.input, graph.num_classes);
    cfg.validate()?;
    Ok(cfg)
}

/// The model config for `name` on `dataset` with `model.*` overrides applied.
pub fn model_config(
    name: &str,
    dataset: Option<DatasetName>,
    overrides: &[String],
) -> Result<ModelConfig> {
    let name = ModelName::parse(name)?;
    let dataset = dataset.unwrap_or(natural_dataset(name));
    let (classes, size) = dataset.shape();
    let mut model = ModelConfig::new(name, classes, size);
    model.in_channels = dataset.channels();
    let base = ModelOnly { model };
    let fig = merge_overrides(Figment::from(Serialized::defaults(base)), overrides)?;
    let cfg: ModelOnly = fig.extract().context("invalid model keys")?;
    cfg.model.validate()?;
    Ok(cfg.model)
}

/// Counts for a config, from its architecture record alone.
pub fn model_info(cfg: &ModelConfig) -> Result<ModelInfo> {
    let arch = describe(cfg)?;
    let w = arch.gate_widths();
    let macs = WidthPolynomial::macs(&arch);
    Ok(ModelInfo {
        params: WidthPolynomial::params(&arch).eval(&w),
        macs: macs.eval(&w),
        prunable_macs: macs.prunable(&w),
        gates: arch.gates.len(),
        gated_channels: arch.gated_channels(),
    })
}

pub fn run(args: &InfoArgs) -> Result<()> {
    let cfg = if args.model.ends_with(".onnx") {
        onnx_config(Path::new(&args.model), args.groups)?
    } else {
        model_config(&args.model, args.dataset, &args.overrides)?
    };
    let info = model_info(&cfg)?;
    if args.json {
        println!("{}", serde_json::to_string(&info)?);
    } else {
        let pct = 100.0 * info.prunable_macs as f64 / info.macs as f64;
        println!(
            "model           {} ({} classes, {}×{} input)",
            cfg.name, cfg.num_classes, cfg.input_size, cfg.input_size
        );
        println!("params          {}", info.params);
        println!(
            "MACs            {} ({:.2} G)",
            info.macs,
            info.macs as f64 / 1e9
        );
        println!("prunable MACs   {} ({pct:.1}%)", info.prunable_macs);
        println!("gates           {}", info.gates);
        println!("gated channels  {}", info.gated_channels);
        if let Some(spec) = &cfg.graph {
            let gates = describe(&cfg)?.gates;
            let input = [cfg.in_channels, cfg.input_size, cfg.input_size];
            println!("layers that start channels (`--groups all` prunes more of them):");
            for l in spec.explain(input)? {
                let what = match (l.gate, l.fixed_because) {
                    (Some(g), _) => {
                        format!("gate `{}` ({} channels)", gates[g].name, gates[g].width)
                    }
                    (None, Some(why)) => format!("fixed: {why}"),
                    (None, None) => "fixed".into(),
                };
                println!("  {:<28} {:>5} channels  {what}", l.layer, l.channels);
            }
        }
    }
    Ok(())
}
