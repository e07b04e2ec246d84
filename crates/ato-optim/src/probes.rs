//! Convergence probes (DESIGN.md §6): every K steps, on a fixed set of probe mini-batches,
//! measure the objective, the squared gradient mapping, a smoothness estimate, the gradient
//! variance, mask flips and Adam's smallest √v, and evaluate the bound of [`crate::bounds`].
//!
//! The probe is model-agnostic: the caller supplies a closure returning the loss and the
//! gradients on probe batch i (and is responsible for leaving the model as it found it, e.g.
//! restoring BN running statistics). Everything is computed on the host in f64, in a fixed
//! order, so probes are deterministic and never disturb training.

use crate::bounds::{BoundInputs, Theorem};
use crate::groups::GroupSet;
use crate::params::ParamSet;
use crate::state::StateDict;
use crate::{OptimError, Result};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How often and how thoroughly to probe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbeConfig {
    /// Probe every this many optimiser steps; 0 switches probing off.
    pub every: u64,
    /// Probe mini-batches per measurement (≥ 2, for the variance).
    pub batches: usize,
    /// Ψ_low, a known lower bound of the objective (0 for cross-entropy plus norms).
    pub objective_lower_bound: f64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            every: 0,
            batches: 4,
            objective_lower_bound: 0.0,
        }
    }
}

/// What the probe needs to know about the run at the moment of a measurement.
pub struct ProbeInputs<'a> {
    pub step: u64,
    pub epoch: usize,
    /// The current learning rate η.
    pub lr: f64,
    pub params: &'a ParamSet,
    /// Weight decay of the decayed parameters (part of f, as `½·wd·‖x‖²`).
    pub weight_decay: f64,
    pub groups: &'a GroupSet,
    /// λ_g for every group of every gate (0 where h does not act).
    pub penalty: &'a [Vec<f64>],
    /// Adam's `√v̂ + ε` per parameter name; `None` for SGD.
    pub preconditioner: Option<Vec<(String, Tensor)>>,
    /// Groups whose mask changed since the previous probe.
    pub mask_flips: usize,
}

/// One row of `convergence.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvergenceRow {
    pub step: u64,
    pub epoch: usize,
    pub lr: f64,
    /// f on the probe batches (loss + ½·wd·‖x‖²).
    pub loss: f64,
    /// Ψ = f + h.
    pub objective: f64,
    /// ‖𝒢_η(x)‖², the squared gradient mapping at this point (DESIGN.md §6: Euclidean prox).
    pub grad_mapping_sq: f64,
    /// The same in the metric of the Adam state (H = diag(√v̂ + ε)), what the adaptive
    /// theorem bounds; equal to `grad_mapping_sq` for SGD.
    pub grad_mapping_sq_metric: f64,
    /// The left-hand side: w-weighted mean over the probes so far of the mapping the theorem
    /// bounds (`grad_mapping_sq` for SGD, `grad_mapping_sq_metric` for Adam-type runs).
    pub lhs: f64,
    /// L̂, the largest secant smoothness estimate so far.
    pub smoothness: f64,
    /// s², the variance of a mini-batch gradient (largest so far).
    pub variance: f64,
    pub mask_flips: usize,
    /// Smallest √v̂ + ε of Adam's state (ρ̂); NaN for SGD.
    pub adam_min_sqrt_v: f64,
    pub theorem: String,
    /// The bound's right-hand side; NaN when its step condition fails.
    pub rhs: f64,
    pub lhs_rhs_ratio: f64,
    /// Whether every step so far satisfied η < 2ρ/L̂.
    pub step_condition: bool,
}

/// The probe and its running state.
pub struct ConvergenceProbe {
    config: ProbeConfig,
    theorem: Theorem,
    sum_lr: f64,
    sum_lr_sq: f64,
    max_lr: f64,
    objective0: Option<f64>,
    smoothness: f64,
    variance: f64,
    rho: f64,
    prev_x: Option<Vec<f32>>,
    prev_grad: Option<Vec<f32>>,
    /// (η, ‖𝒢‖²) of every probe since the last restart.
    history: Vec<(f64, f64)>,
    /// The group weights of h at the last probe: when they change, the bound restarts.
    penalty: Option<Vec<Vec<f64>>>,
}

