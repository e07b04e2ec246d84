//! The backward of [`super::ConvBatchNormOp`]: (x, w, dy) → dx, with dw and [dγ; dβ] on the
//! side.

use super::{geometry, packed_affine, ConvBatchNormOp, Mode};
use crate::batchnorm::kernels::{
    grad_coefficients, grad_sums, plane_grad, plane_grad_sums, GradCoef, Planes,
};
use crate::batchnorm::ops::ChannelStats;
use crate::batchnorm::Activation;
use crate::conv::{self, ConvWeights, Passes, WeightGrad, WEIGHT_GRAD_PARTIALS};
use crate::output::{fill_chunk_parts_map, Parts};
use crate::parallel::{par_map, threads, with_scratch};
use crate::profile::Pass;
use crate::storage::{contiguous_f32, expect_dims4, to_storage};
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape};
use std::sync::{Arc, Mutex};

/// The parameter gradients: (dw, [dγ; dβ]).
pub(super) type ParamGrads = Arc<Mutex<Option<(Vec<f32>, Vec<f32>)>>>;

/// (x, w, dy) → dx (a 1-element placeholder when x needs no gradient); stores the parameter
/// gradients in `grads` (dw empty when the weights need no gradient, e.g. frozen weights).
pub(super) struct ConvBatchNormGradOp<'a> {
    pub forward: &'a ConvBatchNormOp,
    /// The activation to take the gradient back through (identity when already done).
    pub act: Activation,
    pub gamma_beta: Vec<f32>,
    pub need_dx: bool,
    pub need_dw: bool,
    pub grads: ParamGrads,
}

/// Per-chunk results of the image loop.
struct ChunkGrads {
    dw: Vec<f32>,
    /// (Σ g, Σ g · (z − mean)) per channel (eval mode only; train computes them up front).
    sums: Vec<(f64, f64)>,
}

/// The parts of [`ConvBatchNormGradOp`] in `--profile` (summed over threads: the images of a
/// batch run in parallel chunks).
const BN_GRAD: &str = "↳ conv-bn-grad: BN + activation backward (thread-time)";
const INPUT_GRAD: &str = "↳ conv-bn-grad: conv input grad (thread-time)";
const WEIGHT_GRAD: &str = "↳ conv-bn-grad: conv weight grad (thread-time)";
const BATCH_SUMS: &str = "↳ conv-bn-grad: train-mode BN batch sums (wall)";
const REDUCE: &str = "↳ conv-bn-grad: weight grad partials summed (wall)";

