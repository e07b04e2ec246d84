//! The BatchNorm custom ops: forward (batch or running statistics, fused activation) and a
//! backward that yields dx as a tensor and dγ, dβ on the side.

use super::into::normalize;
use super::kernels::{batch_stats, grad_coefficients, grad_input, grad_sums, Planes};
use super::Activation;
use crate::storage::{contiguous_f32, dims4, expect_same_dims, to_storage};
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use std::sync::{Arc, Mutex};

/// Normalisation statistics per channel.
#[derive(Clone, Debug, Default)]
pub(crate) struct ChannelStats {
    pub mean: Vec<f32>,
    pub invstd: Vec<f32>,
    /// Biased batch variance (only for batch statistics).
    pub var: Vec<f64>,
}

impl ChannelStats {
    /// From per-channel (mean, biased variance).
    pub fn from_mean_var(mean_var: &[(f64, f64)], eps: f64) -> Self {
        Self {
            mean: mean_var.iter().map(|m| m.0 as f32).collect(),
            invstd: mean_var
                .iter()
                .map(|m| (1.0 / (m.1 + eps).sqrt()) as f32)
                .collect(),
            var: mean_var.iter().map(|m| m.1).collect(),
        }
    }
}

/// Where the statistics come from.
pub(crate) enum StatsSource {
    /// Computed from the batch by the forward pass, stored here for the caller and the
    /// backward pass.
    Batch(Arc<Mutex<Option<ChannelStats>>>),
    /// Given (running statistics, eval mode).
    Fixed(ChannelStats),
}

/// (x, γ, β) → act(BN(x)).
pub(crate) struct BatchNormOp {
    pub eps: f64,
    pub act: Activation,
    pub stats: StatsSource,
}

fn planes(l: &Layout) -> Result<Planes> {
    let (batch, channels, h, w) = dims4(l, "batch-norm x")?;
    Ok(Planes {
        batch,
        channels,
        plane: h * w,
    })
}

fn channel_vec<'a>(s: &'a CpuStorage, l: &Layout, c: usize, what: &str) -> Result<&'a [f32]> {
    let v = contiguous_f32(s, l, what)?;
    if v.len() != c {
        bail!("batch-norm {what}: {} values for {c} channels", v.len());
    }
    Ok(v)
}

impl CustomOp3 for BatchNormOp {
    fn name(&self) -> &'static str {
        "ato-batch-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        let d = planes(xl)?;
        let x = contiguous_f32(xs, xl, "batch-norm x")?;
        let gamma = channel_vec(gs, gl, d.channels, "weight")?;
        let beta = channel_vec(bs, bl, d.channels, "bias")?;
        let stats = match &self.stats {
            StatsSource::Fixed(s) => s.clone(),
            StatsSource::Batch(slot) => {
                let s = ChannelStats::from_mean_var(&batch_stats(d, x), self.eps);
                *slot.lock().expect("batch-norm stats lock") = Some(s.clone());
                s
            }
        };
        let scale: Vec<f32> = gamma
            .iter()
            .zip(&stats.invstd)
            .map(|(g, i)| g * i)
            .collect();
        let shift: Vec<f32> = beta
            .iter()
            .zip(&stats.mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        let out = normalize(d, x, &scale, &shift, self.act);
        Ok(to_storage(out, xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let stats = match &self.stats {
            StatsSource::Fixed(s) => s.clone(),
            StatsSource::Batch(slot) => match slot.lock().expect("batch-norm stats lock").clone() {
                Some(s) => s,
                None => bail!("batch-norm backward before forward"),
            },
        };
        let param_grads = Arc::new(Mutex::new(None));
        let op = BatchNormGradOp {
            stats,
            gamma: gamma.to_vec1()?,
            beta: beta.to_vec1()?,
            act: self.act,
            batch_stats: matches!(self.stats, StatsSource::Batch(_)),
            param_grads: param_grads.clone(),
        };
        let dx = x.apply_op2_no_bwd(&dy.contiguous()?, &op)?;
        let (dgamma, dbeta) = param_grads
            .lock()
            .expect("batch-norm grads lock")
            .take()
            .expect("set by the backward op");
        let c = dgamma.len();
        Ok((
            Some(dx),
            Some(Tensor::from_vec(dgamma, c, x.device())?),
            Some(Tensor::from_vec(dbeta, c, x.device())?),
        ))
    }
}

/// Per-channel (scale, shift) with `bn(x) = x · scale + shift`.
pub(crate) fn affine(gamma: &[f32], beta: &[f32], stats: &ChannelStats) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = gamma
        .iter()
        .zip(&stats.invstd)
        .map(|(g, i)| g * i)
        .collect();
    let shift = beta
        .iter()
        .zip(&stats.mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    (scale, shift)
}

/// (x, dy) → dx; stores (dγ, dβ) in `param_grads`.
struct BatchNormGradOp {
    stats: ChannelStats,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    act: Activation,
    /// Whether the forward normalised with batch statistics (which then depend on x).
    batch_stats: bool,
    param_grads: ParamGrads,
}

/// (dγ, dβ), set by the backward op.
type ParamGrads = Arc<Mutex<Option<(Vec<f32>, Vec<f32>)>>>;

impl CustomOp2 for BatchNormGradOp {
    fn name(&self) -> &'static str {
        "ato-batch-norm-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        let d = planes(xl)?;
        expect_same_dims(xl, gl, "batch-norm grad (x, dy)")?;
        let x = contiguous_f32(xs, xl, "batch-norm x")?;
        let dy = contiguous_f32(gs, gl, "batch-norm dy")?;
        let s = &self.stats;
        let (scale, shift) = affine(&self.gamma, &self.beta, s);
        let sums = grad_sums(d, x, dy, &scale, &shift, &s.mean, self.act);
        let (coef, dgamma, dbeta) = grad_coefficients(
            &sums,
            &scale,
            &shift,
            &s.mean,
            &s.invstd,
            d.per_channel(),
            self.batch_stats,
        );
        let dx = grad_input(d, x, dy, &coef, self.act);
        *self.param_grads.lock().expect("batch-norm grads lock") = Some((dgamma, dbeta));
        Ok(to_storage(dx, xl.shape().clone()))
    }
}
