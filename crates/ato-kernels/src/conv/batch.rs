//! Convs over the batch: how images share the threads, and new outputs written image by
//! image.

use super::geometry::ConvGeometry;
use super::{col_capacity, forward_image_into, input_grad_image_into, ConvWeights, Passes};
use crate::batchnorm::kernels::ChannelAffine;
use crate::output::fill_chunks_map_into;
use crate::parallel::{threads, with_scratch};

/// Multiply-accumulates below which a loop over the batch, or one image's gemm, runs on one
/// thread: about 20 µs of work, what a parallel dispatch costs on a busy machine.
const MIN_PARALLEL_MACS: usize = 1 << 20;

/// How a dense conv over the batch uses the threads, as (images in parallel, gemm threads):
/// images in parallel (each gemm on one thread) when there are enough images and enough
/// work, otherwise one after another, with a parallel gemm only for a large image.
fn image_parallelism(g: &ConvGeometry) -> (bool, usize) {
    let t = threads();
    let per_image = g.out_image() * g.patch_len();
    if t > 1 && g.batch >= t && per_image * g.batch >= MIN_PARALLEL_MACS {
        (true, 1)
    } else if per_image >= MIN_PARALLEL_MACS {
        (false, t)
    } else {
        (false, 1)
    }
}

/// The conv of every image of `x` (dense or depthwise), with `then(n, out_n)` applied to
/// image n's output right after its conv (while it is in cache): a new output, and the
/// results of `then` in image order.
pub(crate) fn conv_images<T: Send>(
    g: &ConvGeometry,
    x: &[f32],
    w: &ConvWeights,
    then: impl Fn(usize, &mut [f32]) -> T + Sync,
) -> (Vec<f32>, Vec<T>) {
    conv_images_with(g, x, w, |_| None, then)
}

/// The conv of every image of `x` with image n's epilogue `epi(n)` (eval-mode BatchNorm,
/// activation, residual) applied as its output is written: a new output.
pub(crate) fn conv_images_affine<'e>(
    g: &ConvGeometry,
    x: &[f32],
    w: &ConvWeights,
    epi: impl Fn(usize) -> ChannelAffine<'e> + Sync,
) -> Vec<f32> {
    conv_images_with(g, x, w, |n| Some(epi(n)), |_, _| ()).0
}

/// [`conv_images`] with image n's optional epilogue `epi(n)` before `then`.
fn conv_images_with<'e, T: Send>(
    g: &ConvGeometry,
    x: &[f32],
    w: &ConvWeights,
    epi: impl Fn(usize) -> Option<ChannelAffine<'e>> + Sync,
    then: impl Fn(usize, &mut [f32]) -> T + Sync,
) -> (Vec<f32>, Vec<T>) {
    let (parallel, t) = image_parallelism(g);
    let cap = col_capacity(g);
    let len = g.batch * g.out_image();
    fill_chunks_map_into(len, g.out_image(), parallel, |n, piece| {
        let x_n = &x[n * g.in_image()..][..g.in_image()];
        with_scratch(cap, |col| {
            let out_n = forward_image_into(g, x_n, w, piece, col, t, epi(n).as_ref());
            let result = then(n, out_n);
            (out_n, result)
        })
    })
}

/// Dense forward over the batch.
pub(super) fn dense_forward(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    let w = ConvWeights::new(g, w, Passes::Forward);
    conv_images(g, x, &w, |_, _| ()).0
}

/// Dense input gradient over the batch.
pub(super) fn dense_input_grad(g: &ConvGeometry, dout: &[f32], w: &[f32]) -> Vec<f32> {
    let w = ConvWeights::new(g, w, Passes::Backward);
    let (parallel, t) = image_parallelism(g);
    let cap = col_capacity(g);
    let len = g.batch * g.in_image();
    fill_chunks_map_into(len, g.in_image(), parallel, |n, piece| {
        let dout_n = &dout[n * g.out_image()..][..g.out_image()];
        with_scratch(cap, |col| {
            let dx_n = input_grad_image_into(g, dout_n, &w, piece, col, t);
            (dx_n, ())
        })
    })
    .0
}
