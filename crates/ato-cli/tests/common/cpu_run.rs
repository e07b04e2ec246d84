//! One tiny training run in a child `ato` process (natively or under an emulated CPU) and a
//! bit-for-bit comparison of final weights: what `cpu_paths.rs` and `emulated_cpus.rs` share.

use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

const CONFIG: &str = r#"
name = "paths"
device = "cpu"
method = "dense"
[dataset]
name = "synth10"
synth_train = 256
synth_test = 64
[model]
name = "resnet20"
base_width = 4
[train]
epochs = 1
batch_size = 64
[convergence]
every = 0
[bench]
after_run = false
"#;

/// The final weights of a run with `env` and `overrides`, and the path its `machine.json`
/// records (SIMD level, threads).
pub fn weights(
    root: &Path,
    tag: &str,
    env: &[(&str, &str)],
    overrides: &[&str],
) -> (HashMap<String, Tensor>, (String, u64)) {
    weights_on(None, root, tag, env, overrides)
}

/// [`weights`] of a run under `qemu-x86_64 -cpu MODEL` when `cpu` names a model: the CPU's
/// features and cache sizes as `cpuid` reports them are the emulated model's.
pub fn weights_on(
    cpu: Option<&str>,
    root: &Path,
    tag: &str,
    env: &[(&str, &str)],
    overrides: &[&str],
) -> (HashMap<String, Tensor>, (String, u64)) {
    let dir = root.join(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let ato = env!("CARGO_BIN_EXE_ato");
    let mut cmd = match cpu {
        Some(model) => {
            let mut c = Command::new("qemu-x86_64");
            c.args(["-cpu", model, ato]);
            c
        }
        None => Command::new(ato),
    };
    let data = root.join("data");
    cmd.arg("train")
        .arg(&cfg)
        .arg(format!("out_dir={}", dir.join("out").display()))
        .arg(format!("dataset.root={}", data.display()))
        .args(overrides)
        .env_remove("ATO_SIMD")
        .env_remove("CANDLE_NUM_THREADS")
        .env_remove("RAYON_NUM_THREADS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = std::fs::read_dir(dir.join("out/paths"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let machine: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("machine.json")).unwrap()).unwrap();
    let path = (
        machine[0]["kernel_simd"].as_str().unwrap().to_string(),
        machine[0]["threads"].as_u64().unwrap(),
    );
    eprintln!("{tag}: {path:?}");
    let w = candle_core::safetensors::load(run.join("checkpoint/model.safetensors"), &Device::Cpu);
    (w.unwrap(), path)
}

/// The first tensor (by name) whose bits differ, if any.
pub fn first_difference(
    a: &HashMap<String, Tensor>,
    b: &HashMap<String, Tensor>,
) -> Option<String> {
    let mut names: Vec<&String> = a.keys().collect();
    names.sort();
    names.into_iter().find_map(|n| {
        let bits = |t: &Tensor| -> Vec<u32> {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            v.into_iter().map(f32::to_bits).collect()
        };
        let same = b.get(n).is_some_and(|t| bits(t) == bits(&a[n]));
        (!same).then(|| n.clone())
    })
}
