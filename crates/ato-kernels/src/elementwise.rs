//! Fused residual join: `relu(a + b)` as one op with one backward pass.

use crate::backend::{fast_path, Backend};
use crate::output::fill_chunks;
use crate::simd::multiversion;
use crate::storage::{contiguous_f32, expect_same_dims, to_storage};
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

const CHUNK: usize = 16 * 1024;

/// `relu(a + b)` for tensors of the same shape, with the process-wide backend.
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    add_relu_with(a, b, crate::backend())
}

/// [`add_relu`] with an explicit backend.
pub fn add_relu_with(a: &Tensor, b: &Tensor, backend: Backend) -> Result<Tensor> {
    let ours =
        backend == Backend::Fast && fast_path(a.device(), a.dtype()) && b.dtype() == a.dtype();
    if !ours || a.dims() != b.dims() {
        return (a + b)?.relu();
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, AddReluOp)
}

struct AddReluOp;

impl CustomOp2 for AddReluOp {
    fn name(&self) -> &'static str {
        "ato-add-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        expect_same_dims(l1, l2, "add_relu")?;
        let a = contiguous_f32(s1, l1, "add_relu a")?;
        let b = contiguous_f32(s2, l2, "add_relu b")?;
        let out = fill_chunks(a.len(), CHUNK, true, |i, o| {
            add_relu_chunk(o, &a[i * CHUNK..], &b[i * CHUNK..])
        });
        Ok(to_storage(out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _a: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = dy.contiguous()?.apply_op2_no_bwd(y, &ReluGradOp)?;
        Ok((Some(g.clone()), Some(g)))
    }
}

/// (dy, y) → dy where y > 0, else 0.
struct ReluGradOp;

impl CustomOp2 for ReluGradOp {
    fn name(&self) -> &'static str {
        "ato-relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        let dy = contiguous_f32(s1, l1, "relu grad dy")?;
        let y = contiguous_f32(s2, l2, "relu grad y")?;
        let out = fill_chunks(dy.len(), CHUNK, true, |i, o| {
            relu_grad_chunk(o, &dy[i * CHUNK..], &y[i * CHUNK..])
        });
        Ok(to_storage(out, l1.shape().clone()))
    }
}

multiversion! {
/// `out = max(a + b, 0)`.
fn add_relu_chunk(out: &mut [f32], a: &[f32], b: &[f32]) {
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = (x + y).max(0.0);
    }
}
}

multiversion! {
/// `out = dy` where `y > 0`, else 0.
fn relu_grad_chunk(out: &mut [f32], dy: &[f32], y: &[f32]) {
    for ((o, g), y) in out.iter_mut().zip(dy).zip(y) {
        *o = if *y > 0.0 { *g } else { 0.0 };
    }
}
}
