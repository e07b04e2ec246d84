//! DHSPG, the optimiser of OTOv2 (Chen et al., ICLR 2023), on the groups of `ato-zig`
//! (DESIGN.md §5), with SGD or AdamW as its base step.
//!
//! - **Partition** (once, at `start_pruning`): with d_g the base step's direction for group g
//!   (the gradient for plain SGD), score `s_g = ½ĉ_g + ½r̂_g`, where `c_g = cos(x_g, d_g)`,
//!   `r_g = 1/(‖x_g‖/dim_g + 1e-6)`, each ℓ2-normalised over all groups. The
//!   `K = ⌊N·min(target + tolerance, 0.999)⌋` highest scores are the *redundant* groups.
//! - **Every step** (after the base step x̂ = x − α·d), for redundant non-zero groups:
//!   λ_g = λ, except where ⟨x_g, d_g⟩ < 0:
//!   `LB = −⟨x,d⟩/‖x‖`, `UB = −‖d‖²‖x‖/⟨x,d⟩`, `λ_g = clip(amplify·LB, λ, hat·λ)`, and
//!   `λ_g = (LB + UB)/2` if `λ_g ≥ UB`; then `x̂_g −= α·λ_g·x_g/‖x_g‖` and the half-space
//!   projection `x̂_g := 0 if ⟨x̂_g, x_g⟩ < ε‖x_g‖²`, never past the target sparsity.
//! - Once `⌊target·N⌋` groups are zero, regularisation stops; zero groups stay zero.

use crate::groups::{row_dots, row_sums, GroupSet, GroupSnapshot};
use crate::half_space::half_space_candidates;
use crate::prox::{row_directions, sub_scaled_rows, zero_rows};
use crate::state::StateDict;
use crate::{OptimError, Result};

/// Settings of [`Dhspg`]; defaults are OTOv2's for SGD (DESIGN.md §5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DhspgConfig {
    pub lambda: f64,
    pub amplify: f64,
    pub hat: f64,
    pub epsilon: f64,
    /// Target share of zero groups, in (0, 1).
    pub target: f64,
    pub tolerance: f64,
}

impl Default for DhspgConfig {
    fn default() -> Self {
        Self {
            lambda: 1e-3,
            amplify: 2.0,
            hat: 10.0,
            epsilon: 0.95,
            target: 0.5,
            tolerance: 0.05,
        }
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
        if !(0.0..1.0).contains(&c.epsilon) {
            return Err(OptimError::Config(format!(
                "DHSPG ε = {} is outside [0, 1)",
                c.epsilon
            )));
        }
        Ok(Self {
            config,
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

    /// Marks the `K` highest-scoring groups as redundant (ties: earlier group first).
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
        self.redundant = Some(redundant);
    }

    /// The group part of one DHSPG step after the base step at learning rate `lr`. Before
    /// pruning starts (`pruning == false`) it only keeps zero groups zero; the first call with
    /// `pruning` partitions the groups. Returns the number of groups projected to zero.
    pub fn after_step(
        &mut self,
        groups: &GroupSet,
        before: &GroupSnapshot,
        lr: f64,
        pruning: bool,
    ) -> Result<usize> {
        let hats: Vec<_> = groups
            .gates()
            .iter()
            .map(|g| g.values())
            .collect::<Result<_>>()?;
        // the base step's direction d = (x − x̂)/α
        let dirs: Vec<_> = before
            .per_gate
            .iter()
            .zip(&hats)
            .map(|(x, h)| Ok((x - h)?.affine(1.0 / lr, 0.0)?))
            .collect::<Result<_>>()?;
        if pruning && self.redundant.is_none() {
            let scores = Self::scores(&before.per_gate, &dirs)?;
            self.partition_by_scores(&scores);
        }
        let was_zero: Vec<Vec<bool>> = before
            .per_gate
            .iter()
            .map(|x| Ok(row_sums(&x.sqr()?)?.into_iter().map(|n| n == 0.0).collect()))
            .collect::<Result<_>>()?;
        let zeros: usize = was_zero.iter().flatten().filter(|&&z| z).count();
        let n = groups.total_groups();
        let target = (self.config.target * n as f64).floor() as usize;
        let active = match &self.redundant {
            Some(r) if pruning && zeros < target => r.clone(),
            _ => {
                for ((gate, hat), z) in groups.gates().iter().zip(&hats).zip(&was_zero) {
                    gate.set_values(&zero_rows(hat, z)?)?;
                }
                return Ok(0);
            }
        };
        let mut trial = Vec::with_capacity(hats.len());
        let mut candidates = Vec::new();
        for (l, ((x, d), hat)) in before.per_gate.iter().zip(&dirs).zip(&hats).enumerate() {
            let dots = row_dots(x, d)?;
            let xn = row_sums(&x.sqr()?)?;
            let dn = row_sums(&d.sqr()?)?;
            let coef: Vec<f32> = (0..dots.len())
                .map(|g| {
                    if !active[l][g] || was_zero[l][g] {
                        return 0.0;
                    }
                    let lam = group_lambda(
                        &self.config,
                        dots[g] as f64,
                        (xn[g] as f64).sqrt(),
                        (dn[g] as f64).sqrt(),
                    );
                    (lr * lam) as f32
                })
                .collect();
            let h = sub_scaled_rows(hat, &row_directions(x)?, &coef)?;
            let h = zero_rows(&h, &was_zero[l])?;
            for (ratio, g) in half_space_candidates(&h, x, &active[l], self.config.epsilon)? {
                candidates.push((ratio, l, g));
            }
            trial.push(h);
        }
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        candidates.truncate(target - zeros);
        let mut projected: Vec<Vec<bool>> = groups
            .gates()
            .iter()
            .map(|g| vec![false; g.width])
            .collect();
        for &(_, l, g) in &candidates {
            projected[l][g] = true;
        }
        for ((gate, h), p) in groups.gates().iter().zip(&trial).zip(&projected) {
            gate.set_values(&zero_rows(h, p)?)?;
        }
        Ok(candidates.len())
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
