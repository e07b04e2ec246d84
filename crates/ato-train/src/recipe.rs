//! The target network's optimiser and learning-rate schedule, as the config describes them.

use crate::config::{OptimizerName, RunConfig};
use crate::TrainError;
use ato_models::Model;
use ato_optim::{
    AdamW, AdamWConfig, DecayRule, LrSchedule, Optimizer, ParamSet, Sgd, SgdConfig, Theorem,
};

/// The model's trainable variables, flagged for weight decay as `optim.decay_norm_and_bias`
/// says.
pub fn param_set(cfg: &RunConfig, model: &Model) -> ParamSet {
    let rule = if cfg.optim.decay_norm_and_bias {
        DecayRule::All
    } else {
        DecayRule::ExcludeBnAndBias
    };
    ParamSet::new(model.trainable_vars(), rule)
}

/// SGD (momentum, Nesterov, weight decay) or AdamW over the model's parameters.
pub fn target_optimizer(cfg: &RunConfig, model: &Model) -> Result<Box<dyn Optimizer>, TrainError> {
    let o = &cfg.optim;
    let params = param_set(cfg, model);
    // the negative control `convergence.inject = "momentum_leak"`: momentum the config does
    // not ask for
    let momentum = if cfg.convergence.inject == crate::config::Fault::MomentumLeak {
        0.9
    } else {
        cfg.momentum()
    };
    let opt: Box<dyn Optimizer> = match o.name {
        OptimizerName::Sgd => Box::new(
            Sgd::new(
                params,
                SgdConfig {
                    momentum,
                    dampening: 0.0,
                    nesterov: cfg.nesterov(),
                    weight_decay: o.weight_decay,
                },
            )
            .map_err(|e| TrainError::Config(format!("optim: {e}")))?,
        ),
        OptimizerName::Adamw => Box::new(
            AdamW::new(
                params,
                AdamWConfig {
                    beta1: momentum,
                    weight_decay: o.weight_decay,
                    ..AdamWConfig::default()
                },
            )
            .map_err(|e| TrainError::Config(format!("optim: {e}")))?,
        ),
    };
    Ok(opt)
}

/// The per-step learning rate: `optim.warmup_epochs` of linear warm-up, then the schedule.
pub fn lr_schedule(cfg: &RunConfig, steps_per_epoch: usize) -> LrSchedule {
    let e = cfg.train.epochs;
    LrSchedule::per_epoch(
        cfg.optim.lr,
        cfg.optim.warmup_epochs,
        e,
        steps_per_epoch,
        cfg.optim.schedule.decay(e, steps_per_epoch),
    )
}

/// The convergence theorem that matches the optimiser.
pub fn theorem(cfg: &RunConfig) -> Theorem {
    match cfg.optim.name {
        OptimizerName::Sgd => Theorem::ProximalSgd,
        OptimizerName::Adamw => Theorem::AdaptiveProximalSgd,
    }
}
