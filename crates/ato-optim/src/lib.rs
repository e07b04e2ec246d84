//! # ato-optim — optimisers, group proximal steps, OTO/OTOv2 and convergence probes
//!
//! Everything that *changes weights* in ato-rs lives here, written on candle [`Var`]s so it runs
//! on CPU and CUDA alike (DESIGN.md §4 prox, §5, §6):
//!
//! - [`ParamSet`]: the trainable variables of a model, sorted by name, each flagged for weight
//!   decay ([`DecayRule::ExcludeBnAndBias`] leaves 1-D tensors — BN γ/β, biases — undecayed).
//! - [`Sgd`] (momentum, Nesterov, dampening, weight decay; PyTorch semantics) and [`AdamW`]
//!   (decoupled or L2 weight decay), behind the [`Optimizer`] trait. Their state is a
//!   [`StateDict`] saved as safetensors, so a resumed run continues bit-exactly on CPU.
//! - [`LrSchedule`]: linear warm-up then cosine, multistep or constant, evaluated per step.
//! - [`GroupSet`]: the zero-invariant groups of `ato-zig` bound to a model's variables, viewed
//!   as one `(C, D)` matrix per gate; group norms, inner products, scaling and zeroing.
//! - [`GroupProx`]: ATO's group proximal step (per-gate ratio, λ·η scaling, exact zeros) and
//!   [`half_space_project`], the half-space test shared by ATO's `half_space` projector,
//!   [`Hspg`] (OTO) and [`Dhspg`] (OTOv2).
//! - [`ConvergenceProbe`] measures, every K steps, the objective, the squared gradient
//!   mapping, smoothness and gradient variance (Euclidean and in Adam's metric, on the free
//!   coordinates), and checks the averaged bound and the K-step descent inequality;
//!   [`bounds`] states the theorems, computes their right-hand sides and says which
//!   assumptions a run satisfies ([`bounds::assess`]).
//!
//! The trainer's step for every method is the same three moves:
//!
//! ```text
//! before = groups.snapshot()          // x, only for methods that need it (HSPG, DHSPG, half-space)
//! optimizer.step(&grads, lr)          // x̂ = base step (SGD or AdamW) on every parameter
//! pruner.after_step(...)              // ATO prox | HSPG | DHSPG on the groups
//! ```
//!
//! ```
//! use ato_optim::{LrSchedule, Decay};
//! let s = LrSchedule::new(0.1, 10, 100, Decay::Cosine);
//! assert!((s.lr(0) - 0.01).abs() < 1e-12);   // warm-up: (t+1)/10 of the base rate
//! assert!((s.lr(10) - 0.1).abs() < 1e-12);   // cosine starts at the base rate
//! assert!(s.lr(99) < 1e-3);
//! ```

pub mod adamw;
pub mod bounds;
pub mod dhspg;
pub mod groups;
pub mod hspg;
pub mod lr;
pub mod optimizer;
pub mod params;
pub mod probes;
pub mod prox;
pub mod sgd;
pub mod state;

pub use adamw::{AdamW, AdamWConfig};
pub use bounds::{RunRegime, Theorem};
pub use dhspg::{Dhspg, DhspgConfig};
pub use groups::{GroupSet, GroupSnapshot};
pub use hspg::{Hspg, HspgConfig};
pub use lr::{Decay, LrSchedule};
pub use optimizer::Optimizer;
pub use params::{DecayRule, Param, ParamSet};
pub use probes::{ConvergenceProbe, ConvergenceRow, ProbeConfig, ProbeInputs};
pub use prox::{half_space_project, GroupProx, ProxStats};
pub use sgd::{Sgd, SgdConfig};
pub use state::StateDict;

/// Errors of this crate; each names its cause in one line.
#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    #[error("invalid optimiser setting: {0}")]
    Config(String),
    #[error("optimiser state: {0}")]
    State(String),
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Zig(#[from] ato_zig::ZigError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, OptimError>;
