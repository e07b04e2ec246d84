//! BatchNorm loops over (N, C, P) data (P = H·W): per-channel sums run channel-parallel,
//! each summing its N planes in order (f32 lanes within a plane, f64 across planes), and the
//! elementwise passes run plane-parallel. Both orders are fixed, so results are deterministic.

use super::Activation;
use crate::parallel::{par_item_groups, par_map};
use crate::simd::shifted_sum_and_squares;

/// Planes are grouped into tasks of at least this many elements.
const MIN_TASK_ELEMS: usize = 16 * 1024;

/// Layout of an (N, C, H, W) tensor as N·C planes of `plane` elements.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Planes {
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
}

impl Planes {
    /// Values per channel (N·H·W).
    pub fn per_channel(&self) -> usize {
        self.batch * self.plane
    }
    fn of<'a>(&self, data: &'a [f32], n: usize, c: usize) -> &'a [f32] {
        &data[(n * self.channels + c) * self.plane..][..self.plane]
    }
}

/// Per-channel batch mean and biased variance, in f64.
pub(crate) fn batch_stats(d: Planes, x: &[f32]) -> Vec<(f64, f64)> {
    let m = d.per_channel() as f64;
    par_map(d.channels, |c| {
        // Shifting by one sample of the channel keeps the one-pass variance accurate.
        let shift = d.of(x, 0, c).first().copied().unwrap_or(0.0);
        let (mut s, mut q) = (0f64, 0f64);
        for n in 0..d.batch {
            let (ps, pq) = shifted_sum_and_squares(d.of(x, n, c), shift);
            s += ps as f64;
            q += pq as f64;
        }
        let mean_shifted = s / m;
        (
            shift as f64 + mean_shifted,
            (q / m - mean_shifted * mean_shifted).max(0.0),
        )
    })
}

/// (mean, Σ (x − mean)²) of one plane, in f64 (shifted by its first value).
pub(crate) fn plane_moments(x: &[f32]) -> (f64, f64) {
    let shift = x.first().copied().unwrap_or(0.0);
    let (s, q) = shifted_sum_and_squares(x, shift);
    let p = x.len().max(1) as f64;
    let (s, q) = (s as f64, q as f64);
    (shift as f64 + s / p, (q - s * s / p).max(0.0))
}

/// Running combination of per-plane moments (Chan et al.), fed in a fixed order.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Moments {
    count: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    pub fn add(&mut self, (mean, m2): (f64, f64), count: usize) {
        let n = count as f64;
        let total = self.count + n;
        if total == 0.0 {
            return;
        }
        let delta = mean - self.mean;
        self.mean += delta * n / total;
        self.m2 += m2 + delta * delta * self.count * n / total;
        self.count = total;
    }
    /// (mean, biased variance)
    pub fn mean_var(&self) -> (f64, f64) {
        (
            self.mean,
            if self.count > 0.0 {
                self.m2 / self.count
            } else {
                0.0
            },
        )
    }
}

/// `x = act(x · a + b)` in place.
#[inline]
pub(crate) fn affine_act_in_place(x: &mut [f32], a: f32, b: f32, act: Activation) {
    match act {
        Activation::Identity => x.iter_mut().for_each(|v| *v = *v * a + b),
        Activation::Relu => x.iter_mut().for_each(|v| *v = (*v * a + b).max(0.0)),
        Activation::Relu6 => x.iter_mut().for_each(|v| *v = (*v * a + b).clamp(0.0, 6.0)),
    }
}

/// The gradient that reaches `v = x · a + b` through the activation.
#[inline(always)]
pub(crate) fn gated_pre(act: Activation, dy: f32, v: f32) -> f32 {
    match act {
        Activation::Identity => dy,
        Activation::Relu => {
            if v > 0.0 {
                dy
            } else {
                0.0
            }
        }
        Activation::Relu6 => {
            if v > 0.0 && v < 6.0 {
                dy
            } else {
                0.0
            }
        }
    }
}

