//! What a run writes, row by row: `metrics.csv` (one row per epoch), the `summary.csv` row
//! of docs/design.md §7, and `machine.json` (one record per start of the run). Files are rewritten whole through a temporary file and a rename, so a
//! killed run never leaves a partial CSV behind.

use crate::TrainError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

mod machine;
mod metrics;
mod summary;

pub use machine::{append_machine, read_machines, MachineRecord};
pub use metrics::EpochMetrics;
pub use summary::{RunStatus, SummaryRow};

fn io(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io(format!("{}: {e}", path.display()))
}

/// Writes `rows` as a CSV with a header to `path`, atomically (temporary file + rename).
pub fn write_csv_atomically<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), TrainError> {
    ato_files::write_atomically(path, |tmp| {
        let mut w = csv::Writer::from_path(tmp)?;
        for r in rows {
            w.serialize(r)?;
        }
        Ok(w.flush()?)
    })
    .map_err(|e| TrainError::Io(e.to_string()))
}

/// Reads every row of a CSV written by [`write_csv_atomically`]; a missing file is empty.
pub fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, TrainError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut r = csv::Reader::from_path(path).map_err(|e| io(path, e))?;
    r.deserialize()
        .enumerate()
        .map(|(i, row)| row.map_err(|e| io(path, format!("row {}: {e}", i + 1))))
        .collect()
}

/// Writes a text file atomically (temporary file + rename).
pub fn write_text_atomically(path: &Path, text: &str) -> Result<(), TrainError> {
    ato_files::write_text(path, text).map_err(|e| TrainError::Io(e.to_string()))
}