impl CustomOp3 for ConvBatchNormGradOp<'_> {
    fn name(&self) -> &'static str {
        "ato-conv-batch-norm-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        let fwd = self.forward;
        let g = geometry(xl, wl, fwd.params)?;
        expect_dims4(gl, g.output_dims(), "conv-bn grad dy")?;
        let x = contiguous_f32(xs, xl, "conv-bn x")?;
        let w = contiguous_f32(ws, wl, "conv-bn w")?;
        let dy = contiguous_f32(gs, gl, "conv-bn dy")?;
        let (c, po, act) = (g.out_channels, g.out_plane(), self.act);
        let guard;
        let (stats, z): (&ChannelStats, Option<&[f32]>) = match &fwd.mode {
            Mode::Eval(s) => (s, None),
            Mode::Train(slot) => {
                guard = slot.lock().expect("conv-bn state lock");
                match guard.as_ref() {
                    Some(s) => (&s.stats, Some(s.z.as_slice())),
                    None => bail!("conv-bn backward before forward"),
                }
            }
        };
        let (scale, shift) = packed_affine(&self.gamma_beta, stats);
        let d = Planes {
            batch: g.batch,
            channels: c,
            plane: po,
        };
        let count = d.per_channel();
        // Train: the sums over the batch come first, then dz = a·g + b·z + k. Eval: dz =
        // scale·g, with z recomputed per image and the sums (for dγ, dβ) accumulated on the way.
        let train = z.map(|z| {
            let _pass = Pass::start(BATCH_SUMS);
            let sums = grad_sums(d, z, dy, &scale, &shift, &stats.mean, act);
            grad_coefficients(
                &sums,
                &scale,
                &shift,
                &stats.mean,
                &stats.invstd,
                count,
                true,
            )
        });
        let coef: Vec<GradCoef> = match &train {
            Some((coef, _, _)) => coef.clone(),
            None => scale
                .iter()
                .zip(&shift)
                .map(|(&scale, &shift)| GradCoef {
                    scale,
                    shift,
                    b: 0.0,
                    k: 0.0,
                })
                .collect(),
        };

        let passes = if z.is_some() {
            Passes::Backward
        } else {
            Passes::Both
        };
        let weights = ConvWeights::new(&g, w, passes);
        let per_chunk = g.batch.div_ceil(WEIGHT_GRAD_PARTIALS).max(1);
        let chunks = g.batch.div_ceil(per_chunk);
        let t = threads();
        let gemm_threads = if chunks >= t { 1 } else { t };
        let wgrad = WeightGrad::new(&g);
        let scratch = 2 * g.out_image() + wgrad.scratch_len(&g);
        let need_dw = self.need_dw;
        let chunk = |ci: usize, mut dx_chunk: Option<Parts>| -> ChunkGrads {
            let mut dw = if need_dw {
                wgrad.new_sums(&g)
            } else {
                Vec::new()
            };
            let mut first = true;
            let mut sums = vec![(0f64, 0f64); if z.is_none() { c } else { 0 }];
            with_scratch(scratch, |buf| {
                let (dz, rest) = buf.split_at_mut(g.out_image());
                let (z_tmp, col) = rest.split_at_mut(g.out_image());
                for n in ci * per_chunk..((ci + 1) * per_chunk).min(g.batch) {
                    let x_n = &x[n * g.in_image()..][..g.in_image()];
                    let dy_n = &dy[n * g.out_image()..][..g.out_image()];
                    let z_n: &[f32] = match z {
                        Some(z) => &z[n * g.out_image()..][..g.out_image()],
                        None => {
                            conv::forward_image(&g, x_n, &weights, z_tmp, col, gemm_threads);
                            z_tmp
                        }
                    };
                    let bn_pass = Pass::start(BN_GRAD);
                    for ch in 0..c {
                        let r = ch * po..(ch + 1) * po;
                        let (zp, gp) = (&z_n[r.clone()], &dy_n[r.clone()]);
                        if z.is_none() {
                            let (s, q) =
                                plane_grad_sums(zp, gp, scale[ch], shift[ch], stats.mean[ch], act);
                            sums[ch].0 += s as f64;
                            sums[ch].1 += q as f64;
                        }
                        plane_grad(&mut dz[r], zp, gp, coef[ch], act);
                    }
                    drop(bn_pass);
                    if let Some(dx_chunk) = dx_chunk.as_mut() {
                        let _pass = Pass::start(INPUT_GRAD);
                        dx_chunk
                            .fill_next(|dx_n| {
                                let t = gemm_threads;
                                let dx_n =
                                    conv::input_grad_image_into(&g, dz, &weights, dx_n, col, t);
                                (dx_n, ())
                            })
                            .expect("one part per image");
                    }
                    if need_dw {
                        let _pass = Pass::start(WEIGHT_GRAD);
                        wgrad.accumulate_image(&g, x_n, dz, &mut dw, &mut first, col, gemm_threads);
                    }
                }
            });
            ChunkGrads { dw, sums }
        };
        let chunk_len = per_chunk * g.in_image();
        let parallel = gemm_threads == 1;
        let (dx, results): (Vec<f32>, Vec<ChunkGrads>) = match (self.need_dx, parallel) {
            (true, _) => {
                let len = g.batch * g.in_image();
                fill_chunk_parts_map(len, chunk_len, g.in_image(), parallel, |ci, d| {
                    chunk(ci, Some(d))
                })
            }
            (false, true) => (vec![0.0], par_map(chunks, |ci| chunk(ci, None))),
            (false, false) => (vec![0.0], (0..chunks).map(|ci| chunk(ci, None)).collect()),
        };
        let (dgamma, dbeta) = match train {
            Some((_, dgamma, dbeta)) => (dgamma, dbeta),
            None => {
                let mut total = vec![(0f64, 0f64); c];
                for r in &results {
                    for (t, s) in total.iter_mut().zip(&r.sums) {
                        t.0 += s.0;
                        t.1 += s.1;
                    }
                }
                let (_, dgamma, dbeta) = grad_coefficients(
                    &total,
                    &scale,
                    &shift,
                    &stats.mean,
                    &stats.invstd,
                    count,
                    false,
                );
                (dgamma, dbeta)
            }
        };
        let dw = if need_dw {
            let _pass = Pass::start(REDUCE);
            wgrad.finish(&g, results.into_iter().map(|r| r.dw).collect())
        } else {
            Vec::new()
        };
        *self.grads.lock().expect("conv-bn grads lock") = Some((dw, [dgamma, dbeta].concat()));
        let shape: Shape = if self.need_dx {
            g.input_dims().into()
        } else {
            1.into()
        };
        Ok(to_storage(dx, shape))
    }
}
