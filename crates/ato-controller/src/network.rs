//! The controller network: fixed orthogonal gate tokens → bidirectional GRU → LayerNorm (one
//! shared by all gates, as the authors' code has it, or one per gate) → ReLU → per-gate Linear
//! heads (docs/design.md §4). On the CPU each GRU direction is one op and so are the heads with
//! a shared LayerNorm (`ato_kernels::gru_sequence`, `gate_heads`: their backward written out).

use crate::gru::{fast_cpu, Gru};
use crate::ControllerError;
use ato_kernels::Linear;
use candle_core::{DType, Device, IndexOp, Module, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Noise added to the logits before the relaxed sigmoid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseKind {
    /// Logistic noise, the difference of two Gumbel samples (Gumbel-sigmoid proper).
    Logistic,
    /// A single Gumbel sample, as the authors' code does (mean +0.577, so a sample keeps a
    /// channel a little more often than the logistic one).
    #[default]
    Gumbel,
}

/// Sizes and constants of the controller; defaults are docs/design.md §4's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControllerConfig {
    /// Dimension of the fixed per-gate tokens (64).
    pub token_dim: usize,
    /// GRU hidden size per direction (128).
    pub hidden: usize,
    /// Logit offset b (3): masks start as all ones.
    pub offset: f64,
    /// Sigmoid temperature τ (0.4).
    pub temperature: f64,
    pub noise: NoiseKind,
    /// One LayerNorm shared by all gates (the authors' code) instead of one per gate.
    pub shared_norm: bool,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            token_dim: 64,
            hidden: 128,
            offset: 3.0,
            temperature: 0.4,
            noise: NoiseKind::Gumbel,
            shared_norm: true,
        }
    }
}

/// The controller θ: emits one logit vector z_ℓ of width C_ℓ per gate. A clone shares the
/// variables (θ) with the original.
#[derive(Clone)]
pub struct Controller {
    config: ControllerConfig,
    widths: Vec<usize>,
    /// (1, L, token_dim), not trained.
    tokens: Tensor,
    forward_gru: Gru,
    backward_gru: Gru,
    /// LayerNorm γ, β: one pair shared by all gates, or one per gate.
    norms: Vec<(Tensor, Tensor)>,
    /// Per gate: the bias-free linear layer.
    heads: Vec<Linear>,
    varmap: VarMap,
}

