//! The dense baseline: the same recipe, nothing pruned.

use super::Pruner;
use crate::TrainError;
use ato_optim::GroupSet;
use ato_zig::Mask;

/// Nothing is pruned.
pub struct Dense;

impl Pruner for Dense {
    fn kept(&self, groups: &GroupSet) -> Result<Mask, TrainError> {
        Ok(Mask::full(
            &groups.gates().iter().map(|g| g.width).collect::<Vec<_>>(),
        ))
    }
}
