//! Access to the f32 data of candle CPU storages, and output allocation.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Result, Shape};

/// The elements of a contiguous f32 tensor, as a slice.
pub(crate) fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<&'a [f32]> {
    let data = match storage {
        CpuStorage::F32(v) => v.as_slice(),
        other => bail!("{what}: expected f32, got {:?}", other.dtype()),
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{what}: expected a contiguous tensor"),
    }
}

/// A 4-D shape as `(d0, d1, d2, d3)`.
pub(crate) fn dims4(layout: &Layout, what: &str) -> Result<(usize, usize, usize, usize)> {
    match layout.dims() {
        &[a, b, c, d] => Ok((a, b, c, d)),
        other => bail!("{what}: expected a 4-D tensor, got shape {other:?}"),
    }
}

/// Fails unless `layout` is 4-D with the shape `expected`.
pub(crate) fn expect_dims4(
    layout: &Layout,
    expected: (usize, usize, usize, usize),
    what: &str,
) -> Result<()> {
    let got = dims4(layout, what)?;
    if got != expected {
        bail!("{what}: shape {got:?}, expected {expected:?}");
    }
    Ok(())
}

/// Fails unless the two operands `a` and `b` of `what` have the same shape.
pub(crate) fn expect_same_dims(a: &Layout, b: &Layout, what: &str) -> Result<()> {
    if a.dims() != b.dims() {
        bail!("{what}: shapes {:?} and {:?}", a.dims(), b.dims());
    }
    Ok(())
}

/// Wraps a finished output buffer for candle.
pub(crate) fn to_storage(data: Vec<f32>, shape: impl Into<Shape>) -> (CpuStorage, Shape) {
    (CpuStorage::F32(data), shape.into())
}
