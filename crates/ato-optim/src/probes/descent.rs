//! The K-step descent check between two consecutive probes (Corollary 1 of
//! [`crate::bounds`]) and the running sums of the averaged bound (Corollary 2).

use crate::bounds::{
    averaged_bound, descent_bound, window_steps, AveragedBound, AveragedSums, DescentBound,
    DescentInputs, ProbeSample, StepEstimate,
};

/// What a probe leaves for the next one: the start of the next window.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProbePoint {
    pub x: Vec<f32>,
    /// The mean probe gradient (for the secant between probes).
    pub grad: Vec<f32>,
    /// The free coordinates at this point.
    pub free: Vec<bool>,
    pub objective: f64,
    /// Per-batch losses, for the standard error of the objective difference.
    pub losses: Vec<f64>,
    /// ‖𝒢‖², L̂ and σ̂² in the theorem's metric.
    pub sample: ProbeSample,
}

/// The outcome of one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct WindowResult {
    pub steps: usize,
    /// Ψ(x_{k+K}) − Ψ(x_k).
    pub lhs: f64,
    pub bound: DescentBound,
    pub holds: bool,
    /// Every coordinate that moved over the window was free at its start.
    pub free_set_held: bool,
}

impl WindowResult {
    /// The row of a probe that ends no window (the first, or the first after h changed).
    pub fn empty() -> Self {
        Self {
            steps: 0,
            lhs: 0.0,
            bound: DescentBound {
                opt_term: 0.0,
                noise_term: 0.0,
                tolerance: 0.0,
                alpha: 1.0,
                step_condition: true,
            },
            holds: true,
            free_set_held: true,
        }
    }
}

/// Evaluates the window from `start` to `end` over the steps `lrs`.
pub(crate) fn evaluate(start: &ProbePoint, end: &ProbePoint, lrs: &[f64], z: f64) -> WindowResult {
    let m = start.losses.len().min(end.losses.len());
    let diffs: Vec<f64> = (0..m).map(|i| end.losses[i] - start.losses[i]).collect();
    let eval_se = if m >= 2 {
        let mean = diffs.iter().sum::<f64>() / m as f64;
        let var = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (m as f64 - 1.0);
        (var / m as f64).sqrt()
    } else {
        0.0
    };
    let bound = descent_bound(&DescentInputs {
        lrs,
        start: start.sample,
        end: end.sample,
        eval_se,
        z,
        // Ψ comes from f32 losses and weights: 4 ulps of the larger |Ψ|
        rounding: 4.0 * f32::EPSILON as f64 * start.objective.abs().max(end.objective.abs()),
    });
    let lhs = end.objective - start.objective;
    let free_set_held = start
        .x
        .iter()
        .zip(&end.x)
        .zip(&start.free)
        .all(|((a, b), &free)| free || a == b);
    WindowResult {
        steps: lrs.len(),
        lhs,
        bound,
        holds: bound.holds(lhs),
        free_set_held,
    }
}

/// The averaged bound since its start (the first probe, or the first after h changed).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Averaged {
    /// Ψ at the start.
    pub objective0: Option<f64>,
    /// The sums over the steps of the closed windows.
    pub sums: AveragedSums,
}

impl Default for Averaged {
    fn default() -> Self {
        Self {
            objective0: None,
            sums: AveragedSums::new(),
        }
    }
}

impl Averaged {
    /// Adds the steps of a closed window.
    pub fn close_window(&mut self, start: &ProbePoint, end: &ProbePoint, lrs: &[f64]) {
        for s in window_steps(&start.sample, &end.sample, lrs) {
            self.sums.add(&s);
        }
    }

    /// Evaluates the bound over the steps since the start *and the step about to be taken at
    /// `lr` from `point`* (whose values are the measured ones), so the first probe of a bound
    /// already has weight.
    pub fn evaluate(&mut self, point: &ProbePoint, lr: f64, lower_bound: f64) -> AveragedBound {
        let objective0 = *self.objective0.get_or_insert(point.objective);
        let mut sums = self.sums;
        sums.add(&StepEstimate {
            eta: lr,
            smoothness: point.sample.smoothness,
            variance: point.sample.variance,
            mapping_lower: point.sample.lower,
            martingale: point.sample.martingale,
        });
        averaged_bound(&sums, (objective0 - lower_bound).max(0.0))
    }
}
