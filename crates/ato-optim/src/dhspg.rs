//! DHSPG, the optimiser of OTOv2 (Chen et al., ICLR 2023), on the groups of `ato-zig`
//! (docs/design.md §5), with SGD or AdamW as its base step.
//!
//! - **Direction**: d_g is the base step's update direction without AdamW's decoupled decay,
//!   `d = (x − x̂)/α − wd·x` on decayed members ([`DecoupledDecay`]), as the reference
//!   applies that decay separately.
//! - **Partition** (once, at `start_pruning`): score `s_g = ½ĉ_g + ½r̂_g`, where
//!   `c_g = cos(x_g, d_g)`, `r_g = 1/(‖x_g‖/dim_g + 1e-6)`, each ℓ2-normalised over all groups.
//!   The `K = ⌊N·min(target + tolerance, 0.999)⌋` highest scores are the *redundant* groups;
//!   then per gate (the reference's guard with `group_divisible = 1`): a gate of one group is
//!   never penalised, and a gate whose groups all scored redundant keeps its lowest-score group
//!   unpenalised, so every gate keeps at least one group.
//! - **Every step** (after the base step x̂ = x − α·d), for redundant non-zero groups:
//!   λ_g = λ, except where ⟨x_g, d_g⟩ < 0:
//!   `LB = −⟨x,d⟩/‖x‖`, `UB = −‖d‖²‖x‖/⟨x,d⟩`, `λ_g = clip(amplify·LB, λ, hat·λ)`, and
//!   `λ_g = (LB + UB)/2` if `λ_g ≥ UB`; then the [`HalfSpaceStep`] (`x̂_g −= α·λ_g·x_g/‖x_g‖`,
//!   `x̂_g := 0 if ⟨x̂_g, x_g⟩ < ε‖x_g‖²`), never projecting past the target sparsity.
//! - Zero groups stay zero; once `⌊target·N⌋` groups are zero, regularisation stops.

use crate::decay::DecoupledDecay;
use crate::groups::{row_dots, row_sums, GroupSet, GroupSnapshot};
use crate::half_space::HalfSpaceStep;
use crate::state::StateDict;
use crate::{OptimError, Result};

/// Settings of [`Dhspg`]. [`DhspgConfig::for_sgd`] and [`DhspgConfig::for_adamw`] hold the
/// reference's defaults for each base optimiser; `Default` is the SGD one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DhspgConfig {
    pub lambda: f64,
    pub amplify: f64,
    pub hat: f64,
    /// ε of the half-space test (the reference's default is 0, its tutorials use 0.95).
    pub epsilon: f64,
    /// Target share of zero groups, in (0, 1).
    pub target: f64,
    pub tolerance: f64,
}

impl DhspgConfig {
    /// With SGD: λ = 1e-3, amplify 2, hat 10 (ε 0.95, target 0.5, tolerance 0.05).
    pub fn for_sgd() -> Self {
        Self {
            lambda: 1e-3,
            amplify: 2.0,
            hat: 10.0,
            epsilon: 0.95,
            target: 0.5,
            tolerance: 0.05,
        }
    }

    /// With AdamW: λ = 1e-2, amplify 20, hat 1e3 (ε 0.95, target 0.5, tolerance 0.05).
    pub fn for_adamw() -> Self {
        Self {
            lambda: 1e-2,
            amplify: 20.0,
            hat: 1e3,
            ..Self::for_sgd()
        }
    }
}

impl Default for DhspgConfig {
    fn default() -> Self {
        Self::for_sgd()
    }
}

/// λ_g for one redundant group from `⟨x,d⟩`, `‖x‖`, `‖d‖`.
pub fn group_lambda(config: &DhspgConfig, dot: f64, x_norm: f64, d_norm: f64) -> f64 {
    if dot >= 0.0 || x_norm == 0.0 {
        return config.lambda;
    }
    let lb = -dot / x_norm;
    let ub = -d_norm * d_norm * x_norm / dot;
    let lam = (config.amplify * lb).clamp(config.lambda, config.hat * config.lambda);
    if lam >= ub {
        (lb + ub) / 2.0
    } else {
        lam
    }
}

/// The dual half-space projected gradient method.
#[derive(Clone, Debug)]
pub struct Dhspg {
    config: DhspgConfig,
    half_space: HalfSpaceStep,
    redundant: Option<Vec<Vec<bool>>>,
}

impl Dhspg {
    pub fn new(config: DhspgConfig) -> Result<Self> {
        let c = &config;
        if !(c.target > 0.0 && c.target < 1.0) {
            return Err(OptimError::Config(format!(
                "DHSPG target group sparsity {} is outside (0, 1)",
                c.target
            )));
        }
        if !(c.lambda >= 0.0 && c.amplify > 0.0 && c.hat >= 1.0 && c.tolerance >= 0.0) {
            return Err(OptimError::Config(format!(
                "DHSPG needs λ ≥ 0, amplify > 0, hat ≥ 1, tolerance ≥ 0 (got {c:?})"
            )));
        }
        let half_space = HalfSpaceStep::new(c.epsilon)?;
        Ok(Self {
            config,
            half_space,
            redundant: None,
        })
    }

    pub fn config(&self) -> &DhspgConfig {
        &self.config
    }

    /// The redundant groups, once partitioned.
    pub fn redundant(&self) -> Option<&[Vec<bool>]> {
        self.redundant.as_deref()
    }

