//! # ato-optim — optimisers, group steps, OTO/OTOv2/HESSO, magnitude selection, probes
//!
//! Everything that *changes weights* in ato-rs lives here, written on candle
//! [`Var`](candle_core::Var)s so it runs on CPU and CUDA alike (docs/design.md §4 prox, §5, §6):
//!
//! - [`ParamSet`]: the trainable variables of a model, sorted by name, each flagged for weight
//!   decay ([`DecayRule::ExcludeBnAndBias`] leaves 1-D tensors — BN γ/β, biases — undecayed).
//! - [`Sgd`] (momentum, Nesterov, dampening, weight decay; PyTorch semantics) and [`AdamW`]
//!   (decoupled or L2 weight decay), behind the [`Optimizer`] trait. Their state is a
//!   [`StateDict`] saved as safetensors, so a resumed run continues bit-exactly on CPU.
//! - [`LrSchedule`]: linear warm-up then cosine, multistep or constant, evaluated per step.
//! - [`GroupSet`]: the zero-invariant groups of `ato-zig` bound to a model's variables, viewed
//!   as one `(C, D)` matrix per gate; group norms, inner products, scaling and zeroing.
//! - [`GroupProx`]: ATO's group proximal step (per-gate ratio, λ·η scaling, exact zeros).
//! - [`HalfSpaceStep`]: the one half-space step (trial push `η·λ_g·x_g/‖x_g‖` with per-group
//!   λ_g, then `x̂_g := 0` if `⟨x̂_g,x_g⟩ < ε‖x_g‖²`, zero groups stay zero) that [`Hspg`],
//!   [`Dhspg`] and ATO's `half_space` projector share.
//! - [`Hspg`] (OTO): the group-lasso term enters the gradient before the base step
//!   ([`Hspg::add_penalty_to_grads`]), stage 2 projects ([`Hspg::project`]).
//! - [`Dhspg`] (OTOv2): partition with a per-gate guard, adaptive λ_g, half-space step, with
//!   the base direction read without AdamW's decoupled decay ([`DecoupledDecay`]).
//! - [`Hesso`] (OTOv3): periodic selection by five saliency criteria
//!   ([`saliency::hesso_saliency`]) and a linear shrink to exact zeros, towards a group-count
//!   or a MACs target.
//! - [`MagnitudeSelection`]: the magnitude baseline's keep mask for a MACs target, global or
//!   per gate, with kept widths rounded to multiples of N. It and HESSO's MACs target share one
//!   greedy routine, [`drop_in_order`], over any [`WidthCost`] (e.g. `ato_zig::WidthPolynomial`).
//! - [`ConvergenceProbe`] measures, every K steps, the objective, the squared gradient
//!   mapping, smoothness and gradient variance (Euclidean and in Adam's metric, on the free
//!   coordinates), and checks the averaged bound and the K-step descent inequality;
//!   [`bounds`] states the theorems, computes their right-hand sides and says which
//!   assumptions a run satisfies ([`bounds::assess`]).
//!
//! The trainer's step for every method:
//!
//! ```text
//! before = groups.snapshot()          // x, when the method needs it (see each type's docs)
//! hspg.add_penalty_to_grads(..)       // OTO only: ψ = ∇f + λ·x/(‖x‖+1e-6) in the gradient
//! optimizer.step(&grads, lr)          // x̂ = base step (SGD or AdamW) on every parameter
//! pruner.after_step(...)              // ATO prox | HSPG projection | DHSPG | HESSO
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
pub mod budget;
pub mod decay;
pub mod dhspg;
pub mod groups;
pub mod half_space;
pub mod hesso;
pub mod hspg;
pub mod lr;
pub mod magnitude;
pub mod optimizer;
pub mod params;
pub mod probes;
pub mod prox;
pub mod saliency;
pub mod sgd;
pub mod state;

pub use adamw::{AdamW, AdamWConfig};
pub use bounds::{RunRegime, Theorem};
pub use budget::{drop_in_order, round_kept, WidthCost};
pub use decay::DecoupledDecay;
pub use dhspg::{Dhspg, DhspgConfig};
pub use groups::{GroupSet, GroupSnapshot};
pub use half_space::{half_space_project, HalfSpaceStep};
pub use hesso::{Hesso, HessoConfig, HessoTarget, LastGroup};
pub use hspg::{Hspg, HspgConfig};
pub use lr::{Decay, DecayKind, LrSchedule};
pub use magnitude::{MagnitudeScope, MagnitudeSelection};
pub use optimizer::Optimizer;
pub use params::{DecayRule, Param, ParamSet};
pub use probes::{
    check_step, ConvergenceProbe, ConvergenceRow, ProbeConfig, ProbeInputs, StepCapture, StepRule,
    StepVerdict, StepWindow,
};
pub use prox::{GroupProx, ProxStats};
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
