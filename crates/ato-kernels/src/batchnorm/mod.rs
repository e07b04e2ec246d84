//! 2-D BatchNorm with an optional fused activation: [`BatchNorm2d`].
//!
//! Train mode normalises with the batch mean and biased variance and updates the running
//! statistics with momentum 0.1 and the unbiased variance, as PyTorch and
//! `candle_nn::BatchNorm::forward_t`; eval mode uses the running statistics.

#[cfg(target_arch = "x86_64")]
mod grad_sums_avx2;
pub(crate) mod into;
pub(crate) mod kernels;
pub(crate) mod ops;

use crate::backend::{fast_path, Backend};
use candle_core::{bail, ModuleT, Result, Tensor, Var};
use ops::{BatchNormOp, ChannelStats, StatsSource};
use std::sync::{Arc, Mutex};

/// An elementwise activation applied right after a layer (fused into it where possible).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Activation {
    #[default]
    Identity,
    /// max(x, 0)
    Relu,
    /// min(max(x, 0), 6)
    Relu6,
}

impl Activation {
    /// The activation with candle's own ops.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Identity => Ok(x.clone()),
            Activation::Relu => x.relu(),
            Activation::Relu6 => x.clamp(0f32, 6f32),
        }
    }
}

/// BatchNorm over the channels of (N, C, H, W) tensors, with learnable `weight` (γ) and
/// `bias` (β) and running statistics that train-mode forwards update in place.
#[derive(Clone, Debug)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    eps: f64,
    momentum: f64,
    stock: candle_nn::BatchNorm,
}

impl BatchNorm2d {
    /// A BatchNorm with momentum 0.1. `running_mean`/`running_var` should be variables (as a
    /// `VarMap` holds them): updates then land in their storage. Anything else is copied into a
    /// new variable first.
    pub fn new(
        weight: Tensor,
        bias: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
        eps: f64,
    ) -> Result<Self> {
        let c = weight.elem_count();
        let stock = candle_nn::BatchNorm::new(
            c,
            running_mean.clone(),
            running_var.clone(),
            weight.clone(),
            bias.clone(),
            eps,
        )?;
        Ok(Self {
            weight,
            bias,
            running_mean: Var::from_tensor(&running_mean)?,
            running_var: Var::from_tensor(&running_var)?,
            eps,
            momentum: stock.momentum(),
            stock,
        })
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }
    pub fn running_mean(&self) -> &Tensor {
        self.running_mean.as_tensor()
    }
    pub fn running_var(&self) -> &Tensor {
        self.running_var.as_tensor()
    }
    pub fn eps(&self) -> f64 {
        self.eps
    }
    pub fn num_features(&self) -> usize {
        self.weight.elem_count()
    }

    /// `act(BN(x))` with the process-wide backend.
    pub fn forward_act_t(&self, x: &Tensor, train: bool, act: Activation) -> Result<Tensor> {
        self.forward_with(x, train, act, crate::backend())
    }

    /// `act(BN(x))` with an explicit backend.
    pub fn forward_with(
        &self,
        x: &Tensor,
        train: bool,
        act: Activation,
        backend: Backend,
    ) -> Result<Tensor> {
        let ours = backend == Backend::Fast && fast_path(x.device(), x.dtype()) && x.rank() == 4;
        if !ours {
            return act.apply(&self.stock.forward_t(x, train)?);
        }
        let (n, c, h, w) = x.dims4()?;
        if c != self.num_features() {
            bail!(
                "batch-norm: input {:?} has {c} channels, expected {}",
                x.dims(),
                self.num_features()
            );
        }
        let x = x.contiguous()?;
        if !train {
            let stats = self.running_stats()?;
            let op = BatchNormOp {
                eps: self.eps,
                act,
                stats: StatsSource::Fixed(stats),
            };
            return x.apply_op3(&self.weight, &self.bias, op);
        }
        let count = train_values_per_channel((n, c, h, w), "input")?;
        let slot = Arc::new(Mutex::new(None));
        let op = BatchNormOp {
            eps: self.eps,
            act,
            stats: StatsSource::Batch(slot.clone()),
        };
        let y = x.apply_op3(&self.weight, &self.bias, op)?;
        let stats = slot
            .lock()
            .expect("batch-norm stats lock")
            .clone()
            .expect("set by the forward");
        self.update_running_stats(&stats, count)?;
        Ok(y)
    }

    /// The running statistics as normalisation statistics (eval mode).
    pub(crate) fn running_stats(&self) -> Result<ChannelStats> {
        let mean: Vec<f32> = self.running_mean.as_tensor().to_vec1()?;
        let var: Vec<f32> = self.running_var.as_tensor().to_vec1()?;
        let invstd = var
            .iter()
            .map(|v| (1.0 / (*v as f64 + self.eps).sqrt()) as f32)
            .collect();
        Ok(ChannelStats {
            mean,
            invstd,
            var: Vec::new(),
        })
    }

    pub(crate) fn update_running_stats(&self, stats: &ChannelStats, count: usize) -> Result<()> {
        let m = self.momentum;
        let keep = 1.0 - m;
        let unbias = count as f64 / (count as f64 - 1.0);
        let rm: Vec<f32> = self.running_mean.as_tensor().to_vec1()?;
        let rv: Vec<f32> = self.running_var.as_tensor().to_vec1()?;
        let new_mean: Vec<f32> = rm
            .iter()
            .zip(&stats.mean)
            .map(|(r, b)| (*r as f64 * keep + *b as f64 * m) as f32)
            .collect();
        let new_var: Vec<f32> = rv
            .iter()
            .zip(&stats.var)
            .map(|(r, v)| (*r as f64 * keep + v * unbias * m) as f32)
            .collect();
        let dev = self.running_mean.device().clone();
        let c = new_mean.len();
        self.running_mean
            .set(&Tensor::from_vec(new_mean, c, &dev)?)?;
        self.running_var.set(&Tensor::from_vec(new_var, c, &dev)?)?;
        Ok(())
    }
}

impl ModuleT for BatchNorm2d {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_act_t(x, train, Activation::Identity)
    }
}

/// The values per channel (N·H·W) a train-mode batch norm over an (N, C, H, W) `what` averages;
/// batch statistics need at least two.
pub(crate) fn train_values_per_channel(
    dims: (usize, usize, usize, usize),
    what: &str,
) -> Result<usize> {
    let (n, _, h, w) = dims;
    let count = n * h * w;
    if count < 2 {
        bail!(
            "batch-norm in train mode needs more than one value per channel, got {what} {dims:?}"
        );
    }
    Ok(count)
}
