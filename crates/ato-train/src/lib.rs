//! # ato-train — one training loop for dense, ATO, OTO and OTOv2
//!
//! This crate owns a run: its configuration ([`RunConfig`], every key of DESIGN.md §7,
//! validated with errors that name the key), the ATO epoch schedule ([`AtoSchedule`]: when the
//! controller learns, when the proximal step starts, when the mask freezes, λ's schedule) and
//! what a run writes ([`EpochMetrics`] rows of `metrics.csv`, the [`SummaryRow`] of
//! `summary.csv`), always atomically.
//!
//! Status: the loop itself (target steps, controller steps on a seeded subset, prox/HSPG/DHSPG
//! steps, checkpoints, compaction at the end) is assembled on top of `ato-data`, `ato-optim`
//! and `ato-controller`; see the README for what has landed.
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

pub mod ato;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod evaluate;
pub mod finish;
pub mod objective;
pub mod probe;
pub mod pruner;
pub mod recipe;
pub mod records;
pub mod schedule;
pub mod stats;
pub mod trainer;

pub use ato_optim::ConvergenceRow;
pub use checkpoint::{CheckpointDir, RunState};
pub use config::{
    DatasetName, EpochSpec, LrSchedule, Method, Noise, OptimizerName, Projector, RunConfig,
};
pub use device::select_device;
pub use evaluate::evaluate;
pub use finish::RunOutcome;
pub use objective::{cross_entropy, finite_loss, mixup_cross_entropy, topk_correct, Tally};
pub use pruner::Pruner;
pub use records::{
    read_csv, write_csv_atomically, write_text_atomically, EpochMetrics, SummaryRow,
};
pub use schedule::{AtoSchedule, EpochPhase};
pub use stats::{full_mask, mask_macs_ratio, GroupSparsity};
pub use trainer::{run, RunData, RunOptions};

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
    #[error(transparent)]
    Zig(#[from] ato_zig::ZigError),
    #[error(transparent)]
    Model(#[from] ato_models::ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
