//! The facts of a run that [`ato_optim::bounds::assess`] checks against the theorems
//! ([`RunRegime`], docs/design.md §6), and the broken-prox negative control. Where the probes start
//! and the theorem mode's checks are `RunConfig` methods (`config/theorem.rs`).

use crate::config::{Method, OptimizerName, Projector, RunConfig};
use crate::TrainError;
use ato_optim::bounds::{OptimizerKind, Schedule};
use ato_optim::{DecayKind, GroupSet, RunRegime};
use candle_core::Tensor;

/// The facts of the run in `epoch`, for [`ato_optim::ConvergenceProbe::set_regime`].
pub fn run_regime(cfg: &RunConfig, epoch: usize) -> RunRegime {
    let o = &cfg.optim;
    let adam = o.name == OptimizerName::Adamw;
    let step_is_prox_of_h = match cfg.method {
        // h = 0 and the prox is the identity
        Method::Dense => true,
        Method::Ato => cfg.ato.projector == Projector::Prox,
        // HSPG's and DHSPG's steps are half-space projections, not prox steps of their λ
        Method::Oto | Method::Otov2 => false,
        // once pruned, zeroing the pruned groups each step is the prox of h = the indicator
        // of {x_g = 0 for the pruned g}
        Method::Hesso | Method::Magnitude => true,
    };
    let constant = o.schedule == DecayKind::Constant && o.warmup_epochs <= epoch;
    RunRegime {
        optimizer: if adam {
            OptimizerKind::Adam
        } else {
            OptimizerKind::Sgd
        },
        momentum: if cfg.nesterov() && cfg.momentum() == 0.0 {
            1.0
        } else {
            cfg.momentum()
        },
        decoupled_weight_decay: adam && o.weight_decay > 0.0,
        // AdamW as implemented builds v̂ from the current gradient and takes a Euclidean prox
        preconditioner_from_past: !adam,
        prox_in_metric: !adam,
        step_is_prox_of_h,
        regulariser_fixed: epoch >= cfg.regulariser_fixed_from(),
        probe_uses_training_transform: cfg.convergence.mode.is_theorem(),
        schedule: if constant {
            Schedule::Constant
        } else {
            Schedule::Known
        },
    }
}

/// Negative control of the convergence checks ([`crate::RunOptions::broken_prox`], tests only):
/// after the method's step, every non-zero group with λ_g > 0 grows by `2·η·λ_g`, which turns
/// a group prox (shrink by `η·λ_g`) into the prox with the sign of its shrinkage flipped.
pub fn flip_prox_sign(groups: &GroupSet, penalty: &[Vec<f64>], lr: f64) -> Result<(), TrainError> {
    for (gate, lam) in groups.gates().iter().zip(penalty) {
        let factors: Vec<f32> = gate
            .norms_sq()?
            .iter()
            .zip(lam)
            .map(|(&n2, &l)| {
                let n = (n2 as f64).sqrt();
                if n == 0.0 || l == 0.0 {
                    1.0
                } else {
                    ((n + 2.0 * lr * l) / n) as f32
                }
            })
            .collect();
        gate.scale(&Tensor::from_vec(factors, gate.width, gate.device())?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProbeMode;
    use ato_optim::bounds::{assess, Theorem};

    /// A default config for `method` with `mode` probes.
    fn config(method: Method, mode: ProbeMode) -> RunConfig {
        RunConfig {
            method,
            convergence: crate::config::ConvergenceSection {
                mode,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn violated(cfg: &RunConfig, epoch: usize) -> Vec<&'static str> {
        let t = crate::recipe::theorem(cfg);
        assess(t, &run_regime(cfg, epoch))
            .into_iter()
            .filter(|c| c.status == ato_optim::bounds::Status::Violated)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn theorem_mode_starts_at_t_end_and_is_in_regime_there_for_sgd() {
        let mut cfg = config(Method::Ato, ProbeMode::Theorem);
        cfg.train.epochs = 10;
        cfg.optim.momentum = 0.0;
        let t_end = cfg.schedule().t_end;
        assert_eq!(t_end, 5, "0.51 of 10 epochs");
        assert_eq!(cfg.first_probe_epoch(), 5);
        assert!(cfg.check_theorem_mode().is_ok());
        assert!(violated(&cfg, 5).is_empty(), "{:?}", violated(&cfg, 5));
        assert_eq!(violated(&cfg, 4), ["regulariser_fixed"]);
        // monitor mode: from step 0, evaluation transform, the default momentum
        cfg.convergence.mode = ProbeMode::Monitor;
        cfg.optim.momentum = 0.9;
        assert_eq!(cfg.first_probe_epoch(), 0);
        assert_eq!(violated(&cfg, 5), ["probe_transform", "momentum_zero"]);
    }

    #[test]
    fn theorem_mode_rejects_momentum_and_a_t_end_at_the_end_with_one_line() {
        let mut cfg = config(Method::Ato, ProbeMode::Theorem);
        cfg.train.epochs = 10;
        let e = cfg.check_theorem_mode().unwrap_err().to_string();
        assert!(e.contains("optim.momentum = 0") && !e.contains('\n'), "{e}");
        cfg.optim.momentum = 0.0;
        cfg.ato.t_end = Some(crate::config::EpochSpec::Epoch(10));
        let e = cfg.check_theorem_mode().unwrap_err().to_string();
        assert!(e.contains("epoch 10") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn adamw_names_what_the_trainer_step_does_not_satisfy() {
        let mut cfg = config(Method::Dense, ProbeMode::Theorem);
        cfg.optim.name = OptimizerName::Adamw;
        cfg.optim.momentum = 0.0;
        cfg.optim.schedule = DecayKind::Constant;
        assert_eq!(crate::recipe::theorem(&cfg), Theorem::AdaptiveProximalSgd);
        assert_eq!(
            violated(&cfg, 0),
            [
                "preconditioner_from_past",
                "prox_in_metric",
                "no_decoupled_decay"
            ]
        );
        cfg.optim.weight_decay = 0.0;
        assert_eq!(
            violated(&cfg, 0),
            ["preconditioner_from_past", "prox_in_metric"]
        );
    }
}
