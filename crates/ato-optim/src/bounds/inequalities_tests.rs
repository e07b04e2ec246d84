//! The inequalities on numbers computed by hand.

use super::*;

fn sample(eta: f64, g: f64, l: f64, var: f64) -> ProbeSample {
    ProbeSample {
        eta,
        lower: g,
        martingale: var * g / 4.0,
        smoothness: l,
        variance: var,
    }
}

#[test]
fn averaged_bound_without_noise_is_the_gap_over_the_weights() {
    // L = 1, η = 1 for 4 steps: w = ½ each, Σw = 2; Ĝ = 1, gap 3 → lhs 1, rhs 3/2
    let mut s = AveragedSums::new();
    for _ in 0..4 {
        s.add(&StepEstimate {
            eta: 1.0,
            smoothness: 1.0,
            variance: 0.0,
            mapping_lower: 1.0,
            martingale: 1.0,
        });
    }
    let b = averaged_bound(&s, 3.0);
    assert!(b.step_condition);
    assert_eq!((b.lhs, b.rhs, b.rhs_opt, b.rhs_noise), (1.0, 1.5, 1.5, 0.0));
    // with σ² = 1 on every step: P = 3 + 4 = 7, N = 2 → (√7 + √2)²/2
    let mut s = AveragedSums::new();
    for _ in 0..4 {
        s.add(&StepEstimate {
            eta: 1.0,
            smoothness: 1.0,
            variance: 1.0,
            mapping_lower: 1.0,
            martingale: 1.0,
        });
    }
    let b = averaged_bound(&s, 3.0);
    let want = (7f64.sqrt() + 2f64.sqrt()).powi(2) / 2.0;
    assert!((b.rhs - want).abs() < 1e-12 && (b.rhs_noise - (want - 1.5)).abs() < 1e-12);
    // it is the minimum over α of (P − N + N/α)/((1−α)Σw): no α on a grid does better
    for k in 1..1000 {
        let a = k as f64 / 1000.0;
        assert!((7.0 - 2.0 + 2.0 / a) / ((1.0 - a) * 2.0) >= want - 1e-9);
    }
    // one step with η·L = 2: no bound, ever after
    s.add(&StepEstimate {
        eta: 1.0,
        smoothness: 2.0,
        variance: 0.0,
        mapping_lower: 0.0,
        martingale: 0.0,
    });
    let b = averaged_bound(&s, 3.0);
    assert!(!b.step_condition && b.rhs.is_nan() && b.lhs.is_finite());
}

#[test]
fn a_window_takes_its_first_step_from_the_start_and_inner_steps_from_the_safer_end() {
    let steps: Vec<StepEstimate> = window_steps(
        &sample(0.5, 8.0, 1.0, 0.1),
        &sample(0.5, 2.0, 1.5, 0.3),
        &[0.5; 3],
    )
    .collect();
    assert_eq!(
        (
            steps[0].smoothness,
            steps[0].variance,
            steps[0].mapping_lower
        ),
        (1.0, 0.1, 8.0)
    );
    for s in &steps[1..] {
        assert_eq!((s.smoothness, s.variance, s.mapping_lower), (1.5, 0.3, 2.0));
    }
    // an end measured at η_p = 0.25 < η_j = 0.5 counts (0.25/0.5)² of its lower value, and
    // (0.5/0.25)² of its martingale variance (2 → 8 at the start; 2 at the end)
    let s: Vec<StepEstimate> = window_steps(
        &sample(0.25, 8.0, 1.0, 1.0),
        &sample(0.5, 8.0, 1.0, 1.0),
        &[0.5; 2],
    )
    .collect();
    assert_eq!((s[0].mapping_lower, s[1].mapping_lower), (2.0, 2.0));
    assert_eq!((s[0].martingale, s[1].martingale), (8.0, 8.0));
}

#[test]
fn descent_bound_by_hand() {
    let lrs = [0.5; 4];
    // L = 1 → w = 0.375 each; ends 8 and 2: the first step is at the start (8), the other three
    // take the smaller end (2) → Q̂ = 0.375·(8 + 3·2) = 5.25; no noise → α = 0
    let b = descent_bound(&DescentInputs {
        lrs: &lrs,
        start: sample(0.5, 8.0, 1.0, 0.0),
        end: sample(0.5, 2.0, 1.0, 0.0),
        eval_se: 0.0,
        z: 3.0,
        rounding: 0.0,
    });
    assert_eq!((b.opt_term, b.noise_term, b.tolerance), (-5.25, 0.0, 0.0));
    assert!(b.holds(-5.25) && !b.holds(-5.249));
    // σ² = 1, Ĝ = 4 everywhere: Q̂ = 1.5·4 = 6, N = 1.5, E = 2 → α = ½: −3 and 2 + 1.5;
    // martingale variance 1 per step (sample(): σ²·Ĝ/4) → tolerance 1·√4 + rounding 0.5
    let b = descent_bound(&DescentInputs {
        lrs: &lrs,
        start: sample(0.5, 4.0, 1.0, 1.0),
        end: sample(0.5, 4.0, 1.0, 1.0),
        eval_se: 0.0,
        z: 1.0,
        rounding: 0.5,
    });
    assert_eq!(
        (b.alpha, b.opt_term, b.noise_term, b.tolerance),
        (0.5, -3.0, 3.5, 2.5)
    );
    // Q̂ ≤ N: no optimisation term, α = 1
    let b = descent_bound(&DescentInputs {
        lrs: &lrs,
        start: sample(0.5, 0.1, 1.0, 1.0),
        end: sample(0.5, 0.1, 1.0, 1.0),
        eval_se: 0.0,
        z: 0.0,
        rounding: 0.0,
    });
    assert_eq!((b.alpha, b.opt_term, b.noise_term), (1.0, 0.0, 2.0));
    // η·L̂ = 2 at the end: the inner steps fail the step condition
    let b = descent_bound(&DescentInputs {
        lrs: &lrs,
        start: sample(0.5, 4.0, 1.0, 0.0),
        end: sample(0.5, 4.0, 4.0, 0.0),
        eval_se: 0.0,
        z: 0.0,
        rounding: 0.0,
    });
    assert!(!b.step_condition && !b.holds(-100.0));
}
