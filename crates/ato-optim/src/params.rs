//! [`ParamSet`]: the variables an optimiser updates, in a deterministic order, each flagged
//! for weight decay.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

/// Which parameters weight decay applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DecayRule {
    /// Every parameter.
    #[default]
    All,
    /// Every parameter of rank ≥ 2 (conv and linear weights): BN γ, β and biases are left
    /// alone, the usual practice for ResNets and MobileNets.
    ExcludeBnAndBias,
}

/// One trainable variable.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub var: Var,
    /// Whether weight decay applies.
    pub decay: bool,
}

/// The trainable variables of a model, sorted by name.
#[derive(Clone, Debug, Default)]
pub struct ParamSet {
    params: Vec<Param>,
}

impl ParamSet {
    /// A set from `(name, var)` pairs; the order is made deterministic by sorting on the name.
    pub fn new(vars: Vec<(String, Var)>, rule: DecayRule) -> Self {
        let mut params: Vec<Param> = vars
            .into_iter()
            .map(|(name, var)| {
                let decay = match rule {
                    DecayRule::All => true,
                    DecayRule::ExcludeBnAndBias => var.rank() >= 2,
                };
                Param { name, var, decay }
            })
            .collect();
        params.sort_by(|a, b| a.name.cmp(&b.name));
        Self { params }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Param> {
        self.params.iter()
    }

    pub fn len(&self) -> usize {
        self.params.len()
    }

    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// The parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.params
            .binary_search_by(|p| p.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.params[i])
    }

    /// The parameters that have a gradient in `grads`, each with its current value and that
    /// gradient, both detached: gradients may carry op history (candle's own ops record it),
    /// and optimiser buffers built from them would otherwise chain every step's graph and
    /// never be freed.
    pub fn with_grads<'a>(
        &'a self,
        grads: &'a GradStore,
    ) -> impl Iterator<Item = (&'a Param, Tensor, Tensor)> + 'a {
        self.params.iter().filter_map(|p| {
            let g = grads.get(p.var.as_tensor())?;
            Some((p, p.var.as_tensor().detach(), g.detach()))
        })
    }

    /// Number of scalar parameters.
    pub fn elem_count(&self) -> usize {
        self.params.iter().map(|p| p.var.elem_count()).sum()
    }
}

impl<'a> IntoIterator for &'a ParamSet {
    type Item = &'a Param;
    type IntoIter = std::slice::Iter<'a, Param>;
    fn into_iter(self) -> Self::IntoIter {
        self.params.iter()
    }
}
