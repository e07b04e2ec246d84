//! When the controller steps: the [`ControllerPlan`] turns `ato.hyper_step` into a number of
//! controller steps after each target step of the window [T_start, T_end).
//!
//! The authors take one controller step every 20 target steps; on ImageNet that is ~12,500
//! steps before T_end, far more than the controller needs. On a small data set the same rule
//! gives a handful (1,437 images, batch 128, 15 epochs: 3 steps), and the controller never
//! reaches its budget. `hyper_step = "auto"` therefore counts the window's W target steps and
//! takes `C = max(⌈W/20⌉, min_controller_steps)` controller steps, spread evenly: after window
//! step k (0-based) it takes `⌊(k+1)·C/W⌋ − ⌊k·C/W⌋` of them — one every W/C steps when
//! C ≤ W, several per target step when C > W. Large runs keep the authors' rate; small runs
//! get enough updates to reach p whatever the data set size.

use crate::config::HyperStep;

/// The authors' rate: one controller step per this many target steps.
pub const AUTHORS_HYPER_STEP: u64 = 20;

/// Controller steps per target step over the controller window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControllerPlan {
    /// First global step of the window (T_start · steps per epoch).
    start: u64,
    /// W, target steps in the window.
    window: u64,
    rule: Rule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// After every target step whose global index + 1 is a multiple of N.
    Every(u64),
    /// C steps spread evenly over the window.
    Spread(u64),
}

impl ControllerPlan {
    /// The plan for a window of epochs [t_start, t_end) of `steps_per_epoch` steps each.
    pub fn new(
        hyper_step: HyperStep,
        min_steps: usize,
        t_start: usize,
        t_end: usize,
        steps_per_epoch: usize,
    ) -> Self {
        let spe = steps_per_epoch as u64;
        let window = (t_end.saturating_sub(t_start)) as u64 * spe;
        let rule = match hyper_step {
            HyperStep::Every(n) => Rule::Every(n.max(1) as u64),
            HyperStep::Auto => {
                Rule::Spread(window.div_ceil(AUTHORS_HYPER_STEP).max(min_steps as u64))
            }
        };
        Self {
            start: t_start as u64 * spe,
            window,
            rule,
        }
    }

    /// Controller steps to take after global target step `step` (0-based), which lies in the
    /// window (the caller checks the epoch).
    pub fn steps_after(&self, step: u64) -> u64 {
        match self.rule {
            Rule::Every(n) => u64::from((step + 1).is_multiple_of(n)),
            Rule::Spread(c) => {
                if self.window == 0 || step < self.start {
                    return 0;
                }
                let k = step - self.start;
                (k + 1) * c / self.window - k * c / self.window
            }
        }
    }

    /// Whether global target step `step` is the last of the window.
    pub fn is_window_end(&self, step: u64) -> bool {
        self.window > 0 && step + 1 == self.start + self.window
    }

    /// Whether the plan promises the budget (`hyper_step = "auto"`), so the window ends with
    /// the settling steps of [`super::Ato`].
    pub fn is_auto(&self) -> bool {
        matches!(self.rule, Rule::Spread(_))
    }

    /// Controller steps the whole window takes.
    pub fn total(&self) -> u64 {
        match self.rule {
            Rule::Every(n) => {
                let end = self.start + self.window;
                end / n - self.start / n
            }
            Rule::Spread(c) if self.window > 0 => c,
            Rule::Spread(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_spreads_at_least_the_minimum_over_a_short_window() {
        // 12 steps per epoch, window epochs 2..8: W = 72, C = max(⌈72/20⌉, 400) = 400
        let p = ControllerPlan::new(HyperStep::Auto, 400, 2, 8, 12);
        assert_eq!(p.total(), 400);
        let per_step: Vec<u64> = (24..96).map(|t| p.steps_after(t)).collect();
        assert_eq!(per_step.iter().sum::<u64>(), 400);
        // 400/72 = 5.56: every target step takes 5 or 6
        assert!(per_step.iter().all(|&n| n == 5 || n == 6), "{per_step:?}");
        assert_eq!(p.steps_after(23), 0);
        assert!(p.is_auto() && p.is_window_end(95) && !p.is_window_end(94));
    }

    #[test]
    fn auto_keeps_the_authors_rate_on_a_long_window() {
        // 2,503 steps per epoch (ImageNet, batch 512), epochs 25..125: W = 250,300 → C = 12,515
        let p = ControllerPlan::new(HyperStep::Auto, 400, 25, 125, 2503);
        assert_eq!(p.total(), 12_515);
        let start = 25 * 2503;
        let first: Vec<u64> = (start..start + 40).map(|t| p.steps_after(t)).collect();
        // one step per 20 target steps
        assert_eq!(first.iter().sum::<u64>(), 2);
        assert!(first.iter().all(|&n| n <= 1));
    }

    #[test]
    fn an_explicit_hyper_step_is_every_nth_global_step() {
        let p = ControllerPlan::new(HyperStep::Every(20), 400, 2, 8, 12);
        assert_eq!(p.steps_after(19), 1);
        assert_eq!(p.steps_after(20), 0);
        // steps 24..96 contain 39, 59, 79 → 3: the small-data failure the auto rule fixes
        assert_eq!(p.total(), 3);
        assert_eq!((24..96).map(|t| p.steps_after(t)).sum::<u64>(), 3);
    }
}