/// L rows of dimension d that are orthonormal (L ≤ d) or whose columns are (L > d), from a
/// seeded Gaussian matrix by modified Gram–Schmidt, like `torch.nn.init.orthogonal_`.
pub fn orthogonal_tokens(l: usize, d: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let (long, short) = (l.max(d), l.min(d));
    let mut cols: Vec<Vec<f64>> = (0..short)
        .map(|_| (0..long).map(|_| StandardNormal.sample(rng)).collect())
        .collect();
    for j in 0..short {
        for k in 0..j {
            let dot: f64 = cols[j].iter().zip(&cols[k]).map(|(a, b)| a * b).sum();
            let ck = cols[k].clone();
            cols[j].iter_mut().zip(&ck).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = cols[j].iter().map(|a| a * a).sum::<f64>().sqrt();
        cols[j].iter_mut().for_each(|a| *a /= norm);
    }
    let mut out = vec![0f32; l * d];
    for (j, col) in cols.iter().enumerate() {
        for (i, v) in col.iter().enumerate() {
            // L ≤ d: token j is column j; L > d: column j is coordinate j of every token.
            let (row, c) = if l <= d { (j, i) } else { (i, j) };
            out[row * d + c] = *v as f32;
        }
    }
    out
}

/// Variable-name prefixes of the LayerNorm(s): `norm` when shared, `heads.{i}.norm` per gate.
fn norm_prefixes(shared: bool, gates: usize) -> Vec<String> {
    if shared {
        vec!["norm".to_string()]
    } else {
        (0..gates).map(|i| format!("heads.{i}.norm")).collect()
    }
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, bound: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
}

impl Controller {
    /// A controller for gates of the given widths, initialised from `seed` (PyTorch's
    /// initialisations, drawn from a ChaCha RNG so runs are reproducible).
    pub fn new(
        widths: &[usize],
        config: ControllerConfig,
        device: &Device,
        seed: u64,
    ) -> Result<Self, ControllerError> {
        if widths.is_empty() || widths.contains(&0) {
            return Err(ControllerError::Widths(widths.to_vec()));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (l, d, h) = (widths.len(), config.token_dim, config.hidden);
        let tokens = Tensor::from_vec(orthogonal_tokens(l, d, &mut rng), (1, l, d), device)?;
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().expect("var map lock");
            let mut put =
                |name: String, shape: Vec<usize>, values: Vec<f32>| -> candle_core::Result<()> {
                    let t = Tensor::from_vec(values, shape, device)?;
                    data.insert(name, Var::from_tensor(&t)?);
                    Ok(())
                };
            let gb = 1.0 / (h as f32).sqrt();
            for dir in ["gru_forward", "gru_backward"] {
                put(
                    format!("{dir}.weight_ih_l0"),
                    vec![3 * h, d],
                    uniform(&mut rng, 3 * h * d, gb),
                )?;
                put(
                    format!("{dir}.weight_hh_l0"),
                    vec![3 * h, h],
                    uniform(&mut rng, 3 * h * h, gb),
                )?;
                put(
                    format!("{dir}.bias_ih_l0"),
                    vec![3 * h],
                    uniform(&mut rng, 3 * h, gb),
                )?;
                put(
                    format!("{dir}.bias_hh_l0"),
                    vec![3 * h],
                    uniform(&mut rng, 3 * h, gb),
                )?;
            }
            let hb = 1.0 / ((2 * h) as f32).sqrt();
            for prefix in norm_prefixes(config.shared_norm, widths.len()) {
                put(format!("{prefix}.weight"), vec![2 * h], vec![1.0; 2 * h])?;
                put(format!("{prefix}.bias"), vec![2 * h], vec![0.0; 2 * h])?;
            }
            for (i, &c) in widths.iter().enumerate() {
                put(
                    format!("heads.{i}.linear.weight"),
                    vec![c, 2 * h],
                    uniform(&mut rng, c * 2 * h, hb),
                )?;
            }
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let forward_gru = Gru::new(d, h, vb.pp("gru_forward"))?;
        let backward_gru = Gru::new(d, h, vb.pp("gru_backward"))?;
        let norms = norm_prefixes(config.shared_norm, widths.len())
            .into_iter()
            .map(|p| {
                Ok((
                    vb.get(2 * h, &format!("{p}.weight"))?,
                    vb.get(2 * h, &format!("{p}.bias"))?,
                ))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let heads = widths
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let w = vb.get((c, 2 * h), &format!("heads.{i}.linear.weight"))?;
                Ok(Linear::new(w, None))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        if varmap.all_vars().len() != 8 + 2 * norms.len() + widths.len() {
            return Err(ControllerError::Internal(
                "controller variables were created twice".into(),
            ));
        }
        Ok(Self {
            config,
            widths: widths.to_vec(),
            tokens,
            forward_gru,
            backward_gru,
            norms,
            heads,
            varmap,
        })
    }

    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// Gate widths the heads emit, in gate order.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    /// The fixed (untrained) gate tokens, (1, L, token_dim).
    pub fn tokens(&self) -> &Tensor {
        &self.tokens
    }

    /// θ's variables (GRUs and heads), sorted by name.
    pub fn trainable_vars(&self) -> Vec<(String, Var)> {
        let mut v: Vec<(String, Var)> = self
            .varmap
            .data()
            .lock()
            .expect("var map lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The variable map (save with `varmap().save(path)`, restore with `load`).
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// The logits z_ℓ, one (C_ℓ,) tensor per gate.
    pub fn logits(&self) -> Result<Vec<Tensor>, ControllerError> {
        self.logits_by(fast_cpu(&self.tokens))
    }

    /// The logits, with the heads as one op (`fused`, f32 on the CPU) or as candle's ops per
    /// gate (the two agree within rounding: tests/controller.rs).
    #[doc(hidden)]
    pub fn logits_by(&self, fused: bool) -> Result<Vec<Tensor>, ControllerError> {
        let l = self.widths.len();
        let run = |gru: &Gru, x: &Tensor| gru.sequence(x); // (1, L, h)
        let fwd = run(&self.forward_gru, &self.tokens)?;
        let rev: Vec<u32> = (0..l as u32).rev().collect();
        let rev = Tensor::from_vec(rev, l, self.tokens.device())?;
        let bwd_in = self.tokens.index_select(&rev, 1)?;
        let bwd = run(&self.backward_gru, &bwd_in)?;
        let bwd = bwd.index_select(&rev, 1)?;
        let hidden = Tensor::cat(&[fwd, bwd], 2)?; // (1, L, 2h)
        if self.config.shared_norm && fused {
            // the heads as one op (LayerNorm, ReLU and each gate's linear map, written out)
            let (gamma, beta) = &self.norms[0];
            let weights: Vec<&Tensor> = self.heads.iter().map(Linear::weight).collect();
            let all = ato_kernels::gate_heads(
                &hidden.squeeze(0)?,
                &Tensor::cat(&[gamma, beta], 0)?,
                &Tensor::cat(&weights, 0)?,
                &self.widths,
            )?;
            let mut at = 0;
            return self
                .widths
                .iter()
                .map(|&c| {
                    at += c;
                    Ok(all.narrow(0, at - c, c)?)
                })
                .collect();
        }
        self.heads
            .iter()
            .enumerate()
            .map(|(i, linear)| {
                let h = hidden.i((.., i, ..))?; // (1, 2h)
                let (gamma, beta) = &self.norms[if self.config.shared_norm { 0 } else { i }];
                // candle_nn::LayerNorm's fused CPU op has no backward pass (0.11): use the
                // composed, differentiable form.
                let h = candle_nn::ops::layer_norm_slow(&h, gamma, beta, 1e-5)?;
                let z = linear.forward(&h.relu()?)?;
                Ok(z.squeeze(0)?)
            })
            .collect()
    }
}
