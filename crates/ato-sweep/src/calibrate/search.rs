//! The knob search of matched FLOPs: a response taken to be monotone (FLOPs reduction,
//! increasing in the knob) is brought within ± a tolerance of a reference by bracketing (steps of ×4 for λ, ±0.15
//! for a share) and then a safeguarded secant (regula falsi kept at least 10% inside the
//! bracket), with at most `max_pilots` pilot runs.
//!
//! Group-lasso responses are steep (HSPG on 180 steps: nothing at λ = 0.14, 87% at 0.256).
//! On logistic responses in log λ of that steepness, started at 1e-3, this search lands
//! within ±1 point in 6–11 pilots. Bisection while the low end is flat, and the Illinois
//! correction, were tried on 20 such shapes: never fewer pilots, up to 2 more.
//!
//! A response need not be monotone at all at a fine scale: HSPG on 1,500 images × 15 epochs
//! zeroes 40.5% of the FLOPs at λ = 0.209533 and 56.0% at 0.209542 (a cascade: every group is
//! pulled to zero at the same rate α·λ, and many cross zero together), and in between it
//! scatters: 49.8% at 0.2095355, 42.4% at 0.2095368, 52.4% at 0.2095375, 34.6% at
//! 0.20953872, 52.9% at 0.20953880. The secant's assumption fails there, and the search only
//! narrows its bracket. It calls that a jump ([`SearchStatus::Jump`]) once the bracket holds
//! (almost) no other value the training step can tell apart ([`ScaleSteps::jump_width`]), and
//! [`SearchResult::near`] tells how far the pilots around the result scatter.
//!
//! One evaluation of the response may cost several pilots (OTOv2 raises its λ and re-runs a
//! pilot that fell short of its own target); the response is told how many are left and says
//! how many it spent ([`Evaluation`]).

use anyhow::Result;

/// How a knob moves: on a log scale (λ) or a linear one (a share in (0, 1)), within bounds
/// (the range `RunConfig::matched_knob` gives).
pub use ato_train::KnobRange as KnobScale;

/// The search's arithmetic on a knob's scale.
pub(super) trait ScaleSteps {
    fn to_u(self, x: f64) -> f64;
    fn to_x(self, u: f64) -> f64;
    fn jump_width(self) -> f64;
    fn step(self) -> f64;
}

impl ScaleSteps for KnobScale {
    fn to_u(self, x: f64) -> f64 {
        if self.log {
            x.ln()
        } else {
            x
        }
    }
    fn to_x(self, u: f64) -> f64 {
        if self.log {
            u.exp()
        } else {
            u
        }
    }
    /// The narrowest bracket worth searching, in the scale's units: λ enters the step in f32
    /// (6e-8 to 1.2e-7 relative), so [`LOG_JUMP_WIDTH`] in log λ leaves 8 to 17 untried
    /// values of λ; a share moves in whole groups, so [`SHARE_JUMP_WIDTH`] is far below one.
    fn jump_width(self) -> f64 {
        if self.log {
            LOG_JUMP_WIDTH
        } else {
            SHARE_JUMP_WIDTH
        }
    }
    fn step(self) -> f64 {
        if self.log {
            4f64.ln()
        } else {
            0.15
        }
    }
}

/// How a search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchStatus {
    /// Within the tolerance.
    Matched,
    /// Out of pilot runs: the closest value found.
    Closest,
    /// The knob's bound does not reach the reference.
    Unreachable,
    /// The response jumps across the reference: the bracket is narrower than
    /// [`ScaleSteps::jump_width`] and its ends are still on either side, beyond the tolerance.
    /// No value of the knob that the search tried lands, and the untried ones differ from the
    /// bracket's ends in their last digits (see [`SearchResult::near`] for how much the
    /// response scatters there).
    Jump,
    /// The method aims at the reference itself (HESSO, magnitude): no search.
    ByConstruction,
}

/// The jump width of a λ search, in log λ: 8 to 17 f32 steps of λ. A wider one (1e-4) stopped
/// OTO's search on the 1,500-image set at a "jump" that λ = 0.2095355 (49.8%) lies inside.
pub const LOG_JUMP_WIDTH: f64 = 1e-6;

/// The jump width of a share search (OTOv2's group-sparsity target): a thirtieth of one group
/// of ResNet-20's 336.
pub const SHARE_JUMP_WIDTH: f64 = 1e-4;

/// One evaluation of the response: its value and the pilot runs it took (at least one, at
/// most the number it was allowed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    pub response: f64,
    pub pilots: usize,
}

#[cfg(test)]
impl Evaluation {
    /// A response that took one pilot run.
    pub fn one(response: f64) -> Self {
        Self {
            response,
            pilots: 1,
        }
    }
}

/// The response of a search: `(knob value, pilots left)` → [`Evaluation`].
pub type Response<'a> = &'a mut dyn FnMut(f64, usize) -> Result<Evaluation>;