/// Where each group's elements sit in the flat parameter vector: per gate, per member,
/// (offset of the member, row length).
type GroupLayout = Vec<Vec<(usize, usize)>>;

impl ConvergenceProbe {
    pub fn new(config: ProbeConfig, theorem: Theorem) -> Result<Self> {
        if config.every > 0 && config.batches < 2 {
            return Err(OptimError::Config(format!(
                "convergence probes need at least 2 batches for the variance, got {}",
                config.batches
            )));
        }
        Ok(Self {
            config,
            theorem,
            sum_lr: 0.0,
            sum_lr_sq: 0.0,
            max_lr: 0.0,
            objective0: None,
            smoothness: 0.0,
            variance: 0.0,
            rho: f64::INFINITY,
            prev_x: None,
            prev_grad: None,
            history: Vec::new(),
            penalty: None,
        })
    }

    pub fn config(&self) -> &ProbeConfig {
        &self.config
    }

    /// Records the learning rate of one optimiser step (call after every step).
    pub fn record_step(&mut self, lr: f64) {
        self.sum_lr += lr;
        self.sum_lr_sq += lr * lr;
        self.max_lr = self.max_lr.max(lr);
    }

    /// Whether a probe is due after `steps` optimiser steps.
    pub fn due(&self, steps: u64) -> bool {
        self.config.every > 0 && steps > 0 && steps.is_multiple_of(self.config.every)
    }

    /// Starts the bound afresh at the next probe: the theorem assumes a fixed h, so when the
    /// regulariser changes (ATO's mask and λ move at epoch boundaries until T_end) the run from
    /// that point on is a new run with a new Ψ(x₀). L̂ and s² describe f and are kept.
    fn restart(&mut self) {
        self.sum_lr = 0.0;
        self.sum_lr_sq = 0.0;
        self.max_lr = 0.0;
        self.objective0 = None;
        self.history.clear();
    }

