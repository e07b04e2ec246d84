//! 2-D convolution: [`conv2d`] and the candle custom ops behind it (forward, input gradient,
//! weight gradient), dispatching to the direct, dense (im2col or implicit + gemm) or
//! depthwise kernels.

mod batch;
mod dense;
mod depthwise;
mod depthwise_rows;
#[cfg(target_arch = "x86_64")]
mod depthwise_wide;
mod direct;
mod direct_layout;
mod direct_shape;
mod direct_simd;
pub(crate) mod geometry;
mod im2col;
mod implicit;
mod weight_grad;
mod weights;
mod wgrad_direct;
#[cfg(target_arch = "x86_64")]
mod wgrad_simd;

pub(crate) use batch::{conv_images, conv_images_affine};
pub use geometry::ConvParams;
pub(crate) use weight_grad::{WeightGrad, WEIGHT_GRAD_PARTIALS};
pub(crate) use weights::{col_capacity, ConvWeights, Passes};

/// Turns the direct conv kernel off (`false`: every dense conv takes the im2col/gemm paths) or
/// back on, process-wide. For benchmarks comparing the two; results agree to rounding.
#[doc(hidden)]
pub fn set_direct_conv(enabled: bool) {
    direct::set_enabled(enabled);
}

use crate::backend::{fast_path, Backend};
use crate::batchnorm::kernels::ChannelAffine;
use crate::output::zeroed;
use crate::storage::{contiguous_f32, dims4, expect_dims4, to_storage};
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use geometry::{ConvGeometry, ConvKind};
use std::mem::MaybeUninit;

/// `conv2d(x, w)` for x (N, C_in, H, W) and w (C_out, C_in / groups, KH, KW), no bias,
/// differentiable in both arguments.
///
/// Under [`Backend::Fast`] (the process-wide [`crate::backend()`]) on CPU, for f32 and
/// `groups` 1 or depthwise, this runs our kernels; otherwise candle's `Tensor::conv2d`.
pub fn conv2d(x: &Tensor, w: &Tensor, p: ConvParams) -> Result<Tensor> {
    conv2d_with(x, w, p, crate::backend())
}

/// [`conv2d`] with an explicit backend instead of the process-wide one.
pub fn conv2d_with(x: &Tensor, w: &Tensor, p: ConvParams, backend: Backend) -> Result<Tensor> {
    let ours = backend == Backend::Fast
        && fast_path(x.device(), x.dtype())
        && w.dtype() == x.dtype()
        && fast_conv_supported(x, w, p)?;
    if !ours {
        return x.conv2d(w, p.padding, p.stride, 1, p.groups);
    }
    x.contiguous()?
        .apply_op2(&w.contiguous()?, Conv2dOp { params: p })
}

/// The input gradient of [`conv2d`] for an input of `input_dims`, with our kernels (f32, CPU,
/// `groups` 1 or depthwise; an error otherwise). Not differentiable.
pub fn conv2d_input_grad(
    dy: &Tensor,
    w: &Tensor,
    input_dims: (usize, usize, usize, usize),
    p: ConvParams,
) -> Result<Tensor> {
    dy.contiguous()?.apply_op2_no_bwd(
        &w.contiguous()?,
        &Conv2dInputGradOp {
            params: p,
            input_dims,
        },
    )
}

/// The weight gradient of [`conv2d`] for a weight of `weight_dims`, with our kernels (f32,
/// CPU, `groups` 1 or depthwise; an error otherwise). Not differentiable.
pub fn conv2d_weight_grad(
    x: &Tensor,
    dy: &Tensor,
    weight_dims: (usize, usize, usize, usize),
    p: ConvParams,
) -> Result<Tensor> {
    x.contiguous()?.apply_op2_no_bwd(
        &dy.contiguous()?,
        &Conv2dWeightGradOp {
            params: p,
            weight_dims,
        },
    )
}

/// `out_n = conv(x_n, w)` for one image of a dense or depthwise conv.
pub(crate) fn forward_image(
    g: &ConvGeometry,
    x_n: &[f32],
    w: &ConvWeights,
    out_n: &mut [f32],
    col: &mut [f32],
    t: usize,
) {
    if let Some(d) = &w.direct_forward {
        return d.conv_image(x_n, out_n, col);
    }
    if let Some(wt) = &w.pointwise_t {
        return dense::pointwise_forward_small(g, x_n, wt, out_n, col, t);
    }
    match g.kind() {
        ConvKind::Dense => dense::forward_image(g, x_n, w.raw, out_n, col, t),
        _ => depthwise::forward_image(g, x_n, w.raw, out_n),
    }
}

/// [`forward_image`] into an uninitialised `out_n` (exactly one output image), returned
/// initialised: the direct and depthwise kernels write it in place, the other paths after a
/// zero fill. With
/// `epi`, the epilogue follows: fused into the direct kernel's copy out of its wide layout,
/// applied in place on the other paths (the same operations in the same order).
pub(crate) fn forward_image_into<'o>(
    g: &ConvGeometry,
    x_n: &[f32],
    w: &ConvWeights,
    out_n: &'o mut [MaybeUninit<f32>],
    col: &mut [f32],
    t: usize,
    epi: Option<&ChannelAffine>,
) -> &'o mut [f32] {
    assert_eq!(out_n.len(), g.out_image());
    if let Some(d) = &w.direct_forward {
        return d.conv_image_then_into(x_n, out_n, col, epi);
    }
    let out_n = if g.kind() == ConvKind::Depthwise {
        depthwise::forward_image_into(g, x_n, w.raw, out_n)
    } else {
        let out_n = zeroed(out_n);
        forward_image(g, x_n, w, out_n, col, t);
        out_n
    };
    if let Some(epi) = epi {
        epi.apply_in_place(out_n, g.out_plane());
    }
    out_n
}

