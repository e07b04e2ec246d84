//! HESSO, the optimiser of OTOv3 (Chen et al., 2023), on the groups of `ato-zig`, as the
//! authors' code (`only_train_once/optimizer/hesso.py`) runs it, with the trainer's SGD or
//! AdamW as its base step.
//!
//! Steps are counted from 1 (`n`, one per [`Hesso::after_step`]). With start step S, P periods
//! over `pruning_steps` steps and `D = pruning_steps / P`:
//!
//! - **Selection** at `n = S + 1 + p·D` (p < P, target not yet reached): score every group by
//!   [`hesso_saliency`] on the point x before the step and the base step's direction d
//!   ([`DecoupledDecay::directions`]) and mark the least important not-yet-pruned groups
//!   *active*, never a gate's last kept group:
//!   - group target t: `⌊N·min(t, .999)⌋` groups, `⌊·/P⌋` per period, the last period takes
//!     the remainder; a gate's last kept group met in saliency order is passed over and, by
//!     [`LastGroup`], the next group (from any gate) takes its place (`Next`, ours) or the
//!     period selects one group fewer and the target falls by one (`Lower`, the reference);
//!   - MACs target r: by ascending saliency until the model's cost has fallen by `r·(p+1)/P`
//!     of its full cost ([`drop_in_order`]).
//! - **Every step**, after the base step, with `t = (n − S) mod D`: active rows are multiplied
//!   by `(D − t − 1)/(D − t)` and pruned rows set to zero. A period's first step has t = 1
//!   (as in the reference), so active rows fall linearly to exactly zero at `t = D − 1`, when
//!   they are committed to the pruned set; the period's last step (t = 0) only keeps them zero.

use crate::budget::{drop_in_order, reduction, WidthCost};
use crate::decay::DecoupledDecay;
use crate::groups::{row_sums, GroupSet, GroupSnapshot};
use crate::saliency::{ascending_order, hesso_saliency};
use crate::state::StateDict;
use crate::{OptimError, Result};
use ato_zig::Mask;
use candle_core::Tensor;
use std::sync::Arc;

/// The schedule of [`Hesso`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HessoConfig {
    /// S: selection starts at step S + 1.
    pub start_step: u64,
    /// Steps the pruning periods span.
    pub pruning_steps: u64,
    /// P, the number of pruning periods.
    pub periods: usize,
}

/// What HESSO prunes towards.
#[derive(Clone)]
pub enum HessoTarget {
    /// A share of all groups, in (0, 1).
    GroupSparsity(f64),
    /// A share of the full model's cost to remove, in (0, 1).
    Macs {
        reduction: f64,
        cost: Arc<dyn WidthCost + Send + Sync>,
    },
}

impl std::fmt::Debug for HessoTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::GroupSparsity(t) => write!(f, "GroupSparsity({t})"),
            Self::Macs { reduction, .. } => write!(f, "Macs {{ reduction: {reduction} }}"),
        }
    }
}

/// What a group-target selection does when the next group in saliency order is its gate's last
/// kept one (which is never pruned).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LastGroup {
    /// The next group in saliency order, from any gate, takes its place: every period selects
    /// its full quota (ours).
    #[default]
    Next,
    /// The period selects one group fewer and the target falls by one group: the run ends
    /// below the target (only_train_once's HESSO, whose target is a group count).
    Lower,
}

/// The hybrid efficient structured sparse optimiser.
#[derive(Clone, Debug)]
pub struct Hesso {
    config: HessoConfig,
    target: HessoTarget,
    /// D, steps per period.
    duration: u64,
    /// Groups to select per period (group target).
    per_period: Vec<usize>,
    target_groups: usize,
    last_group: LastGroup,
    steps: u64,
    period: usize,
    pruned: Vec<Vec<bool>>,
    active: Vec<Vec<bool>>,
}

fn count(m: &[Vec<bool>]) -> usize {
    m.iter().flatten().filter(|&&b| b).count()
}

