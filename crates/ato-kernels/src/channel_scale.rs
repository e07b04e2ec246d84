//! `x · g` with one factor per channel — the gated forward of the models, (N, C, H, W) × (C,).
//!
//! Candle's `broadcast_mul` takes the factor's gradient through a strided reduction over three
//! axes, which dominated the ATO controller's backward. Here the forward and the input gradient
//! are one pass each, and the factor's gradient `Σ_{n,h,w} dy·x` is a dot product per plane,
//! accumulated per image in f64 and summed in image order (deterministic).

use crate::backend::{fast_path, Backend};
use crate::output::fill_chunks;
use crate::parallel::par_map;
use crate::simd::multiversion;
use crate::storage::{contiguous_f32, expect_same_dims, to_storage};
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

/// `x · g[c]` on every channel c of `x` (N, C, H, W), with the process-wide backend.
pub fn scale_channels(x: &Tensor, g: &Tensor) -> Result<Tensor> {
    scale_channels_with(x, g, crate::backend())
}

/// [`scale_channels`] with an explicit backend.
pub fn scale_channels_with(x: &Tensor, g: &Tensor, backend: Backend) -> Result<Tensor> {
    let c = x.dim(1)?;
    if g.dims() != [c] {
        bail!(
            "scale_channels: {} channels, factors of shape {:?}",
            c,
            g.dims()
        );
    }
    let ours = backend == Backend::Fast
        && fast_path(x.device(), x.dtype())
        && g.dtype() == x.dtype()
        && x.rank() == 4;
    if !ours {
        let mut shape = vec![1; x.rank()];
        shape[1] = c;
        return x.broadcast_mul(&g.reshape(shape)?);
    }
    x.contiguous()?.apply_op2(&g.contiguous()?, ScaleChannelsOp)
}

/// (N, C, plane) sizes of a rank-4 layout.
fn planes(l: &Layout) -> Result<(usize, usize, usize)> {
    let d = l.dims();
    if d.len() != 4 {
        bail!("scale_channels: expected (N, C, H, W), got {d:?}");
    }
    Ok((d[0], d[1], d[2] * d[3]))
}

/// (x, g) → x · g per channel.
struct ScaleChannelsOp;

impl CustomOp2 for ScaleChannelsOp {
    fn name(&self) -> &'static str {
        "ato-scale-channels"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        let (_, c, plane) = planes(l1)?;
        let x = contiguous_f32(s1, l1, "scale_channels x")?;
        let g = contiguous_f32(s2, l2, "scale_channels g")?;
        if g.len() != c {
            bail!("scale_channels: {c} channels, {} factors", g.len());
        }
        let out = fill_chunks(x.len(), plane, true, |i, o| {
            scale_chunk(o, &x[i * plane..][..plane], g[i % c])
        });
        Ok(to_storage(out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        g: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = if x.track_op() {
            Some(dy.apply_op2_no_bwd(g, &ScaleChannelsOp)?)
        } else {
            None
        };
        let dg = if g.track_op() {
            Some(dy.apply_op2_no_bwd(x, &ChannelDotOp)?)
        } else {
            None
        };
        Ok((dx, dg))
    }
}

/// (dy, x) → Σ_{n, h, w} dy·x per channel, shape (C,).
struct ChannelDotOp;

impl CustomOp2 for ChannelDotOp {
    fn name(&self) -> &'static str {
        "ato-channel-dot"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        expect_same_dims(l1, l2, "channel_dot")?;
        let (n, c, plane) = planes(l1)?;
        let dy = contiguous_f32(s1, l1, "channel_dot dy")?;
        let x = contiguous_f32(s2, l2, "channel_dot x")?;
        let per_image: Vec<Vec<f64>> = par_map(n, |i| {
            (0..c)
                .map(|ch| {
                    let at = (i * c + ch) * plane;
                    plane_dot(&dy[at..][..plane], &x[at..][..plane]) as f64
                })
                .collect()
        });
        let mut total = vec![0f64; c];
        for image in &per_image {
            total.iter_mut().zip(image).for_each(|(t, v)| *t += v);
        }
        let out: Vec<f32> = total.into_iter().map(|v| v as f32).collect();
        Ok((CpuStorage::F32(out), Shape::from(c)))
    }
}

multiversion! {
/// `out = x · g`.
fn scale_chunk(out: &mut [f32], x: &[f32], g: f32) {
    for (o, v) in out.iter_mut().zip(x) {
        *o = v * g;
    }
}
}

multiversion! {
/// `Σ a·b`, with 16 partial sums so the loop vectorises.
fn plane_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..16 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}
}
