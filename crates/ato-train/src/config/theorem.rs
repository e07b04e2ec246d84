//! Which part of a run the convergence probes measure (`convergence.mode`, docs/design.md §6): the
//! epoch from which the method's regulariser h is fixed, the first epoch probed, and the checks
//! of the theorem mode.

use super::{Fault, Method, OptimizerName, ProbeMode, Projector, RunConfig};
use crate::TrainError;

impl RunConfig {
    /// The first epoch from which the h the method hands the probe no longer changes: ATO from
    /// T_end (the mask is frozen; later than T_end if the prox or the λ switch starts later),
    /// OTO from `n_p` (the half-space stage), OTOv2 from its start epoch (the redundant set is
    /// fixed; h drops to 0 once the target is met, which the probe sees as a restart), HESSO after
    /// its last pruning period and magnitude from the epoch after its pruning (h is the indicator
    /// of the pruned groups being zero), dense from 0 (h = 0). May be ≥ `train.epochs`: h is then never fixed.
    pub fn regulariser_fixed_from(&self) -> usize {
        let cfg = self;
        let e = cfg.train.epochs;
        match cfg.method {
            Method::Dense => 0,
            Method::Oto => cfg.oto_n_p(),
            Method::Otov2 => cfg.otov2_start(),
            // the pruned groups are held at exact zero once the last period has ended
            Method::Hesso => cfg.hesso_start() + cfg.hesso_pruning_epochs(),
            // from the epoch after the one-off pruning
            Method::Magnitude => cfg.magnitude_prune_epoch() + 1,
            Method::Ato => {
                let s = cfg.schedule();
                let mut from = s.t_end;
                for later in [s.t_prox, s.lambda_switch] {
                    if later < e {
                        from = from.max(later);
                    }
                }
                from
            }
        }
    }

    /// The epoch whose first step the first probe measures: 0 in monitor mode, the epoch h is
    /// fixed from in theorem mode.
    pub fn first_probe_epoch(&self) -> usize {
        let cfg = self;
        match cfg.convergence.mode {
            ProbeMode::Monitor => 0,
            ProbeMode::Theorem | ProbeMode::Exact => cfg.regulariser_fixed_from(),
        }
    }

    /// The checks of `convergence.mode = "theorem"` (one error line each): no momentum (the
    /// theorems do not cover it; the run is rejected rather than silently changed, so the config
    /// says what ran) and a window in which h is fixed.
    pub fn check_theorem_mode(&self) -> Result<(), TrainError> {
        let cfg = self;
        let c = &cfg.convergence;
        if !c.mode.is_theorem() || c.every == 0 {
            return Ok(());
        }
        let mode = c.mode.as_str();
        let o = &cfg.optim;
        if cfg.momentum() != 0.0 || cfg.nesterov() {
            let what = match o.name {
                OptimizerName::Sgd => "SGD momentum",
                OptimizerName::Adamw => "Adam's beta1",
            };
            return Err(TrainError::Config(format!(
                "convergence.mode: \"{mode}\" needs optim.momentum = 0 and optim.nesterov = false \
                 (the theorems do not cover {what}); got momentum {}",
                cfg.momentum()
            )));
        }
        let from = cfg.regulariser_fixed_from();
        if from >= cfg.train.epochs {
            return Err(TrainError::Config(format!(
                "convergence.mode: \"{mode}\" measures from epoch {from}, where h is fixed \
                 (ATO: T_end), but the run has {} epochs; move that epoch before the end",
                cfg.train.epochs
            )));
        }
        if c.mode == ProbeMode::Exact && cfg.train.mixup > 0.0 {
            return Err(TrainError::Config(format!(
                "convergence.mode: \"exact\" needs train.mixup = 0 (mixing draws a random partner \
                 every step, so the objective would not be deterministic); got {}",
                cfg.train.mixup
            )));
        }
        Ok(())
    }

    /// Whether the per-step check runs: in the theorems' regime, on a method whose step is a
    /// prox of the `h = Σ λ_g‖x_g‖` its pruner reports (dense: h = 0; ATO with the prox
    /// projector). OTO's and OTOv2's half-space steps and HESSO's and magnitude's hard zeros are
    /// not of that form.
    pub fn checks_every_step(&self) -> bool {
        let c = &self.convergence;
        c.every > 0
            && c.mode.is_theorem()
            && match self.method {
                Method::Dense => true,
                Method::Ato => self.ato.projector == Projector::Prox,
                _ => false,
            }
    }

    /// `convergence.inject` is a negative control of the convergence checks: refused outside a
    /// run whose steps are checked, and λ and mask faults outside ATO's prox.
    pub fn check_fault(&self) -> Result<(), TrainError> {
        let f = self.convergence.inject;
        if f == Fault::None {
            return Ok(());
        }
        let name = f.as_str();
        if !self.checks_every_step() {
            return Err(TrainError::Config(format!(
                "convergence.inject = \"{name}\" is a negative control of the convergence checks: it \
                 needs convergence.every > 0, convergence.mode = \"theorem\" or \"exact\" and a \
                 method whose step is checked (dense, or ato with ato.projector = \"prox\")"
            )));
        }
        if f.needs_prox() && self.method != Method::Ato {
            return Err(TrainError::Config(format!(
                "convergence.inject = \"{name}\" acts on ATO's prox; method {} has none",
                self.method.as_str()
            )));
        }
        Ok(())
    }
}