    /// Measures at the current point. `loss_and_grads(i)` returns the mean loss and the
    /// gradients of probe batch `i` for `i < config.batches`. If the weights of h differ from
    /// those of the previous probe, the bound restarts here.
    pub fn measure<F>(
        &mut self,
        inputs: ProbeInputs<'_>,
        mut loss_and_grads: F,
    ) -> Result<ConvergenceRow>
    where
        F: FnMut(usize) -> Result<(f64, GradStore)>,
    {
        if self.penalty.as_deref() != Some(inputs.penalty) {
            if self.penalty.is_some() {
                self.restart();
            }
            self.penalty = Some(inputs.penalty.to_vec());
        }
        let params = inputs.params;
        let x = flatten(params.iter().map(|p| p.var.as_tensor().clone()))?;
        let decayed = decay_mask(params);
        let m = self.config.batches.max(2);
        let mut sum_g = vec![0f64; x.len()];
        let mut sum_sq = 0f64;
        let mut sum_loss = 0f64;
        for i in 0..m {
            let (loss, grads) = loss_and_grads(i)?;
            let g = flatten_grads(params, &grads, &x, &decayed, inputs.weight_decay)?;
            sum_sq += g.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
            for (s, &v) in sum_g.iter_mut().zip(&g) {
                *s += v as f64;
            }
            sum_loss += loss;
        }
        let grad: Vec<f64> = sum_g.iter().map(|s| s / m as f64).collect();
        let grad_norm_sq: f64 = grad.iter().map(|g| g * g).sum();
        let variance = ((sum_sq - m as f64 * grad_norm_sq) / (m as f64 - 1.0)).max(0.0);
        let wd_term: f64 = x
            .iter()
            .zip(&decayed)
            .filter(|(_, &d)| d)
            .map(|(&v, _)| (v as f64) * (v as f64))
            .sum::<f64>()
            * 0.5
            * inputs.weight_decay;
        let loss = sum_loss / m as f64 + wd_term;
        let layout = group_layout(params, inputs.groups)?;
        let h: f64 = group_norm_sum(&x, &layout, inputs.groups, inputs.penalty);
        let objective = loss + h;

        let metric = match &inputs.preconditioner {
            // no Adam state before the first step: nothing to measure yet
            Some(pre) if !pre.is_empty() => Some(flatten_preconditioner(params, pre)?),
            _ => None,
        };
        let adam_min = metric
            .as_ref()
            .map(|h| h.iter().copied().fold(f64::INFINITY, f64::min))
            .unwrap_or(f64::NAN);
        if adam_min.is_finite() {
            self.rho = self.rho.min(adam_min);
        }
        let mapping = |metric: Option<&[f64]>| {
            grad_mapping_sq(
                &x,
                &grad,
                inputs.lr,
                metric,
                &layout,
                inputs.groups,
                inputs.penalty,
            )
        };
        let gsq = mapping(None);
        let gsq_metric = match &metric {
            Some(m) => mapping(Some(m)),
            None => gsq,
        };

        if let (Some(px), Some(pg)) = (&self.prev_x, &self.prev_grad) {
            let dx: f64 = x
                .iter()
                .zip(px)
                .map(|(&a, &b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            let dg: f64 = grad
                .iter()
                .zip(pg)
                .map(|(&a, &b)| (a - b as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            if dx > 0.0 {
                self.smoothness = self.smoothness.max(dg / dx);
            }
        }
        self.variance = self.variance.max(variance);
        let objective0 = *self.objective0.get_or_insert(objective);
        self.prev_x = Some(x);
        self.prev_grad = Some(grad.iter().map(|&g| g as f32).collect());
        self.history.push((inputs.lr, gsq_metric));

        let bound_inputs = BoundInputs {
            smoothness: self.smoothness,
            variance: self.variance,
            objective_gap: (objective0 - self.config.objective_lower_bound).max(0.0),
            rho: if self.rho.is_finite() { self.rho } else { 1.0 },
            sum_lr: self.sum_lr,
            sum_lr_sq: self.sum_lr_sq,
            max_lr: self.max_lr,
        };
        let bound = self.theorem.rhs(&bound_inputs);
        let (mut wsum, mut wgsum) = (0.0, 0.0);
        for &(eta, g) in &self.history {
            let w = self.theorem.weight(eta, &bound_inputs);
            wsum += w;
            wgsum += w * g;
        }
        let lhs = if wsum > 0.0 { wgsum / wsum } else { f64::NAN };
        Ok(ConvergenceRow {
            step: inputs.step,
            epoch: inputs.epoch,
            lr: inputs.lr,
            loss,
            objective,
            grad_mapping_sq: gsq,
            grad_mapping_sq_metric: gsq_metric,
            lhs,
            smoothness: self.smoothness,
            variance: self.variance,
            mask_flips: inputs.mask_flips,
            adam_min_sqrt_v: adam_min,
            theorem: self.theorem.name().to_string(),
            rhs: bound.rhs,
            lhs_rhs_ratio: lhs / bound.rhs,
            step_condition: bound.step_condition,
        })
    }

    /// The running state, for checkpoints.
    pub fn state(&self, device: &Device) -> Result<StateDict> {
        let mut s = StateDict::new();
        s.put_meta("sum_lr", format!("{:?}", self.sum_lr));
        s.put_meta("sum_lr_sq", format!("{:?}", self.sum_lr_sq));
        s.put_meta("max_lr", format!("{:?}", self.max_lr));
        s.put_meta("smoothness", format!("{:?}", self.smoothness));
        s.put_meta("variance", format!("{:?}", self.variance));
        s.put_meta("rho", format!("{:?}", self.rho));
        if let Some(o) = self.objective0 {
            s.put_meta("objective0", format!("{o:?}"));
        }
        // a tensor, not JSON: JSON cannot hold the NaN or ∞ a probe may have measured
        let flat: Vec<f64> = self.history.iter().flat_map(|&(a, b)| [a, b]).collect();
        s.put_tensor(
            "history",
            Tensor::from_vec(flat, (self.history.len(), 2), device)?,
        );
        if let Some(p) = &self.penalty {
            s.put_meta(
                "penalty",
                serde_json::to_string(p).expect("numbers serialise"),
            );
        }
        if let (Some(x), Some(g)) = (&self.prev_x, &self.prev_grad) {
            s.put_tensor("prev_x", Tensor::from_slice(x, x.len(), device)?);
            s.put_tensor("prev_grad", Tensor::from_slice(g, g.len(), device)?);
        }
        Ok(s)
    }

    /// Restores [`ConvergenceProbe::state`].
    pub fn load_state(&mut self, s: &StateDict) -> Result<()> {
        self.sum_lr = s.meta("sum_lr")?;
        self.sum_lr_sq = s.meta("sum_lr_sq")?;
        self.max_lr = s.meta("max_lr")?;
        self.smoothness = s.meta("smoothness")?;
        self.variance = s.meta("variance")?;
        self.rho = s.meta("rho")?;
        self.objective0 = match s.meta.get("objective0") {
            Some(_) => Some(s.meta("objective0")?),
            None => None,
        };
        self.history = s
            .tensor("history")?
            .to_dtype(candle_core::DType::F64)?
            .to_vec2::<f64>()?
            .into_iter()
            .map(|row| (row[0], row[1]))
            .collect();
        self.penalty = match s.meta.get("penalty") {
            None => None,
            Some(t) => Some(
                serde_json::from_str(t)
                    .map_err(|e| OptimError::State(format!("`penalty`: {e}")))?,
            ),
        };
        self.prev_x = s.tensors.get("prev_x").map(|t| t.to_vec1()).transpose()?;
        self.prev_grad = s
            .tensors
            .get("prev_grad")
            .map(|t| t.to_vec1())
            .transpose()?;
        Ok(())
    }
}

fn flatten(tensors: impl Iterator<Item = Tensor>) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for t in tensors {
        out.extend(
            t.flatten_all()?
                .to_dtype(candle_core::DType::F32)?
                .to_vec1::<f32>()?,
        );
    }
    Ok(out)
}

fn decay_mask(params: &ParamSet) -> Vec<bool> {
    params
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.decay, p.var.elem_count()))
        .collect()
}

/// ∇f on one batch: the loss gradient plus `wd·x` where decay applies; zeros where a
/// parameter got no gradient.
fn flatten_grads(
    params: &ParamSet,
    grads: &GradStore,
    x: &[f32],
    decayed: &[bool],
    wd: f64,
) -> Result<Vec<f32>> {
    let per_param = params
        .iter()
        .map(|p| match grads.get(p.var.as_tensor()) {
            Some(g) => Ok(g.clone()),
            None => Ok(p.var.as_tensor().zeros_like()?),
        })
        .collect::<Result<Vec<Tensor>>>()?;
    let mut g = flatten(per_param.into_iter())?;
    if wd != 0.0 {
        for ((g, &x), &d) in g.iter_mut().zip(x).zip(decayed) {
            if d {
                *g += (wd * x as f64) as f32;
            }
        }
    }
    Ok(g)
}

fn flatten_preconditioner(params: &ParamSet, pre: &[(String, Tensor)]) -> Result<Vec<f64>> {
    let by_name: HashMap<&str, &Tensor> = pre.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = Vec::with_capacity(params.elem_count());
    for p in params {
        match by_name.get(p.name.as_str()) {
            Some(t) => out.extend(
                t.flatten_all()?
                    .to_dtype(candle_core::DType::F64)?
                    .to_vec1::<f64>()?,
            ),
            // no Adam state yet: the Euclidean metric
            None => out.extend(std::iter::repeat_n(1.0, p.var.elem_count())),
        }
    }
    Ok(out)
}

fn group_layout(params: &ParamSet, groups: &GroupSet) -> Result<GroupLayout> {
    let mut offsets = HashMap::new();
    let mut off = 0;
    for p in params {
        offsets.insert(p.name.as_str(), off);
        off += p.var.elem_count();
    }
    groups
        .gates()
        .iter()
        .map(|g| {
            g.member_names()
                .map(|name| {
                    let off = *offsets.get(name).ok_or_else(|| {
                        OptimError::Config(format!("group member `{name}` is not a parameter"))
                    })?;
                    let p = params.get(name).expect("offset implies parameter");
                    Ok((off, p.var.elem_count() / g.width))
                })
                .collect()
        })
        .collect()
}

/// The element indices of group `c` of a gate.
fn group_indices(members: &[(usize, usize)], c: usize) -> impl Iterator<Item = usize> + '_ {
    members
        .iter()
        .flat_map(move |&(off, cols)| off + c * cols..off + (c + 1) * cols)
}

