//! The tiny probed ATO run the convergence tests share: 256 synthetic images, ResNet-20 at base
//! width 4, 4 epochs of 8 steps, T_prox = 1, T_end = 2, momentum 0 at a constant learning rate,
//! probes in `theorem` mode every 4 steps on 2 batches.

use ato_train::{Method, OptimizerName, RunConfig};
use std::path::Path;

pub fn tiny_ato(optimizer: OptimizerName, root: &Path) -> RunConfig {
    let mut cfg = RunConfig::from_toml(
        r#"
        name = "theorem"
        device = "cpu"
        [dataset]
        name = "synth10"
        synth_train = 256
        synth_test = 64
        [model]
        name = "resnet20"
        base_width = 4
        [train]
        epochs = 4
        batch_size = 32
        [optim]
        momentum = 0.0
        schedule = "constant"
        [ato]
        t_start = 0
        t_prox = 1
        t_end = 2
        lambda_switch = 2
        hyper_step = 2
        controller_fraction = 0.25
        lambda = 1.0
        gamma = 4.0
        controller_lr = 0.05
        [convergence]
        every = 4
        batches = 2
        mode = "theorem"
        "#,
    )
    .unwrap();
    cfg.method = Method::Ato;
    cfg.optim.name = optimizer;
    cfg.optim.lr = match optimizer {
        OptimizerName::Sgd => 0.05,
        OptimizerName::Adamw => 1e-3,
    };
    cfg.dataset.root = root.join("data").display().to_string();
    cfg.out_dir = root.join("results").display().to_string();
    cfg
}
