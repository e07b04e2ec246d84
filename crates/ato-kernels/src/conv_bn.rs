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
//! Backward: per-channel sums (train only), then per image (in parallel over fixed chunks of
//! the batch) the BN gradient `dz` in a scratch buffer, immediately fed to the conv's input
//! and weight gradients.

use crate::backend::{fast_path, Backend};
use crate::batchnorm::kernels::{
    affine_act_in_place, gated_pre, plane_grad_sums_pre, plane_moments, Moments, Planes,
};
use crate::batchnorm::ops::ChannelStats;
use crate::batchnorm::{Activation, BatchNorm2d};
use crate::conv::geometry::{ConvGeometry, ConvKind};
use crate::conv::{self, ConvParams, WEIGHT_GRAD_PARTIALS};
use crate::parallel::{par_chunks_map, par_item_groups, par_map, threads, with_scratch};
use crate::storage::{contiguous_f32, dims4, output_buffer, to_storage};
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
        return x.apply_op3(
            &w,
            &gamma_beta,
            ConvBatchNormOp {
                params: p,
                eps,
                act,
                mode,
            },
        );
    }
    let count = g.batch * g.out_plane();
    if count < 2 {
        bail!(
            "batch-norm in train mode needs more than one value per channel, got output {:?}",
            g.output_dims()
        );
    }
    let slot = Arc::new(Mutex::new(None));
    let mode = Mode::Train(slot.clone());
    let y = x.apply_op3(
        &w,
        &gamma_beta,
        ConvBatchNormOp {
            params: p,
            eps,
            act,
            mode,
        },
    )?;
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

/// Per-channel (scale, shift) with `bn(z) = z · scale + shift`.
fn affine(gamma_beta: &[f32], stats: &ChannelStats) -> (Vec<f32>, Vec<f32>) {
    let c = stats.mean.len();
    let (gamma, beta) = gamma_beta.split_at(c);
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

fn geometry(xl: &Layout, wl: &Layout, gbl: &Layout, p: ConvParams) -> Result<ConvGeometry> {
    let g = ConvGeometry::new(dims4(xl, "conv-bn x")?, dims4(wl, "conv-bn w")?, p)?;
    if g.kind() == ConvKind::Unsupported {
        bail!("conv-bn: unsupported groups {}", g.groups);
    }
    if gbl.dims() != [2 * g.out_channels] {
        bail!(
            "conv-bn: γ;β has shape {:?}, expected [{}]",
            gbl.dims(),
            2 * g.out_channels
        );
    }
    Ok(g)
}

/// Runs `f(image, out_n, col, gemm_threads)` for every image, in parallel when the batch is
/// large enough, collecting the results in image order.
fn map_images<T: Send>(
    g: &ConvGeometry,
    out: &mut [f32],
    image_len: usize,
    f: impl Fn(usize, &mut [f32], &mut [f32], usize) -> T + Sync,
) -> Vec<T> {
    let t = threads();
    let cap = conv::col_capacity(g);
    if g.batch >= t && t > 1 {
        par_chunks_map(out, image_len, |n, o| {
            with_scratch(cap, |col| f(n, o, col, 1))
        })
    } else {
        with_scratch(cap, |col| {
            out.chunks_mut(image_len)
                .enumerate()
                .map(|(n, o)| f(n, o, col, t))
                .collect()
        })
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
        let g = geometry(xl, wl, gbl, self.params)?;
        let x = contiguous_f32(xs, xl, "conv-bn x")?;
        let w = contiguous_f32(ws, wl, "conv-bn w")?;
        let gamma_beta = contiguous_f32(gbs, gbl, "conv-bn γ;β")?;
        let (c, po) = (g.out_channels, g.out_plane());
        let x_n = |n: usize| &x[n * g.in_image()..][..g.in_image()];
        let mut y = output_buffer(g.batch * g.out_image());
        match &self.mode {
            Mode::Eval(stats) => {
                let (scale, shift) = affine(gamma_beta, stats);
                map_images(&g, &mut y, g.out_image(), |n, y_n, col, t| {
                    conv::forward_image(&g, x_n(n), w, y_n, col, t);
                    for (ch, plane) in y_n.chunks_mut(po).enumerate() {
                        affine_act_in_place(plane, scale[ch], shift[ch], self.act);
                    }
                });
            }
            Mode::Train(slot) => {
                let mut z = output_buffer(g.batch * g.out_image());
                let moments: Vec<Vec<(f64, f64)>> =
                    map_images(&g, &mut z, g.out_image(), |n, z_n, col, t| {
                        conv::forward_image(&g, x_n(n), w, z_n, col, t);
                        z_n.chunks(po).map(plane_moments).collect()
                    });
                let stats = batch_stats(&moments, c, po, self.eps);
                let (scale, shift) = affine(gamma_beta, &stats);
                par_item_groups(&mut y, po, 16 * 1024, |first, planes| {
                    for (i, out) in planes.chunks_mut(po).enumerate() {
                        let idx = first + i;
                        let ch = idx % c;
                        out.copy_from_slice(&z[idx * po..][..po]);
                        affine_act_in_place(out, scale[ch], shift[ch], self.act);
                    }
                });
                *slot.lock().expect("conv-bn state lock") = Some(TrainState { z, stats });
            }
        }
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
        let grads = Arc::new(Mutex::new(None));
        let op = ConvBatchNormGradOp {
            forward: self,
            gamma_beta: gamma_beta.to_vec1()?,
            need_dx: x.track_op(),
            grads: grads.clone(),
        };
        let dx = x.apply_op3_no_bwd(w, &dy.contiguous()?, &op)?;
        let (dw, dgb) = grads
            .lock()
            .expect("conv-bn grads lock")
            .take()
            .expect("set by the backward op");
        let dw = Tensor::from_vec(dw, w.shape(), w.device())?;
        let dgb = Tensor::from_vec(dgb, gamma_beta.shape(), gamma_beta.device())?;
        Ok((op.need_dx.then_some(dx), Some(dw), Some(dgb)))
    }
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
    let mv: Vec<(f64, f64)> = total.iter().map(Moments::mean_var).collect();
    ChannelStats {
        mean: mv.iter().map(|m| m.0 as f32).collect(),
        invstd: mv
            .iter()
            .map(|m| (1.0 / (m.1 + eps).sqrt()) as f32)
            .collect(),
        var: mv.iter().map(|m| m.1).collect(),
    }
}

/// (x, w, dy) → dx (a 1-element placeholder when x needs no gradient); stores (dw, [dγ; dβ]).
struct ConvBatchNormGradOp<'a> {
    forward: &'a ConvBatchNormOp,
    gamma_beta: Vec<f32>,
    need_dx: bool,
    #[allow(clippy::type_complexity)]
    grads: Arc<Mutex<Option<(Vec<f32>, Vec<f32>)>>>,
}

