//! BatchNorm loops over (N, C, P) data (P = H·W): per-channel sums run channel-parallel,
//! each summing its N planes in order (f32 lanes within a plane, f64 across planes), and the
//! elementwise passes run plane-parallel. Both orders are fixed, so results are deterministic.
//!
//! Every loop is monomorphised per activation ([`ActFn`]) so that it vectorises.

use super::Activation;
use crate::output::fill_item_groups;
use crate::parallel::par_map;
use crate::simd::{multiversion, shifted_sum_and_squares};
use std::mem::MaybeUninit;

/// Planes are grouped into tasks of at least this many elements.
pub(super) const MIN_TASK_ELEMS: usize = 16 * 1024;

const LANES: usize = 16;

/// An activation as a type, for monomorphised loops.
pub(crate) trait ActFn {
    fn apply(v: f32) -> f32;
    /// The gradient `dy` of the activation's output, taken back to its input `v`.
    fn gate(dy: f32, v: f32) -> f32;
}

pub(crate) struct IdentityFn;
pub(crate) struct ReluFn;
pub(crate) struct Relu6Fn;

impl ActFn for IdentityFn {
    #[inline(always)]
    fn apply(v: f32) -> f32 {
        v
    }
    #[inline(always)]
    fn gate(dy: f32, _v: f32) -> f32 {
        dy
    }
}

impl ActFn for ReluFn {
    #[inline(always)]
    fn apply(v: f32) -> f32 {
        v.max(0.0)
    }
    #[inline(always)]
    fn gate(dy: f32, v: f32) -> f32 {
        if v > 0.0 {
            dy
        } else {
            0.0
        }
    }
}

impl ActFn for Relu6Fn {
    #[inline(always)]
    fn apply(v: f32) -> f32 {
        v.clamp(0.0, 6.0)
    }
    #[inline(always)]
    fn gate(dy: f32, v: f32) -> f32 {
        if v > 0.0 && v < 6.0 {
            dy
        } else {
            0.0
        }
    }
}

/// Calls `$f::<A>($args)` with `A` the [`ActFn`] of `$act`.
macro_rules! with_act {
    ($act:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $act {
            Activation::Identity => $f::<IdentityFn>($($arg),*),
            Activation::Relu => $f::<ReluFn>($($arg),*),
            Activation::Relu6 => $f::<Relu6Fn>($($arg),*),
        }
    };
}

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
    par_map(d.channels, |c| {
        let mut total = Moments::default();
        for n in 0..d.batch {
            total.add(plane_moments(d.of(x, n, c)), d.plane);
        }
        total.mean_var()
    })
}

/// (mean, Σ (x − mean)²) of one plane, in f64 (shifted by its first value).
#[inline(always)]
pub(crate) fn plane_moments_body(x: &[f32]) -> (f64, f64) {
    let shift = x.first().copied().unwrap_or(0.0);
    let (s, q) = shifted_sum_and_squares(x, shift);
    let p = x.len().max(1) as f64;
    let (s, q) = (s as f64, q as f64);
    (shift as f64 + s / p, (q - s * s / p).max(0.0))
}

multiversion! {
/// (mean, Σ (x − mean)²) of one plane, in f64.
pub(crate) fn plane_moments(x: &[f32]) -> (f64, f64) {
    plane_moments_body(x)
}
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
        let var = if self.count > 0.0 {
            self.m2 / self.count
        } else {
            0.0
        };
        (self.mean, var)
    }
}

#[inline(always)]
fn affine_act_plane<A: ActFn>(out: &mut [MaybeUninit<f32>], x: &[f32], a: f32, b: f32) {
    for (o, v) in out.iter_mut().zip(x) {
        o.write(A::apply(v * a + b));
    }
}

#[inline(always)]
fn affine_act_in_place_plane<A: ActFn>(x: &mut [f32], a: f32, b: f32) {
    for v in x.iter_mut() {
        *v = A::apply(*v * a + b);
    }
}

