//! `ato bench infer RUN_DIR` through the real binary: a folder holding a compact model is timed
//! against the dense model of the same architecture; a folder without one is refused with one
//! line.

use ato_models::{Model, ModelConfig, ModelName, ShortcutKind};
use candle_core::Device;
use std::process::Command;

fn ato(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ato"))
        .args(args)
        .output()
        .expect("run ato")
}

/// ResNet-20, base width 4 (stage widths 4/8/16), shortcut B, 10 classes, 32 px.
fn small_config(widths: Option<Vec<usize>>) -> ModelConfig {
    let mut c = ModelConfig::new(ModelName::Resnet20, 10, 32);
    c.base_width = Some(4);
    c.shortcut = ShortcutKind::B;
    c.widths = widths;
    c
}

#[test]
fn a_run_folder_is_timed_against_its_dense_twin() {
    let dir = tempfile::tempdir().unwrap();
    let compact_widths = vec![2, 2, 2, 4, 4, 4, 8, 8, 8];
    let compact = Model::new(&small_config(Some(compact_widths.clone())), &Device::Cpu, 1).unwrap();
    compact
        .save(&dir.path().join("compact.safetensors"))
        .unwrap();
    let dense_macs = Model::new(&small_config(None), &Device::Cpu, 0)
        .unwrap()
        .macs();
    let out = ato(&[
        "bench",
        "infer",
        dir.path().to_str().unwrap(),
        "--batch",
        "2",
        "--iters",
        "5",
        "--warmup",
        "1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(r["model"], "resnet20");
    assert_eq!(r["kind"], "infer");
    assert_eq!(
        (r["batch"].as_u64(), r["repeats"].as_u64()),
        (Some(2), Some(5))
    );
    assert_eq!(
        r["dense_widths"],
        serde_json::json!([4, 4, 4, 8, 8, 8, 16, 16, 16])
    );
    assert_eq!(r["compact_widths"], serde_json::json!(compact_widths));
    assert_eq!(r["dense_macs"].as_u64(), Some(dense_macs));
    assert_eq!(r["compact_macs"].as_u64(), Some(compact.macs()));
    let (d, c, s) = (
        r["dense_ms"].as_f64().unwrap(),
        r["compact_ms"].as_f64().unwrap(),
        r["speedup"].as_f64().unwrap(),
    );
    assert!(d > 0.0 && c > 0.0);
    assert!((s - d / c).abs() < 1e-9 * s);
    names_the_cpu(&r);
}

/// Every bench names the CPU: /proc/cpuinfo's model name, then the flags and kernel path.
fn names_the_cpu(r: &serde_json::Value) {
    let cpu = r["cpu"].as_str().expect("a `cpu` field");
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, v)| v.trim());
    assert!(cpu.starts_with(&format!("{model} [")), "{cpu}");
    assert!(cpu.contains("], kernels "), "{cpu}");
    let units = ato_kernels::cpu::bf16_units().as_str();
    assert!(cpu.ends_with(&format!(", bf16 units {units}")), "{cpu}");
}

#[test]
fn a_folder_without_a_compact_model_is_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = ato(&["bench", "infer", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("has no compact.safetensors"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_model_name_still_benches_the_model() {
    let out = ato(&[
        "bench", "infer", "resnet20", "--batch", "1", "--iters", "1", "--warmup", "0", "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(r["model"], "resnet20");
    assert_eq!(r["macs_per_image"].as_u64(), Some(40_813_184));
    names_the_cpu(&r);
}
