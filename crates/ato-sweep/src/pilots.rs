//! The pilots of the matched-FLOPs search trained for real: [`TrainingPilots`] runs each pilot
//! quietly into the sweep folder (a pilot with the full epochs at the final knob is the run
//! itself, so a search that ends there leaves the run finished), and reads a pilot that has
//! finished before instead of training it again.

use crate::calibrate::{PilotOutcome, PilotRunner};
use anyhow::{anyhow, Result};
use ato_train::{run, RunConfig, RunDir, RunOptions};

/// The FLOPs reduction of a finished run of `cfg`, if any.
pub fn finished_reduction(cfg: &RunConfig) -> Option<f64> {
    finished_outcome(cfg).map(|o| o.flops_reduction)
}

/// What a finished run of `cfg` achieved, if there is one.
fn finished_outcome(cfg: &RunConfig) -> Option<PilotOutcome> {
    let s = RunDir::of(cfg).summary().filter(|s| s.is_finished())?;
    Some(PilotOutcome {
        flops_reduction: s.flops_reduction?,
        group_sparsity: s.group_sparsity,
    })
}

/// Pilots trained with [`ato_train::run`] (no progress output).
#[derive(Clone, Copy, Debug, Default)]
pub struct TrainingPilots;

impl PilotRunner for TrainingPilots {
    fn run_pilot(&mut self, cfg: &RunConfig) -> Result<PilotOutcome> {
        if let Some(o) = finished_outcome(cfg) {
            return Ok(o);
        }
        let out = run(cfg, &RunOptions::default())?;
        Ok(PilotOutcome {
            flops_reduction: out
                .summary
                .flops_reduction
                .ok_or_else(|| anyhow!("pilot {} has no FLOPs reduction", cfg.run_id()))?,
            group_sparsity: out.summary.group_sparsity,
        })
    }
}
