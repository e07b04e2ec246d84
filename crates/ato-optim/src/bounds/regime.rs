//! Which assumptions of Theorems A and B a run satisfies, as data for `convergence.csv` and
//! the report. Static facts come from the run's configuration ([`RunRegime`]); the step
//! condition, the fixed free set and a fixed h over each window are measured by the probe and
//! added to each row.

use super::Theorem;
use serde::Serialize;

/// The base optimiser of the target weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Sgd,
    /// Adam-type: a diagonal preconditioner `√v̂ + ε`.
    Adam,
}

/// How the learning rates are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    /// Fixed in advance (warm-up, cosine, multistep): non-anticipating, so (A5) can hold.
    Known,
    /// Chosen from the current mini-batch (line search, loss-based): violates (A5).
    DataDependent,
}

/// What the trainer knows about a run, for [`assess`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RunRegime {
    pub optimizer: OptimizerKind,
    /// SGD's μ (Nesterov counts as μ) or Adam's β₁.
    pub momentum: f64,
    /// Weight decay applied outside the gradient with wd > 0 (AdamW): the step is then not a
    /// proximal step on a fixed f.
    pub decoupled_weight_decay: bool,
    /// Adam-type: H_k is built before G_k is seen. False for Adam/AdamW as implemented
    /// (v̂_k includes G_k²); true for a frozen or one-step-delayed preconditioner.
    pub preconditioner_from_past: bool,
    /// Adam-type: the proximal step is taken in ‖·‖_H. False in the trainer, whose prox after
    /// the Adam step is Euclidean.
    pub prox_in_metric: bool,
    /// The pruner's step is `prox_{ηh}` of the h given to the probe: ATO's `prox` projector and
    /// dense runs yes; the half-space projector, HSPG and DHSPG no.
    pub step_is_prox_of_h: bool,
    /// h (its λ_g) did not change over the measured window, as declared by the trainer (ATO:
    /// after T_end). The probe also detects changes between probes itself.
    pub regulariser_fixed: bool,
    /// The probe batches are drawn with the training transform (augmentation), so the probe
    /// measures the f and σ² of training.
    pub probe_uses_training_transform: bool,
    pub schedule: Schedule,
}

impl RunRegime {
    /// The regime of Theorem A: SGD without momentum, fixed h, ATO's prox, probe batches
    /// with the training transform, constant η.
    pub fn proximal_sgd() -> Self {
        Self {
            optimizer: OptimizerKind::Sgd,
            momentum: 0.0,
            decoupled_weight_decay: false,
            preconditioner_from_past: true,
            prox_in_metric: true,
            step_is_prox_of_h: true,
            regulariser_fixed: true,
            probe_uses_training_transform: true,
            schedule: Schedule::Constant,
        }
    }
}

/// How an assumption stands for a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Holds,
    Violated,
    /// Checked by the probe on every row (`step_condition`, `free_set_held`, h unchanged).
    MeasuredPerRow,
    /// Not checkable; L, σ² and Ψ_low are estimated or given.
    Assumed,
}

/// One assumption and its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AssumptionCheck {
    /// Short identifier, used in the `violated` column.
    pub name: &'static str,
    pub statement: &'static str,
    pub status: Status,
}

