//! `ato check-gpu`: is this CUDA build right and how fast is it, in one table.
//!
//! 1. numerics: forward and backward of every model on `--device` against `--against` (the CPU)
//!    from the same weights and batch, max relative differences against stated tolerances;
//! 2. bench: `ato bench train|infer` of resnet56 and mobilenetv2 (CIFAR shapes) and resnet50
//!    (ImageNet shapes) on the device, with PyTorch measured in the same run when `torch` imports;
//! 3. demo: one epoch of each method (dense, ato, oto, otov2) of the demo recipe on the device;
//! 4. ranks: the demo's dense epoch on `--ranks` GPUs (NCCL) against one, weights compared.
//!
//! Exits non-zero when a difference is out of tolerance or a run fails. `--device cpu` runs the
//! whole thing CPU against CPU (what the tests do, and a dry run of the script anywhere).

pub mod numerics;
pub mod ranks;
pub mod table;

use crate::bench::{self, BenchArgs, BenchMode};
use anyhow::{bail, Result};
use ato_data::DatasetName;
use ato_models::ModelName;
use ato_sweep::config_layers;
use clap::Args;
use std::path::PathBuf;
use table::Row;

#[derive(Args, Debug, Clone)]
pub struct CheckGpuArgs {
    /// The device under test: cuda, cuda:N or cpu.
    #[arg(long, default_value = "cuda")]
    pub device: String,
    /// The reference device for the numerics.
    #[arg(long, default_value = "cpu")]
    pub against: String,
    /// Models for the numerics, comma-separated [default: all eight].
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// Images per numerics batch.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Timed steps per benchmark (0 skips the benchmarks).
    #[arg(long, default_value_t = 20)]
    pub bench_iters: usize,
    /// Models to benchmark, comma-separated (ImageNet shapes for resnet18/34/50, CIFAR otherwise).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "resnet56,mobilenetv2,resnet50"
    )]
    pub bench_models: Vec<String>,
    /// Images per benchmark step [default: 128 at CIFAR shapes, 64 at ImageNet shapes].
    #[arg(long)]
    pub bench_batch: Option<usize>,
    /// Skip the one-epoch demo runs (and the ranks' comparison).
    #[arg(long)]
    pub no_demo: bool,
    /// Ranks of the data-parallel comparison: the demo's dense epoch on this many GPUs from
    /// `--device` on (NCCL) against one GPU, BatchNorm in eval mode; 0 or 1 skips it, as does a
    /// host with fewer GPUs.
    #[arg(long, default_value_t = 2)]
    pub ranks: usize,
    /// Skip PyTorch even when it imports.
    #[arg(long)]
    pub no_pytorch: bool,
    /// The demo recipe.
    #[arg(long, default_value = "experiments/synth10_resnet20.toml")]
    pub demo_config: PathBuf,
    /// Extra `key=value` overrides for the demo runs (e.g. dataset.synth_train=2000).
    #[arg(long = "demo-set", value_name = "KEY=VALUE")]
    pub demo_overrides: Vec<String>,
    /// Where the demo runs write [default: a temporary folder, removed afterwards].
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

/// The methods of the demo.
pub const METHODS: [&str; 4] = ["dense", "ato", "oto", "otov2"];

pub fn run_cmd(args: &CheckGpuArgs) -> Result<()> {
    let rows = collect(args)?;
    print!("{}", table::render(&rows));
    if table::any_failed(&rows) {
        bail!("check-gpu: at least one check failed (see the table)");
    }
    Ok(())
}

