//! Masks from logits: the Gumbel-sigmoid relaxation, the hard mask with a straight-through
//! gradient, and the deterministic evaluation mask (1 = keep).

use crate::network::{ControllerConfig, NoiseKind};
use crate::ControllerError;
use ato_zig::Mask;
use candle_core::{DType, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Uniforms are clamped to [ε, 1−ε] before the logarithms.
const UNIFORM_EPS: f64 = 1e-6;

/// One draw of the controller's masks.
pub struct MaskSample {
    /// y = σ((z + noise + b)/τ), one (C_ℓ,) tensor per gate.
    pub relaxed: Vec<Tensor>,
    /// 1[y ≥ 0.5] in the forward pass, ∂y in the backward pass (straight-through).
    pub hard: Vec<Tensor>,
}

impl MaskSample {
    /// The hard masks as a [`Mask`].
    pub fn hard_mask(&self) -> Result<Mask, ControllerError> {
        Ok(Mask::from_keep(
            self.hard
                .iter()
                .map(|t| Ok(t.to_vec1::<f32>()?.into_iter().map(|v| v >= 0.5).collect()))
                .collect::<Result<_, ControllerError>>()?,
        ))
    }
}

/// Draws one noise value of the configured kind.
fn noise(kind: NoiseKind, rng: &mut ChaCha8Rng) -> f32 {
    let mut u = || rng.random::<f64>().clamp(UNIFORM_EPS, 1.0 - UNIFORM_EPS);
    let v = match kind {
        // logit of a uniform = difference of two independent Gumbels
        NoiseKind::Logistic => {
            let u = u();
            u.ln() - (1.0 - u).ln()
        }
        NoiseKind::Gumbel => -(-u().ln()).ln(),
    };
    v as f32
}

/// Samples relaxed and hard masks from `logits`, drawing noise from `rng` in gate order.
pub fn sample_masks(
    logits: &[Tensor],
    config: &ControllerConfig,
    rng: &mut ChaCha8Rng,
) -> Result<MaskSample, ControllerError> {
    let mut relaxed = Vec::with_capacity(logits.len());
    let mut hard = Vec::with_capacity(logits.len());
    for z in logits {
        let c = z.dim(0)?;
        let n: Vec<f32> = (0..c).map(|_| noise(config.noise, rng)).collect();
        let n = Tensor::from_vec(n, c, z.device())?;
        let y = candle_nn::ops::sigmoid(
            &(z + n)?.affine(1.0 / config.temperature, config.offset / config.temperature)?,
        )?;
        let h = y.ge(0.5)?.to_dtype(DType::F32)?;
        // straight-through: value h, gradient of y
        let st = ((h - y.detach())? + &y)?;
        relaxed.push(y);
        hard.push(st);
    }
    Ok(MaskSample { relaxed, hard })
}

/// The deterministic mask m = 1[z + b ≥ 0] (what is frozen and stored).
pub fn eval_masks(logits: &[Tensor], config: &ControllerConfig) -> Result<Mask, ControllerError> {
    Ok(Mask::from_keep(
        logits
            .iter()
            .map(|z| {
                Ok(z.to_vec1::<f32>()?
                    .into_iter()
                    .map(|v| v as f64 + config.offset >= 0.0)
                    .collect())
            })
            .collect::<Result<_, ControllerError>>()?,
    ))
}