impl Hesso {
    /// HESSO over gates of `widths` channels.
    pub fn new(config: HessoConfig, target: HessoTarget, widths: &[usize]) -> Result<Self> {
        if config.periods == 0 || config.pruning_steps < config.periods as u64 {
            return Err(OptimError::Config(format!(
                "HESSO needs P ≥ 1 periods and pruning_steps ≥ P (got {config:?})"
            )));
        }
        let share = match &target {
            HessoTarget::GroupSparsity(t) => *t,
            HessoTarget::Macs { reduction, .. } => *reduction,
        };
        if !(share > 0.0 && share < 1.0) {
            return Err(OptimError::Config(format!(
                "HESSO target {target:?} is outside (0, 1)"
            )));
        }
        let n: usize = widths.iter().sum();
        let target_groups = match target {
            HessoTarget::GroupSparsity(t) => (n as f64 * t.min(0.999)).floor() as usize,
            HessoTarget::Macs { .. } => 0,
        };
        let p = config.periods;
        let mut per_period = vec![target_groups / p; p];
        per_period[p - 1] = target_groups - (target_groups / p) * (p - 1);
        let none: Vec<Vec<bool>> = widths.iter().map(|&w| vec![false; w]).collect();
        Ok(Self {
            duration: config.pruning_steps / p as u64,
            config,
            target,
            per_period,
            target_groups,
            last_group: LastGroup::Next,
            steps: 0,
            period: 0,
            pruned: none.clone(),
            active: none,
        })
    }

    /// `self` with `rule` for a gate's last kept group; `Lower` needs a group target (a MACs
    /// target has no group count to lower).
    pub fn with_last_group(mut self, rule: LastGroup) -> Result<Self> {
        if rule == LastGroup::Lower && matches!(self.target, HessoTarget::Macs { .. }) {
            return Err(OptimError::Config(
                "HESSO's last-group rule `lower` lowers a group-count target; the target here \
                 is a MACs reduction"
                    .into(),
            ));
        }
        self.last_group = rule;
        Ok(self)
    }

    /// The groups the run aims to prune (group target; lowered under [`LastGroup::Lower`]).
    pub fn target_groups(&self) -> usize {
        self.target_groups
    }

    pub fn config(&self) -> &HessoConfig {
        &self.config
    }

    pub fn target(&self) -> &HessoTarget {
        &self.target
    }

