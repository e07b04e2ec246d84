//! # ato-sweep
//!
//! Sweeps as a library: what `ato sweep` plans and searches, usable from another crate or a
//! notebook without the command line.
//!
//! - [`config_layers`]: a run's configuration from its layers — built-in defaults < a TOML file
//!   < sweep values < `ATO_*` environment variables < `key=value` arguments ([`overrides`]
//!   parses those values).
//! - [`spec`]: sweep files (`experiments/sweeps/*.toml`): grids, seeds, `[per_method.*]`,
//!   `match_flops`.
//! - [`plan()`]: every run of a sweep expanded, merged and validated ([`PlannedRun`]); the
//!   sweep's folder ([`sweep_dir`]) and its `summary.csv` written from the run folders with
//!   the sweep's view of each run ([`write_summary`]).
//! - [`calibrate`]: matched FLOPs — each baseline's reference (the same-seed main ATO run),
//!   the knob search with pilot runs, the calibration cache (`calibration.csv`,
//!   `calibration_pilots.csv`: load, lookup, upsert, save) and its row types, which the report
//!   reads. The pilot runner is a trait ([`calibrate::PilotRunner`]);
//!   [`TrainingPilots`] trains the pilots, a closure can model a response in a test.
//!
//! Running the planned runs one by one, with progress lines, is the `ato` binary's job
//! (`ato-cli`); the data flow of a sweep is in docs/design.md §7.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let sweep = ato_sweep::spec::load(&ato_sweep::spec::locate("demo")?)?;
//! let runs = ato_sweep::plan(&sweep, &["train.epochs=1".to_string()])?;
//! println!("{} runs into {}", runs.len(), ato_sweep::sweep_dir(&runs).display());
//! # Ok(())
//! # }
//! ```

pub mod calibrate;
pub mod config_layers;
pub mod overrides;
mod pilots;
mod plan;
pub mod spec;

pub use pilots::{finished_reduction, TrainingPilots};
pub use plan::{plan, point_text, sweep_dir, write_summary, PlannedRun};

#[cfg(test)]
mod plan_tests;
