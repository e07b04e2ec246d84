//! [`DecoupledDecay`]: the base step's direction d without AdamW's decoupled weight decay.
//!
//! DHSPG and HESSO read the base optimiser's direction d_g from the step it took,
//! `d = (x − x̂)/α`. AdamW's decoupled decay moves decayed parameters by `−α·wd·x` besides its
//! update, so that difference is `u + wd·x`; OTOv2 and HESSO score and penalise with the update
//! u alone (the decay is applied separately), so for each decayed member
//!
//! ```text
//! d = (x − x̂)/α − wd·x
//! ```
//!
//! SGD's weight decay is part of its gradient (PyTorch and the reference alike), so SGD has no
//! decoupled decay and d = (x − x̂)/α.

use crate::groups::{GroupSet, GroupSnapshot};
use crate::optimizer::Optimizer;
use crate::params::ParamSet;
use crate::{OptimError, Result};
use candle_core::Tensor;
use std::collections::BTreeMap;

/// The decoupled weight-decay coefficient of every parameter (absent = 0).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecoupledDecay {
    coef: BTreeMap<String, f64>,
}

impl DecoupledDecay {
    /// No decoupled decay (SGD, Adam with L2 decay).
    pub fn none() -> Self {
        Self::default()
    }

    /// `weight_decay` on every parameter of `params` flagged for decay.
    pub fn new(params: &ParamSet, weight_decay: f64) -> Self {
        if weight_decay == 0.0 {
            return Self::none();
        }
        let coef = params
            .iter()
            .filter(|p| p.decay)
            .map(|p| (p.name.clone(), weight_decay))
            .collect();
        Self { coef }
    }

    /// The decoupled decay of `opt` ([`Optimizer::decoupled_weight_decay`]) on its decayed
    /// parameters.
    pub fn of(opt: &dyn Optimizer) -> Self {
        Self::new(opt.params(), opt.decoupled_weight_decay())
    }

    /// The coefficient of parameter `name`.
    pub fn coef(&self, name: &str) -> f64 {
        self.coef.get(name).copied().unwrap_or(0.0)
    }

    /// The base step's direction per gate, `d = (x − x̂)/α − wd·x`, from the values `before`
    /// the step (x) and the groups' values now (x̂), at learning rate `lr` > 0.
    pub fn directions(
        &self,
        groups: &GroupSet,
        before: &GroupSnapshot,
        lr: f64,
    ) -> Result<Vec<Tensor>> {
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(OptimError::Config(format!(
                "the base step's direction needs a learning rate > 0 (got {lr})"
            )));
        }
        groups
            .gates()
            .iter()
            .zip(&before.per_gate)
            .map(|(gate, x)| {
                let d = (x - gate.values()?)?.affine(1.0 / lr, 0.0)?;
                match gate.column_coefficients(|m| self.coef(m))? {
                    None => Ok(d),
                    Some(wd) => Ok((d - x.broadcast_mul(&wd.to_dtype(x.dtype())?)?)?),
                }
            })
            .collect()
    }
}