/// Per-chunk results of the backward image loop.
struct ChunkGrads {
    dw: Vec<f32>,
    /// (Σ g, Σ g · (z − mean)) per channel, f64 (eval mode only).
    sums: Vec<(f64, f64)>,
}

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
        let fwd = self.forward;
        let g = ConvGeometry::new(dims4(xl, "conv-bn x")?, dims4(wl, "conv-bn w")?, fwd.params)?;
        if dims4(gl, "conv-bn dy")? != g.output_dims() {
            bail!(
                "conv-bn grad: dy {:?}, expected {:?}",
                gl.dims(),
                g.output_dims()
            );
        }
        let x = contiguous_f32(xs, xl, "conv-bn x")?;
        let w = contiguous_f32(ws, wl, "conv-bn w")?;
        let dy = contiguous_f32(gs, gl, "conv-bn dy")?;
        let (c, po) = (g.out_channels, g.out_plane());
        let m = (g.batch * po) as f64;
        let act = fwd.act;
        let state_guard;
        let (stats, z): (&ChannelStats, Option<&[f32]>) = match &fwd.mode {
            Mode::Eval(s) => (s, None),
            Mode::Train(slot) => {
                state_guard = slot.lock().expect("conv-bn state lock");
                match state_guard.as_ref() {
                    Some(s) => (&s.stats, Some(s.z.as_slice())),
                    None => bail!("conv-bn backward before forward"),
                }
            }
        };
        let (scale, shift) = affine(&self.gamma_beta, stats);
        // dz = a·g + b·z + k per channel (train); a = scale, b = k = 0 (eval).
        let (mut b, mut k) = (vec![0f32; c], vec![0f32; c]);
        let mut train_sums = None;
        if let Some(z) = z {
            let d = Planes {
                batch: g.batch,
                channels: c,
                plane: po,
            };
            let sums = par_map(c, |ch| {
                let (mut sg, mut sgz) = (0f64, 0f64);
                for n in 0..g.batch {
                    let r = (n * c + ch) * po..(n * c + ch + 1) * po;
                    let (s, q) = plane_grad_sums_pre(
                        &z[r.clone()],
                        &dy[r],
                        scale[ch],
                        shift[ch],
                        stats.mean[ch],
                        act,
                    );
                    sg += s as f64;
                    sgz += q as f64;
                }
                (sg, sgz)
            });
            for ch in 0..c {
                let (sg, sgz) = sums[ch];
                let invstd = stats.invstd[ch] as f64;
                let bc = -(scale[ch] as f64) * invstd * invstd * sgz / m;
                b[ch] = bc as f32;
                k[ch] = (-(scale[ch] as f64) * sg / m - bc * stats.mean[ch] as f64) as f32;
            }
            let _ = d;
            train_sums = Some(sums);
        }

        let per_chunk = g.batch.div_ceil(WEIGHT_GRAD_PARTIALS).max(1);
        let chunks = g.batch.div_ceil(per_chunk);
        let t = threads();
        let gemm_threads = if chunks >= t { 1 } else { t };
        let wlen = w.len();
        let scratch = 2 * g.out_image() + conv::col_capacity(&g);
        let chunk = |ci: usize, mut dx_chunk: Option<&mut [f32]>| -> ChunkGrads {
            let mut dw = output_buffer(wlen);
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
                            conv::forward_image(&g, x_n, w, z_tmp, col, gemm_threads);
                            z_tmp
                        }
                    };
                    for ch in 0..c {
                        let r = ch * po..(ch + 1) * po;
                        let (zp, gp, dzp) = (&z_n[r.clone()], &dy_n[r.clone()], &mut dz[r]);
                        let (sc, sh) = (scale[ch], shift[ch]);
                        if z.is_none() {
                            let (s, q) = plane_grad_sums_pre(zp, gp, sc, sh, stats.mean[ch], act);
                            sums[ch].0 += s as f64;
                            sums[ch].1 += q as f64;
                        }
                        let (bc, kc) = (b[ch], k[ch]);
                        for ((o, zv), gv) in dzp.iter_mut().zip(zp).zip(gp) {
                            *o = sc * gated_pre(act, *gv, zv * sc + sh) + bc * zv + kc;
                        }
                    }
                    if let Some(dx_chunk) = dx_chunk.as_deref_mut() {
                        let local = n - ci * per_chunk;
                        let dx_n = &mut dx_chunk[local * g.in_image()..][..g.in_image()];
                        conv::input_grad_image(&g, dz, w, dx_n, col, gemm_threads);
                    }
                    conv::weight_grad_image(&g, x_n, dz, &mut dw, &mut first, col, gemm_threads);
                }
            });
            if first {
                dw.fill(0.0);
            }
            ChunkGrads { dw, sums }
        };
        let mut dx = output_buffer(if self.need_dx {
            g.batch * g.in_image()
        } else {
            1
        });
        let results: Vec<ChunkGrads> = match (self.need_dx, gemm_threads == 1) {
            (true, true) => par_chunks_map(&mut dx, per_chunk * g.in_image(), |ci, d| {
                chunk(ci, Some(d))
            }),
            (true, false) => dx
                .chunks_mut(per_chunk * g.in_image())
                .enumerate()
                .map(|(ci, d)| chunk(ci, Some(d)))
                .collect(),
            (false, true) => par_map(chunks, |ci| chunk(ci, None)),
            (false, false) => (0..chunks).map(|ci| chunk(ci, None)).collect(),
        };
        if !self.need_dx {
            dx[0] = 0.0;
        }
        let sums = match train_sums {
            Some(s) => s,
            None => {
                let mut total = vec![(0f64, 0f64); c];
                for r in &results {
                    for (t, s) in total.iter_mut().zip(&r.sums) {
                        t.0 += s.0;
                        t.1 += s.1;
                    }
                }
                total
            }
        };
        let dw = conv::reduce_partials(results.into_iter().map(|r| r.dw).collect(), wlen);
        let mut dgb = vec![0f32; 2 * c];
        for ch in 0..c {
            dgb[ch] = (sums[ch].1 * stats.invstd[ch] as f64) as f32;
            dgb[c + ch] = sums[ch].0 as f32;
        }
        *self.grads.lock().expect("conv-bn grads lock") = Some((dw, dgb));
        let shape: Shape = if self.need_dx {
            g.input_dims().into()
        } else {
            1.into()
        };
        Ok(to_storage(dx, shape))
    }
}