/// Per plane: (Σ g, Σ g · (z − mean)) with g the gradient at `v = z · a + b` through `act`.
pub(crate) fn plane_grad_sums_pre(
    z: &[f32],
    dy: &[f32],
    a: f32,
    b: f32,
    mean: f32,
    act: Activation,
) -> (f32, f32) {
    const LANES: usize = 16;
    let mut s = [0f32; LANES];
    let mut q = [0f32; LANES];
    let full = z.len() / LANES * LANES;
    for (zc, dc) in z[..full]
        .chunks_exact(LANES)
        .zip(dy[..full].chunks_exact(LANES))
    {
        for l in 0..LANES {
            let g = gated_pre(act, dc[l], zc[l] * a + b);
            s[l] += g;
            q[l] += g * (zc[l] - mean);
        }
    }
    let (mut ts, mut tq) = (0f32, 0f32);
    for i in full..z.len() {
        let g = gated_pre(act, dy[i], z[i] * a + b);
        ts += g;
        tq += g * (z[i] - mean);
    }
    (s.iter().sum::<f32>() + ts, q.iter().sum::<f32>() + tq)
}

/// `out = act(x · scale[c] + shift[c])`.
pub(crate) fn normalize(
    d: Planes,
    x: &[f32],
    scale: &[f32],
    shift: &[f32],
    act: Activation,
    out: &mut [f32],
) {
    par_item_groups(out, d.plane, MIN_TASK_ELEMS, |first, planes| {
        for (i, o) in planes.chunks_mut(d.plane).enumerate() {
            let idx = first + i;
            let c = idx % d.channels;
            let src = &x[idx * d.plane..][..d.plane];
            let (a, b) = (scale[c], shift[c]);
            match act {
                Activation::Identity => o.iter_mut().zip(src).for_each(|(o, v)| *o = v * a + b),
                Activation::Relu => o
                    .iter_mut()
                    .zip(src)
                    .for_each(|(o, v)| *o = (v * a + b).max(0.0)),
                Activation::Relu6 => o
                    .iter_mut()
                    .zip(src)
                    .for_each(|(o, v)| *o = (v * a + b).clamp(0.0, 6.0)),
            }
        }
    });
}

/// Per channel, (Σ g, Σ g · (x − mean)) with g the gated output gradient.
pub(crate) fn grad_sums(
    d: Planes,
    x: &[f32],
    dy: &[f32],
    y: &[f32],
    mean: &[f32],
    act: Activation,
) -> Vec<(f64, f64)> {
    par_map(d.channels, |c| {
        let (mut sg, mut sgx) = (0f64, 0f64);
        for n in 0..d.batch {
            let (a, b) =
                plane_grad_sums(d.of(x, n, c), d.of(dy, n, c), d.of(y, n, c), mean[c], act);
            sg += a as f64;
            sgx += b as f64;
        }
        (sg, sgx)
    })
}

fn plane_grad_sums(x: &[f32], dy: &[f32], y: &[f32], mean: f32, act: Activation) -> (f32, f32) {
    const LANES: usize = 16;
    let mut s = [0f32; LANES];
    let mut q = [0f32; LANES];
    let full = x.len() / LANES * LANES;
    for ((xc, dc), yc) in x[..full]
        .chunks_exact(LANES)
        .zip(dy[..full].chunks_exact(LANES))
        .zip(y[..full].chunks_exact(LANES))
    {
        for l in 0..LANES {
            let g = gated_pre(act, dc[l], yc[l]);
            s[l] += g;
            q[l] += g * (xc[l] - mean);
        }
    }
    let (mut ts, mut tq) = (0f32, 0f32);
    for i in full..x.len() {
        let g = gated_pre(act, dy[i], y[i]);
        ts += g;
        tq += g * (x[i] - mean);
    }
    (s.iter().sum::<f32>() + ts, q.iter().sum::<f32>() + tq)
}

/// `dx = a[c] · g + b[c] · x + k[c]` with g the gated output gradient.
#[allow(clippy::too_many_arguments)]
pub(crate) fn grad_input(
    d: Planes,
    x: &[f32],
    dy: &[f32],
    y: &[f32],
    coef: (&[f32], &[f32], &[f32]),
    act: Activation,
    dx: &mut [f32],
) {
    let (a, b, k) = coef;
    par_item_groups(dx, d.plane, MIN_TASK_ELEMS, |first, planes| {
        for (i, o) in planes.chunks_mut(d.plane).enumerate() {
            let idx = first + i;
            let c = idx % d.channels;
            let range = idx * d.plane..(idx + 1) * d.plane;
            let (xs, gs, ys) = (&x[range.clone()], &dy[range.clone()], &y[range]);
            let (ac, bc, kc) = (a[c], b[c], k[c]);
            for (((o, xv), gv), yv) in o.iter_mut().zip(xs).zip(gs).zip(ys) {
                *o = ac * gated_pre(act, *gv, *yv) + bc * xv + kc;
            }
        }
    });
}
