//! A loop's checkpoint: written by rank 0 at every epoch's end, read back at a run's start.

use super::Loop;
use crate::records::read_csv;
use crate::records::EpochMetrics;
use crate::run_dir::RunDir;
use crate::TrainError;
use ato_optim::StateDict;

impl Loop<'_> {
    pub(super) fn save_checkpoint(&self, run_dir: &RunDir) -> Result<(), TrainError> {
        run_dir.checkpoint().save(&self.state, |dir| {
            crate::checkpoint::save_tensors(&self.model, &dir.join("model.safetensors"))?;
            self.optimizer
                .state()
                .and_then(|s| s.save(&dir.join("optimizer.safetensors")))?;
            self.pruner.save(dir)?;
            if let Some(p) = &self.probe {
                p.save(dir, &self.model)?;
            }
            Ok(())
        })
    }

    /// Continues from the run's newest checkpoint, if any; returns the metrics rows so far.
    pub(super) fn resume(&mut self, run_dir: &RunDir) -> Result<Vec<EpochMetrics>, TrainError> {
        let Some((dir, saved)) = run_dir.checkpoint().latest()? else {
            return Ok(Vec::new());
        };
        let mut metrics: Vec<EpochMetrics> = read_csv(&run_dir.metrics_file())?;
        metrics.truncate(saved.epochs_done);
        crate::checkpoint::restore_tensors(&self.model, &dir.join("model.safetensors"))?;
        let s = StateDict::load(&dir.join("optimizer.safetensors"), self.model.device())?;
        self.optimizer.load_state(&s)?;
        self.pruner.load(&dir)?;
        if let Some(p) = &mut self.probe {
            p.load(&dir, &self.model, saved.global_step)?;
        }
        self.state = saved;
        Ok(metrics)
    }
}
