//! Compaction: keep a subset of channels per gate and slice every member, buffer and
//! consumer tensor accordingly. The result is the tensor set of the same architecture at
//! smaller widths.

use crate::groups::Gate;
use crate::mask::Mask;
use crate::norms::{all_group_norms, NamedVars};
use crate::ZigError;
use candle_core::Tensor;
use std::collections::{BTreeMap, HashMap};

/// The channels kept by each gate, ascending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptChannels {
    pub per_gate: Vec<Vec<usize>>,
}

impl KeptChannels {
    /// Keeps every channel the mask keeps. A gate whose mask drops everything keeps its first
    /// channel, whose contribution is zero once its group is zeroed, so the model stays well
    /// formed and outputs are unchanged.
    pub fn from_mask(mask: &Mask) -> Self {
        let per_gate = mask
            .gates()
            .iter()
            .map(|m| {
                let kept: Vec<usize> = (0..m.len()).filter(|&c| m[c]).collect();
                if kept.is_empty() {
                    vec![0]
                } else {
                    kept
                }
            })
            .collect();
        Self { per_gate }
    }

    /// Keeps the groups whose norm is not exactly zero (at least one per gate).
    pub fn nonzero_groups(gates: &[Gate], vars: &NamedVars) -> Result<Self, ZigError> {
        let norms = all_group_norms(gates, vars)?;
        let mask = Mask::from_keep(
            norms
                .iter()
                .map(|n| n.iter().map(|&v| v != 0.0).collect())
                .collect(),
        );
        Ok(Self::from_mask(&mask))
    }

    /// Every channel of every gate.
    pub fn all(gates: &[Gate]) -> Self {
        Self {
            per_gate: gates.iter().map(|g| (0..g.width).collect()).collect(),
        }
    }

    /// The width of each gate after compaction.
    pub fn widths(&self) -> Vec<usize> {
        self.per_gate.iter().map(Vec::len).collect()
    }

    /// Checks the set against the gates: one list per gate, non-empty, ascending, in range.
    pub fn validate(&self, gates: &[Gate]) -> Result<(), ZigError> {
        if self.per_gate.len() != gates.len() {
            return Err(ZigError::WidthCount {
                expected: gates.len(),
                got: self.per_gate.len(),
            });
        }
        for (g, kept) in gates.iter().zip(&self.per_gate) {
            if kept.is_empty() {
                return Err(ZigError::EmptyKeep(g.name.clone()));
            }
            if let Some(&bad) = kept.iter().find(|&&c| c >= g.width) {
                return Err(ZigError::KeepOutOfRange {
                    gate: g.name.clone(),
                    index: bad,
                    width: g.width,
                });
            }
            if kept.windows(2).any(|w| w[0] >= w[1]) {
                return Err(ZigError::KeepNotAscending(g.name.clone()));
            }
        }
        Ok(())
    }
}

/// Slices `tensors` (every tensor of a model, buffers included) to the kept channels.
/// Tensors not touched by any gate are copied unchanged.
pub fn compact_tensors(
    gates: &[Gate],
    tensors: &HashMap<String, Tensor>,
    kept: &KeptChannels,
) -> Result<HashMap<String, Tensor>, ZigError> {
    kept.validate(gates)?;
    // which indices survive along each cut (tensor, axis); a consumer of a concatenation is
    // cut by several gates along one axis, each at its offset
    let mut cuts: BTreeMap<(&str, usize), Vec<bool>> = BTreeMap::new();
    for (gate, keep) in gates.iter().zip(&kept.per_gate) {
        for slice in gate.all_slices() {
            let t = tensors
                .get(&slice.tensor)
                .ok_or_else(|| ZigError::MissingTensor(slice.tensor.clone()))?;
            let len = t.dim(slice.axis)?;
            if slice.offset + gate.width > len {
                return Err(ZigError::Candle(candle_core::Error::Msg(format!(
                    "gate `{}` cuts `{}` axis {} at {}..{}, the axis has {len}",
                    gate.name,
                    slice.tensor,
                    slice.axis,
                    slice.offset,
                    slice.offset + gate.width
                ))));
            }
            let survive = cuts
                .entry((slice.tensor.as_str(), slice.axis))
                .or_insert_with(|| vec![true; len]);
            for c in 0..gate.width {
                survive[slice.offset + c] = false;
            }
            for &c in keep {
                survive[slice.offset + c] = true;
            }
        }
    }
    let mut out = tensors.clone();
    for ((name, axis), survive) in cuts {
        let t = &out[name];
        let idx: Vec<u32> = (0..survive.len() as u32)
            .filter(|&i| survive[i as usize])
            .collect();
        let idx = Tensor::from_vec(idx.clone(), idx.len(), t.device())?;
        let sliced = t.index_select(&idx, axis)?;
        out.insert(name.to_string(), sliced);
    }
    Ok(out)
}
