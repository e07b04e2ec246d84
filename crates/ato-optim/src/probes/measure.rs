//! [`ConvergenceProbe::measure`]: one probe.

use super::descent::{self, Averaged, ProbePoint, WindowResult};
use super::flat;
use super::mapping::{group_norm_sum, prox_step};
use super::secant::{self, Smoothness};
use super::{ConvergenceProbe, ConvergenceRow, ProbeInputs};
use crate::bounds::{assess, violated_names, ProbeSample};
use crate::{OptimError, Result};
use candle_core::backprop::GradStore;

impl ConvergenceProbe {
    /// Measures at the current point. `loss_and_grads(i)` returns the mean loss and the
    /// gradients of probe batch `i < config.batches` at the current parameter values. If the
    /// weights of h differ from those of the previous probe, both bounds restart here (the
    /// theorems assume a fixed h): the row has an empty window and a fresh averaged bound.
    pub fn measure<F>(
        &mut self,
        inputs: ProbeInputs<'_>,
        mut loss_and_grads: F,
    ) -> Result<ConvergenceRow>
    where
        F: FnMut(usize) -> Result<(f64, GradStore)>,
    {
        let lr = inputs.lr;
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(OptimError::Config(format!(
                "a convergence probe needs a positive learning rate, got {lr}"
            )));
        }
        let changed = self.penalty.as_deref().is_some_and(|p| p != inputs.penalty);
        if changed || self.penalty.is_none() {
            self.penalty = Some(inputs.penalty.to_vec());
        }
        if changed {
            self.averaged = Averaged::default();
            self.window = None;
            self.window_lrs.clear();
        }
        let params = inputs.params;
        let (groups, penalty) = (inputs.groups, inputs.penalty);
        let x = flat::values(params)?;
        let n = x.len();
        let decayed = flat::decay_mask(params);
        let layout = flat::group_layout(params, groups)?;
        let metric = match &inputs.preconditioner {
            // no Adam state before the first step: the Euclidean metric
            Some(pre) if self.theorem.uses_metric() && !pre.is_empty() => {
                Some(flat::flatten_preconditioner(params, pre)?)
            }
            _ => None,
        };
        let h = metric.clone().unwrap_or_else(|| vec![1.0; n]);
        let m = self.config.batches.max(2);
        let wd = (decayed.as_slice(), inputs.weight_decay);
        let stats = flat::batch_stats(m, params, &x, wd, (&h, None), &mut loss_and_grads)?;
        // Theorem A (H = I) holds on the whole space; Theorem B needs the coordinates that move
        let free = if self.theorem.uses_metric() {
            let penalised = flat::penalised(n, &layout, groups, penalty);
            flat::free_coordinates(&x, &stats.moving, &penalised)
        } else {
            vec![true; n]
        };

        let wd_term: f64 = x
            .iter()
            .zip(&decayed)
            .filter(|(_, &d)| d)
            .map(|(&v, _)| (v as f64) * (v as f64))
            .sum::<f64>()
            * 0.5
            * inputs.weight_decay;
        let loss = stats.losses.iter().sum::<f64>() / m as f64 + wd_term;
        let objective = loss + group_norm_sum(&x, &layout, groups, penalty);

        let gs = (&layout, groups, penalty);
        let d_euclid = prox_step(&x, &stats.mean, lr, None, gs);
        let grad_mapping_sq = d_euclid.iter().map(|d| (d / lr).powi(2)).sum::<f64>();
        let mut step = match &metric {
            Some(hm) => prox_step(&x, &stats.mean, lr, Some(hm), gs),
            None => d_euclid,
        };
        for (d, &f) in step.iter_mut().zip(&free) {
            if !f {
                *d = 0.0;
            }
        }
        let grad_mapping_sq_metric = step
            .iter()
            .zip(&h)
            .map(|(d, hi)| hi * (d / lr).powi(2))
            .sum::<f64>();

