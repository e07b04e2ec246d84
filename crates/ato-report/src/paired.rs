//! Paired differences over seeds and their 95% t-interval: what lets the report rank a
//! baseline against ATO, or say that it cannot.
//!
//! A baseline run and the ATO run it was matched to share their seed, hence their
//! initialisation stream and data order, so the per-seed difference `d_s = top1(baseline, s)
//! − top1(ATO, s)` removes what the seed does to both. Over n ≥ 2 seeds the interval is
//! `d̄ ± t(0.975, n − 1) · s_d / √n` (Student's t, `s_d` the sample standard deviation). The
//! verdict is `better` (the baseline above ATO) when the whole interval is above 0, `worse`
//! when it is below, `indistinguishable` when it holds 0; with one seed there is no interval
//! and no verdict.

use super::seeds::Spread;

/// Two-sided 95% quantiles of Student's t, `t(0.975, df)` for df = 1..=30.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// `t(0.975, df)`; beyond 30 degrees of freedom the Cornish–Fisher expansion
/// `z + (z³ + z)/(4 df) + (5z⁵ + 16z³ + 3z)/(96 df²)` (z = 1.95996), within 1e-4 of the exact
/// quantile there.
pub fn t975(df: usize) -> Option<f64> {
    match df {
        0 => None,
        1..=30 => Some(T975[df - 1]),
        _ => {
            let (z, n) = (1.959_964f64, df as f64);
            let first = (z.powi(3) + z) / (4.0 * n);
            let second = (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * n * n);
            Some(z + first + second)
        }
    }
}

/// What the interval says about a baseline against ATO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The interval lies above 0: the baseline beats ATO.
    Better,
    /// The interval lies below 0.
    Worse,
    /// The interval holds 0: no ranking is claimed.
    Indistinguishable,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Indistinguishable => "indistinguishable",
        }
    }
}

/// The mean paired difference over n seeds with its 95% interval (none for n = 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairedDifference {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation of the differences (n − 1); 0 for one pair.
    pub std: f64,
    /// (low, high) of the 95% t-interval; `None` with fewer than two pairs.
    pub interval: Option<(f64, f64)>,
}

impl PairedDifference {
    /// Of the differences `d` (baseline − ATO, one per seed); `None` for none.
    pub fn of(d: &[f64]) -> Option<Self> {
        let Spread { mean, std, n } = Spread::of(d)?;
        let interval = t975(n - 1).map(|t| {
            let half = t * std / (n as f64).sqrt();
            (mean - half, mean + half)
        });
        Some(Self {
            n,
            mean,
            std,
            interval,
        })
    }

    /// The ranking word, only where there is an interval of non-zero width (equal differences
    /// on every seed give a zero-width t-interval, which supports no claim).
    pub fn verdict(&self) -> Option<Verdict> {
        let (lo, hi) = self.interval?;
        // (a top-1 difference moves in steps of one test image, ≥ 1e-4: below 1e-12 the
        // spread is rounding, not data)
        if self.std < 1e-12 {
            return None;
        }
        Some(if lo > 0.0 {
            Verdict::Better
        } else if hi < 0.0 {
            Verdict::Worse
        } else {
            Verdict::Indistinguishable
        })
    }

    /// `+1.23 [+0.40, +2.06]` in points (the differences are shares), or `+1.23 (n = 1, no
    /// interval)`.
    pub fn text(&self) -> String {
        let p = |v: f64| format!("{:+.2}", 100.0 * v);
        match self.interval {
            Some((lo, hi)) => format!("{} [{}, {}]", p(self.mean), p(lo), p(hi)),
            None => format!("{} (n = 1, no interval)", p(self.mean)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_interval_by_hand() {
        // d = 0.02, 0.01, 0.04, 0.03: mean 0.025, deviations −0.005, −0.015, 0.015, 0.005,
        // squares 0.0005, /3 → s = 0.0129099; t(0.975, 3) = 3.182;
        // half-width 3.182 · 0.0129099 / 2 = 0.0205397 → [0.0044603, 0.0455397]
        let p = PairedDifference::of(&[0.02, 0.01, 0.04, 0.03]).unwrap();
        assert_eq!(p.n, 4);
        assert!((p.mean - 0.025).abs() < 1e-12);
        assert!((p.std - (0.0005f64 / 3.0).sqrt()).abs() < 1e-12);
        let (lo, hi) = p.interval.unwrap();
        assert!((lo - 0.004_460_3).abs() < 1e-6, "{lo}");
        assert!((hi - 0.045_539_7).abs() < 1e-6, "{hi}");
        assert_eq!(p.verdict(), Some(Verdict::Better));
        assert_eq!(p.text(), "+2.50 [+0.45, +4.55]");
        // the same differences negated: worse
        let q = PairedDifference::of(&[-0.02, -0.01, -0.04, -0.03]).unwrap();
        assert_eq!(q.verdict(), Some(Verdict::Worse));
        // three seeds that straddle 0: d = 0.01, −0.02, 0.02, mean 0.00333, s = 0.020817,
        // t(0.975, 2) = 4.303 → ±0.051717: indistinguishable
        let r = PairedDifference::of(&[0.01, -0.02, 0.02]).unwrap();
        let (lo, hi) = r.interval.unwrap();
        assert!((hi - lo - 2.0 * 4.303 * 0.020_816_66 / 3f64.sqrt()).abs() < 1e-6);
        assert_eq!(r.verdict(), Some(Verdict::Indistinguishable));
    }

    #[test]
    fn equal_differences_on_every_seed_give_no_verdict() {
        let p = PairedDifference::of(&[0.011, 0.011, 0.011]).unwrap();
        let (lo, hi) = p.interval.unwrap();
        assert!(hi - lo < 1e-12 && (lo - 0.011).abs() < 1e-12, "{lo} {hi}");
        assert_eq!(p.verdict(), None);
        // negative control: one seed a test image apart gives a width and a word
        let q = PairedDifference::of(&[0.011, 0.011, 0.012]).unwrap();
        assert_eq!(q.verdict(), Some(Verdict::Better));
    }

    #[test]
    fn one_seed_has_no_interval_and_no_verdict() {
        let p = PairedDifference::of(&[0.05]).unwrap();
        assert_eq!(p.interval, None);
        assert_eq!(p.verdict(), None);
        assert_eq!(p.text(), "+5.00 (n = 1, no interval)");
        assert_eq!(PairedDifference::of(&[]), None);
    }

    #[test]
    fn t_quantiles_match_the_table_and_the_expansion() {
        assert_eq!(t975(0), None);
        assert_eq!(t975(1), Some(12.706));
        assert_eq!(t975(4), Some(2.776));
        // exact t(0.975, 40) = 2.0211, t(0.975, 120) = 1.9799
        assert!((t975(40).unwrap() - 2.0211).abs() < 2e-4);
        assert!((t975(120).unwrap() - 1.9799).abs() < 1e-4);
        // the expansion continues the table: at df = 30 it gives 2.0423 (table 2.042)
        let (z, n) = (1.959_964f64, 30.0);
        let cf = z
            + (z.powi(3) + z) / (4.0 * n)
            + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * n * n);
        assert!((cf - 2.042).abs() < 1e-3);
    }
}