fn group_norm_sum(x: &[f32], layout: &GroupLayout, groups: &GroupSet, penalty: &[Vec<f64>]) -> f64 {
    let mut h = 0.0;
    for ((members, gate), lam) in layout.iter().zip(groups.gates()).zip(penalty) {
        for (c, &l) in lam.iter().enumerate().take(gate.width) {
            if l != 0.0 {
                let n2: f64 = group_indices(members, c)
                    .map(|i| (x[i] as f64).powi(2))
                    .sum();
                h += l * n2.sqrt();
            }
        }
    }
    h
}

/// ‖(x − prox^H_{ηh}(x − ηH⁻¹∇f))/η‖² with H = I when `metric` is `None`.
fn grad_mapping_sq(
    x: &[f32],
    grad: &[f64],
    eta: f64,
    metric: Option<&[f64]>,
    layout: &GroupLayout,
    groups: &GroupSet,
    penalty: &[Vec<f64>],
) -> f64 {
    let h = |i: usize| metric.map_or(1.0, |m| m[i]);
    let mut y: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| v as f64 - eta * grad[i] / h(i))
        .collect();
    for ((members, gate), lam) in layout.iter().zip(groups.gates()).zip(penalty) {
        for (c, &l) in lam.iter().enumerate().take(gate.width) {
            if l == 0.0 {
                continue;
            }
            let idx: Vec<usize> = group_indices(members, c).collect();
            let hy: Vec<(f64, f64)> = idx.iter().map(|&i| (h(i), y[i])).collect();
            let shrunk = group_prox_in_metric(&hy, eta * l);
            for (&i, v) in idx.iter().zip(shrunk) {
                y[i] = v;
            }
        }
    }
    x.iter()
        .zip(&y)
        .map(|(&a, &b)| ((a as f64 - b) / eta).powi(2))
        .sum()
}

