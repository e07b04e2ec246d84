//! The convergence checks on toys trained by proximal SGD (SGD without momentum, then ATO's
//! group prox on every group), each with negative controls: the same run with a broken step
//! must be reported, or the check proves nothing.
//!
//! Broken steps: `Overshoot` takes the SGD step at 10× the recorded rate (η·L > 2, the
//! iterates diverge); `WrongSignProx` grows every group by τ instead of shrinking it, which
//! converges to a point that is not stationary for Ψ (or raises Ψ outright).
//!
//! The overshoot control runs full batch only: in a mini-batch run the measured variance grows
//! with the divergence and the (conservative, larger-end) noise allowance absorbs the rise
//! until Ψ overflows — a limit of estimating σ² at the window's ends. A stochastic control
//! also needs a defect larger than the mini-batch noise (see `bounds`, "What no check can
//! see"); λ and the batch size are chosen for that.

mod common;
mod toys;

use candle_core::{Device, Tensor};
use common::{linear_gates, vars};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use toys::{assert_correct, gaussian, least_squares, train, violations, Run, StepKind, Task};

#[test]
fn full_batch_descent_check_holds_for_proximal_sgd_and_reports_broken_steps() {
    let (task, v, groups, predict) = least_squares(3);
    let run = Run {
        steps: 300,
        lr: 0.3,
        lambda: 0.05,
        every: 10,
        batch: None,
    };
    let rows = train(&task, &v, &groups, &predict, &run, StepKind::Correct);
    assert_correct(&rows);
    // deterministic: no noise term; the tolerance is only f32 rounding of Ψ (4 ulps)
    for r in &rows {
        assert!(
            r.variance == 0.0 && r.descent_noise_term == 0.0 && r.descent_tolerance < 1e-5,
            "{r:?}"
        );
    }
    assert!(rows[1].descent_opt_term < 0.0 && rows[1].window_steps == 10);

    for kind in [StepKind::Overshoot, StepKind::WrongSignProx] {
        let (task, v, groups, predict) = least_squares(3);
        let bad = train(&task, &v, &groups, &predict, &run, kind);
        let v = violations(&bad);
        assert!(
            !v.is_empty(),
            "{kind:?} must violate the descent inequality"
        );
        match kind {
            // diverges: Ψ rises in the first window and the averaged bound fails with it
            StepKind::Overshoot => {
                assert_eq!(v[0], 10);
                assert!(bad[1].descent_lhs > 0.0 && bad[1].lhs_rhs_ratio > 1.0);
            }
            // stalls at a non-stationary point: every window from the second on violates,
            // and the averaged ratio climbs past 1
            _ => {
                assert_eq!(v, (2..=30).map(|k| 10 * k).collect::<Vec<u64>>());
                assert!(bad.last().unwrap().lhs_rhs_ratio > 1.0);
            }
        }
    }
}

/// The probe set's Hessian `AᵀA/128` (8 batches of 16 rows at batch indices 1000..1008):
/// its extreme eigenvalues by power iteration, for checking L̂.
fn probe_hessian_extremes(task: &Task) -> (f64, f64) {
    let rows: Vec<Vec<f32>> = (0..8)
        .flat_map(|i| task.batch(1000 + i, Some(16)).0.to_vec2::<f32>().unwrap())
        .collect();
    let d = rows[0].len();
    let mut h = vec![vec![0f64; d]; d];
    for r in &rows {
        for a in 0..d {
            for b in 0..d {
                h[a][b] += r[a] as f64 * r[b] as f64 / rows.len() as f64;
            }
        }
    }
    let power = |shift: f64| {
        let mut v = vec![1.0; d];
        let mut lam = 0.0;
        for _ in 0..2000 {
            let w: Vec<f64> = (0..d)
                .map(|a| (0..d).map(|b| h[a][b] * v[b]).sum::<f64>() - shift * v[a])
                .collect();
            lam = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            v = w.iter().map(|x| x / lam).collect();
        }
        lam
    };
    let max = power(0.0);
    (max - power(max), max)
}

#[test]
fn minibatch_descent_check_holds_for_proximal_sgd_and_reports_broken_steps() {
    // λ large enough that the wrong-sign prox leaves a defect (‖𝒢‖² ≈ Σ_g (2λ)²) well above
    // the mini-batch variance: below it no single window can tell a defect from noise
    let run = Run {
        steps: 600,
        lr: 0.3,
        lambda: 0.3,
        every: 20,
        batch: Some(64),
    };
    let (task, v, groups, predict) = least_squares(3);
    let rows = train(&task, &v, &groups, &predict, &run, StepKind::Correct);
    assert_correct(&rows);
    // noise is measured and enters the bound
    assert!(rows
        .iter()
        .skip(1)
        .all(|r| r.variance > 0.0 && r.descent_noise_term > 0.0));
    // L̂ is a secant of the probe loss, a quadratic: within its Hessian's spectrum
    let (lo, hi) = probe_hessian_extremes(&task);
    for r in &rows {
        assert!(
            r.smoothness >= lo && r.smoothness <= hi * (1.0 + 1e-4),
            "step {}: L̂ = {} outside [{lo}, {hi}]",
            r.step,
            r.smoothness
        );
    }
    let first = rows[0].grad_mapping_sq;
    assert!(rows.last().unwrap().grad_mapping_sq < first / 20.0);

    // the wrong-sign prox stalls at a non-stationary point: with the noise terms and the
    // 3-sd tolerance in place, every window after the first still violates, and the averaged
    // ratio passes 1
    let (task, v, groups, predict) = least_squares(3);
    let bad = train(&task, &v, &groups, &predict, &run, StepKind::WrongSignProx);
    assert_eq!(
        violations(&bad),
        (2..=30).map(|k| 20 * k).collect::<Vec<u64>>(),
        "the noise allowance must not hide a broken step"
    );
    assert!(bad.last().unwrap().lhs_rhs_ratio > 1.0);
}

#[test]
fn nonconvex_toy_holds_and_a_wrong_sign_prox_is_reported() {
    let build = || {
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
        let w1: Vec<f32> = gaussian(&mut rng, hidden * d)
            .iter()
            .map(|v| v * 0.5)
            .collect();
        let w2: Vec<f32> = gaussian(&mut rng, hidden).iter().map(|v| v * 0.5).collect();
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
        (Task { x, y }, v, groups, predict)
    };
    let run = Run {
        steps: 600,
        lr: 0.1,
        lambda: 0.2,
        every: 20,
        batch: Some(64),
    };
    let (task, v, groups, predict) = build();
    let rows = train(&task, &v, &groups, &predict, &run, StepKind::Correct);
    assert_correct(&rows);
    assert!(
        rows.last().unwrap().objective < rows[0].objective,
        "training lowers Ψ"
    );
    let (task, v, groups, predict) = build();
    let bad = train(&task, &v, &groups, &predict, &run, StepKind::WrongSignProx);
    // growing the hidden units raises Ψ in every window: all of them violate
    assert_eq!(
        violations(&bad),
        (1..=30).map(|k| 20 * k).collect::<Vec<u64>>()
    );
    assert!(bad.iter().skip(1).all(|r| r.descent_lhs > 0.0));
}
