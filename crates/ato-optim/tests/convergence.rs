//! The convergence probes on toys: least squares + group lasso (convex) and a small tanh
//! network + group lasso (non-convex), both trained by proximal SGD (SGD without momentum
//! followed by ATO's group prox on every group).

mod common;

use ato_zig::Mask;

use ato_optim::{
    ConvergenceProbe, ConvergenceRow, GroupProx, Optimizer, ProbeConfig, ProbeInputs, Sgd,
    SgdConfig, Theorem,
};
use candle_core::{Device, Tensor};
use common::{linear_gates, param_set, vars};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn gaussian(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

/// A regression task: inputs (n × d), targets (n,).
struct Task {
    x: Tensor,
    y: Tensor,
}

impl Task {
    fn batch(&self, i: usize, size: usize) -> (Tensor, Tensor) {
        let n = self.x.dim(0).unwrap();
        let start = (i * size) % (n - size + 1);
        (
            self.x.narrow(0, start, size).unwrap(),
            self.y.narrow(0, start, size).unwrap(),
        )
    }
}

/// Runs proximal SGD with probes every `every` steps (and at step 0); returns the rows.
fn train_with_probes(
    task: &Task,
    v: &ato_zig::NamedVars,
    groups: &ato_optim::GroupSet,
    predict: &dyn Fn(&Tensor) -> Tensor,
    (steps, lr, lambda, every): (u64, f64, f64, u64),
) -> Vec<ConvergenceRow> {
    let params = param_set(v);
    let mut opt = Sgd::new(
        params.clone(),
        SgdConfig {
            momentum: 0.0,
            ..SgdConfig::default()
        },
    )
    .unwrap();
    let cfg = ProbeConfig {
        every,
        batches: 8,
        objective_lower_bound: 0.0,
    };
    let mut probe = ConvergenceProbe::new(cfg, Theorem::ProximalSgd).unwrap();
    let masks = Mask::from_keep(
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
        .map(|(g, r)| vec![lambda * r; g.width])
        .collect();
    let loss_of = |(x, y): (Tensor, Tensor)| -> Tensor {
        (predict(&x) - y)
            .unwrap()
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap()
            .affine(0.5, 0.0)
            .unwrap()
    };
    let mut rows = Vec::new();
    for t in 0..=steps {
        if t == 0 || probe.due(t) {
            let inputs = ProbeInputs {
                step: t,
                epoch: 0,
                lr,
                params: &params,
                weight_decay: 0.0,
                groups,
                penalty: &penalty,
                preconditioner: None,
                mask_flips: 0,
            };
            // probe batches: 8 fixed batches of 16 at the end of the data
            let row = probe
                .measure(inputs, |i| {
                    let loss = loss_of(task.batch(1000 + i, 16));
                    Ok((loss.to_scalar::<f32>()? as f64, loss.backward()?))
                })
                .unwrap();
            rows.push(row);
        }
        if t == steps {
            break;
        }
        let loss = loss_of(task.batch(t as usize, 16));
        opt.step(&loss.backward().unwrap(), lr).unwrap();
        GroupProx::apply(groups, &masks, lambda, lr).unwrap();
        probe.record_step(lr);
    }
    rows
}

#[test]
fn convex_toy_gradient_mapping_falls_and_stays_under_the_bound() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (n, d) = (2048, 12);
    let a = gaussian(&mut rng, n * d);
    // θ* uses groups 0 and 1 only (a group = weight row of 2 + its bias)
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
    let task = Task { x, y };
    let v = vars(&[
        ("w.weight", &[4, 2], &[0.0; 8]),
        ("w.bias", &[4], &[0.0; 4]),
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
    let rows = train_with_probes(&task, &v, &groups, &predict, (600, 0.05, 0.05, 20));
    let first = rows[0].grad_mapping_sq;
    let tail = &rows[rows.len() - 5..];
    assert!(
        tail.iter().all(|r| r.grad_mapping_sq < first / 20.0),
        "the gradient mapping falls: first {first}, tail {:?}",
        tail.iter().map(|r| r.grad_mapping_sq).collect::<Vec<_>>()
    );
    for r in &rows[1..] {
        assert!(r.step_condition, "η < 2/L̂ at step {}", r.step);
        assert!(
            r.lhs <= r.rhs,
            "step {}: LHS {} above RHS {}",
            r.step,
            r.lhs,
            r.rhs
        );
        assert!(
            r.grad_mapping_sq <= r.rhs,
            "step {}: ‖G‖² above the bound",
            r.step
        );
    }
    // L̂ of the probe loss (128 samples) is at most λ_max(AᵀA/128) ≈ (1 + √(12/128))² ≈ 1.7
    let l = rows.last().unwrap().smoothness;
    assert!(l > 0.3 && l < 1.8, "L̂ = {l}");
}

#[test]
fn nonconvex_toy_reports_a_ratio_at_most_one() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (n, d, hidden) = (2048, 4, 6);
    let dev = Device::Cpu;
    let x = Tensor::from_vec(gaussian(&mut rng, n * d), (n, d), &dev).unwrap();
    let teacher = Tensor::from_vec(gaussian(&mut rng, d), (d, 1), &dev).unwrap();
    let y = x
        .matmul(&teacher)
        .unwrap()
        .squeeze(1)
        .unwrap()
        .sin()
        .unwrap();
    let task = Task { x, y };
    let w1 = gaussian(&mut rng, hidden * d)
        .iter()
        .map(|v| v * 0.5)
        .collect::<Vec<_>>();
    let w2 = gaussian(&mut rng, hidden)
        .iter()
        .map(|v| v * 0.5)
        .collect::<Vec<_>>();
    let v = vars(&[
        ("h.weight", &[hidden, d], &w1),
        ("h.bias", &[hidden], &[0.0; 6]),
        ("out.weight", &[1, hidden], &w2),
    ]);
    let groups = linear_gates(&[("h", d, hidden)], &v);
    let (w1, b1, w2) = (
        v["h.weight"].clone(),
        v["h.bias"].clone(),
        v["out.weight"].clone(),
    );
    let predict = move |x: &Tensor| -> Tensor {
        let h = x
            .matmul(&w1.as_tensor().t().unwrap())
            .unwrap()
            .broadcast_add(b1.as_tensor())
            .unwrap()
            .tanh()
            .unwrap();
        h.matmul(&w2.as_tensor().t().unwrap())
            .unwrap()
            .squeeze(1)
            .unwrap()
    };
    let rows = train_with_probes(&task, &v, &groups, &predict, (600, 0.05, 0.01, 20));
    let last = rows.last().unwrap();
    assert!(last.step_condition, "η < 2/L̂ (L̂ = {})", last.smoothness);
    assert!(last.lhs_rhs_ratio.is_finite());
    for r in &rows[1..] {
        assert!(
            r.lhs_rhs_ratio <= 1.0,
            "step {}: LHS/RHS = {}",
            r.step,
            r.lhs_rhs_ratio
        );
    }
    assert!(last.objective < rows[0].objective, "training lowers Ψ");
}

#[test]
fn the_bound_restarts_when_the_regulariser_changes() {
    let v = vars(&[
        ("w.weight", &[2, 2], &[1.0, 0.5, -0.5, 2.0]),
        ("w.bias", &[2], &[0.1, 0.2]),
    ]);
    let groups = linear_gates(&[("w", 2, 2)], &v);
    let params = param_set(&v);
    let cfg = ProbeConfig {
        every: 1,
        batches: 2,
        objective_lower_bound: 0.0,
    };
    let mut probe = ConvergenceProbe::new(cfg, Theorem::ProximalSgd).unwrap();
    let w = v["w.weight"].clone();
    let measure = |probe: &mut ConvergenceProbe, step: u64, lam: f64| {
        let penalty = vec![vec![lam, 0.0]];
        let inputs = ProbeInputs {
            step,
            epoch: 0,
            lr: 0.1,
            params: &params,
            weight_decay: 0.0,
            groups: &groups,
            penalty: &penalty,
            preconditioner: None,
            mask_flips: 0,
        };
        probe
            .measure(inputs, |i| {
                let loss = (w.as_tensor().sqr()?.sum_all()? * (1.0 + i as f64))?;
                Ok((loss.to_scalar::<f32>()? as f64, loss.backward()?))
            })
            .unwrap()
    };
    let first = measure(&mut probe, 0, 0.5);
    assert!(first.rhs.is_nan(), "no step yet");
    probe.record_step(0.1);
    let second = measure(&mut probe, 1, 0.5);
    assert!(second.rhs.is_finite() && second.step_condition);
    probe.record_step(0.1);
    let changed = measure(&mut probe, 2, 2.0);
    assert!(
        changed.rhs.is_nan() && !changed.step_condition,
        "a new h starts a new bound"
    );
    assert_eq!(changed.lhs, changed.grad_mapping_sq, "history restarted");
    probe.record_step(0.1);
    // the state survives a checkpoint: a restored probe measures exactly what this one does
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.safetensors");
    probe
        .state(&candle_core::Device::Cpu)
        .unwrap()
        .save(&path)
        .unwrap();
    let mut restored = ConvergenceProbe::new(cfg, Theorem::ProximalSgd).unwrap();
    restored
        .load_state(&ato_optim::StateDict::load(&path, &candle_core::Device::Cpu).unwrap())
        .unwrap();
    let (a, b) = (measure(&mut probe, 3, 2.0), measure(&mut restored, 3, 2.0));
    assert!(a.rhs.is_finite());
    assert_eq!((a.lhs, a.rhs, a.smoothness), (b.lhs, b.rhs, b.smoothness));
}

#[test]
fn metric_prox_reduces_to_the_euclidean_one_and_solves_its_optimality_condition() {
    use ato_optim::probes::group_prox_in_metric;
    // H = I: y·(1 − τ/‖y‖)
    let u = group_prox_in_metric(&[(1.0, 3.0), (1.0, 4.0)], 1.0);
    assert!((u[0] - 2.4).abs() < 1e-12 && (u[1] - 3.2).abs() < 1e-12);
    // ‖Hy‖ ≤ τ: zero
    assert_eq!(group_prox_in_metric(&[(0.5, 1.0)], 0.6), vec![0.0]);
    // general H: optimality h_i(u_i − y_i) + τ·u_i/‖u‖ = 0
    let hy = [(2.0, 1.0), (0.5, -3.0), (1.0, 0.5)];
    let tau = 0.7;
    let u = group_prox_in_metric(&hy, tau);
    let nu = u.iter().map(|v| v * v).sum::<f64>().sqrt();
    for ((h, y), ui) in hy.iter().zip(&u) {
        assert!((h * (ui - y) + tau * ui / nu).abs() < 1e-9);
    }
}