/// `argmin_u τ‖u‖ + ½ Σ h_i (u_i − y_i)²` for one group given `(h_i, y_i)`: zero when
/// `‖Hy‖ ≤ τ`; otherwise `u_i = h_i y_i / (h_i + s)` with s > 0 solving
/// `Σ (s·h_i y_i/(h_i + s))² = τ²` (monotone in s; bisection). With all `h_i = 1` this is the
/// usual `y·max(0, 1 − τ/‖y‖)`.
pub fn group_prox_in_metric(hy: &[(f64, f64)], tau: f64) -> Vec<f64> {
    let norm_hy = hy.iter().map(|(h, y)| (h * y).powi(2)).sum::<f64>().sqrt();
    if norm_hy <= tau {
        return vec![0.0; hy.len()];
    }
    if tau == 0.0 {
        return hy.iter().map(|&(_, y)| y).collect();
    }
    if hy.iter().all(|&(h, _)| h == 1.0) {
        let ny = norm_hy;
        return hy.iter().map(|&(_, y)| y * (1.0 - tau / ny)).collect();
    }
    let phi = |s: f64| -> f64 {
        hy.iter()
            .map(|&(h, y)| (s * h * y / (h + s)).powi(2))
            .sum::<f64>()
    };
    let target = tau * tau;
    let (mut lo, mut hi) = (0.0, 1.0);
    while phi(hi) < target {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if phi(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let s = 0.5 * (lo + hi);
    hy.iter().map(|&(h, y)| h * y / (h + s)).collect()
}
