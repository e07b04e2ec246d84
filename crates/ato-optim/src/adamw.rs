//! Adam with decoupled (AdamW, Loshchilov & Hutter) or L2 (classic Adam) weight decay, with
//! PyTorch's semantics and bias correction:
//!
//! ```text
//! decoupled:  x ← x·(1 − η·wd)          L2:  g ← ∇ + wd·x
//! m ← β₁m + (1−β₁)g      v ← β₂v + (1−β₂)g²
//! x ← x − η · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε)
//! ```
//!
//! The preconditioner `√v̂ + ε` is exposed for the convergence probes (its minimum is the
//! adaptive-matrix lower bound ρ̂ of docs/design.md §6).

use crate::optimizer::{buffer_key, load_buffers, Optimizer};
use crate::params::ParamSet;
use crate::state::StateDict;
use crate::{OptimError, Result};
use candle_core::backprop::GradStore;
use candle_core::Tensor;
use std::collections::HashMap;

/// Settings of [`AdamW`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Decoupled weight decay (AdamW); `false` adds `wd·x` to the gradient (Adam + L2).
    pub decoupled: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
            decoupled: true,
        }
    }
}

impl AdamWConfig {
    fn validate(&self) -> Result<()> {
        let in01 = |v: f64| (0.0..1.0).contains(&v);
        if !in01(self.beta1) || !in01(self.beta2) {
            return Err(OptimError::Config(format!(
                "betas ({}, {}) must lie in [0, 1)",
                self.beta1, self.beta2
            )));
        }
        if self.eps.is_nan() || self.eps <= 0.0 {
            return Err(OptimError::Config(format!("eps {} must be > 0", self.eps)));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(OptimError::Config(format!(
                "weight decay {} is negative",
                self.weight_decay
            )));
        }
        Ok(())
    }
}

/// Adam / AdamW.
pub struct AdamW {
    params: ParamSet,
    config: AdamWConfig,
    m: HashMap<String, Tensor>,
    v: HashMap<String, Tensor>,
    /// Steps taken per parameter (a parameter without gradient does not advance).
    t: HashMap<String, u64>,
    steps: u64,
}

impl AdamW {
    pub fn new(params: ParamSet, config: AdamWConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            params,
            config,
            m: HashMap::new(),
            v: HashMap::new(),
            t: HashMap::new(),
            steps: 0,
        })
    }

    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }
}

impl Optimizer for AdamW {
    fn params(&self) -> &ParamSet {
        &self.params
    }

    fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        let c = self.config;
        for (p, mut x, mut g) in self.params.with_grads(grads) {
            if p.decay && c.weight_decay != 0.0 {
                if c.decoupled {
                    x = x.affine(1.0 - lr * c.weight_decay, 0.0)?;
                } else {
                    g = (g + x.affine(c.weight_decay, 0.0)?)?;
                }
            }
            let t = self.t.get(&p.name).copied().unwrap_or(0) + 1;
            let m = match self.m.get(&p.name) {
                None => g.affine(1.0 - c.beta1, 0.0)?,
                Some(m) => (m.affine(c.beta1, 0.0)? + g.affine(1.0 - c.beta1, 0.0)?)?,
            };
            let g2 = g.sqr()?;
            let v = match self.v.get(&p.name) {
                None => g2.affine(1.0 - c.beta2, 0.0)?,
                Some(v) => (v.affine(c.beta2, 0.0)? + g2.affine(1.0 - c.beta2, 0.0)?)?,
            };
            let bc1 = 1.0 - c.beta1.powi(t as i32);
            let bc2 = 1.0 - c.beta2.powi(t as i32);
            let denom = v.affine(1.0 / bc2, 0.0)?.sqrt()?.affine(1.0, c.eps)?;
            let update = m.affine(lr / bc1, 0.0)?.div(&denom)?;
            p.var.set(&(x - update)?)?;
            self.m.insert(p.name.clone(), m);
            self.v.insert(p.name.clone(), v);
            self.t.insert(p.name.clone(), t);
        }
        self.steps += 1;
        Ok(())
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn state(&self) -> Result<StateDict> {
        let mut s = StateDict::new();
        s.put_meta("optimizer", "adamw");
        s.put_meta("steps", self.steps);
        for p in &self.params {
            if let (Some(m), Some(v), Some(t)) = (
                self.m.get(&p.name),
                self.v.get(&p.name),
                self.t.get(&p.name),
            ) {
                s.put_tensor(buffer_key("exp_avg", &p.name), m.clone());
                s.put_tensor(buffer_key("exp_avg_sq", &p.name), v.clone());
                s.put_meta(buffer_key("t", &p.name), t);
            }
        }
        Ok(s)
    }

    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        let kind: String = state.meta("optimizer")?;
        if kind != "adamw" {
            return Err(OptimError::State(format!(
                "the checkpoint holds `{kind}` state, the run uses adamw"
            )));
        }
        self.steps = state.meta("steps")?;
        load_buffers(state, "exp_avg", &self.params, &mut self.m)?;
        load_buffers(state, "exp_avg_sq", &self.params, &mut self.v)?;
        self.t.clear();
        for name in self.m.keys() {
            self.t
                .insert(name.clone(), state.meta(&buffer_key("t", name))?);
        }
        Ok(())
    }

    fn decoupled_weight_decay(&self) -> f64 {
        if self.config.decoupled {
            self.config.weight_decay
        } else {
            0.0
        }
    }

    fn preconditioner(&self) -> Result<Option<Vec<(String, Tensor)>>> {
        let c = self.config;
        let mut out = Vec::new();
        for p in &self.params {
            let (Some(v), Some(&t)) = (self.v.get(&p.name), self.t.get(&p.name)) else {
                continue;
            };
            let bc2 = 1.0 - c.beta2.powi(t as i32);
            out.push((
                p.name.clone(),
                v.affine(1.0 / bc2, 0.0)?.sqrt()?.affine(1.0, c.eps)?,
            ));
        }
        Ok(Some(out))
    }
}
