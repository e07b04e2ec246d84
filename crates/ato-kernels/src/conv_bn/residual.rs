//! The residual form `act(bn(conv(x)) + r)` (the second conv of a residual block joined with
//! its shortcut), fused into the conv-BN op so the sum and the activation cost no extra pass
//! and no extra graph node.
//!
//! The op's inputs are (x, [w; γ; β] packed, r): candle custom ops take at most three tensors,
//! and all four need gradients. The backward first takes the output gradient back through
//! the activation (that is also r's gradient), then runs the conv-BN backward.

use super::{geometry_of, ConvBatchNormOp, Mode, TrainState};
use crate::backend::{fast_path, Backend};
use crate::batchnorm::into::output_gate;
use crate::batchnorm::{train_values_per_channel, Activation, BatchNorm2d};
use crate::conv::geometry::ConvGeometry;
use crate::conv::{self, ConvParams};
use crate::output::fill_chunks_into;
use crate::storage::{contiguous_f32, dims4, expect_dims4, expect_same_dims, to_storage};
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};
use std::sync::{Arc, Mutex};

/// `act(bn(conv2d(x, w)) + residual)` with the process-wide backend (see
/// [`super::conv_batch_norm`]); `residual` has the output's shape.
pub fn conv_batch_norm_add(
    x: &Tensor,
    w: &Tensor,
    p: ConvParams,
    bn: &BatchNorm2d,
    residual: &Tensor,
    train: bool,
    act: Activation,
) -> Result<Tensor> {
    conv_batch_norm_add_with(x, w, p, bn, residual, train, act, crate::backend())
}

/// [`conv_batch_norm_add`] with an explicit backend.
#[allow(clippy::too_many_arguments)]
pub fn conv_batch_norm_add_with(
    x: &Tensor,
    w: &Tensor,
    p: ConvParams,
    bn: &BatchNorm2d,
    residual: &Tensor,
    train: bool,
    act: Activation,
    backend: Backend,
) -> Result<Tensor> {
    let ours = backend == Backend::Fast
        && fast_path(x.device(), x.dtype())
        && w.dtype() == DType::F32
        && residual.dtype() == DType::F32
        && conv::fast_conv_supported(x, w, p)?
        && w.dim(0)? == bn.num_features();
    let g = if ours {
        Some(ConvGeometry::new(x.dims4()?, w.dims4()?, p)?)
    } else {
        None
    };
    let Some(g) = g.filter(|g| residual.dims() == <[usize; 4]>::from(g.output_dims()).as_slice())
    else {
        let z = conv::conv2d_with(x, w, p, backend)?;
        let z = bn.forward_with(&z, train, Activation::Identity, backend)?;
        return act.apply(&(z + residual)?);
    };
    let params = Tensor::cat(&[&w.flatten_all()?, bn.weight(), bn.bias()], 0)?;
    let (x, residual) = (x.contiguous()?, residual.contiguous()?);
    let w_dims = w.dims4()?;
    let inner = |mode| ConvBatchNormOp {
        params: p,
        eps: bn.eps(),
        act,
        mode,
    };
    if !train {
        let op = ResidualOp {
            inner: inner(Mode::Eval(bn.running_stats()?)),
            w_dims,
        };
        return x.apply_op3(&params, &residual, op);
    }
    let count = train_values_per_channel(g.output_dims(), "output")?;
    let slot = Arc::new(Mutex::new(None));
    let op = ResidualOp {
        inner: inner(Mode::Train(slot.clone())),
        w_dims,
    };
    let y = x.apply_op3(&params, &residual, op)?;
    let saved = slot.lock().expect("conv-bn state lock");
    let state: &TrainState = saved.as_ref().expect("set by the forward");
    bn.update_running_stats(&state.stats, count)?;
    Ok(y)
}

/// (x, [w; γ; β], r) → act(BN(conv(x, w)) + r).
struct ResidualOp {
    inner: ConvBatchNormOp,
    w_dims: (usize, usize, usize, usize),
}

impl ResidualOp {
    fn w_len(&self) -> usize {
        let (a, b, c, d) = self.w_dims;
        a * b * c * d
    }
}

impl CustomOp3 for ResidualOp {
    fn name(&self) -> &'static str {
        "ato-conv-batch-norm-add"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ps: &CpuStorage,
        pl: &Layout,
        rs: &CpuStorage,
        rl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        let g = geometry_of(dims4(xl, "conv-bn x")?, self.w_dims, self.inner.params)?;
        expect_dims4(rl, g.output_dims(), "conv-bn residual")?;
        let x = contiguous_f32(xs, xl, "conv-bn x")?;
        let params = contiguous_f32(ps, pl, "conv-bn params")?;
        let r = contiguous_f32(rs, rl, "conv-bn residual")?;
        if params.len() != self.w_len() + 2 * g.out_channels {
            bail!(
                "conv-bn: {} packed parameters, expected {}",
                params.len(),
                self.w_len() + 2 * g.out_channels
            );
        }
        let (w, gamma_beta) = params.split_at(self.w_len());
        let y = self.inner.forward(&g, x, w, gamma_beta, Some(r))?;
        Ok(to_storage(y, g.output_dims()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        params: &Tensor,
        _r: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let gated = dy.contiguous()?.apply_op2_no_bwd(
            y,
            &OutputGateOp {
                act: self.inner.act,
            },
        )?;
        let w = params.narrow(0, 0, self.w_len())?.reshape(self.w_dims)?;
        let gamma_beta: Vec<f32> = params
            .narrow(0, self.w_len(), params.dim(0)? - self.w_len())?
            .to_vec1()?;
        let (dx, dw, dgb) = self.inner.backward(x, &w, &gamma_beta, &gated, true)?;
        let dparams = match dw {
            Some(dw) => {
                let n = dgb.len();
                Some(Tensor::cat(
                    &[dw.flatten_all()?, Tensor::from_vec(dgb, n, x.device())?],
                    0,
                )?)
            }
            // frozen parameters: no weight gradient was computed
            None => None,
        };
        Ok((dx, dparams, Some(gated)))
    }
}

/// (dy, y) → dy where the activation let its input through (judged from its output y).
struct OutputGateOp {
    act: Activation,
}

impl CustomOp2 for OutputGateOp {
    fn name(&self) -> &'static str {
        "ato-activation-grad"
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        ys: &CpuStorage,
        yl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        expect_same_dims(gl, yl, "activation grad (dy, y)")?;
        let dy = contiguous_f32(gs, gl, "activation grad dy")?;
        let y = contiguous_f32(ys, yl, "activation grad y")?;
        const CHUNK: usize = 16 * 1024;
        let g = fill_chunks_into(dy.len(), CHUNK, true, |i, out| {
            let r = i * CHUNK..i * CHUNK + out.len();
            output_gate(out, &dy[r.clone()], &y[r], self.act)
        });
        Ok(to_storage(g, gl.shape().clone()))
    }
}
