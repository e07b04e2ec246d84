//! Runs that differ only in their seed, and their mean ± sample standard deviation: the main
//! table shows `mean ± std (n)` and the accuracy-vs-FLOPs plot error bars of one std.

use super::selection::Report;
use super::RunRecord;

/// Mean, sample standard deviation (n − 1; 0 for one value) and count of `values`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Spread {
    /// `None` when there is no value.
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Self { mean, std, n })
    }

    /// Of a summary field over runs (runs without it are left out).
    pub fn over(
        runs: &[&RunRecord],
        field: impl Fn(&ato_train::SummaryRow) -> Option<f64>,
    ) -> Option<Self> {
        Self::of(
            &runs
                .iter()
                .filter_map(|r| field(&r.summary))
                .collect::<Vec<_>>(),
        )
    }

    /// `mean ± std` in percent with two decimals (the mean alone for one run).
    pub fn pct(s: Option<Self>) -> String {
        match s {
            None => "–".into(),
            Some(s) if s.n == 1 => format!("{:.2}", 100.0 * s.mean),
            Some(s) => format!("{:.2} ± {:.2}", 100.0 * s.mean, 100.0 * s.std),
        }
    }
}

/// Whether two runs differ at most in their seed (same data, model, method and settings).
pub fn same_but_seed(a: &ato_train::SummaryRow, b: &ato_train::SummaryRow) -> bool {
    a.dataset == b.dataset
        && a.model == b.model
        && a.method == b.method
        && a.lambda == b.lambda
        && a.gamma == b.gamma
        && a.t_start == b.t_start
        && a.t_end == b.t_end
        && a.target_flops_reduction == b.target_flops_reduction
        && a.target_group_sparsity == b.target_group_sparsity
        && a.epochs == b.epochs
}

impl<'a> Report<'a> {
    /// The finished runs that differ from `r` at most in their seed, `r` included. Runs
    /// matched per seed (`reference_run`) differ in their knob and target too: they are mates
    /// when they are of the same method and budget.
    pub fn seed_mates(&self, r: &RunRecord) -> Vec<&'a RunRecord> {
        let matched = |o: &RunRecord| self.is_matched_baseline(o);
        self.groups
            .get(&(r.summary.dataset.to_string(), r.summary.model.to_string()))
            .map(|runs| {
                runs.iter()
                    .copied()
                    .filter(|o| {
                        if matched(r) || matched(o) {
                            matched(r) == matched(o)
                                && o.summary.method == r.summary.method
                                && o.summary.epochs == r.summary.epochs
                                && self.budget_of(o) == self.budget_of(r)
                        } else {
                            // an ATO run's controller schedule (config.toml) is a setting too
                            same_but_seed(&o.summary, &r.summary) && o.controller == r.controller
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::Spread;

    #[test]
    fn mean_and_sample_std_by_hand() {
        // 0.90, 0.92, 0.97: mean 0.93, deviations −0.03, −0.01, 0.04, squares sum 0.0026,
        // /2 = 0.0013, std = 0.036056
        let s = Spread::of(&[0.90, 0.92, 0.97]).unwrap();
        assert!((s.mean - 0.93).abs() < 1e-12);
        assert!((s.std - 0.0013f64.sqrt()).abs() < 1e-12);
        assert_eq!(s.n, 3);
        assert_eq!(Spread::pct(Some(s)), "93.00 ± 3.61");
        let one = Spread::of(&[0.5]).unwrap();
        assert_eq!((one.std, one.n), (0.0, 1));
        assert_eq!(Spread::pct(Some(one)), "50.00");
        assert_eq!(Spread::of(&[]), None);
    }
}
