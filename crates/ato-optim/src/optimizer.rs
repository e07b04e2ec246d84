//! The [`Optimizer`] trait: one base step on every parameter, and state for checkpoints.

use crate::params::ParamSet;
use crate::state::StateDict;
use crate::Result;
use candle_core::backprop::GradStore;
use candle_core::Tensor;

/// A first-order optimiser over a [`ParamSet`].
pub trait Optimizer {
    /// The parameters this optimiser updates.
    fn params(&self) -> &ParamSet;

    /// One step at learning rate `lr`. Parameters without a gradient in `grads` are left
    /// untouched (and their state does not advance), as in PyTorch.
    fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()>;

    /// Steps taken so far.
    fn steps(&self) -> u64;

    /// Everything needed to continue exactly where this optimiser is.
    fn state(&self) -> Result<StateDict>;

    /// Restores a state written by [`Optimizer::state`] (same parameters).
    fn load_state(&mut self, state: &StateDict) -> Result<()>;

    /// Restarts the momentum buffers (SGD; OTO's HSPG does so when its half-space stage
    /// begins). Adaptive methods keep their moments: the reference runs HSPG on SGD only.
    fn reset_momentum(&mut self) {}

    /// The weight-decay coefficient applied *outside* the update direction (AdamW's decoupled
    /// decay, `x ← x·(1 − η·wd)` on decayed parameters); 0 when decay, if any, is part of the
    /// gradient. [`crate::DecoupledDecay`] reads it.
    fn decoupled_weight_decay(&self) -> f64 {
        0.0
    }

    /// For adaptive methods, the diagonal preconditioner `√v̂ + ε` of each parameter (by name);
    /// `None` for SGD. The convergence probes read it (docs/design.md §6).
    fn preconditioner(&self) -> Result<Option<Vec<(String, Tensor)>>> {
        Ok(None)
    }
}

/// The state-dict key of a per-parameter buffer.
pub(crate) fn buffer_key(kind: &str, param: &str) -> String {
    format!("{kind}.{param}")
}

/// Restores per-parameter buffers `kind.<name>` into `buffers`, checking every shape. Buffers
/// absent from the state mean "no step taken yet" for that parameter.
pub(crate) fn load_buffers(
    state: &StateDict,
    kind: &str,
    params: &ParamSet,
    buffers: &mut std::collections::HashMap<String, Tensor>,
) -> Result<()> {
    buffers.clear();
    for p in params {
        if let Some(t) = state.tensors.get(&buffer_key(kind, &p.name)) {
            if t.dims() != p.var.dims() {
                return Err(crate::OptimError::State(format!(
                    "`{}` has shape {:?}, the parameter has {:?}",
                    buffer_key(kind, &p.name),
                    t.dims(),
                    p.var.dims()
                )));
            }
            let t = t.to_device(p.var.device())?.to_dtype(p.var.dtype())?;
            buffers.insert(p.name.clone(), t);
        }
    }
    Ok(())
}
