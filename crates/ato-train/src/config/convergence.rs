//! `[convergence]`: what the convergence probes measure ([`ProbeMode`]) and the documented
//! faults a user can inject to see the checks catch them ([`Fault`]); docs/convergence.md.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the convergence probes measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeMode {
    /// Probe the whole run as configured (evaluation transform on the probe batches); rows
    /// outside the theorems' assumptions say which ones they violate.
    Monitor,
    /// The theorems' regime: optim.momentum must be 0; probes start where h is fixed (ATO: at
    /// T_end, OTO: at n_p, OTOv2: at its start epoch, dense: at step 0); probe batches use the
    /// training transform; the learning rate of every step is fed to the bound.
    Theorem,
    /// The deterministic regime: as `theorem`, and the training set is a fixed seeded subset of
    /// `train.batch_size` images trained as one full batch per epoch, without augmentation; the
    /// probe uses that same batch. BatchNorm normalises with the statistics of that one batch,
    /// a fixed function of the weights, so f is deterministic and σ̂² = 0: the descent check and
    /// the averaged bound lose their noise terms.
    Exact,
}

impl ProbeMode {
    /// Whether the run is in a theorem's regime (`theorem` or `exact`): momentum 0, probes from
    /// the epoch h is fixed, the training transform on the probe batches, per-step checks.
    pub fn is_theorem(self) -> bool {
        matches!(self, Self::Theorem | Self::Exact)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monitor => "monitor",
            Self::Theorem => "theorem",
            Self::Exact => "exact",
        }
    }
}

/// A documented defect injected into the step (`convergence.inject`), the negative control of
/// the convergence checks that a user can run on their own model and data. Every fault acts
/// from the first probed step to the end of the run; the checks report where they caught it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// No fault.
    #[default]
    None,
    /// The optimiser and the prox run at 20× the scheduled learning rate.
    LrX20,
    /// The base step follows −g instead of g.
    FlipGrad,
    /// ATO's prox shrinks with 10·λ (ATO with the prox projector only).
    LambdaX10,
    /// ATO's prox shrinks the kept groups instead of the masked ones (ATO with the prox
    /// projector only).
    InvertMask,
    /// The optimiser is built with momentum 0.9 (AdamW: β₁ = 0.9) although the config says 0;
    /// it acts from the first step.
    MomentumLeak,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::None,
        Fault::LrX20,
        Fault::FlipGrad,
        Fault::LambdaX10,
        Fault::InvertMask,
        Fault::MomentumLeak,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::LrX20 => "lr_x20",
            Fault::FlipGrad => "flip_grad",
            Fault::LambdaX10 => "lambda_x10",
            Fault::InvertMask => "invert_mask",
            Fault::MomentumLeak => "momentum_leak",
        }
    }

    /// Whether the fault acts on ATO's prox (and needs it).
    pub fn needs_prox(self) -> bool {
        matches!(self, Fault::LambdaX10 | Fault::InvertMask)
    }
}

/// `[convergence]`: the probes of docs/design.md §6.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ConvergenceSection {
    /// Probe every this many optimiser steps (and once at the start of the measured window);
    /// 0 = off.
    pub every: u64,
    /// Fixed probe mini-batches per measurement (≥ 2).
    pub batches: usize,
    /// monitor (the whole run, as configured) | theorem (the theorems' regime: momentum 0,
    /// from the epoch h is fixed, training transform on the probe batches) | exact (theorem's
    /// regime on a fixed subset of train.batch_size images as one full batch: σ̂² = 0).
    pub mode: ProbeMode,
    /// none | lr_x20 | flip_grad | lambda_x10 | invert_mask | momentum_leak: a documented
    /// fault injected from the first probed step, to see the checks catch it (theorem and
    /// exact modes only).
    pub inject: Fault,
}

impl Default for ConvergenceSection {
    fn default() -> Self {
        Self {
            every: 100,
            batches: 4,
            mode: ProbeMode::Monitor,
            inject: Fault::None,
        }
    }
}