/// The outcome of a search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchResult {
    pub value: f64,
    pub achieved: f64,
    /// Pilot runs spent.
    pub pilots: usize,
    pub status: SearchStatus,
    /// The lowest and highest response of the evaluations within [`NEIGHBOURHOOD`] of `value`
    /// (itself included), when there are others: how much the result rests on the knob's last
    /// digits.
    pub near: Option<(f64, f64)>,
}

/// The neighbourhood of a search's result whose responses [`SearchResult::near`] reports, in
/// the scale's units: 0.1% of λ, or 0.001 of a share (a third of one group of ResNet-20's 336).
pub const NEIGHBOURHOOD: f64 = 1e-3;

/// The range of the responses within [`NEIGHBOURHOOD`] of `u`, if any but `u`'s own.
fn near(u: f64, seen: &[(f64, f64)]) -> Option<(f64, f64)> {
    let close: Vec<f64> = seen
        .iter()
        .filter(|(v, _)| (v - u).abs() <= NEIGHBOURHOOD)
        .map(|&(_, r)| r)
        .collect();
    (close.len() > 1).then(|| {
        let lo = close.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = close.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    })
}

/// Searches `start`, then brackets and refines, until the response is within `tolerance` of
/// `reference` or `max_pilots` pilot runs are spent.
pub fn search(
    response: Response<'_>,
    start: f64,
    reference: f64,
    tolerance: f64,
    scale: KnobScale,
    max_pilots: usize,
) -> Result<SearchResult> {
    let (ulo, uhi) = (scale.to_u(scale.lo), scale.to_u(scale.hi));
    let mut spent = 0;
    // (u, response) of every evaluation so far
    let mut seen: Vec<(f64, f64)> = Vec::new();
    let mut eval = |u: f64, spent: &mut usize, seen: &mut Vec<(f64, f64)>| -> Result<f64> {
        let left = max_pilots.saturating_sub(*spent).max(1);
        let e = response(scale.to_x(u), left)?;
        *spent += e.pilots.clamp(1, left);
        seen.push((u, e.response));
        Ok(e.response)
    };
    // the evaluation nearest the reference; among equals the latest (nearest the bracket)
    let best = |seen: &[(f64, f64)]| -> (f64, f64) {
        *seen
            .iter()
            .rev()
            .min_by(|a, b| (a.1 - reference).abs().total_cmp(&(b.1 - reference).abs()))
            .expect("one evaluation")
    };
    let done = |(u, r): (f64, f64), seen: &[(f64, f64)], spent: usize, status| SearchResult {
        value: scale.to_x(u),
        achieved: r,
        pilots: spent,
        status,
        near: near(u, seen),
    };
    let matched = |r: f64| (r - reference).abs() <= tolerance;
    let mut u = scale.to_u(start.clamp(scale.lo, scale.hi));
    let mut r = eval(u, &mut spent, &mut seen)?;
    if matched(r) {
        return Ok(done((u, r), &seen, spent, SearchStatus::Matched));
    }
    // bracket: (u_low, r_low) below the reference, (u_high, r_high) above
    let (mut low, mut high) = if r < reference {
        (Some((u, r)), None)
    } else {
        (None, Some((u, r)))
    };
    while low.is_none() || high.is_none() {
        if spent >= max_pilots {
            return Ok(done(best(&seen), &seen, spent, SearchStatus::Closest));
        }
        let going_up = high.is_none();
        let bound = if going_up { uhi } else { ulo };
        if (u - bound).abs() < 1e-12 {
            return Ok(done(best(&seen), &seen, spent, SearchStatus::Unreachable));
        }
        u = if going_up {
            (u + scale.step()).min(uhi)
        } else {
            (u - scale.step()).max(ulo)
        };
        r = eval(u, &mut spent, &mut seen)?;
        if matched(r) {
            return Ok(done((u, r), &seen, spent, SearchStatus::Matched));
        }
        if r < reference {
            low = Some((u, r));
        } else {
            high = Some((u, r));
        }
    }
    let (mut a, mut b) = (low.expect("bracketed"), high.expect("bracketed"));
    while spent < max_pilots {
        let width = b.0 - a.0;
        if width < scale.jump_width() {
            return Ok(done(best(&seen), &seen, spent, SearchStatus::Jump));
        }
        let secant = if b.1 > a.1 {
            a.0 + (reference - a.1) * width / (b.1 - a.1)
        } else {
            a.0 + width / 2.0
        };
        let u = secant.clamp(a.0 + 0.1 * width, b.0 - 0.1 * width);
        let r = eval(u, &mut spent, &mut seen)?;
        if matched(r) {
            return Ok(done((u, r), &seen, spent, SearchStatus::Matched));
        }
        if r < reference {
            a = (u, r);
        } else {
            b = (u, r);
        }
    }
    Ok(done(best(&seen), &seen, spent, SearchStatus::Closest))
}