/// Every row of the check (numerics, bench, demo), in order.
pub fn collect(args: &CheckGpuArgs) -> Result<Vec<Row>> {
    if args.batch < 2 {
        bail!("--batch must be at least 2 (train-mode BatchNorm needs two images)");
    }
    let device = ato_train::select_device(&args.device)?;
    let reference = ato_train::select_device(&args.against)?;
    let models = if args.models.is_empty() {
        ModelName::ALL.to_vec()
    } else {
        args.models
            .iter()
            .map(|m| ModelName::parse(m))
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut rows = Vec::new();
    for m in models {
        eprintln!("check-gpu: numerics {}", m.as_str());
        match numerics::compare_model(m, args.batch, &device, &reference, 0.0) {
            Ok(r) => rows.extend(r),
            Err(e) => rows.push(Row::failed("numerics", m.as_str(), one_line(&e))),
        }
    }
    if args.bench_iters > 0 {
        rows.extend(bench_rows(args));
    }
    if !args.no_demo {
        let temp;
        let out_dir = match &args.out_dir {
            Some(d) => d.as_path(),
            None => {
                temp = std::env::temp_dir().join(format!("ato-check-gpu-{}", std::process::id()));
                temp.as_path()
            }
        };
        rows.extend(demo_rows(args, out_dir)?);
        rows.push(ranks::ranks_row(args, out_dir));
        if args.out_dir.is_none() {
            let _ = std::fs::remove_dir_all(out_dir);
        }
    }
    Ok(rows)
}

fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

/// Whether the same-run PyTorch comparison can run here.
fn pytorch_wanted(args: &CheckGpuArgs) -> Option<String> {
    if args.no_pytorch {
        return None;
    }
    bench::pytorch::torch_available(&bench::pytorch::python()).ok()
}

fn bench_rows(args: &CheckGpuArgs) -> Vec<Row> {
    let torch = pytorch_wanted(args);
    let mut rows = Vec::new();
    if torch.is_none() && !args.no_pytorch {
        rows.push(Row::info(
            "pytorch",
            "torch",
            "not importable: no PyTorch column",
        ));
    }
    for model in &args.bench_models {
        let dataset = match ModelName::parse(model) {
            Ok(m) => numerics::dataset_for(m),
            Err(e) => {
                rows.push(Row::failed("bench", model.clone(), e.to_string()));
                continue;
            }
        };
        let batch = args.bench_batch.unwrap_or(match dataset {
            DatasetName::ImageNet => 64,
            _ => 128,
        });
        for mode in [BenchMode::Train, BenchMode::Infer] {
            let b = BenchArgs {
                mode,
                model: model.to_string(),
                batch,
                iters: args.bench_iters,
                warmup: 3,
                backend: None,
                reproducible: ato_kernels::Reproducibility::Machine,
                dataset,
                device: args.device.clone(),
                pytorch: torch.is_some(),
                reference: None,
                json: false,
                profile: false,
            };
            let item =
                format!("{mode:?} {model} ({}, batch {batch})", dataset.as_str()).to_lowercase();
            eprintln!("check-gpu: bench {item}");
            rows.push(match bench::measure(&b) {
                Ok(r) => Row::info(
                    "bench",
                    item,
                    match (r.pytorch_images_per_second, r.ratio_to_pytorch) {
                        (Some(pt), Some(ratio)) => format!(
                            "{:.0} img/s; PyTorch {pt:.0} img/s, ratio {ratio:.2}x",
                            r.images_per_second
                        ),
                        _ => format!(
                            "{:.0} img/s, {:.1} ms/step",
                            r.images_per_second, r.ms_per_step
                        ),
                    },
                ),
                Err(e) => Row::failed("bench", item, one_line(&e)),
            });
        }
    }
    rows
}

fn demo_rows(args: &CheckGpuArgs, out_dir: &std::path::Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for method in METHODS {
        eprintln!("check-gpu: demo {method}, 1 epoch");
        let mut overrides = vec![
            format!("method={method}"),
            "train.epochs=1".to_string(),
            format!("device={}", args.device),
            format!("out_dir={}", out_dir.display()),
            format!("name=check-gpu-{method}"),
        ];
        overrides.extend(args.demo_overrides.iter().cloned());
        let item = format!("{method}, 1 epoch");
        let run = || -> Result<String> {
            let fig = config_layers::finish(
                config_layers::base(Some(args.demo_config.as_path()), &[])?,
                &overrides,
            )?;
            let cfg = config_layers::extract(&fig)?;
            let out = ato_train::run(&cfg, &ato_train::RunOptions::default())?;
            let s = &out.summary;
            Ok(format!(
                "top1 {:.2}%, FLOPs -{:.1}%, {:.1} s",
                s.top1.unwrap_or(f64::NAN) * 100.0,
                s.flops_reduction.unwrap_or(0.0) * 100.0,
                s.wall_seconds.unwrap_or(f64::NAN)
            ))
        };
        rows.push(match run() {
            Ok(m) => Row {
                status: table::Status::Ok,
                ..Row::info("demo", item, m)
            },
            Err(e) => Row::failed("demo", item, one_line(&e)),
        });
    }
    Ok(rows)
}
