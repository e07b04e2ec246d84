//! Checkpoints written atomically: a checkpoint is a folder (`checkpoint/`) whose files are
//! written by each component (model, optimiser, controller, [`RunState`]). A new one is built
//! in `checkpoint.new/` and swapped in with renames; a run killed at any moment leaves either
//! the old or the new checkpoint complete, and [`CheckpointDir::latest`] finds it.
//!
//! No RNG stream state is stored: every random draw of a run (data order, augmentation, mixup,
//! controller batches and noise) is seeded from the run seed and a counter, so the counters in
//! [`RunState`] are enough to continue exactly.

use crate::records::write_text_atomically;
use crate::TrainError;
use ato_models::Model;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything of a run's progress that is not a tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Target optimiser steps taken.
    pub global_step: u64,
    /// Seconds of training so far (for `wall_seconds` across resumes).
    pub seconds: f64,
}

const STATE_FILE: &str = "state.json";

/// The checkpoint folder of a run.
#[derive(Clone, Debug)]
pub struct CheckpointDir {
    current: PathBuf,
    staging: PathBuf,
    previous: PathBuf,
}

fn io(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io(format!("{}: {e}", path.display()))
}

impl CheckpointDir {
    /// The checkpoint of the run folder `run_dir` (`run_dir/checkpoint`).
    pub fn new(run_dir: &Path) -> Self {
        Self {
            current: run_dir.join("checkpoint"),
            staging: run_dir.join("checkpoint.new"),
            previous: run_dir.join("checkpoint.old"),
        }
    }

    /// Whether a checkpoint has been written.
    pub fn exists(&self) -> bool {
        self.current.exists() || self.previous.exists()
    }

    /// Writes a checkpoint: `write_files` fills a fresh folder, `state` is added last, then
    /// the folder replaces the previous checkpoint.
    pub fn save<F>(&self, state: &RunState, write_files: F) -> Result<(), TrainError>
    where
        F: FnOnce(&Path) -> Result<(), TrainError>,
    {
        if self.staging.exists() {
            std::fs::remove_dir_all(&self.staging).map_err(|e| io(&self.staging, e))?;
        }
        std::fs::create_dir_all(&self.staging).map_err(|e| io(&self.staging, e))?;
        write_files(&self.staging)?;
        let json = serde_json::to_string_pretty(state).expect("state serialises");
        write_text_atomically(&self.staging.join(STATE_FILE), &json)?;
        if self.current.exists() {
            if self.previous.exists() {
                std::fs::remove_dir_all(&self.previous).map_err(|e| io(&self.previous, e))?;
            }
            std::fs::rename(&self.current, &self.previous).map_err(|e| io(&self.current, e))?;
        }
        std::fs::rename(&self.staging, &self.current).map_err(|e| io(&self.staging, e))?;
        if self.previous.exists() {
            std::fs::remove_dir_all(&self.previous).map_err(|e| io(&self.previous, e))?;
        }
        Ok(())
    }

    /// The newest complete checkpoint folder and its state, if any.
    pub fn latest(&self) -> Result<Option<(PathBuf, RunState)>, TrainError> {
        for dir in [&self.current, &self.previous] {
            let file = dir.join(STATE_FILE);
            if file.exists() {
                let text = std::fs::read_to_string(&file).map_err(|e| io(&file, e))?;
                let state: RunState = serde_json::from_str(&text).map_err(|e| io(&file, e))?;
                return Ok(Some((dir.clone(), state)));
            }
        }
        Ok(None)
    }
}

/// Writes the model's tensors (parameters and buffers) as safetensors.
pub(crate) fn save_tensors(model: &Model, path: &Path) -> Result<(), TrainError> {
    candle_core::safetensors::save(&model.tensors(), path)
        .map_err(|e| TrainError::Io(format!("{}: {e}", path.display())))
}

/// Sets every variable of the model from a file written by [`save_tensors`].
pub(crate) fn restore_tensors(model: &Model, path: &Path) -> Result<(), TrainError> {
    let saved = candle_core::safetensors::load(path, model.device())
        .map_err(|e| TrainError::Io(format!("{}: {e}", path.display())))?;
    for (name, var) in model.named_vars() {
        let t = saved.get(&name).ok_or_else(|| {
            TrainError::Io(format!("{}: tensor `{name}` is missing", path.display()))
        })?;
        var.set(t)?;
    }
    Ok(())
}
