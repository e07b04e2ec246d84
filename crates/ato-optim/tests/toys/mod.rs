//! The toy training harness of the convergence tests: regression tasks trained by proximal
//! SGD (SGD without momentum, then ATO's group prox on every group) with probes, and the broken
//! steps used as negative controls.
#![allow(dead_code)]

use crate::common::{linear_gates, param_set, vars};
use ato_optim::{
    ConvergenceProbe, ConvergenceRow, GroupProx, GroupSet, Optimizer, ProbeConfig, ProbeInputs,
    RunRegime, Sgd, SgdConfig, Theorem,
};
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

pub fn gaussian(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

/// A regression task: inputs (n × d), targets (n,).
pub struct Task {
    pub x: Tensor,
    pub y: Tensor,
}

impl Task {
    /// Batch i of `size` rows; `None` = the whole data set.
    pub fn batch(&self, i: usize, size: Option<usize>) -> (Tensor, Tensor) {
        let n = self.x.dim(0).unwrap();
        let Some(size) = size else {
            return (self.x.clone(), self.y.clone());
        };
        let start = (i * size) % (n - size + 1);
        (
            self.x.narrow(0, start, size).unwrap(),
            self.y.narrow(0, start, size).unwrap(),
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepKind {
    Correct,
    Overshoot,
    WrongSignProx,
}

pub struct Run {
    pub steps: u64,
    pub lr: f64,
    pub lambda: f64,
    pub every: u64,
    /// Training and probe batch size; `None` = full batch (deterministic).
    pub batch: Option<usize>,
}

/// ATO's prox with the sign of the shrinkage flipped: `x_g ← x_g·(‖x_g‖ + τ)/‖x_g‖`.
pub fn wrong_sign_prox(groups: &GroupSet, tau: f64) {
    for gate in groups.gates() {
        let f: Vec<f32> = gate
            .norms_sq()
            .unwrap()
            .iter()
            .map(|&n2| {
                let n = (n2 as f64).sqrt();
                if n == 0.0 {
                    1.0
                } else {
                    ((n + tau) / n) as f32
                }
            })
            .collect();
        gate.scale(&Tensor::from_vec(f, gate.width, gate.device()).unwrap())
            .unwrap();
    }
}

/// Proximal SGD on `task` with probes at step 0 and every `run.every` steps.
pub fn train(
    task: &Task,
    v: &ato_zig::NamedVars,
    groups: &GroupSet,
    predict: &dyn Fn(&Tensor) -> Tensor,
    run: &Run,
    kind: StepKind,
) -> Vec<ConvergenceRow> {
    let params = param_set(v);
    let sgd = SgdConfig {
        momentum: 0.0,
        ..SgdConfig::default()
    };
    let mut opt = Sgd::new(params.clone(), sgd).unwrap();
    let cfg = ProbeConfig {
        every: run.every,
        batches: 8,
        objective_lower_bound: 0.0,
    };
    let mut probe = ConvergenceProbe::new(cfg, Theorem::ProximalSgd).unwrap();
    probe.set_regime(RunRegime::proximal_sgd());
    let masks = ato_zig::Mask::from_keep(
        groups
            .gates()
            .iter()
            .map(|g| vec![false; g.width])
            .collect(),
    );
    let ratios = GroupProx::gate_ratios(&masks);
    let penalty: Vec<Vec<f64>> = groups
        .gates()
        .iter()
        .zip(&ratios)
        .map(|(g, r)| vec![run.lambda * r; g.width])
        .collect();
    let loss_of = |(x, y): (Tensor, Tensor)| -> Tensor {
        let r = (predict(&x) - y).unwrap();
        r.sqr()
            .unwrap()
            .mean_all()
            .unwrap()
            .affine(0.5, 0.0)
            .unwrap()
    };
    let mut rows = Vec::new();
    for t in 0..=run.steps {
        if t == 0 || probe.due(t) {
            let inputs = ProbeInputs {
                step: t,
                epoch: 0,
                lr: run.lr,
                params: &params,
                weight_decay: 0.0,
                groups,
                penalty: &penalty,
                preconditioner: None,
                mask_flips: 0,
            };
            // probe batches: 8 fixed batches (disjoint from the first training batches)
            let row = probe
                .measure(inputs, |i| {
                    let loss = loss_of(task.batch(1000 + i, run.batch));
                    Ok((loss.to_scalar::<f32>()? as f64, loss.backward()?))
                })
                .unwrap();
            rows.push(row);
        }
        if t == run.steps {
            break;
        }
        let loss = loss_of(task.batch(t as usize, run.batch));
        let grads = loss.backward().unwrap();
        let step_lr = if kind == StepKind::Overshoot {
            10.0 * run.lr
        } else {
            run.lr
        };
        opt.step(&grads, step_lr).unwrap();
        if kind == StepKind::WrongSignProx {
            wrong_sign_prox(groups, run.lambda * run.lr);
        } else {
            GroupProx::apply(groups, &masks, run.lambda, run.lr).unwrap();
        }
        probe.record_step(run.lr);
    }
    rows
}

/// A task with its variables, groups and model.
pub type Toy = (
    Task,
    ato_zig::NamedVars,
    GroupSet,
    Box<dyn Fn(&Tensor) -> Tensor>,
);

/// Least squares, 12 parameters in 4 groups (a weight row of 2 + its bias); θ* uses groups 0
/// and 1 only. Returns the task, its variables and groups, and the model.
pub fn least_squares(seed: u64) -> Toy {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (n, d) = (2048, 12);
    let a = gaussian(&mut rng, n * d);
    let theta_star = [
        1.0f32, -2.0, 0.5, 1.5, 0.0, 0.0, 0.0, 0.0, 0.7, -0.3, 0.0, 0.0,
    ];
    let noise = gaussian(&mut rng, n);
    let dev = Device::Cpu;
    let x = Tensor::from_vec(a, (n, d), &dev).unwrap();
    let star = Tensor::from_slice(&theta_star, (d, 1), &dev).unwrap();
    let y = (x.matmul(&star).unwrap().squeeze(1).unwrap()
        + Tensor::from_vec(noise, n, &dev)
            .unwrap()
            .affine(0.1, 0.0)
            .unwrap())
    .unwrap();
    let v = vars(&[
        ("w.weight", &[4, 2], &[0.5; 8]),
        ("w.bias", &[4], &[0.5; 4]),
    ]);
    let groups = linear_gates(&[("w", 2, 4)], &v);
    let (w, b) = (v["w.weight"].clone(), v["w.bias"].clone());
    let predict = move |x: &Tensor| -> Tensor {
        let theta = Tensor::cat(
            &[w.as_tensor().flatten_all().unwrap(), b.as_tensor().clone()],
            0,
        )
        .unwrap();
        x.matmul(&theta.unsqueeze(1).unwrap())
            .unwrap()
            .squeeze(1)
            .unwrap()
    };
    (Task { x, y }, v, groups, Box::new(predict))
}

pub fn violations(rows: &[ConvergenceRow]) -> Vec<u64> {
    rows.iter()
        .filter(|r| !r.descent_holds)
        .map(|r| r.step)
        .collect()
}

/// Asserts what a correct run must show: every row in the regime and finite, every window's
/// descent inequality and the averaged bound hold.
pub fn assert_correct(rows: &[ConvergenceRow]) {
    for r in rows {
        assert!(r.in_regime, "step {}: violated {}", r.step, r.violated);
        assert!(r.rhs.is_finite() && r.descent_opt_term.is_finite(), "{r:?}");
        assert!(
            r.descent_holds,
            "step {}: ΔΨ {} > {} + {} + {}",
            r.step, r.descent_lhs, r.descent_opt_term, r.descent_noise_term, r.descent_tolerance
        );
        assert!(r.lhs_rhs_ratio <= 1.0, "step {}: {r:?}", r.step);
    }
}
