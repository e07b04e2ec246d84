//! SGD with momentum, Nesterov momentum, dampening and weight decay, with PyTorch's semantics:
//!
//! ```text
//! g ← ∇ + wd·x                        (decayed parameters only)
//! b ← g                 on the first step, else  b ← μ·b + (1 − dampening)·g
//! d ← g + μ·b  (Nesterov)  or  d ← b
//! x ← x − η·d
//! ```

use crate::optimizer::{buffer_key, load_buffers, Optimizer};
use crate::params::ParamSet;
use crate::state::StateDict;
use crate::{OptimError, Result};
use candle_core::backprop::GradStore;
use candle_core::Tensor;
use std::collections::HashMap;

/// Settings of [`Sgd`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl SgdConfig {
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(OptimError::Config(m));
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!("momentum {} is outside [0, 1)", self.momentum));
        }
        if !(0.0..=1.0).contains(&self.dampening) {
            return bad(format!("dampening {} is outside [0, 1]", self.dampening));
        }
        if self.nesterov && (self.momentum == 0.0 || self.dampening != 0.0) {
            return bad("Nesterov momentum needs momentum > 0 and no dampening".into());
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(format!("weight decay {} is negative", self.weight_decay));
        }
        Ok(())
    }
}

/// Stochastic gradient descent.
pub struct Sgd {
    params: ParamSet,
    config: SgdConfig,
    momentum: HashMap<String, Tensor>,
    steps: u64,
}

impl Sgd {
    pub fn new(params: ParamSet, config: SgdConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            params,
            config,
            momentum: HashMap::new(),
            steps: 0,
        })
    }

    pub fn config(&self) -> &SgdConfig {
        &self.config
    }
}

impl Optimizer for Sgd {
    fn params(&self) -> &ParamSet {
        &self.params
    }

    fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        let c = self.config;
        for (p, x, mut g) in self.params.with_grads(grads) {
            if p.decay && c.weight_decay != 0.0 {
                g = (g + x.affine(c.weight_decay, 0.0)?)?;
            }
            if c.momentum != 0.0 {
                let b = match self.momentum.get(&p.name) {
                    None => g.copy()?,
                    Some(b) => (b.affine(c.momentum, 0.0)? + g.affine(1.0 - c.dampening, 0.0)?)?,
                };
                g = if c.nesterov {
                    (g + b.affine(c.momentum, 0.0)?)?
                } else {
                    b.clone()
                };
                self.momentum.insert(p.name.clone(), b);
            }
            p.var.set(&(&x - g.affine(lr, 0.0)?)?)?;
        }
        self.steps += 1;
        Ok(())
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    /// Drops every momentum buffer: the next step starts them again from its gradient (OTO's
    /// HSPG restarts momentum when its half-space stage begins).
    fn reset_momentum(&mut self) {
        self.momentum.clear();
    }

    fn state(&self) -> Result<StateDict> {
        let mut s = StateDict::new();
        s.put_meta("optimizer", "sgd");
        s.put_meta("steps", self.steps);
        for (name, b) in &self.momentum {
            s.put_tensor(buffer_key("momentum", name), b.clone());
        }
        Ok(s)
    }

    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        let kind: String = state.meta("optimizer")?;
        if kind != "sgd" {
            return Err(OptimError::State(format!(
                "the checkpoint holds `{kind}` state, the run uses sgd"
            )));
        }
        self.steps = state.meta("steps")?;
        load_buffers(state, "momentum", &self.params, &mut self.momentum)
    }
}
