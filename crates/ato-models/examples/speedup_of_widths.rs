//! The measured speedup of compact ResNet-20s (base width 8, shortcut B, CIFAR shapes: the
//! demo's model) over the dense one at given kept widths, each pair timed side by side with
//! [`ato_models::latency::compare`], eval mode. Each width list is also timed rounded up to
//! multiples of N (`--round 8`, [`ato_zig::Mask::rounded_count`]), so the cost of rounding in
//! MACs and its gain in time show side by side.
//!
//! ```text
//! cargo run --release -p ato-models --example speedup_of_widths -- \
//!     [--batch 64] [--repeats 9] [--rounds 3] [--round 8] 4,2,2,6,5,13,23,22,16 …
//! ```
//!
//! `--rounds R` repeats the whole comparison R times (the machine may be shared: the spread
//! of the R medians shows how much to trust one).

use ato_models::latency::{compare, LatencyOptions};
use ato_models::{Model, ModelConfig, ModelName, ShortcutKind};
use ato_zig::{KeptChannels, Mask};
use candle_core::Device;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let batch = arg(&args, "--batch", 64);
    let repeats = arg(&args, "--repeats", 9);
    let rounds = arg(&args, "--rounds", 3);
    let round = arg(&args, "--round", 8);
    let lists: Vec<Vec<usize>> = args
        .iter()
        .enumerate()
        .filter(|&(i, a)| a.contains(',') && (i == 0 || !args[i - 1].starts_with("--")))
        .map(|(_, a)| a.split(',').map(|w| w.parse().expect("widths")).collect())
        .collect();
    let mut cfg = ModelConfig::new(ModelName::Resnet20, 10, 32);
    cfg.base_width = Some(8);
    cfg.shortcut = ShortcutKind::B;
    let dense = Model::new(&cfg, &Device::Cpu, 0).expect("dense model");
    let full = dense.arch().gate_widths();
    let mut cases = Vec::new();
    for w in &lists {
        assert_eq!(w.len(), full.len(), "one width per gate: {full:?}");
        let r: Vec<usize> = w
            .iter()
            .zip(&full)
            .map(|(&k, &c)| Mask::rounded_count(k, round, c))
            .collect();
        cases.push((format!("{w:?}"), w.clone()));
        cases.push((format!("{r:?} (×{round})"), r));
    }
    println!(
        "ResNet-20 (base width 8, B), eval, batch {batch}, {} threads, median of {repeats} interleaved forwards, {rounds} rounds",
        candle_core::utils::get_num_threads()
    );
    println!(
        "{:<44} {:>7} {:>9} {:>10} {:>9}",
        "widths", "MACs↓%", "MACs×", "speedups", "eff"
    );
    for (name, widths) in &cases {
        let kept = KeptChannels {
            per_gate: widths.iter().map(|&k| (0..k).collect()).collect(),
        };
        let compact = dense.compact(&kept).expect("compaction");
        let mut speedups = Vec::new();
        let mut macs_ratio = 1.0;
        for _ in 0..rounds {
            let t =
                compare(&dense, &compact, &LatencyOptions::infer(batch, repeats)).expect("timing");
            speedups.push(t.speedup);
            macs_ratio = t.macs_ratio;
        }
        let med = ato_models::latency::median(speedups.clone());
        let shown: Vec<String> = speedups.iter().map(|s| format!("{s:.2}")).collect();
        println!(
            "{name:<44} {:>7.1} {macs_ratio:>9.2} {:>10} {:>9.2}   (median {med:.2})",
            100.0 * (1.0 - 1.0 / macs_ratio),
            shown.join("/"),
            med / macs_ratio
        );
    }
}
