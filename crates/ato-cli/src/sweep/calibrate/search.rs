//! The knob search of matched FLOPs: a monotone response (FLOPs reduction, increasing in the
//! knob) is brought within ± a tolerance of a reference by bracketing (steps of ×4 for λ, ±0.15
//! for a share) and then a safeguarded secant (regula falsi kept at least 10% inside the
//! bracket), with at most `max_evals` evaluations (pilot runs).

use anyhow::Result;

/// How a knob moves: on a log scale (λ) or a linear one (a share in (0, 1)), within bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KnobScale {
    pub log: bool,
    pub lo: f64,
    pub hi: f64,
}

impl KnobScale {
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
    /// The method aims at the reference itself (HESSO, magnitude): no search.
    ByConstruction,
}

/// The outcome of a search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchResult {
    pub value: f64,
    pub achieved: f64,
    pub evaluations: usize,
    pub status: SearchStatus,
}

/// Searches `start`, then brackets and refines, until `response(x)` is within `tolerance` of
/// `reference` or `max_evals` evaluations are spent.
pub fn search(
    response: &mut dyn FnMut(f64) -> Result<f64>,
    start: f64,
    reference: f64,
    tolerance: f64,
    scale: KnobScale,
    max_evals: usize,
) -> Result<SearchResult> {
    let (ulo, uhi) = (scale.to_u(scale.lo), scale.to_u(scale.hi));
    let mut evals = 0;
    // (u, response) of every evaluation so far
    let mut seen: Vec<(f64, f64)> = Vec::new();
    let mut eval = |u: f64, seen: &mut Vec<(f64, f64)>| -> Result<f64> {
        let r = response(scale.to_x(u))?;
        seen.push((u, r));
        Ok(r)
    };
    let best = |seen: &[(f64, f64)]| -> (f64, f64) {
        *seen
            .iter()
            .min_by(|a, b| (a.1 - reference).abs().total_cmp(&(b.1 - reference).abs()))
            .expect("one evaluation")
    };
    let done = |(u, r): (f64, f64), evals: usize, status| SearchResult {
        value: scale.to_x(u),
        achieved: r,
        evaluations: evals,
        status,
    };
    let mut u = scale.to_u(start.clamp(scale.lo, scale.hi));
    let mut r = eval(u, &mut seen)?;
    evals += 1;
    if (r - reference).abs() <= tolerance {
        return Ok(done((u, r), evals, SearchStatus::Matched));
    }
    // bracket: (u_low, r_low) below the reference, (u_high, r_high) above
    let (mut low, mut high) = if r < reference {
        (Some((u, r)), None)
    } else {
        (None, Some((u, r)))
    };
    while low.is_none() || high.is_none() {
        if evals >= max_evals {
            return Ok(done(best(&seen), evals, SearchStatus::Closest));
        }
        let going_up = high.is_none();
        let bound = if going_up { uhi } else { ulo };
        let at_bound = (u - bound).abs() < 1e-12;
        if at_bound {
            return Ok(done(best(&seen), evals, SearchStatus::Unreachable));
        }
        u = if going_up {
            (u + scale.step()).min(uhi)
        } else {
            (u - scale.step()).max(ulo)
        };
        r = eval(u, &mut seen)?;
        evals += 1;
        if (r - reference).abs() <= tolerance {
            return Ok(done((u, r), evals, SearchStatus::Matched));
        }
        if r < reference {
            low = Some((u, r));
        } else {
            high = Some((u, r));
        }
    }
    let (mut a, mut b) = (low.expect("bracketed"), high.expect("bracketed"));
    while evals < max_evals {
        let width = b.0 - a.0;
        let secant = if b.1 > a.1 {
            a.0 + (reference - a.1) * width / (b.1 - a.1)
        } else {
            a.0 + width / 2.0
        };
        let u = secant.clamp(a.0 + 0.1 * width, b.0 - 0.1 * width);
        let r = eval(u, &mut seen)?;
        evals += 1;
        if (r - reference).abs() <= tolerance {
            return Ok(done((u, r), evals, SearchStatus::Matched));
        }
        if r < reference {
            a = (u, r);
        } else {
            b = (u, r);
        }
    }
    Ok(done(best(&seen), evals, SearchStatus::Closest))
}
