//! Saving and loading models: `NAME.safetensors` holds every tensor (running statistics
//! included), `NAME.arch.json` beside it the [`ModelConfig`] that rebuilds the architecture, so
//! a compact model loads on its own. Both are written atomically (`ato-files`), so a killed
//! process never leaves a half-written model.

use crate::{Model, ModelConfig, ModelError};
use candle_core::Device;
use std::path::{Path, PathBuf};

/// The architecture file that belongs to a weights file: `x.safetensors` → `x.arch.json`.
pub fn arch_path(weights: &Path) -> PathBuf {
    weights.with_extension("arch.json")
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Io(format!("{}: {e}", path.display()))
}

impl Model {
    /// Writes `path` (safetensors) and its architecture file atomically.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let arch = arch_path(path);
        let json = serde_json::to_string_pretty(self.config()).expect("config serialises");
        ato_files::write_text(&arch, &json).map_err(|e| ModelError::Io(e.to_string()))?;
        ato_files::write_atomically(path, |tmp| {
            Ok(candle_core::safetensors::save(&self.tensors(), tmp)?)
        })
        .map_err(|e| ModelError::Io(e.to_string()))
    }

    /// Reads a model saved by [`Model::save`].
    pub fn load(path: &Path, device: &Device) -> Result<Model, ModelError> {
        let arch = arch_path(path);
        let text = std::fs::read_to_string(&arch).map_err(|e| io_err(&arch, e))?;
        let config: ModelConfig = serde_json::from_str(&text).map_err(|e| io_err(&arch, e))?;
        let tensors = candle_core::safetensors::load(path, device).map_err(|e| io_err(path, e))?;
        Model::from_tensors(&config, tensors, device)
    }
}
