//! `[ato]`: ATO's keys (docs/design.md §4). Every departure from the authors' public code is a key
//! here, and its default is the authors' behaviour (see `paper/README.md`, "Fidelity").

use super::EpochSpec;
pub use ato_controller::NoiseKind;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How masked groups are driven to zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Projector {
    /// The group proximal step of docs/design.md §4.
    Prox,
    /// HSPG's half-space test on the masked groups.
    HalfSpace,
}

/// Which mask the controller's cross-entropy sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CeMask {
    /// The relaxed mask y, with an independent hard sample for the FLOPs term (the authors).
    Relaxed,
    /// The hard straight-through sample, shared with the FLOPs term.
    Hard,
}

/// How the mask of each epoch (the one the proximal step uses) is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EpochMask {
    /// A hard sample with the controller's noise, seeded by the epoch; the mask of epoch
    /// T_end − 1 is frozen (the authors).
    Sampled,
    /// The threshold 1[z + b ≥ 0]; the controller's mask at T_end is frozen.
    Deterministic,
}

/// How often the controller steps: `"auto"` or one step every N target steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[schemars(with = "String")]
pub enum HyperStep {
    /// max(⌈W/20⌉, `ato.min_controller_steps`) steps spread evenly over the W target steps
    /// from T_start to T_end (several per target step when W is small).
    Auto,
    /// One controller step after every N-th target step from T_start to T_end.
    Every(usize),
}

impl Serialize for HyperStep {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            HyperStep::Auto => s.serialize_str("auto"),
            HyperStep::Every(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for HyperStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) if n >= 1 => Ok(HyperStep::Every(n as usize)),
            Raw::N(n) => Err(serde::de::Error::custom(format!(
                "ato.hyper_step = {n}: expected \"auto\" or an integer ≥ 1"
            ))),
            Raw::S(s) if s == "auto" => Ok(HyperStep::Auto),
            Raw::S(s) => Err(serde::de::Error::custom(format!(
                "ato.hyper_step = {s:?}: expected \"auto\" or an integer ≥ 1"
            ))),
        }
    }
}

/// `[ato]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AtoSection {
    /// λ of the group proximal step.
    pub lambda: f64,
    /// λ is multiplied by this from `ato.lambda_switch` on.
    pub lambda_final_mult: f64,
    /// Epoch from which λ·lambda_final_mult applies [default: 0.49, the authors' ⌊(E−5)/2⌋ =
    /// 120 of 245].
    pub lambda_switch: Option<EpochSpec>,
    /// γ, the weight of the FLOPs regulariser in the controller loss.
    pub gamma: f64,
    /// First epoch with controller steps [default: 0.10, i.e. round(0.10·E)].
    pub t_start: Option<EpochSpec>,
    /// First epoch with the proximal step [default: 2·T_start].
    pub t_prox: Option<EpochSpec>,
    /// Epoch at which the mask freezes [default: 0.51].
    pub t_end: Option<EpochSpec>,
    /// "auto" (enough controller steps whatever the data set size, see
    /// `ato.min_controller_steps`) or one controller step every N target steps.
    pub hyper_step: HyperStep,
    /// With `hyper_step = "auto"`: at least this many controller steps from T_start to T_end.
    pub min_controller_steps: usize,
    /// With `hyper_step = "auto"`: the controller's learning rates summed over its steps are
    /// at least this (its lr is raised to controller_lr_sum / C when C steps would sum to
    /// less; 400 steps at the authors' 1e-3).
    pub controller_lr_sum: f64,
    /// With `hyper_step = "auto"`: when the mask that would freeze misses the FLOPs target by
    /// more than `prune.tolerance` at the end of the window, up to this many extra controller
    /// steps at `settle_lr_mult` × the window's lr, the mask redrawn every 10, until it is
    /// within the tolerance (0 = off).
    pub settle_steps: usize,
    /// The factor on the controller's lr in its settling steps (1 = the window's lr): the
    /// controller reaches the balance of its cross-entropy and FLOPs terms in a few steps
    /// instead of creeping toward it.
    pub settle_lr_mult: f64,
    /// Share of the training set the controller learns on.
    pub controller_fraction: f64,
    /// prox (the group proximal step) | half_space (HSPG's half-space test).
    pub projector: Projector,
    /// ε of the half-space test when `projector = "half_space"`.
    pub epsilon: f64,
    /// Noise of the Gumbel-sigmoid: gumbel (one sample, the authors) | logistic (two Gumbels).
    #[schemars(with = "String")]
    pub noise: NoiseKind,
    /// The controller's cross-entropy sees the relaxed mask y (the authors; an independent
    /// hard sample feeds the FLOPs term) or the hard straight-through one: relaxed | hard.
    pub ce_mask: CeMask,
    /// Half-width δ of the dead band around p where the FLOPs gradient is zero (authors 0.005).
    pub dead_band: f64,
    /// The mask of each epoch: sampled (with noise; the mask of T_end − 1 freezes, the
    /// authors) | deterministic (1[z + b ≥ 0]; the controller's mask at T_end freezes).
    pub epoch_mask: EpochMask,
    /// One LayerNorm shared by all gates in the controller (the authors) instead of one each.
    pub shared_norm: bool,
    /// AdamW learning rate of the controller.
    pub controller_lr: f64,
    /// Epoch from which the controller's lr is multiplied by `controller_lr_drop_factor`
    /// [default: 0.498, the authors' ⌊0.98·(E−5)/2⌋ + 5 = 122 of 245].
    pub controller_lr_drop: Option<EpochSpec>,
    /// The factor of that drop (authors 0.1; 1 = no drop).
    pub controller_lr_drop_factor: f64,
    /// AdamW weight decay of the controller (weights only).
    pub controller_weight_decay: f64,
}

impl Default for AtoSection {
    fn default() -> Self {
        Self {
            lambda: 10.0,
            lambda_final_mult: 10.0,
            lambda_switch: None,
            gamma: 8.0,
            t_start: None,
            t_prox: None,
            t_end: None,
            hyper_step: HyperStep::Auto,
            min_controller_steps: 40,
            controller_lr_sum: 0.4,
            settle_steps: 40,
            settle_lr_mult: 10.0,
            controller_fraction: 0.05,
            projector: Projector::Prox,
            epsilon: 0.0,
            noise: NoiseKind::Gumbel,
            ce_mask: CeMask::Relaxed,
            dead_band: 0.005,
            epoch_mask: EpochMask::Sampled,
            shared_norm: true,
            controller_lr: 1e-3,
            controller_lr_drop: None,
            controller_lr_drop_factor: 0.1,
            controller_weight_decay: 1e-2,
        }
    }
}
