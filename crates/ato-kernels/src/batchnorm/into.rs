//! The out-of-place affine-activation and output-gate kernels as safe functions on
//! uninitialised outputs: each writes every element of its output (lengths asserted) and
//! returns it initialised, for [`crate::output`]'s in-place helpers; and [`normalize`], the
//! eval-mode BatchNorm pass built on them.

use super::kernels::{
    affine_act_uninit, affine_add_act_uninit, output_gate_uninit, Planes, MIN_TASK_ELEMS,
};
use super::Activation;
use crate::output::{assume_init, fill_items_into};
use std::mem::MaybeUninit;

/// `out = act(x · a + b)` into `out` (as long as `x`), returned initialised.
pub(crate) fn affine_act<'o>(
    out: &'o mut [MaybeUninit<f32>],
    x: &[f32],
    a: f32,
    b: f32,
    act: Activation,
) -> &'o mut [f32] {
    assert_eq!(out.len(), x.len());
    affine_act_uninit(out, x, a, b, act);
    // SAFETY: `affine_act_uninit` wrote out[i] for every i < |x| = |out|.
    unsafe { assume_init(out) }
}

/// `out = act(x · a + b + r)` into `out` (as long as `x` and `r`), returned initialised.
pub(crate) fn affine_add_act<'o>(
    out: &'o mut [MaybeUninit<f32>],
    x: &[f32],
    r: &[f32],
    a: f32,
    b: f32,
    act: Activation,
) -> &'o mut [f32] {
    assert!(out.len() == x.len() && out.len() == r.len());
    affine_add_act_uninit(out, x, r, a, b, act);
    // SAFETY: `affine_add_act_uninit` wrote out[i] for every i < |x| = |r| = |out|.
    unsafe { assume_init(out) }
}

/// `g = dy` where the activation passed its input on, judged from its output `y` (the same
/// test as on the input for ReLU and ReLU6), else 0; into `g` (as long as `dy` and `y`),
/// returned initialised.
pub(crate) fn output_gate<'o>(
    g: &'o mut [MaybeUninit<f32>],
    dy: &[f32],
    y: &[f32],
    act: Activation,
) -> &'o mut [f32] {
    assert!(g.len() == dy.len() && g.len() == y.len());
    output_gate_uninit(g, dy, y, act);
    // SAFETY: `output_gate_uninit` wrote g[i] for every i < |dy| = |y| = |g|.
    unsafe { assume_init(g) }
}

/// `out = act(x · scale[c] + shift[c])` over all planes.
pub(crate) fn normalize(
    d: Planes,
    x: &[f32],
    scale: &[f32],
    shift: &[f32],
    act: Activation,
) -> Vec<f32> {
    fill_items_into(x.len(), d.plane, MIN_TASK_ELEMS, |idx, o| {
        let c = idx % d.channels;
        let x = &x[idx * d.plane..][..d.plane];
        affine_act(o, x, scale[c], shift[c], act)
    })
}
