//! A conv's weight gradient, summed over images: [`WeightGrad`] picks the kernel once per call
//! (the direct tiles of [`super::wgrad_direct`] where they run — any direct-kernel shape in
//! machine mode, the implicit gemm's shapes in portable mode — else the dense gemm paths or
//! the depthwise loops), accumulates images into per-chunk sums and
//! finishes them in chunk order into the weight's layout.

use super::dense;
use super::depthwise;
use super::geometry::{ConvGeometry, ConvKind};
use super::implicit;
use super::weights::{col_capacity, direct_forward_shape};
use super::wgrad_direct::DirectWeightGrad;
use crate::parallel::{fixed_chunks, par_map, sum_in_chunk_order, threads, with_scratch};
use std::ops::Range;

/// Weight-gradient partial sums: the batch is cut into at most this many fixed chunks.
pub(crate) const WEIGHT_GRAD_PARTIALS: usize = 8;

/// How one call computes a conv's weight gradient.
pub(crate) struct WeightGrad {
    direct: Option<DirectWeightGrad>,
}

impl WeightGrad {
    pub fn new(g: &ConvGeometry) -> Self {
        Self {
            direct: direct_forward_shape(g)
                .and_then(|s| DirectWeightGrad::new(s, implicit::applies_weight_grad(g))),
        }
    }

    /// Scratch elements [`Self::accumulate_image`] needs.
    pub fn scratch_len(&self, g: &ConvGeometry) -> usize {
        let direct = self
            .direct
            .as_ref()
            .map_or(0, DirectWeightGrad::scratch_len);
        col_capacity(g).max(direct)
    }

    /// A chunk's sums before its first image (zeros; their layout is this kernel's).
    pub fn new_sums(&self, g: &ConvGeometry) -> Vec<f32> {
        match &self.direct {
            Some(d) => vec![0.0; d.sums_len()],
            None => vec![0.0; g.out_channels * g.patch_len()],
        }
    }

    /// Adds one image's gradient into a chunk's `sums` ([`Self::new_sums`]); `first` is true
    /// before a chunk's first image (the gemm paths then overwrite instead of adding).
    #[allow(clippy::too_many_arguments)]
    pub fn accumulate_image(
        &self,
        g: &ConvGeometry,
        x_n: &[f32],
        dout_n: &[f32],
        sums: &mut [f32],
        first: &mut bool,
        scratch: &mut [f32],
        t: usize,
    ) {
        match (&self.direct, g.kind()) {
            (Some(d), _) => {
                d.accumulate_image(x_n, dout_n, sums, *first, scratch);
                *first = false;
            }
            (None, ConvKind::Dense) => {
                dense::weight_grad_image(g, x_n, dout_n, sums, first, scratch, t)
            }
            (None, _) => depthwise::weight_grad_image(g, x_n, dout_n, sums, first),
        }
    }

    /// The weight gradient from per-chunk sums, added in chunk order, in the weight's layout.
    pub fn finish(&self, g: &ConvGeometry, partials: Vec<Vec<f32>>) -> Vec<f32> {
        match (&self.direct, g.kind()) {
            (Some(d), _) => d.finish(partials),
            (None, ConvKind::Dense) => dense::finish_weight_grad(g, partials),
            (None, _) => sum_in_chunk_order(partials, g.out_channels * g.patch_len()),
        }
    }
}

/// `dw = ∂(conv)/∂w · dout` of a dense conv, summed over the batch in fixed chunks.
pub(crate) fn dense_backward_weight(g: &ConvGeometry, x: &[f32], dout: &[f32]) -> Vec<f32> {
    let kernel = WeightGrad::new(g);
    let chunks = fixed_chunks(g.batch, WEIGHT_GRAD_PARTIALS);
    let t = threads();
    let gemm_threads = if chunks.len() >= t { 1 } else { t };
    let partial = |images: Range<usize>| -> Vec<f32> {
        let mut sums = kernel.new_sums(g);
        let mut first = true;
        with_scratch(kernel.scratch_len(g), |scratch| {
            for n in images {
                let x_n = &x[n * g.in_image()..][..g.in_image()];
                let dout_n = &dout[n * g.out_image()..][..g.out_image()];
                kernel.accumulate_image(
                    g,
                    x_n,
                    dout_n,
                    &mut sums,
                    &mut first,
                    scratch,
                    gemm_threads,
                );
            }
        });
        sums
    };
    let partials: Vec<Vec<f32>> = if gemm_threads == 1 {
        par_map(chunks.len(), |i| partial(chunks[i].clone()))
    } else {
        chunks.into_iter().map(partial).collect()
    };
    kernel.finish(g, partials)
}
