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
//!
//! With `"auto"` the plan also keeps two of the authors' proportions when C departs from their
//! rate: the learning rates of the C steps sum to at least `ato.controller_lr_sum` (the lr is
//! raised to lr_sum / C when C·lr falls short: [`ControllerPlan::lr_scale`]), and each
//! controller image is seen about once per epoch, as with the authors' subset share of
//! 1/hyper_step: a controller batch of ⌈|D_c|·E_w / C⌉ images over the E_w window epochs
//! ([`ControllerPlan::batch_size`]). On a long window (C = ⌈W/20⌉ ≥ lr_sum / lr) neither
//! changes anything: lr stays the configured one and the batch is the training batch.

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
    /// Target steps per epoch.
    per_epoch: u64,
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
            per_epoch: spe,
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

    /// The factor on the controller's lr: with `"auto"`, max(1, lr_sum / (C·lr)), so that
    /// the C steps' learning rates sum to at least `lr_sum`; 1 with an explicit hyper_step.
    pub fn lr_scale(&self, lr: f64, lr_sum: f64) -> f64 {
        match self.rule {
            Rule::Spread(c) if c > 0 && lr > 0.0 => (lr_sum / (c as f64 * lr)).max(1.0),
            _ => 1.0,
        }
    }

    /// Images per controller step for a controller subset of `subset` images and a training
    /// batch of `train_batch`: with `"auto"`, ⌈subset·E_w / C⌉ (each subset image about once
    /// per window epoch), at most the training batch; else the training batch. Never more
    /// than the subset, never 0.
    pub fn batch_size(&self, subset: usize, train_batch: usize) -> usize {
        let most = train_batch.min(subset).max(1);
        match self.rule {
            Rule::Spread(c) if c > 0 && self.per_epoch > 0 => {
                let epochs = self.window.div_ceil(self.per_epoch);
                ((subset as u64 * epochs).div_ceil(c) as usize).clamp(1, most)
            }
            _ => most,
        }
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
    fn auto_keeps_the_authors_lr_sum_and_one_pass_over_the_subset_per_epoch() {
        // the demo: 14 steps per epoch, window epochs 2..10 → W = 112, C = max(6, 40) = 40
        let p = ControllerPlan::new(HyperStep::Auto, 40, 2, 10, 14);
        assert_eq!(p.total(), 40);
        // 40 steps at 1e-3 sum to 0.04 < 0.4: lr × 10
        assert!((p.lr_scale(1e-3, 0.4) - 10.0).abs() < 1e-12);
        // a 45-image subset over 8 epochs of 5 steps: 9 images per step
        assert_eq!(p.batch_size(45, 64), 9);
        // a long window keeps the authors' lr and the training batch: CIFAR-10, 391 steps per
        // epoch, epochs 20..100 → C = 1,564, subset 2,500
        let long = ControllerPlan::new(HyperStep::Auto, 40, 20, 100, 391);
        assert_eq!(long.total(), 1_564);
        assert_eq!(long.lr_scale(1e-3, 0.4), 1.0);
        assert_eq!(long.batch_size(2_500, 128), 128);
        // an explicit hyper_step is the authors' rule: nothing scaled
        let every = ControllerPlan::new(HyperStep::Every(20), 40, 2, 10, 14);
        assert_eq!(every.lr_scale(1e-3, 0.4), 1.0);
        assert_eq!(every.batch_size(45, 64), 45);
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