        let (along, martingale) = secant::along_step(
            params,
            &x,
            &stats,
            &step,
            (lr, &free, &h),
            wd,
            &mut loss_and_grads,
        )?;
        let between = self.window.as_ref().map_or(Smoothness::default(), |w| {
            secant::between(&w.x, &w.grad, &x, &stats.mean, &h)
        });
        let mut smoothness = along.max(between);
        if metric.is_none() {
            smoothness.euclid = smoothness.euclid.max(self.window_secant);
            smoothness.metric = smoothness.metric.max(self.window_secant);
        }
        self.window_secant = 0.0;
        let rho_all = h.iter().copied().fold(f64::INFINITY, f64::min);
        let rho_free = h
            .iter()
            .zip(&free)
            .filter(|(_, &f)| f)
            .map(|(&v, _)| v)
            .fold(f64::INFINITY, f64::min);

        let point = ProbePoint {
            grad: stats.mean.iter().map(|&g| g as f32).collect(),
            free,
            objective,
            sample: ProbeSample::new(
                lr,
                grad_mapping_sq_metric,
                (smoothness.metric, stats.variance_metric, martingale),
                m,
            ),
            losses: stats.losses,
            x,
        };
        let window = match self.window.take() {
            Some(start) => {
                self.averaged.close_window(&start, &point, &self.window_lrs);
                descent::evaluate(&start, &point, &self.window_lrs, self.descent_z)
            }
            // the first probe (or the first after h changed): steps before it are not covered
            None => {
                self.averaged = Averaged::default();
                WindowResult::empty()
            }
        };
        let averaged = self
            .averaged
            .evaluate(&point, lr, self.config.objective_lower_bound);
        let step_condition = averaged.step_condition && window.bound.step_condition;

        let mut violated: Vec<&str> = match &self.regime {
            Some(r) => violated_names(&assess(self.theorem, r)),
            None => vec!["regime_not_declared"],
        };
        for (bad, name) in [
            (changed, "regulariser_fixed"),
            (!window.free_set_held, "free_set_held"),
            (!step_condition, "step_condition"),
        ] {
            if bad && !violated.contains(&name) {
                violated.push(name);
            }
        }
        let free_coords = point.free.iter().filter(|&&f| f).count();
        self.window = Some(point);
        self.window_lrs.clear();
        let ratio = if averaged.lhs == 0.0 {
            0.0
        } else {
            averaged.lhs / averaged.rhs
        };
        Ok(ConvergenceRow {
            step: inputs.step,
            epoch: inputs.epoch,
            lr,
            loss,
            objective,
            grad_mapping_sq,
            grad_mapping_sq_metric,
            free_coords,
            rho_all,
            rho_free,
            smoothness: smoothness.euclid,
            smoothness_metric: smoothness.metric,
            variance: stats.variance,
            variance_metric: stats.variance_metric,
            mask_flips: inputs.mask_flips,
            theorem: self.theorem.name().to_string(),
            lhs: averaged.lhs,
            rhs: averaged.rhs,
            rhs_opt: averaged.rhs_opt,
            rhs_noise: averaged.rhs_noise,
            lhs_rhs_ratio: ratio,
            step_condition,
            window_steps: window.steps,
            descent_lhs: window.lhs,
            descent_opt_term: window.bound.opt_term,
            descent_noise_term: window.bound.noise_term,
            descent_tolerance: window.bound.tolerance,
            descent_holds: window.holds,
            free_set_held: window.free_set_held,
            in_regime: violated.is_empty(),
            violated: violated.join(";"),
            averaged_slack: Some(averaged.rhs - averaged.lhs).filter(|s| s.is_finite()),
            descent_slack: Some(
                window.bound.opt_term + window.bound.noise_term + window.bound.tolerance
                    - window.lhs,
            )
            .filter(|s| window.steps > 0 && s.is_finite()),
            step_checks: 0,
            step_worst_ratio: None,
            step_tolerance: None,
            step_violated_at: None,
        })
    }
}
