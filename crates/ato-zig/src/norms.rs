//! Group norms and exact zeroing of groups, on named variables.

use crate::groups::{Gate, TensorAxis};
use crate::ZigError;
use candle_core::{DType, Tensor, Var};
use std::collections::HashMap;

/// Named variables of a model (what `candle_nn::VarMap::data()` holds).
pub type NamedVars = HashMap<String, Var>;

pub(crate) fn lookup<'a>(vars: &'a NamedVars, name: &str) -> Result<&'a Var, ZigError> {
    vars.get(name)
        .ok_or_else(|| ZigError::MissingTensor(name.to_string()))
}

/// `t` reshaped to (C, rest) with the group axis first.
fn rows(t: &Tensor, axis: usize) -> candle_core::Result<Tensor> {
    let t = if axis == 0 {
        t.clone()
    } else {
        t.transpose(0, axis)?
    };
    let c = t.dim(0)?;
    t.reshape((c, t.elem_count() / c))
}

/// A shape of the tensor's rank that is 1 everywhere except `len` at `axis`.
fn axis_shape(rank: usize, axis: usize, len: usize) -> Vec<usize> {
    (0..rank).map(|d| if d == axis { len } else { 1 }).collect()
}

/// ‖W_g‖₂ over all member slices of every group of `gate`: a (C,) f32 tensor.
pub fn group_norms(gate: &Gate, vars: &NamedVars) -> Result<Tensor, ZigError> {
    let mut sq: Option<Tensor> = None;
    for TensorAxis { tensor, axis, .. } in &gate.members {
        let t = lookup(vars, tensor)?
            .as_detached_tensor()
            .to_dtype(DType::F32)?;
        let s = rows(&t, *axis)?.sqr()?.sum(1)?;
        sq = Some(match sq {
            None => s,
            Some(acc) => (acc + s)?,
        });
    }
    let sq = sq.ok_or_else(|| ZigError::NoMembers(gate.name.clone()))?;
    Ok(sq.sqrt()?)
}

/// Group norms of every gate, as plain vectors.
pub fn all_group_norms(gates: &[Gate], vars: &NamedVars) -> Result<Vec<Vec<f32>>, ZigError> {
    gates
        .iter()
        .map(|g| Ok(group_norms(g, vars)?.to_vec1::<f32>()?))
        .collect()
}

/// Sets every member slice of the groups a gate drops (`keep[c] == false`) to exactly zero.
pub fn set_dropped_to_zero(gate: &Gate, vars: &NamedVars, keep: &[bool]) -> Result<(), ZigError> {
    if keep.len() != gate.width {
        return Err(ZigError::MaskLength {
            gate: gate.name.clone(),
            expected: gate.width,
            got: keep.len(),
        });
    }
    for TensorAxis { tensor, axis, .. } in &gate.members {
        let var = lookup(vars, tensor)?;
        let t = var.as_tensor();
        let mask: Vec<f32> = keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
        let mask = Tensor::from_vec(mask, axis_shape(t.rank(), *axis, keep.len()), t.device())?
            .to_dtype(t.dtype())?;
        var.set(&t.broadcast_mul(&mask)?)?;
    }
    Ok(())
}
