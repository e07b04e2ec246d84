//! The magnitude baseline: train dense; at the first step of `magnitude.prune_epoch` drop the
//! groups of least norm ‖x_g‖/√D_g (globally or the same share per gate) until the model's MACs
//! have fallen by `prune.target_flops_reduction` ([`MagnitudeSelection`], so the target is
//! reached by construction); the dropped groups are zeroed after every later step.

use super::{Pruner, StepContext};
use crate::config::{MagnitudeScopeName, RunConfig};
use crate::records::write_text_atomically;
use crate::TrainError;
use ato_models::Model;
use ato_optim::{GroupSet, MagnitudeScope, MagnitudeSelection};
use ato_zig::{Mask, WidthPolynomial};
use std::path::Path;

const MASK_FILE: &str = "magnitude_mask.json";

/// One-shot magnitude pruning, then training with the dropped groups held at zero.
pub struct Magnitude {
    selection: MagnitudeSelection,
    prune_epoch: usize,
    macs: WidthPolynomial,
    widths: Vec<usize>,
    /// The selection, once made.
    mask: Option<Mask>,
}

impl Magnitude {
    /// The baseline for a run of `cfg` on `model`; kept widths are multiples of `round_to`
    /// (or the full width).
    pub fn new(cfg: &RunConfig, model: &Model, round_to: usize) -> Result<Self, TrainError> {
        if round_to == 0 {
            return Err(TrainError::Config(
                "prune.round_to: 0 is outside [1, ∞)".into(),
            ));
        }
        Ok(Self {
            selection: MagnitudeSelection {
                reduction: cfg.prune.target_flops_reduction,
                scope: match cfg.magnitude.scope {
                    MagnitudeScopeName::Global => MagnitudeScope::Global,
                    MagnitudeScopeName::PerGate => MagnitudeScope::PerGate,
                },
                round_to,
            },
            prune_epoch: cfg.magnitude_prune_epoch(),
            macs: WidthPolynomial::macs(model.arch()),
            widths: model.arch().gate_widths(),
            mask: None,
        })
    }
}

impl Pruner for Magnitude {
    fn after_step(&mut self, ctx: StepContext<'_>) -> Result<(), TrainError> {
        if ctx.epoch < self.prune_epoch {
            return Ok(());
        }
        if self.mask.is_none() {
            self.mask = Some(self.selection.select(ctx.groups, &self.macs)?);
        }
        if let Some(m) = &self.mask {
            ctx.groups.zero_dropped(m)?;
        }
        Ok(())
    }

    /// Everything until the prune epoch, the selection from then on.
    fn kept(&self, _groups: &GroupSet) -> Result<Mask, TrainError> {
        Ok(self
            .mask
            .clone()
            .unwrap_or_else(|| Mask::full(&self.widths)))
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        let text = serde_json::to_string(&self.mask).expect("a mask serialises");
        write_text_atomically(&dir.join(MASK_FILE), &text)
    }

    fn load(&mut self, dir: &Path) -> Result<(), TrainError> {
        let path = dir.join(MASK_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| TrainError::Io(format!("{}: {e}", path.display())))?;
        let mask: Option<Mask> = serde_json::from_str(&text)
            .map_err(|e| TrainError::Io(format!("{}: {e}", path.display())))?;
        if let Some(m) = &mask {
            if m.widths() != self.widths {
                return Err(TrainError::Io(format!(
                    "{}: gate widths {:?}, the model has {:?}",
                    path.display(),
                    m.widths(),
                    self.widths
                )));
            }
        }
        self.mask = mask;
        Ok(())
    }
}
