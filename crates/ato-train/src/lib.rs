//! # ato-train — one training loop for dense, ATO, OTO, OTOv2, HESSO and magnitude pruning
//!
//! This crate owns a run from its configuration to its result row:
//!
//! - [`RunConfig`]: every key of docs/design.md §7, plain TOML, validated with errors that name the
//!   key; [`AtoSchedule`] resolves ATO's epochs (when the controller learns, when the proximal
//!   step starts, when the mask freezes) and λ's schedule.
//! - [`run`] ([`launch`]): a run on one rank or on `dist.world_size` data-parallel ranks;
//!   [`trainer`]: the loop, the same for every method — target steps (base optimiser step,
//!   then the method's [`Pruner`]: `pruner::{dense, ato, oto, otov2, hesso, magnitude}`), one `metrics.csv` row
//!   and one checkpoint per epoch, convergence probes every K steps ([`probe`]), and at the end
//!   hard zeroing, compaction and evaluation of the compact model ([`finish`]).
//! - [`RunDir`]: the run folder and the name of every file in it, and the run's
//!   [`RunStatus`]; [`EpochMetrics`] and [`SummaryRow`] are the rows of its CSVs, always
//!   written atomically. A killed run resumes from its checkpoint to the same numbers.
//!
//! ```
//! use ato_train::RunConfig;
//! let cfg = RunConfig::from_toml("[train]\nepochs = 100\n").unwrap();
//! cfg.validate().unwrap();
//! let s = cfg.schedule();
//! assert_eq!((s.t_start, s.t_prox, s.t_end), (10, 20, 51));
//! assert!(s.phase(15).controller && !s.phase(15).prox);
//! assert_eq!(s.phase(60).lambda, 100.0); // λ · lambda_final_mult after T_end
//! ```

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod evaluate;
pub mod finish;
pub mod launch;
pub mod mixup;
pub mod objective;
pub mod parallel;
pub mod probe;
pub mod probe_regime;
pub mod probe_verdict;
mod progress;
pub mod pruner;
pub mod recipe;
pub mod records;
pub mod run_dir;
pub mod schedule;
pub mod stats;
pub mod trainer;

pub use ato_optim::ConvergenceRow;
pub use checkpoint::{CheckpointDir, RunState};
pub use config::{
    DatasetName, DecayKind, EpochSpec, Fault, KnobRange, LastGroup, MatchedKnob, Method, NoiseKind,
    OptimizerName, ProbeMode, Projector, RunConfig,
};
pub use data::RunData;
pub use device::select_device;
pub use evaluate::{evaluate, evaluate_loader, mask_tensors};
pub use finish::RunOutcome;
pub use launch::run;
pub use objective::{cross_entropy, finite_loss, mixup_cross_entropy, topk_correct, Tally};
pub use probe_verdict::CheckVerdicts;
pub use pruner::Pruner;
pub use records::{
    read_csv, read_machines, write_csv_atomically, write_text_atomically, EpochMetrics,
    MachineRecord, RunStatus, SummaryRow,
};
pub use run_dir::RunDir;
pub use schedule::{AtoSchedule, EpochPhase};
pub use stats::{mask_macs_ratio, GroupSparsity};
pub use trainer::RunOptions;

/// Errors of a run; each is one line naming its cause.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid config: {0}")]
    Config(String),
    #[error("{0}")]
    Io(String),
    #[error("data: {0}")]
    Data(String),
    #[error("stopped after {0} epochs (checkpoint written; run again to resume)")]
    Stopped(usize),
    #[error(
        "the loss became {value} at epoch {epoch}, step {step}; lower optim.lr or check the data"
    )]
    NonFinite {
        value: f64,
        epoch: usize,
        step: usize,
    },
    #[error(
        "the controller loss became {value} at epoch {epoch}, controller step {step}; lower ato.controller_lr or ato.gamma"
    )]
    NonFiniteController { value: f64, epoch: usize, step: u64 },
    #[error("ATO's controller thread: {0}")]
    ControllerThread(String),
    /// A collective between data-parallel ranks failed (another rank stopped first).
    #[error("dist: {0}")]
    Ranks(String),
    #[error(transparent)]
    Zig(#[from] ato_zig::ZigError),
    #[error(transparent)]
    Model(#[from] ato_models::ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl From<ato_optim::OptimError> for TrainError {
    fn from(e: ato_optim::OptimError) -> Self {
        match e {
            ato_optim::OptimError::Candle(e) => TrainError::Candle(e),
            ato_optim::OptimError::Zig(e) => TrainError::Zig(e),
            ato_optim::OptimError::Config(m) => TrainError::Config(m),
            other => TrainError::Io(other.to_string()),
        }
    }
}

impl From<ato_controller::ControllerError> for TrainError {
    fn from(e: ato_controller::ControllerError) -> Self {
        match e {
            ato_controller::ControllerError::Candle(e) => TrainError::Candle(e),
            other => TrainError::Config(other.to_string()),
        }
    }
}

impl From<ato_data::DataError> for TrainError {
    fn from(e: ato_data::DataError) -> Self {
        TrainError::Data(e.to_string())
    }
}