multiversion! {
/// `out[i] = act(x[i] · a + b)` for i < min(|out|, |x|).
pub(super) fn affine_act_uninit(out: &mut [MaybeUninit<f32>], x: &[f32], a: f32, b: f32, act: Activation) {
    with_act!(act, affine_act_plane(out, x, a, b))
}
}

multiversion! {
/// `x = act(x · a + b)` in place.
pub(crate) fn affine_act_in_place(x: &mut [f32], a: f32, b: f32, act: Activation) {
    with_act!(act, affine_act_in_place_plane(x, a, b))
}
}

#[inline(always)]
fn affine_add_act_plane<A: ActFn>(
    out: &mut [MaybeUninit<f32>],
    x: &[f32],
    r: &[f32],
    a: f32,
    b: f32,
) {
    for ((o, v), r) in out.iter_mut().zip(x).zip(r) {
        o.write(A::apply(v * a + b + r));
    }
}

#[inline(always)]
fn affine_add_act_in_place_plane<A: ActFn>(x: &mut [f32], r: &[f32], a: f32, b: f32) {
    for (v, r) in x.iter_mut().zip(r) {
        *v = A::apply(*v * a + b + r);
    }
}

multiversion! {
/// `out[i] = act(x[i] · a + b + r[i])` for i < min(|out|, |x|, |r|).
pub(super) fn affine_add_act_uninit(
    out: &mut [MaybeUninit<f32>],
    x: &[f32],
    r: &[f32],
    a: f32,
    b: f32,
    act: Activation,
) {
    with_act!(act, affine_add_act_plane(out, x, r, a, b))
}
}

multiversion! {
/// `x = act(x · a + b + r)` in place.
pub(crate) fn affine_add_act_in_place(x: &mut [f32], r: &[f32], a: f32, b: f32, act: Activation) {
    with_act!(act, affine_add_act_in_place_plane(x, r, a, b))
}
}

/// `act(z · scale[c] + shift[c] (+ residual))` per channel c: eval-mode BatchNorm and its
/// activation (and the residual add) applied to one image's conv output, in the same order of
/// operations whether it runs in place or fused into the copy out of the direct kernel's
/// wide layout ([`narrow_affine_act`]), so both give bit-identical results.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChannelAffine<'a> {
    pub scale: &'a [f32],
    pub shift: &'a [f32],
    /// This image's residual (C × plane), added before the activation.
    pub residual: Option<&'a [f32]>,
    pub act: Activation,
}

impl ChannelAffine<'_> {
    /// Applies the epilogue in place to one image's planes of `plane` elements.
    pub fn apply_in_place(&self, y: &mut [f32], plane: usize) {
        for (ch, p) in y.chunks_mut(plane).enumerate() {
            let (a, b) = (self.scale[ch], self.shift[ch]);
            match self.residual {
                None => affine_act_in_place(p, a, b, self.act),
                Some(r) => affine_add_act_in_place(p, &r[ch * plane..][..plane], a, b, self.act),
            }
        }
    }
}

#[inline(always)]
fn narrow_affine_plane<A: ActFn>(
    out: &mut [MaybeUninit<f32>],
    wide: &[f32],
    (pitch, row_len): (usize, usize),
    r: Option<&[f32]>,
    a: f32,
    b: f32,
) {
    for (i, row) in out.chunks_mut(row_len).enumerate() {
        let src = &wide[i * pitch..][..row.len()];
        match r {
            None => affine_act_plane::<A>(row, src, a, b),
            Some(r) => affine_add_act_plane::<A>(row, src, &r[i * row_len..][..row.len()], a, b),
        }
    }
}

