//! The model as one flat host vector: parameter values, gradients (with weight decay), the
//! preconditioner, where each group sits, the free coordinates, and the statistics of the
//! probe batches' gradients. Host f64 arithmetic in a fixed order, so probes are deterministic.

use crate::groups::GroupSet;
use crate::params::ParamSet;
use crate::{OptimError, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use std::collections::HashMap;

/// Where each group's elements sit in the flat vector: per gate, per member,
/// (offset of the member, row length).
pub(crate) type GroupLayout = Vec<Vec<(usize, usize)>>;

pub(crate) fn flatten(tensors: impl Iterator<Item = Tensor>) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for t in tensors {
        out.extend(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// The parameter values, in [`ParamSet`] order.
pub(crate) fn values(params: &ParamSet) -> Result<Vec<f32>> {
    flatten(params.iter().map(|p| p.var.as_tensor().clone()))
}

/// Sets the parameters to the flat values `x`.
pub(crate) fn set_values(params: &ParamSet, x: &[f32]) -> Result<()> {
    let mut off = 0;
    for p in params {
        let n = p.var.elem_count();
        let t = Tensor::from_slice(&x[off..off + n], p.var.shape(), p.var.device())?;
        p.var.set(&t.to_dtype(p.var.dtype())?)?;
        off += n;
    }
    Ok(())
}

pub(crate) fn decay_mask(params: &ParamSet) -> Vec<bool> {
    params
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.decay, p.var.elem_count()))
        .collect()
}

/// ∇f on one batch: the loss gradient plus `wd·x` where decay applies; zeros where a
/// parameter got no gradient.
pub(crate) fn flatten_grads(
    params: &ParamSet,
    grads: &GradStore,
    x: &[f32],
    decayed: &[bool],
    wd: f64,
) -> Result<Vec<f32>> {
    let per_param = params
        .iter()
        .map(|p| match grads.get(p.var.as_tensor()) {
            Some(g) => Ok(g.clone()),
            None => Ok(p.var.as_tensor().zeros_like()?),
        })
        .collect::<Result<Vec<Tensor>>>()?;
    let mut g = flatten(per_param.into_iter())?;
    if wd != 0.0 {
        for ((g, &x), &d) in g.iter_mut().zip(x).zip(decayed) {
            if d {
                *g += (wd * x as f64) as f32;
            }
        }
    }
    Ok(g)
}

/// The diagonal metric per coordinate; parameters without an entry (no Adam step yet) get 1.
pub(crate) fn flatten_preconditioner(
    params: &ParamSet,
    pre: &[(String, Tensor)],
) -> Result<Vec<f64>> {
    let by_name: HashMap<&str, &Tensor> = pre.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = Vec::with_capacity(params.elem_count());
    for p in params {
        match by_name.get(p.name.as_str()) {
            Some(t) => out.extend(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?),
            None => out.extend(std::iter::repeat_n(1.0, p.var.elem_count())),
        }
    }
    if let Some(bad) = out.iter().find(|h| !(**h > 0.0 && h.is_finite())) {
        return Err(OptimError::Config(format!(
            "the preconditioner must be positive and finite, found {bad}"
        )));
    }
    Ok(out)
}

pub(crate) fn group_layout(params: &ParamSet, groups: &GroupSet) -> Result<GroupLayout> {
    let mut offsets = HashMap::new();
    let mut off = 0;
    for p in params {
        offsets.insert(p.name.as_str(), off);
        off += p.var.elem_count();
    }
    groups
        .gates()
        .iter()
        .map(|g| {
            g.member_names()
                .map(|name| {
                    let off = *offsets.get(name).ok_or_else(|| {
                        OptimError::Config(format!("group member `{name}` is not a parameter"))
                    })?;
                    let p = params.get(name).expect("offset implies parameter");
                    Ok((off, p.var.elem_count() / g.width))
                })
                .collect()
        })
        .collect()
}

/// The element indices of group `c` of a gate.
pub(crate) fn group_indices(
    members: &[(usize, usize)],
    c: usize,
) -> impl Iterator<Item = usize> + '_ {
    members
        .iter()
        .flat_map(move |&(off, cols)| off + c * cols..off + (c + 1) * cols)
}

/// Calls `visit(indices, λ_g)` for every group of every gate.
pub(crate) fn for_each_group(
    layout: &GroupLayout,
    groups: &GroupSet,
    penalty: &[Vec<f64>],
    mut visit: impl FnMut(Vec<usize>, f64),
) {
    for ((members, gate), lam) in layout.iter().zip(groups.gates()).zip(penalty) {
        for c in 0..gate.width {
            visit(
                group_indices(members, c).collect(),
                lam.get(c).copied().unwrap_or(0.0),
            );
        }
    }
}

