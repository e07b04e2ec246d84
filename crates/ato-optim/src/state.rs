//! [`StateDict`]: named tensors plus string metadata, saved as one safetensors file. This is
//! how optimiser, pruner and probe state enters a checkpoint; tensors are stored as they are
//! (f32 stays f32), so a restored state continues bit-exactly.

use crate::{OptimError, Result};
use candle_core::{Device, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Tensors and scalar metadata of a stateful component.
#[derive(Clone, Debug, Default)]
pub struct StateDict {
    pub tensors: BTreeMap<String, Tensor>,
    pub meta: BTreeMap<String, String>,
}

fn io(path: &Path, e: impl std::fmt::Display) -> OptimError {
    OptimError::Io(format!("{}: {e}", path.display()))
}

impl StateDict {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put_tensor(&mut self, name: impl Into<String>, t: Tensor) {
        self.tensors.insert(name.into(), t);
    }

    /// Stores any value that prints and parses back exactly (integers, `f64` via `{:?}`...).
    pub fn put_meta(&mut self, key: impl Into<String>, value: impl ToString) {
        self.meta.insert(key.into(), value.to_string());
    }

    /// A metadata value parsed as `T`; the error names the key.
    pub fn meta<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        let v = self
            .meta
            .get(key)
            .ok_or_else(|| OptimError::State(format!("`{key}` is missing")))?;
        v.parse()
            .map_err(|_| OptimError::State(format!("`{key}` = `{v}` does not parse")))
    }

    /// The tensor `name`; the error names it.
    pub fn tensor(&self, name: &str) -> Result<&Tensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| OptimError::State(format!("tensor `{name}` is missing")))
    }

    /// Writes the state to `path` (safetensors with the metadata in its header) atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let meta: HashMap<String, String> = self.meta.clone().into_iter().collect();
        let tensors: Vec<(String, Tensor)> = self
            .tensors
            .iter()
            .map(|(k, t)| Ok((k.clone(), t.contiguous()?)))
            .collect::<Result<_>>()?;
        ato_files::write_atomically(path, |tmp| {
            Ok(safetensors::serialize_to_file(tensors, Some(meta), tmp)?)
        })
        .map_err(|e| OptimError::Io(e.to_string()))
    }

    /// Reads a state written by [`StateDict::save`], placing tensors on `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
        let (_, header) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| io(path, e))?;
        let meta = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let tensors = candle_core::safetensors::load_buffer(&bytes, device)
            .map_err(|e| io(path, e))?
            .into_iter()
            .collect();
        Ok(Self { tensors, meta })
    }
}