multiversion! {
/// One channel of [`ChannelAffine`] fused into the copy out of a wide layout: row i of `out`
/// (rows of `row_len`) is `act(wide[i·pitch..][..row_len] · a + b (+ r's row i))`; writes all
/// of `out`.
pub(crate) fn narrow_affine_act(
    out: &mut [MaybeUninit<f32>],
    wide: &[f32],
    pitch: usize,
    row_len: usize,
    r: Option<&[f32]>,
    a: f32,
    b: f32,
    act: Activation,
) {
    with_act!(act, narrow_affine_plane(out, wide, (pitch, row_len), r, a, b))
}
}

#[inline(always)]
fn output_gate_plane<A: ActFn>(g: &mut [MaybeUninit<f32>], dy: &[f32], y: &[f32]) {
    for ((g, d), y) in g.iter_mut().zip(dy).zip(y) {
        g.write(A::gate(*d, *y));
    }
}

multiversion! {
/// `g[i] = dy[i]` where the activation passed its input on, judged from its output `y[i]`,
/// else 0, for i < min(|g|, |dy|, |y|).
pub(super) fn output_gate_uninit(g: &mut [MaybeUninit<f32>], dy: &[f32], y: &[f32], act: Activation) {
    with_act!(act, output_gate_plane(g, dy, y))
}
}

#[inline(always)]
fn grad_sums_plane<A: ActFn>(z: &[f32], dy: &[f32], a: f32, b: f32, mean: f32) -> (f32, f32) {
    let mut s = [0f32; LANES];
    let mut q = [0f32; LANES];
    let full = z.len() / LANES * LANES;
    for (zc, dc) in z[..full]
        .chunks_exact(LANES)
        .zip(dy[..full].chunks_exact(LANES))
    {
        for l in 0..LANES {
            let g = A::gate(dc[l], zc[l] * a + b);
            s[l] += g;
            q[l] += g * (zc[l] - mean);
        }
    }
    let (mut ts, mut tq) = (0f32, 0f32);
    for i in full..z.len() {
        let g = A::gate(dy[i], z[i] * a + b);
        ts += g;
        tq += g * (z[i] - mean);
    }
    (s.iter().sum::<f32>() + ts, q.iter().sum::<f32>() + tq)
}

multiversion! {
/// [`plane_grad_sums`] as plain Rust, for any CPU (the reference of the AVX2 loop).
pub(super) fn plane_grad_sums_generic(
    z: &[f32],
    dy: &[f32],
    a: f32,
    b: f32,
    mean: f32,
    act: Activation,
) -> (f32, f32) {
    with_act!(act, grad_sums_plane(z, dy, a, b, mean))
}
}

/// Per plane: (Σ g, Σ g · (z − mean)) with g the gradient at `v = z · a + b` through `act`;
/// the AVX2 loop of [`super::grad_sums_avx2`] where the CPU has it (the same bits).
pub(crate) fn plane_grad_sums(
    z: &[f32],
    dy: &[f32],
    a: f32,
    b: f32,
    mean: f32,
    act: Activation,
) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::simd_path() != crate::cpu::SimdPath::Baseline
        && std::arch::is_x86_feature_detected!("avx2")
    {
        use super::grad_sums_avx2::plane_grad_sums as avx2;
        // SAFETY: the CPU has AVX2 (checked above).
        return unsafe {
            match act {
                Activation::Identity => avx2::<IdentityFn>(z, dy, a, b, mean, act),
                Activation::Relu => avx2::<ReluFn>(z, dy, a, b, mean, act),
                Activation::Relu6 => avx2::<Relu6Fn>(z, dy, a, b, mean, act),
            }
        };
    }
    plane_grad_sums_generic(z, dy, a, b, mean, act)
}