/// Coordinates that lie in a group with λ_g > 0 (the prox moves them while they are non-zero).
pub(crate) fn penalised(
    n: usize,
    layout: &GroupLayout,
    groups: &GroupSet,
    penalty: &[Vec<f64>],
) -> Vec<bool> {
    let mut out = vec![false; n];
    for_each_group(layout, groups, penalty, |idx, lam| {
        if lam > 0.0 {
            for i in idx {
                out[i] = true;
            }
        }
    });
    out
}

/// The free coordinates: those a step can move. A coordinate whose gradient is zero on every
/// probe batch does not move under the step unless the prox shrinks it (non-zero, in a
/// penalised group); in particular the coordinates of an exactly-zero group whose gradient is
/// zero stay zero — those are the ones whose Adam metric is ε. Coordinates of a zero group
/// with a non-zero gradient are free: a mini-batch step can revive the group (measured: zero
/// groups flicker under proximal SGD), so they belong to the analysis.
pub(crate) fn free_coordinates(x: &[f32], moving: &[bool], penalised: &[bool]) -> Vec<bool> {
    (0..x.len())
        .map(|i| moving[i] || (penalised[i] && x[i] != 0.0))
        .collect()
}

/// The probe batches' gradients at one point.
pub(crate) struct BatchStats {
    /// Mean loss of each batch (without the weight-decay term).
    pub losses: Vec<f64>,
    /// The mean gradient over the batches.
    pub mean: Vec<f64>,
    /// Coordinates with a non-zero gradient on some batch.
    pub moving: Vec<bool>,
    /// σ̂², the sample variance of one batch's gradient summed over the coordinates (those
    /// whose gradient is zero on every batch — not free — add exactly nothing).
    pub variance: f64,
    /// The same in `‖·‖_{H⁻¹}`.
    pub variance_metric: f64,
    /// `⟨g_b, u⟩` of every batch for the direction u given (empty without one).
    pub projections: Vec<f64>,
}

impl BatchStats {
    /// The sample variance of the projections, `Var_b⟨g_b, u⟩`.
    pub fn projection_variance(&self) -> f64 {
        let m = self.projections.len();
        if m < 2 {
            return 0.0;
        }
        let mean = self.projections.iter().sum::<f64>() / m as f64;
        self.projections
            .iter()
            .map(|p| (p - mean).powi(2))
            .sum::<f64>()
            / (m as f64 - 1.0)
    }
}

/// Runs `loss_and_grads` on batches `0..m` at the current parameters (and projects each
/// batch's gradient on `direction` when given). The variance is accumulated around the first
/// batch's gradient (a shift that leaves it unchanged and makes identical batches give 0).
pub(crate) fn batch_stats<F>(
    m: usize,
    params: &ParamSet,
    x: &[f32],
    (decayed, wd): (&[bool], f64),
    (metric, direction): (&[f64], Option<&[f64]>),
    loss_and_grads: &mut F,
) -> Result<BatchStats>
where
    F: FnMut(usize) -> Result<(f64, GradStore)>,
{
    let n = x.len();
    let mut losses = Vec::with_capacity(m);
    let mut first: Vec<f32> = Vec::new();
    let mut sum_diff = vec![0f64; n];
    let mut moving = vec![false; n];
    let (mut sq, mut sq_metric) = (0f64, 0f64);
    let mut projections = Vec::new();
    for i in 0..m {
        let (loss, grads) = loss_and_grads(i)?;
        losses.push(loss);
        let g = flatten_grads(params, &grads, x, decayed, wd)?;
        if let Some(u) = direction {
            projections.push(g.iter().zip(u).map(|(&a, &b)| a as f64 * b).sum());
        }
        for (mv, &v) in moving.iter_mut().zip(&g) {
            *mv |= v != 0.0;
        }
        if i == 0 {
            first = g;
            continue;
        }
        for j in 0..n {
            let d = g[j] as f64 - first[j] as f64;
            sum_diff[j] += d;
            sq += d * d;
            sq_metric += d * d / metric[j];
        }
    }
    let mf = m as f64;
    let (mut mean_sq, mut mean_sq_metric) = (0f64, 0f64);
    let mean: Vec<f64> = (0..n)
        .map(|j| {
            let md = sum_diff[j] / mf;
            mean_sq += md * md;
            mean_sq_metric += md * md / metric[j];
            first[j] as f64 + md
        })
        .collect();
    let var = |s: f64, ms: f64| ((s - mf * ms) / (mf - 1.0)).max(0.0);
    Ok(BatchStats {
        losses,
        mean,
        moving,
        variance: var(sq, mean_sq),
        variance_metric: var(sq_metric, mean_sq_metric),
        projections,
    })
}