    /// Groups to select in each period (group target; empty meaning for a MACs target).
    pub fn per_period(&self) -> &[usize] {
        &self.per_period
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Periods started.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Groups pruned (committed), per gate.
    pub fn pruned(&self) -> &[Vec<bool>] {
        &self.pruned
    }

    /// Groups being shrunk in the current period, per gate.
    pub fn active(&self) -> &[Vec<bool>] {
        &self.active
    }

    /// The groups kept: neither pruned nor being shrunk.
    pub fn kept(&self) -> Mask {
        Mask::from_keep(
            self.pruned
                .iter()
                .zip(&self.active)
                .map(|(p, a)| p.iter().zip(a).map(|(&p, &a)| !p && !a).collect())
                .collect(),
        )
    }

    /// The factor active rows are multiplied by at phase `t` of a period of `duration` steps.
    pub fn shrink_factor(duration: u64, t: u64) -> f64 {
        (duration - t - 1) as f64 / (duration - t) as f64
    }

    /// Whether the next [`Hesso::after_step`] selects groups, and so needs the snapshot.
    pub fn needs_snapshot(&self) -> bool {
        let n = self.steps + 1;
        let s = self.config.start_step;
        n > s && (n - s - 1).is_multiple_of(self.duration) && self.period < self.config.periods
    }

    /// Whether the point `x` (one matrix per gate) already meets the target.
    fn reached(&self, xs: &[Tensor]) -> Result<bool> {
        let zero: Vec<Vec<bool>> = xs
            .iter()
            .map(|x| Ok(row_sums(&x.sqr()?)?.into_iter().map(|n| n == 0.0).collect()))
            .collect::<Result<_>>()?;
        Ok(match &self.target {
            HessoTarget::GroupSparsity(_) => count(&zero) >= self.target_groups,
            HessoTarget::Macs { reduction: r, cost } => {
                reduction(cost.as_ref(), &Mask::from_dropped(&zero)) >= *r
            }
        })
    }

    /// Marks the groups of period `self.period` active from `scores` (higher = more
    /// important). Returns how many were selected.
    pub fn select(&mut self, scores: &[Vec<f64>]) -> usize {
        let order: Vec<(usize, usize)> = ascending_order(scores)
            .into_iter()
            .filter(|&(l, c)| !self.pruned[l][c])
            .collect();
        let chosen = match &self.target {
            HessoTarget::GroupSparsity(_) => {
                let mut want = self.per_period[self.period];
                let mut kept = Mask::from_dropped(&self.pruned).kept_counts();
                let mut chosen = self.pruned.clone();
                for (l, c) in order {
                    if want == 0 {
                        break;
                    }
                    if kept[l] > 1 {
                        chosen[l][c] = true;
                        kept[l] -= 1;
                        want -= 1;
                    } else if self.last_group == LastGroup::Lower {
                        want -= 1;
                        self.target_groups -= 1;
                    }
                }
                chosen
            }
            HessoTarget::Macs { reduction: r, cost } => {
                let goal = r * (self.period + 1) as f64 / self.config.periods as f64;
                drop_in_order(
                    cost.as_ref(),
                    &Mask::from_dropped(&self.pruned),
                    &order,
                    goal,
                )
                .dropped()
            }
        };
        for ((a, c), p) in self.active.iter_mut().zip(&chosen).zip(&self.pruned) {
            for ((a, &c), &p) in a.iter_mut().zip(c).zip(p) {
                *a = c && !p;
            }
        }
        self.period += 1;
        count(&self.active)
    }

    fn commit(&mut self) {
        for (p, a) in self.pruned.iter_mut().zip(&mut self.active) {
            for (p, a) in p.iter_mut().zip(a.iter_mut()) {
                *p |= *a;
                *a = false;
            }
        }
    }

    /// HESSO's part of step n after the base step at learning rate `lr`: selection when due
    /// (`before`, the values before the step, is then required; see
    /// [`Hesso::needs_snapshot`]), the shrink of active rows, zero pruned rows, and the commit
    /// at the period's end. Returns the number of groups selected at this step.
    pub fn after_step(
        &mut self,
        groups: &GroupSet,
        before: Option<&GroupSnapshot>,
        lr: f64,
        decay: &DecoupledDecay,
    ) -> Result<usize> {
        let widths: Vec<usize> = groups.gates().iter().map(|g| g.width).collect();
        if widths != self.pruned.iter().map(Vec::len).collect::<Vec<_>>() {
            return Err(OptimError::Config(format!(
                "HESSO was built for gate widths {:?}, the groups have {widths:?}",
                self.pruned.iter().map(Vec::len).collect::<Vec<_>>()
            )));
        }
        let mut selected = 0;
        if self.needs_snapshot() {
            let before = before.ok_or_else(|| {
                OptimError::Config(format!(
                    "HESSO selects at step {} and needs the snapshot taken before it",
                    self.steps + 1
                ))
            })?;
            if !self.reached(&before.per_gate)? {
                let d = decay.directions(groups, before, lr)?;
                selected = self.select(&hesso_saliency(&before.per_gate, &d)?);
            }
        }
        self.steps += 1;
        let n = self.steps;
        let s = self.config.start_step;
        if n <= s {
            return Ok(selected);
        }
        let t = (n - s) % self.duration;
        let f = Self::shrink_factor(self.duration, t) as f32;
        for ((gate, p), a) in groups.gates().iter().zip(&self.pruned).zip(&self.active) {
            if p.iter().chain(a).any(|&b| b) {
                let factors: Vec<f32> = p
                    .iter()
                    .zip(a)
                    .map(|(&p, &a)| match (p, a) {
                        (true, _) => 0.0,
                        (false, true) => f,
                        _ => 1.0,
                    })
                    .collect();
                gate.scale(&Tensor::from_vec(factors, gate.width, gate.device())?)?;
            }
        }
        if t == self.duration - 1 {
            self.commit();
        }
        Ok(selected)
    }

    /// Steps, period, pruned and active groups, for checkpoints (the target and its cost
    /// come from the run's configuration).
    pub fn state(&self) -> StateDict {
        let mut s = StateDict::new();
        s.put_meta("steps", self.steps);
        s.put_meta("period", self.period);
        s.put_meta("target_groups", self.target_groups);
        let json = |m: &Vec<Vec<bool>>| serde_json::to_string(m).expect("bools serialise");
        s.put_meta("pruned", json(&self.pruned));
        s.put_meta("active", json(&self.active));
        s
    }

    pub fn load_state(&mut self, state: &StateDict) -> Result<()> {
        let mask = |key: &str| -> Result<Vec<Vec<bool>>> {
            let text: String = state.meta(key)?;
            let m: Vec<Vec<bool>> = serde_json::from_str(&text)
                .map_err(|e| OptimError::State(format!("`{key}`: {e}")))?;
            let shape: Vec<usize> = m.iter().map(Vec::len).collect();
            let want: Vec<usize> = self.pruned.iter().map(Vec::len).collect();
            if shape != want {
                return Err(OptimError::State(format!(
                    "`{key}` has gate widths {shape:?}, HESSO has {want:?}"
                )));
            }
            Ok(m)
        };
        let (pruned, active) = (mask("pruned")?, mask("active")?);
        self.steps = state.meta("steps")?;
        self.period = state.meta("period")?;
        // lowered by `LastGroup::Lower`; checkpoints without it kept the configured count
        if let Ok(t) = state.meta("target_groups") {
            self.target_groups = t;
        }
        self.pruned = pruned;
        self.active = active;
        Ok(())
    }
}