/// Per channel, (Σ g, Σ g · (z − mean)) with g the gradient at `z · scale + shift`.
///
/// Each plane's two f32 sums are computed image by image (each image's planes are one
/// contiguous block, read in memory order by one thread), then added in f64 channel by
/// channel in image order: the same bits as walking each channel's planes in turn.
pub(crate) fn grad_sums(
    d: Planes,
    z: &[f32],
    dy: &[f32],
    scale: &[f32],
    shift: &[f32],
    mean: &[f32],
    act: Activation,
) -> Vec<(f64, f64)> {
    let per_image: Vec<Vec<(f32, f32)>> = par_map(d.batch, |n| {
        (0..d.channels)
            .map(|c| {
                plane_grad_sums(
                    d.of(z, n, c),
                    d.of(dy, n, c),
                    scale[c],
                    shift[c],
                    mean[c],
                    act,
                )
            })
            .collect()
    });
    (0..d.channels)
        .map(|c| {
            per_image.iter().fold((0f64, 0f64), |(sg, sgz), image| {
                (sg + image[c].0 as f64, sgz + image[c].1 as f64)
            })
        })
        .collect()
}

/// Coefficients of one channel's input gradient `dz = a · g + b · z + k`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GradCoef {
    /// BN scale (γ · invstd); the activation's input is `z · scale + shift`.
    pub scale: f32,
    pub shift: f32,
    pub b: f32,
    pub k: f32,
}

#[inline(always)]
fn grad_plane<A: ActFn>(dz: &mut [f32], z: &[f32], dy: &[f32], c: GradCoef) {
    for ((o, zv), gv) in dz.iter_mut().zip(z).zip(dy) {
        *o = c.scale * A::gate(*gv, zv * c.scale + c.shift) + c.b * zv + c.k;
    }
}

multiversion! {
/// One plane of the BN input gradient.
pub(crate) fn plane_grad(dz: &mut [f32], z: &[f32], dy: &[f32], coef: GradCoef, act: Activation) {
    with_act!(act, grad_plane(dz, z, dy, coef))
}
}

/// The BN input gradient over all planes.
pub(crate) fn grad_input(
    d: Planes,
    z: &[f32],
    dy: &[f32],
    coef: &[GradCoef],
    act: Activation,
) -> Vec<f32> {
    fill_item_groups(z.len(), d.plane, MIN_TASK_ELEMS, |first, planes| {
        for (i, o) in planes.chunks_mut(d.plane).enumerate() {
            let idx = first + i;
            let r = idx * d.plane..(idx + 1) * d.plane;
            plane_grad(o, &z[r.clone()], &dy[r], coef[idx % d.channels], act);
        }
    })
}

/// Per-channel gradient coefficients and (dγ, dβ) from the sums of [`grad_sums`].
///
/// With batch statistics (`batch = true`): `dz = scale · (g − Σg/M − ẑ · Σg·ẑ/M)`,
/// ẑ = (z − mean) · invstd; with fixed statistics `dz = scale · g`.
pub(crate) fn grad_coefficients(
    sums: &[(f64, f64)],
    scale: &[f32],
    shift: &[f32],
    mean: &[f32],
    invstd: &[f32],
    count: usize,
    batch: bool,
) -> (Vec<GradCoef>, Vec<f32>, Vec<f32>) {
    let m = count as f64;
    let c = sums.len();
    let (mut coef, mut dgamma, mut dbeta) = (
        Vec::with_capacity(c),
        Vec::with_capacity(c),
        Vec::with_capacity(c),
    );
    for ch in 0..c {
        let (sg, sgz) = sums[ch];
        let invstd_c = invstd[ch] as f64;
        let s = scale[ch] as f64;
        let dg = sgz * invstd_c;
        let (b, k) = if batch {
            let b = -s * invstd_c * dg / m;
            (b, -s * sg / m - b * mean[ch] as f64)
        } else {
            (0.0, 0.0)
        };
        coef.push(GradCoef {
            scale: scale[ch],
            shift: shift[ch],
            b: b as f32,
            k: k as f32,
        });
        dgamma.push(dg as f32);
        dbeta.push(sg as f32);
    }
    (coef, dgamma, dbeta)
}
