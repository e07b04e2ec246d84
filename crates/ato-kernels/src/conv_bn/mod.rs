//! Fused convolution → BatchNorm → activation: one candle op, so the conv output and its
//! gradient never round-trip through candle's graph (each such tensor costs a zero-filled
//! gradient buffer and an extra add in candle's backward).
//!
//! Train forward: per image (in parallel) the conv output `z` and its per-channel moments while
//! the image is in cache; the moments combine in image order into batch statistics; then one
//! normalise-and-activate pass. `z` is kept for the backward.
//!
//! Eval forward: per image, conv then BN(running stats) and activation in place.
//!
//! Backward ([`backward`]): per-channel sums (train only), then per image (in parallel over
//! fixed chunks of the batch) the BN gradient `dz` in a scratch buffer, immediately fed to the
//! conv's input and weight gradients.

mod backward;
mod residual;

pub use residual::{conv_batch_norm_add, conv_batch_norm_add_with};

use crate::backend::{fast_path, Backend};
use crate::batchnorm::into::{affine_act, affine_add_act};
use crate::batchnorm::kernels::{plane_moments, ChannelAffine, Moments};
use crate::batchnorm::ops::{affine, ChannelStats};
use crate::batchnorm::{train_values_per_channel, Activation, BatchNorm2d};
use crate::conv::geometry::{ConvGeometry, ConvKind};
use crate::conv::{self, ConvParams, ConvWeights, Passes};
use crate::output::fill_items_into;
use crate::storage::{contiguous_f32, dims4, to_storage};
use backward::ConvBatchNormGradOp;
use candle_core::{bail, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use std::sync::{Arc, Mutex};

/// `act(bn(conv2d(x, w)))` with the process-wide backend; `train` selects batch statistics
/// (and updates `bn`'s running statistics) as [`BatchNorm2d::forward_act_t`].
pub fn conv_batch_norm(
    x: &Tensor,
    w: &Tensor,
    p: ConvParams,
    bn: &BatchNorm2d,
    train: bool,
    act: Activation,
) -> Result<Tensor> {
    conv_batch_norm_with(x, w, p, bn, train, act, crate::backend())
}

/// [`conv_batch_norm`] with an explicit backend. [`Backend::Stock`] (or a non-CPU device, or
/// a grouping our kernels lack) runs candle's conv2d and `candle_nn::BatchNorm`.
pub fn conv_batch_norm_with(
    x: &Tensor,
    w: &Tensor,
    p: ConvParams,
    bn: &BatchNorm2d,
    train: bool,
    act: Activation,
    backend: Backend,
) -> Result<Tensor> {
    let ours = backend == Backend::Fast
        && fast_path(x.device(), x.dtype())
        && w.dtype() == DType::F32
        && conv::fast_conv_supported(x, w, p)?
        && w.dim(0)? == bn.num_features();
    if !ours {
        let z = conv::conv2d_with(x, w, p, backend)?;
        return bn.forward_with(&z, train, act, backend);
    }
    let g = ConvGeometry::new(x.dims4()?, w.dims4()?, p)?;
    let gamma_beta = Tensor::cat(&[bn.weight(), bn.bias()], 0)?;
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    let eps = bn.eps();
    if !train {
        let mode = Mode::Eval(bn.running_stats()?);
        let op = ConvBatchNormOp {
            params: p,
            eps,
            act,
            mode,
        };
        return x.apply_op3(&w, &gamma_beta, op);
    }
    let count = train_values_per_channel(g.output_dims(), "output")?;
    let slot = Arc::new(Mutex::new(None));
    let mode = Mode::Train(slot.clone());
    let op = ConvBatchNormOp {
        params: p,
        eps,
        act,
        mode,
    };
    let y = x.apply_op3(&w, &gamma_beta, op)?;
    let saved = slot.lock().expect("conv-bn state lock");
    let state: &TrainState = saved.as_ref().expect("set by the forward");
    bn.update_running_stats(&state.stats, count)?;
    Ok(y)
}

/// What a train-mode forward leaves for its backward.
struct TrainState {
    /// The conv output (pre-BN), N·C_out·H_out·W_out.
    z: Vec<f32>,
    stats: ChannelStats,
}

enum Mode {
    Train(Arc<Mutex<Option<TrainState>>>),
    Eval(ChannelStats),
}

/// (x, w, [γ; β]) → act(BN(conv(x, w))).
struct ConvBatchNormOp {
    params: ConvParams,
    eps: f64,
    act: Activation,
    mode: Mode,
}

/// Per-channel (scale, shift) from the packed [γ; β].
fn packed_affine(gamma_beta: &[f32], stats: &ChannelStats) -> (Vec<f32>, Vec<f32>) {
    let (gamma, beta) = gamma_beta.split_at(stats.mean.len());
    affine(gamma, beta, stats)
}

fn geometry(xl: &Layout, wl: &Layout, p: ConvParams) -> Result<ConvGeometry> {
    geometry_of(dims4(xl, "conv-bn x")?, dims4(wl, "conv-bn w")?, p)
}

fn geometry_of(
    x: (usize, usize, usize, usize),
    w: (usize, usize, usize, usize),
    p: ConvParams,
) -> Result<ConvGeometry> {
    let g = ConvGeometry::new(x, w, p)?;
    if g.kind() == ConvKind::Unsupported {
        bail!("conv-bn: unsupported groups {}", g.groups);
    }
    Ok(g)
}

/// Batch statistics from per-(image, channel) plane moments, combined in image order.
fn batch_stats(
    moments: &[Vec<(f64, f64)>],
    channels: usize,
    plane: usize,
    eps: f64,
) -> ChannelStats {
    let mut total = vec![Moments::default(); channels];
    for image in moments {
        for (t, m) in total.iter_mut().zip(image) {
            t.add(*m, plane);
        }
    }
    let mean_var: Vec<(f64, f64)> = total.iter().map(Moments::mean_var).collect();
    ChannelStats::from_mean_var(&mean_var, eps)
}

impl ConvBatchNormOp {
    /// `act(bn(conv(x, w)) (+ residual))` on slices.
    fn forward(
        &self,
        g: &ConvGeometry,
        x: &[f32],
        w: &[f32],
        gamma_beta: &[f32],
        residual: Option<&[f32]>,
    ) -> Result<Vec<f32>> {
        let (c, po) = (g.out_channels, g.out_plane());
        if gamma_beta.len() != 2 * c {
            bail!(
                "conv-bn: γ;β has {} values for {c} channels",
                gamma_beta.len()
            );
        }
        if residual.is_some_and(|r| r.len() != g.batch * g.out_image()) {
            bail!(
                "conv-bn: residual does not match the output {:?}",
                g.output_dims()
            );
        }
        let w = &ConvWeights::new(g, w, Passes::Forward);
        let act = self.act;
        let y = match &self.mode {
            Mode::Eval(stats) => {
                let (scale, shift) = packed_affine(gamma_beta, stats);
                conv::conv_images_affine(g, x, w, |n| ChannelAffine {
                    scale: &scale,
                    shift: &shift,
                    residual: residual.map(|r| &r[n * c * po..][..c * po]),
                    act,
                })
            }
            Mode::Train(slot) => {
                let (z, moments) = conv::conv_images(g, x, w, |_, z_n| {
                    z_n.chunks(po).map(plane_moments).collect::<Vec<_>>()
                });
                let stats = batch_stats(&moments, c, po, self.eps);
                let (scale, shift) = packed_affine(gamma_beta, &stats);
                let y = fill_items_into(z.len(), po, 16 * 1024, |idx, out| {
                    let (ch, zp) = (idx % c, &z[idx * po..][..po]);
                    match residual {
                        None => affine_act(out, zp, scale[ch], shift[ch], act),
                        Some(r) => {
                            let r = &r[idx * po..][..po];
                            affine_add_act(out, zp, r, scale[ch], shift[ch], act)
                        }
                    }
                });
                *slot.lock().expect("conv-bn state lock") = Some(TrainState { z, stats });
                y
            }
        };
        Ok(y)
    }

    /// Gradients (dx, dw, [dγ; dβ]) from the gradient `dz_out` at the BN output; `gated`
    /// when `dz_out` already went back through the activation. dx and dw are `None` when x or
    /// w need no gradient (frozen weights skip the weight-gradient pass entirely).
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        gamma_beta: &[f32],
        dz_out: &Tensor,
        gated: bool,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Vec<f32>)> {
        let grads = Arc::new(Mutex::new(None));
        let op = ConvBatchNormGradOp {
            forward: self,
            act: if gated {
                Activation::Identity
            } else {
                self.act
            },
            gamma_beta: gamma_beta.to_vec(),
            need_dx: x.track_op(),
            need_dw: w.track_op(),
            grads: grads.clone(),
        };
        let dx = x.apply_op3_no_bwd(w, &dz_out.contiguous()?, &op)?;
        let (dw, dgb) = grads
            .lock()
            .expect("conv-bn grads lock")
            .take()
            .expect("set by the backward op");
        let dw = if op.need_dw {
            Some(Tensor::from_vec(dw, w.shape(), w.device())?)
        } else {
            None
        };
        Ok((op.need_dx.then_some(dx), dw, dgb))
    }
}

impl CustomOp3 for ConvBatchNormOp {
    fn name(&self) -> &'static str {
        "ato-conv-batch-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        gbs: &CpuStorage,
        gbl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        let g = geometry(xl, wl, self.params)?;
        let x = contiguous_f32(xs, xl, "conv-bn x")?;
        let w = contiguous_f32(ws, wl, "conv-bn w")?;
        let gamma_beta = contiguous_f32(gbs, gbl, "conv-bn γ;β")?;
        let y = self.forward(&g, x, w, gamma_beta, None)?;
        Ok(to_storage(y, g.output_dims()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        gamma_beta: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, dgb) = self.backward(x, w, &gamma_beta.to_vec1()?, dy, false)?;
        let dgb = Tensor::from_vec(dgb, gamma_beta.shape(), gamma_beta.device())?;
        Ok((dx, dw, Some(dgb)))
    }
}
