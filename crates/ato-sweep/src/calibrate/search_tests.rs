//! The knob search on fake monotone responses: bracketing by ×4 then a secant, the bound,
//! running out of pilots, steep and jumping responses.

use super::search::{search, Evaluation, KnobScale, SearchStatus};
use super::tests::{log_response, steep_response};

const LOG: KnobScale = KnobScale {
    log: true,
    lo: 1e-6,
    hi: 1e3,
};

#[test]
fn search_brackets_by_four_then_lands_by_secant() {
    let mut seen = Vec::new();
    let mut f = |l: f64, _: usize| -> anyhow::Result<Evaluation> {
        seen.push(l);
        Ok(Evaluation::one(log_response(l)))
    };
    let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 8).unwrap();
    // 1e-3 → 0.343, 4e-3 → 0.403, 1.6e-2 → 0.464, 6.4e-2 → 0.524 (bracket), then the secant
    // in log λ is exact on a log-linear response: λ = 0.037
    assert_eq!(out.pilots, 5, "{seen:?}");
    assert!((seen[3] - 6.4e-2).abs() < 1e-12);
    assert!((out.value - 0.037).abs() < 1e-9, "{out:?}");
    assert_eq!(out.status, SearchStatus::Matched);
    // no other pilot within 0.1% of λ = 0.037
    assert_eq!(out.near, None);
}

#[test]
fn search_says_when_the_bound_cannot_reach_the_reference() {
    // saturates at 30%: λ climbs by ×4 to the bound 1e3 and stops there
    let mut f = |l: f64, _: usize| -> anyhow::Result<Evaluation> {
        Ok(Evaluation::one((0.3 * l / (l + 1.0)).min(0.3)))
    };
    let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 20).unwrap();
    assert_eq!(out.status, SearchStatus::Unreachable);
    assert!((out.value - 1e3).abs() < 1e-6, "{out:?}");
    // ⌈log4(1e6)⌉ = 10 steps up from 1e-3, plus the start
    assert_eq!(out.pilots, 11);
}

#[test]
fn search_out_of_pilots_keeps_the_closest() {
    let mut f =
        |l: f64, _: usize| -> anyhow::Result<Evaluation> { Ok(Evaluation::one(log_response(l))) };
    let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 3).unwrap();
    assert_eq!(out.status, SearchStatus::Closest);
    assert!((out.value - 1.6e-2).abs() < 1e-12, "{out:?}");
}

#[test]
fn a_steep_response_flat_at_zero_needs_more_than_six_pilots_and_lands_in_nine() {
    // the ×4 bracket from 1e-3 ends at [0.064 (0.000), 0.256 (0.898)] after 5 pilots; the
    // safeguarded secant then lands in 4 more. With the old budget of 6 the search ends
    // "closest" at 0.256 (+40 points), as it did on 1,437 digits
    let mut seen = Vec::new();
    let mut f = |l: f64, _: usize| -> anyhow::Result<Evaluation> {
        seen.push((l, steep_response(l)));
        Ok(Evaluation::one(steep_response(l)))
    };
    let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 12).unwrap();
    assert_eq!(out.status, SearchStatus::Matched, "{seen:?}");
    assert!((out.achieved - 0.5).abs() <= 0.01, "{out:?}");
    assert_eq!(out.pilots, 9, "{seen:?}");
    let mut f =
        |l: f64, _: usize| -> anyhow::Result<Evaluation> { Ok(Evaluation::one(steep_response(l))) };
    let short = search(&mut f, 1e-3, 0.5, 0.01, LOG, 6).unwrap();
    assert_eq!(short.status, SearchStatus::Closest);
}

#[test]
fn a_response_that_jumps_across_the_reference_is_called_a_jump() {
    // 40% below λ = 0.2095, 56% from it: the bracket shrinks to < 1e-6 in log λ and stops
    let jump = |l: f64| if l < 0.2095 { 0.40 } else { 0.56 };
    let mut f = |l: f64, _: usize| -> anyhow::Result<Evaluation> { Ok(Evaluation::one(jump(l))) };
    let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 40).unwrap();
    assert_eq!(out.status, SearchStatus::Jump, "{out:?}");
    assert!(out.pilots < 30, "{out:?}");
    assert!((out.value / 0.2095).ln().abs() < 1e-6, "{out:?}");
    // the pilots near the end saw both sides of the jump
    assert_eq!(out.near, Some((0.40, 0.56)), "{out:?}");
    // negative controls: continuous responses as steep as OTO's on 1,500 images (40% → 56%
    // within a 4.3e-5 bracket in log λ; these cliffs are 1e-5 and 4e-6 wide, narrower than the
    // old jump width 1e-4) and steeper are matched
    for steepness in [1e-3, 1e-5, 4e-6] {
        let cliff = |l: f64| 0.40 + 0.16 * ((l / 0.2095).ln() / steepness + 0.5).clamp(0.0, 1.0);
        let mut f =
            |l: f64, _: usize| -> anyhow::Result<Evaluation> { Ok(Evaluation::one(cliff(l))) };
        let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 40).unwrap();
        assert_eq!(out.status, SearchStatus::Matched, "{steepness}: {out:?}");
    }
}

#[test]
fn an_evaluation_that_takes_several_pilots_counts_them_all() {
    // every evaluation takes 3 pilots: a budget of 7 allows three evaluations (3 + 3 + 1 left)
    let mut lefts = Vec::new();
    let mut f = |l: f64, left: usize| -> anyhow::Result<Evaluation> {
        lefts.push(left);
        Ok(Evaluation {
            response: log_response(l),
            pilots: 3.min(left),
        })
    };
    let out = search(&mut f, 1e-3, 0.5, 0.01, LOG, 7).unwrap();
    assert_eq!(lefts, vec![7, 4, 1]);
    assert_eq!(out.pilots, 7);
    assert_eq!(out.status, SearchStatus::Closest);
}
