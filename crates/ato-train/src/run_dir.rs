//! [`RunDir`]: the folder of one run, `<out_dir>/<name>/<run-id>/`, and the name of every file
//! in it, and where the run stands ([`RunStatus`]). Everything that reads or writes a run folder
//! (train, sweep, eval, export, report) takes its paths from here.

use crate::checkpoint::CheckpointDir;
use crate::config::RunConfig;
use crate::records::{read_csv, RunStatus, SummaryRow};
use crate::TrainError;
use std::path::{Path, PathBuf};

/// The name of the one-row summary in a run folder, and of the sweep's table of rows.
pub const SUMMARY_FILE: &str = "summary.csv";

/// The folder of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// The run folder at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The folder a config's run writes to.
    pub fn of(cfg: &RunConfig) -> Self {
        Self::new(cfg.run_dir())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `config.toml`: the merged configuration of the run.
    pub fn config_file(&self) -> PathBuf {
        self.path.join("config.toml")
    }

    /// `machine.json`: where each start of the run ran ([`crate::records::MachineRecord`]).
    pub fn machine_file(&self) -> PathBuf {
        self.path.join("machine.json")
    }

    /// `metrics.csv`: one row per epoch.
    pub fn metrics_file(&self) -> PathBuf {
        self.path.join("metrics.csv")
    }

    /// `convergence.csv`: one row per probe.
    pub fn convergence_file(&self) -> PathBuf {
        self.path.join("convergence.csv")
    }

    /// `mask.json`: the channels kept per gate.
    pub fn mask_file(&self) -> PathBuf {
        self.path.join("mask.json")
    }

    /// `compact.safetensors` (its architecture file `compact.arch.json` beside it).
    pub fn compact_model_file(&self) -> PathBuf {
        self.path.join("compact.safetensors")
    }

    /// `summary.csv`: the run's result row.
    pub fn summary_file(&self) -> PathBuf {
        self.path.join(SUMMARY_FILE)
    }

    /// `error.txt`: why a failed run failed.
    pub fn error_file(&self) -> PathBuf {
        self.path.join("error.txt")
    }

    /// `checkpoint/`.
    pub fn checkpoint(&self) -> CheckpointDir {
        CheckpointDir::new(&self.path)
    }

    /// The configuration stored in the folder; the error says when it is not a run folder.
    pub fn read_config(&self) -> Result<RunConfig, TrainError> {
        let path = self.config_file();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            TrainError::Io(format!(
                "{} is not a run folder (no readable config.toml: {e})",
                self.path.display()
            ))
        })?;
        RunConfig::from_toml(&text)
    }

    /// The summary row, once the run has finished or failed.
    pub fn summary(&self) -> Option<SummaryRow> {
        read_csv::<SummaryRow>(&self.summary_file())
            .ok()
            .and_then(|rows| rows.into_iter().next())
    }

    /// Where the run stands, from the files in its folder.
    pub fn status(&self) -> RunStatus {
        match self.summary() {
            Some(row) => row.status,
            None if self.checkpoint().exists() => RunStatus::Interrupted,
            None => RunStatus::Pending,
        }
    }
}
