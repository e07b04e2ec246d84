//! # ato-controller — the network that decides which channels to prune
//!
//! ATO (docs/design.md §4) trains a small controller θ beside the target network. Each gate ℓ of the
//! target (a prunable channel dimension of width C_ℓ, from `ato-zig`) gets a fixed 64-d token;
//! a bidirectional GRU (128 per direction; one op per direction on the CPU) reads the tokens in
//! depth order, and a per-gate LayerNorm → ReLU → Linear head turns its 256-d state into logits
//! z_ℓ ∈ ℝ^{C_ℓ}.
//!
//! - [`sample_masks`]: y = σ((z + noise + b)/τ), b = 3, τ = 0.4, one Gumbel sample as noise
//!   by default (`ato.noise`; logistic noise as the alternative), and the hard mask
//!   1[y ≥ 0.5] with a straight-through gradient;
//! - [`eval_masks`]: the deterministic mask 1[z + b ≥ 0] that is frozen at T_end;
//! - [`FlopsRegulariser`]: R(r, p) = |log r − log p| with r the kept share of prunable MACs
//!   and p derived from the target FLOPs reduction.
//!
//! The controller loss `CE(f(x; W, m)) + γ·R(r, p)` is assembled by the trainer, which owns
//! the target model and the optimiser (AdamW, lr 1e-3, wd 1e-2 on weights).
//!
//! ```
//! use ato_controller::{Controller, ControllerConfig, eval_masks, sample_masks};
//! use candle_core::Device;
//! use rand::SeedableRng;
//! let ctrl = Controller::new(&[16, 32], ControllerConfig::default(), &Device::Cpu, 0).unwrap();
//! let z = ctrl.logits().unwrap();
//! assert_eq!(z[1].dims(), [32]);
//! // b = 3 makes every channel kept at initialisation
//! assert!(eval_masks(&z, ctrl.config()).unwrap().is_full());
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
//! let s = sample_masks(&z, ctrl.config(), &mut rng).unwrap();
//! assert_eq!(s.hard.len(), 2);
//! ```

mod gru;
pub mod mask;
pub mod network;
pub mod regulariser;

pub use mask::{eval_masks, sample_masks, MaskSample};
pub use network::{orthogonal_tokens, Controller, ControllerConfig, NoiseKind};
pub use regulariser::{log_ratio_penalty, target_ratio, FlopsRegulariser};

/// Errors of the controller; each names its cause.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("controller needs at least one gate and no zero width, got {0:?}")]
    Widths(Vec<usize>),
    #[error("{0}")]
    Target(String),
    #[error("internal: {0}")]
    Internal(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
