//! Pruning statistics of a model: exact-zero groups and the MACs a mask keeps.

use ato_models::Model;
use ato_zig::{all_group_norms, KeptChannels, Mask, WidthPolynomial};

/// Groups whose norm is exactly zero, over all gates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupSparsity {
    pub zero_groups: usize,
    pub total_groups: usize,
}

impl GroupSparsity {
    /// Counts the exact-zero groups of `model`.
    pub fn of(model: &Model) -> Result<Self, ato_zig::ZigError> {
        let norms = all_group_norms(model.gates(), &model.named_vars())?;
        Ok(Self {
            zero_groups: norms.iter().flatten().filter(|&&n| n == 0.0).count(),
            total_groups: norms.iter().map(Vec::len).sum(),
        })
    }

    /// Share of zero groups in [0, 1].
    pub fn ratio(&self) -> f64 {
        self.zero_groups as f64 / self.total_groups.max(1) as f64
    }
}

/// Conv + fc MACs of `model` with only the channels of `mask` kept (as compaction keeps them:
/// at least one per gate), over its full MACs.
pub fn mask_macs_ratio(model: &Model, mask: &Mask) -> f64 {
    let poly = WidthPolynomial::macs(model.arch());
    let kept = KeptChannels::from_mask(mask).widths();
    poly.eval(&kept) as f64 / poly.eval(&model.arch().gate_widths()) as f64
}