/// [`input_grad_image`] into an uninitialised `dx_n` (exactly one input image), returned
/// initialised: the direct and depthwise kernels write it in place, the other paths after a
/// zero fill.
pub(crate) fn input_grad_image_into<'o>(
    g: &ConvGeometry,
    dout_n: &[f32],
    w: &ConvWeights,
    dx_n: &'o mut [MaybeUninit<f32>],
    col: &mut [f32],
    t: usize,
) -> &'o mut [f32] {
    assert_eq!(dx_n.len(), g.in_image());
    if let Some(d) = &w.direct_input_grad {
        return d.conv_image_into(dout_n, dx_n, col);
    }
    if g.kind() == ConvKind::Depthwise {
        return depthwise::input_grad_image_into(g, dout_n, w.raw, dx_n);
    }
    let dx_n = zeroed(dx_n);
    input_grad_image(g, dout_n, w, dx_n, col, t);
    dx_n
}

/// `dx_n = ∂conv/∂x · dout_n` for one image of a dense or depthwise conv.
pub(crate) fn input_grad_image(
    g: &ConvGeometry,
    dout_n: &[f32],
    w: &ConvWeights,
    dx_n: &mut [f32],
    col: &mut [f32],
    t: usize,
) {
    if let Some(d) = &w.direct_input_grad {
        return d.conv_image(dout_n, dx_n, col);
    }
    match g.kind() {
        ConvKind::Dense => dense::input_grad_image(g, dout_n, w.raw, dx_n, col, t),
        _ => depthwise::input_grad_image(g, dout_n, w.raw, dx_n),
    }
}

pub(crate) fn fast_conv_supported(x: &Tensor, w: &Tensor, p: ConvParams) -> Result<bool> {
    if x.rank() != 4 || w.rank() != 4 {
        return Ok(false);
    }
    let g = ConvGeometry::new(x.dims4()?, w.dims4()?, p)?;
    Ok(g.kind() != ConvKind::Unsupported)
}

/// Forward convolution: (x, w) → y.
struct Conv2dOp {
    params: ConvParams,
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "ato-conv2d"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        let g = ConvGeometry::new(dims4(xl, "conv2d x")?, dims4(wl, "conv2d w")?, self.params)?;
        let x = contiguous_f32(xs, xl, "conv2d x")?;
        let w = contiguous_f32(ws, wl, "conv2d w")?;
        let out = match g.kind() {
            ConvKind::Dense => batch::dense_forward(&g, x, w),
            ConvKind::Depthwise => depthwise::forward(&g, x, w),
            ConvKind::Unsupported => bail!("conv2d: unsupported groups {}", g.groups),
        };
        Ok(to_storage(out, g.output_dims()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = if x.track_op() {
            Some(dy.apply_op2_no_bwd(
                w,
                &Conv2dInputGradOp {
                    params: self.params,
                    input_dims: x.dims4()?,
                },
            )?)
        } else {
            None
        };
        let dw = if w.track_op() {
            Some(x.apply_op2_no_bwd(
                &dy,
                &Conv2dWeightGradOp {
                    params: self.params,
                    weight_dims: w.dims4()?,
                },
            )?)
        } else {
            None
        };
        Ok((dx, dw))
    }
}

/// Input gradient: (dy, w) → dx.
struct Conv2dInputGradOp {
    params: ConvParams,
    input_dims: (usize, usize, usize, usize),
}

impl CustomOp2 for Conv2dInputGradOp {
    fn name(&self) -> &'static str {
        "ato-conv2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        let g = ConvGeometry::new(self.input_dims, dims4(wl, "conv2d w")?, self.params)?;
        expect_dims4(gl, g.output_dims(), "conv2d input grad dy")?;
        let dy = contiguous_f32(gs, gl, "conv2d dy")?;
        let w = contiguous_f32(ws, wl, "conv2d w")?;
        let dx = match g.kind() {
            ConvKind::Dense => batch::dense_input_grad(&g, dy, w),
            ConvKind::Depthwise => depthwise::backward_input(&g, dy, w),
            ConvKind::Unsupported => bail!("conv2d: unsupported groups {}", g.groups),
        };
        Ok(to_storage(dx, g.input_dims()))
    }
}

/// Weight gradient: (x, dy) → dw.
struct Conv2dWeightGradOp {
    params: ConvParams,
    weight_dims: (usize, usize, usize, usize),
}

impl CustomOp2 for Conv2dWeightGradOp {
    fn name(&self) -> &'static str {
        "ato-conv2d-weight-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        let g = ConvGeometry::new(dims4(xl, "conv2d x")?, self.weight_dims, self.params)?;
        expect_dims4(gl, g.output_dims(), "conv2d weight grad dy")?;
        let x = contiguous_f32(xs, xl, "conv2d x")?;
        let dy = contiguous_f32(gs, gl, "conv2d dy")?;
        let dw = match g.kind() {
            ConvKind::Dense => weight_grad::dense_backward_weight(&g, x, dy),
            ConvKind::Depthwise => depthwise::backward_weight(&g, x, dy),
            ConvKind::Unsupported => bail!("conv2d: unsupported groups {}", g.groups),
        };
        Ok(to_storage(dw, g.weight_dims()))
    }
}