/// The assumptions of `theorem` and how `run` stands on each.
pub fn assess(theorem: Theorem, run: &RunRegime) -> Vec<AssumptionCheck> {
    let by = |ok: bool| if ok { Status::Holds } else { Status::Violated };
    let adam = run.optimizer == OptimizerKind::Adam;
    let mut v = vec![
        AssumptionCheck {
            name: "theorem_matches_optimizer",
            statement: "Theorem A for SGD, Theorem B for Adam-type optimisers",
            status: by(theorem.uses_metric() == adam),
        },
        AssumptionCheck {
            name: "l_smooth",
            statement: "f is L-smooth (L-hat is a secant estimate, a lower bound of L)",
            status: Status::Assumed,
        },
        AssumptionCheck {
            name: "bounded_below",
            statement: "Psi >= Psi_low (the configured lower bound)",
            status: Status::Assumed,
        },
        AssumptionCheck {
            name: "unbiased_bounded_variance",
            statement: "mini-batch gradients unbiased with variance s^2 (estimated on the \
                        probe batches)",
            status: Status::Assumed,
        },
        AssumptionCheck {
            name: "probe_transform",
            statement: "probe batches use the training transform, so f and s^2 are training's",
            status: by(run.probe_uses_training_transform),
        },
        AssumptionCheck {
            name: "regulariser_fixed",
            statement: "h is convex and fixed over the window",
            status: by(run.regulariser_fixed),
        },
        AssumptionCheck {
            name: "step_is_prox",
            statement: "the pruner's step is the proximal operator of h",
            status: by(run.step_is_prox_of_h),
        },
        AssumptionCheck {
            name: "momentum_zero",
            statement: "no momentum (SGD mu = 0, Adam beta1 = 0)",
            status: by(run.momentum == 0.0),
        },
        AssumptionCheck {
            name: "schedule_non_anticipating",
            statement: "eta_k fixed in advance or F_k-measurable",
            status: by(run.schedule != Schedule::DataDependent),
        },
        AssumptionCheck {
            name: "step_condition",
            statement: "eta_k < 2/L (2/L_H) for every step",
            status: Status::MeasuredPerRow,
        },
        AssumptionCheck {
            name: "free_set_held",
            statement: "coordinates outside the free set (zero groups, zero gradient) do not \
                        move over the window",
            status: Status::MeasuredPerRow,
        },
    ];
    if adam {
        v.extend([
            AssumptionCheck {
                name: "preconditioner_from_past",
                statement: "H_k depends only on the past, not on G_k",
                status: by(run.preconditioner_from_past),
            },
            AssumptionCheck {
                name: "prox_in_metric",
                statement: "the proximal step is taken in the metric H_k",
                status: by(run.prox_in_metric),
            },
            AssumptionCheck {
                name: "no_decoupled_decay",
                statement: "weight decay is part of f (no decoupled decay)",
                status: by(!run.decoupled_weight_decay),
            },
        ]);
    }
    v
}

/// The names of the violated assumptions, `;`-separated (empty when none is).
pub(crate) fn violated_names(checks: &[AssumptionCheck]) -> Vec<&'static str> {
    checks
        .iter()
        .filter(|c| c.status == Status::Violated)
        .map(|c| c.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violated(t: Theorem, r: &RunRegime) -> Vec<&'static str> {
        violated_names(&assess(t, r))
    }

    #[test]
    fn the_theorem_regime_violates_nothing_and_each_departure_is_named() {
        let ideal = RunRegime::proximal_sgd();
        assert!(violated(Theorem::ProximalSgd, &ideal).is_empty());
        let sgd_momentum = RunRegime {
            momentum: 0.9,
            ..ideal
        };
        assert_eq!(
            violated(Theorem::ProximalSgd, &sgd_momentum),
            ["momentum_zero"]
        );
        let ato_before_t_end = RunRegime {
            regulariser_fixed: false,
            probe_uses_training_transform: false,
            ..ideal
        };
        assert_eq!(
            violated(Theorem::ProximalSgd, &ato_before_t_end),
            ["probe_transform", "regulariser_fixed"]
        );
        // the trainer's AdamW: momentum, H from the current gradient, Euclidean prox, decay
        let adamw = RunRegime {
            optimizer: OptimizerKind::Adam,
            momentum: 0.9,
            decoupled_weight_decay: true,
            preconditioner_from_past: false,
            prox_in_metric: false,
            ..ideal
        };
        assert_eq!(
            violated(Theorem::AdaptiveProximalSgd, &adamw),
            [
                "momentum_zero",
                "preconditioner_from_past",
                "prox_in_metric",
                "no_decoupled_decay"
            ]
        );
        assert_eq!(
            violated(Theorem::ProximalSgd, &adamw)[0],
            "theorem_matches_optimizer"
        );
        let hspg = RunRegime {
            step_is_prox_of_h: false,
            schedule: Schedule::DataDependent,
            ..ideal
        };
        assert_eq!(
            violated(Theorem::ProximalSgd, &hspg),
            ["step_is_prox", "schedule_non_anticipating"]
        );
    }
}
