//! The data-parallel row of `ato check-gpu`: the demo recipe's dense run for one epoch on
//! `--ranks` ranks (GPUs `--device`, `--device + 1`, …, NCCL between them) against one rank on
//! the same global batch, BatchNorm in eval mode (per-shard statistics would differ by design):
//! the weights' relative gap within [`RANKS_TOLERANCE`], and both runs' wall times.
//!
//! lr 0.002: BatchNorm-free training at the recipe's lr amplifies summation-order rounding
//! (measured on CPU ranks, `ato-train/tests/data_parallel.rs`), so the gap would measure chaos,
//! not the all-reduce.

use super::{one_line, table::Row, CheckGpuArgs};
use anyhow::{Context, Result};
use ato_sweep::config_layers;
use candle_core::Tensor;
use std::collections::HashMap;
use std::path::Path;

/// ‖w_N − w_1‖ / ‖w_1‖ allowed after one epoch: NCCL's ring sum and per-shard kernels round
/// otherwise than one device's sums over the whole batch (CPU ranks measure ~1e-8).
pub const RANKS_TOLERANCE: f64 = 1e-4;

/// The ranks row (an info row when `--ranks` is below 2).
pub fn ranks_row(args: &CheckGpuArgs, out_dir: &Path) -> Row {
    let item = format!("dense, 1 epoch, BN eval: {} ranks vs 1", args.ranks);
    if args.ranks < 2 {
        return Row::info("ranks", item, "skipped (--ranks below 2)");
    }
    if args.device != "cpu" {
        let last = format!("cuda:{}", first_gpu(&args.device) + args.ranks - 1);
        if let Err(e) = ato_train::select_device(&last) {
            return Row::info(
                "ranks",
                item,
                format!("skipped: {} GPUs needed ({e})", args.ranks),
            );
        }
    }
    eprintln!("check-gpu: ranks, {} vs 1", args.ranks);
    match compare(args, out_dir) {
        Ok((gap, one, many)) => Row {
            limit: format!("<= {RANKS_TOLERANCE:.0e}"),
            status: if gap.is_finite() && gap <= RANKS_TOLERANCE {
                super::table::Status::Ok
            } else {
                super::table::Status::Fail
            },
            ..Row::info(
                "ranks",
                item,
                format!(
                    "|dw|/|w| {gap:.2e}; wall 1 rank {one:.1} s, {} ranks {many:.1} s (speed-up {:.2}x)",
                    args.ranks,
                    one / many
                ),
            )
        },
        Err(e) => Row::failed("ranks", item, one_line(&e)),
    }
}

fn first_gpu(device: &str) -> usize {
    device
        .strip_prefix("cuda:")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// (relative weight gap, wall seconds of 1 rank, of `--ranks` ranks).
fn compare(args: &CheckGpuArgs, out_dir: &Path) -> Result<(f64, f64, f64)> {
    let run = |ranks: usize| -> Result<(HashMap<String, Tensor>, f64)> {
        let mut overrides = vec![
            "method=dense".to_string(),
            "train.epochs=1".to_string(),
            "optim.lr=0.002".to_string(),
            format!("device={}", args.device),
            format!("out_dir={}", out_dir.display()),
            format!("name=check-gpu-ranks-{ranks}"),
            format!("dist.world_size={ranks}"),
        ];
        overrides.extend(args.demo_overrides.iter().cloned());
        let fig = config_layers::finish(
            config_layers::base(Some(args.demo_config.as_path()), &[])?,
            &overrides,
        )?;
        let cfg = config_layers::extract(&fig)?;
        let opts = ato_train::RunOptions {
            batchnorm_eval: true,
            ..ato_train::RunOptions::default()
        };
        let out = ato_train::run(&cfg, &opts)?;
        let (dir, _) = ato_train::RunDir::new(&out.run_dir)
            .checkpoint()
            .latest()?
            .context("the run left no checkpoint")?;
        let weights = candle_core::safetensors::load(
            dir.join("model.safetensors"),
            &candle_core::Device::Cpu,
        )?;
        Ok((weights, out.summary.wall_seconds.unwrap_or(f64::NAN)))
    };
    let (one, one_s) = run(1)?;
    let (many, many_s) = run(args.ranks)?;
    Ok((relative_gap(&many, &one)?, one_s, many_s))
}

/// ‖a − b‖ / ‖b‖ over every tensor of `b` together.
fn relative_gap(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) -> Result<f64> {
    let sq = |t: &Tensor| -> Result<f64> {
        Ok(t.to_dtype(candle_core::DType::F64)?
            .sqr()?
            .sum_all()?
            .to_scalar::<f64>()?)
    };
    let (mut diff, mut norm) = (0.0, 0.0);
    for (name, tb) in b {
        let ta = a.get(name).with_context(|| format!("{name} missing"))?;
        diff += sq(&(ta - tb)?)?;
        norm += sq(tb)?;
    }
    Ok((diff / norm).sqrt())
}