    /// Partition scores `s_g` per gate from the point `x` and direction `d` of every gate.
    pub fn scores(xs: &[candle_core::Tensor], ds: &[candle_core::Tensor]) -> Result<Vec<Vec<f64>>> {
        let mut cos = Vec::new();
        let mut mag = Vec::new();
        for (x, d) in xs.iter().zip(ds) {
            let dim = x.dim(1)? as f64;
            let dots = row_dots(x, d)?;
            let xn = row_sums(&x.sqr()?)?;
            let dn = row_sums(&d.sqr()?)?;
            let c: Vec<f64> = (0..dots.len())
                .map(|g| {
                    let den = (xn[g] as f64).sqrt() * (dn[g] as f64).sqrt();
                    if den > 0.0 {
                        dots[g] as f64 / den
                    } else {
                        0.0
                    }
                })
                .collect();
            let r: Vec<f64> = xn
                .iter()
                .map(|&n2| 1.0 / ((n2 as f64).sqrt() / dim + 1e-6))
                .collect();
            cos.push(c);
            mag.push(r);
        }
        let l2 = |v: &[Vec<f64>]| {
            let n = v.iter().flatten().map(|a| a * a).sum::<f64>().sqrt();
            if n > 0.0 {
                n
            } else {
                1.0
            }
        };
        let (cn, rn) = (l2(&cos), l2(&mag));
        Ok(cos
            .iter()
            .zip(&mag)
            .map(|(c, r)| {
                c.iter()
                    .zip(r)
                    .map(|(c, r)| 0.5 * c / cn + 0.5 * r / rn)
                    .collect()
            })
            .collect())
    }

    /// Marks the `K` highest-scoring groups as redundant (ties: earlier group first), then
    /// applies the per-gate guard: a gate of one group is never redundant, and a gate left
    /// with no non-redundant group keeps its lowest-score one (ties: the later group).
    pub fn partition_by_scores(&mut self, scores: &[Vec<f64>]) {
        let n: usize = scores.iter().map(Vec::len).sum();
        let k =
            (n as f64 * (self.config.target + self.config.tolerance).min(0.999)).floor() as usize;
        let mut all: Vec<(f64, usize, usize)> = scores
            .iter()
            .enumerate()
            .flat_map(|(l, s)| s.iter().enumerate().map(move |(c, &v)| (v, l, c)))
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        let mut redundant: Vec<Vec<bool>> = scores.iter().map(|s| vec![false; s.len()]).collect();
        for &(_, l, c) in all.iter().take(k) {
            redundant[l][c] = true;
        }
        for (r, s) in redundant.iter_mut().zip(scores) {
            if r.len() <= 1 {
                r.fill(false);
            } else if r.iter().all(|&red| red) {
                // the lowest score; among equal scores the later group, which the descending
                // sort above ranks as the least redundant
                let keep = (0..s.len())
                    .min_by(|&a, &b| s[a].total_cmp(&s[b]).then(b.cmp(&a)))
                    .expect("a gate has groups");
                r[keep] = false;
            }
        }
        self.redundant = Some(redundant);
    }

    /// The group part of one DHSPG step after the base step at learning rate `lr`, with
    /// `decay` the base optimiser's decoupled weight decay ([`DecoupledDecay::of`]). Before
    /// pruning starts (`pruning == false`) it only keeps zero groups zero; the first call with
    /// `pruning` partitions the groups. Returns the number of groups projected to zero.
    pub fn after_step(
        &mut self,
        groups: &GroupSet,
        before: &GroupSnapshot,
        lr: f64,
        pruning: bool,
        decay: &DecoupledDecay,
    ) -> Result<usize> {
        let nonzero = before.nonzero_mask()?;
        let zeros = nonzero.dropped_count();
        let target = (self.config.target * groups.total_groups() as f64).floor() as usize;
        if !pruning || (self.redundant.is_some() && zeros >= target) {
            groups.zero_dropped(&nonzero)?;
            return Ok(0);
        }
        let dirs = decay.directions(groups, before, lr)?;
        if self.redundant.is_none() {
            let scores = Self::scores(&before.per_gate, &dirs)?;
            self.partition_by_scores(&scores);
        }
        let redundant = self.redundant.as_ref().expect("partitioned above");
        groups.zero_dropped(&nonzero)?;
        if zeros >= target {
            return Ok(0);
        }
        let mut lambdas = Vec::with_capacity(groups.len());
        for (l, (x, d)) in before.per_gate.iter().zip(&dirs).enumerate() {
            let dots = row_dots(x, d)?;
            let xn = row_sums(&x.sqr()?)?;
            let dn = row_sums(&d.sqr()?)?;
            let lam: Vec<Option<f64>> = (0..dots.len())
                .map(|g| {
                    redundant[l][g].then(|| {
                        group_lambda(
                            &self.config,
                            dots[g] as f64,
                            (xn[g] as f64).sqrt(),
                            (dn[g] as f64).sqrt(),
                        )
                    })
                })
                .collect();
            lambdas.push(lam);
        }
        let projected =
            self.half_space
                .apply(groups, before, &lambdas, lr, Some(target - zeros))?;
        Ok(projected.iter().flatten().filter(|&&p| p).count())
    }

    /// The partition, for checkpoints.
    pub fn state(&self) -> StateDict {
        let mut s = StateDict::new();
        if let Some(r) = &self.redundant {
            s.put_meta(
                "redundant",
                serde_json::to_string(r).expect("bools serialise"),
            );
        }
        s
    }

    pub fn load_state(&mut self, state: &StateDict) -> Result<()> {
        self.redundant = match state.meta.get("redundant") {
            None => None,
            Some(text) => Some(
                serde_json::from_str(text)
                    .map_err(|e| OptimError::State(format!("`redundant`: {e}")))?,
            ),
        };
        Ok(())
    }
}
