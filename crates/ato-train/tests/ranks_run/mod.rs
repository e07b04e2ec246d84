//! The tiny data-parallel run the ranks' tests share, and a run's last weights.

use ato_train::{Method, RunConfig};
use candle_core::Tensor;
use std::collections::HashMap;
use std::path::Path;

/// ResNet-20 at base width 4 on 320 synthetic images, batches of 32: 10 steps an epoch.
pub fn tiny(method: Method, root: &Path, ranks: usize, out: &str) -> RunConfig {
    let mut cfg = RunConfig::from_toml(
        r#"
        name = "dp"
        device = "cpu"
        [dataset]
        name = "synth10"
        synth_train = 320
        synth_test = 64
        [model]
        name = "resnet20"
        base_width = 4
        [train]
        epochs = 2
        batch_size = 32
        [optim]
        lr = 0.1
        [ato]
        t_start = 1
        t_prox = 1
        t_end = 2
        hyper_step = 2
        controller_fraction = 0.25
        lambda = 20.0
        gamma = 4.0
        controller_lr = 0.05
        [convergence]
        every = 0
        [bench]
        after_run = false
        "#,
    )
    .unwrap();
    cfg.method = method;
    cfg.dist.world_size = ranks;
    cfg.dataset.root = root.join("data").display().to_string();
    cfg.out_dir = root.join(out).display().to_string();
    cfg
}

/// The weights of the last checkpoint in `run_dir`.
pub fn last_weights(run_dir: &Path) -> HashMap<String, Tensor> {
    let ckpt = ato_train::RunDir::new(run_dir).checkpoint();
    let (dir, _) = ckpt.latest().unwrap().expect("a checkpoint");
    candle_core::safetensors::load(dir.join("model.safetensors"), &candle_core::Device::Cpu)
        .unwrap()
}
