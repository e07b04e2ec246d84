//! `[hesso]`: HESSO (OTOv3) — its schedule, its target (a MACs reduction by construction, or
//! the reference's group share), its momentum and its epochs. The defaults are the
//! reference's (only_train_once `hyperparameter.py` and its ResNet-18 tutorial) except the
//! target and the last-group rule, which are ours and switchable.

use super::{EpochSpec, Method, OptimizerName, RunConfig};
pub use ato_optim::LastGroup;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `[hesso]`: HESSO's schedule in epochs (the reference counts steps: start step S =
/// `start_epoch`·steps per epoch, pruning steps = `pruning_epochs`·steps per epoch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HessoSection {
    /// Epoch before which nothing is pruned [default: 0.1].
    pub start_epoch: Option<EpochSpec>,
    /// Epochs the pruning periods span, from `start_epoch` [default: 0.1, the reference
    /// tutorial's 10 of 100 epochs; at least 1].
    pub pruning_epochs: Option<EpochSpec>,
    /// P, the number of pruning periods (each shrinks its groups linearly to zero).
    pub periods: usize,
    /// What HESSO aims at: unset = `prune.target_flops_reduction`, a MACs reduction (ours);
    /// a share of all groups in (0, 1) = the reference's target, a group count
    /// (only_train_once's `target_group_sparsity`). With matched FLOPs the share is the
    /// searched knob, as OTOv2's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_group_sparsity: Option<f64>,
    /// SGD momentum (AdamW's β₁) of HESSO runs, in place of `optim.momentum` [default: the
    /// reference's `first_momentum` (only_train_once's hyperparameter.py): 0 with SGD, 0.9
    /// with AdamW]; Nesterov is off while it is 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    /// With `target_group_sparsity`, when the next group by saliency is its gate's last kept
    /// one: next (the next group, from any gate, takes its place: ours) | lower (the period
    /// selects one fewer and the target falls by one group: the reference).
    #[schemars(with = "String")]
    #[serde(with = "last_group_name")]
    pub last_group: LastGroup,
}

/// `hesso.last_group` as "next" | "lower".
mod last_group_name {
    use super::LastGroup;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &LastGroup, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match v {
            LastGroup::Next => "next",
            LastGroup::Lower => "lower",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LastGroup, D::Error> {
        match String::deserialize(d)?.as_str() {
            "next" => Ok(LastGroup::Next),
            "lower" => Ok(LastGroup::Lower),
            other => Err(serde::de::Error::custom(format!(
                "hesso.last_group = {other:?}: expected \"next\" or \"lower\""
            ))),
        }
    }
}

impl Default for HessoSection {
    fn default() -> Self {
        Self {
            start_epoch: None,
            pruning_epochs: None,
            periods: 10,
            target_group_sparsity: None,
            momentum: None,
            last_group: LastGroup::Next,
        }
    }
}

impl RunConfig {
    /// HESSO's start epoch [default: a tenth of the run].
    pub fn hesso_start(&self) -> usize {
        self.hesso
            .start_epoch
            .unwrap_or(EpochSpec::Fraction(0.1))
            .resolve(self.train.epochs)
    }

    /// Epochs HESSO's pruning periods span [default: a tenth of the run, at least one epoch].
    pub fn hesso_pruning_epochs(&self) -> usize {
        match self.hesso.pruning_epochs {
            Some(spec) => spec.resolve(self.train.epochs),
            None => EpochSpec::Fraction(0.1).resolve(self.train.epochs).max(1),
        }
    }

    /// The target network's momentum: `hesso.momentum` in HESSO runs, `optim.momentum`
    /// otherwise.
    pub fn momentum(&self) -> f64 {
        if self.method != Method::Hesso {
            return self.optim.momentum;
        }
        self.hesso.momentum.unwrap_or(match self.optim.name {
            OptimizerName::Sgd => 0.0,
            OptimizerName::Adamw => 0.9,
        })
    }

    /// Nesterov momentum: `optim.nesterov`, off in HESSO runs without momentum.
    pub fn nesterov(&self) -> bool {
        self.optim.nesterov && !(self.method == Method::Hesso && self.momentum() == 0.0)
    }
}
