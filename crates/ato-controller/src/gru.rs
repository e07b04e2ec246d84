//! A one-layer GRU with PyTorch's gate layout.
//!
//! [`Gru::sequence`], what the controller runs: on the CPU (ato-kernels' fast backend, one
//! sequence) the whole sequence is one op with its backward written out
//! ([`ato_kernels::gru_sequence`]: two ops per step of θ instead of a few hundred tiny ones,
//! the same bits on every CPU); elsewhere [`Gru::states`], which computes what
//! `candle_nn::rnn::GRU` computes (the same operations in the same order, so the same bits by
//! default) with its products taken by [`ato_kernels::matmul`], which follows the process-wide
//! reproducibility mode.

use candle_core::{IndexOp, Result, Tensor};
use candle_nn::VarBuilder;

/// Weights `weight_ih_l0` (3h × d), `weight_hh_l0` (3h × h), `bias_ih_l0`, `bias_hh_l0` (3h),
/// gates in the order reset, update, new.
#[derive(Clone, Debug)]
pub(crate) struct Gru {
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    hidden: usize,
}

impl Gru {
    /// The GRU whose variables `vb` holds (or creates as zeros).
    pub(crate) fn new(input: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        let zero = candle_nn::Init::Const(0.0);
        Ok(Self {
            w_ih: vb.get_with_hints((3 * hidden, input), "weight_ih_l0", zero)?,
            w_hh: vb.get_with_hints((3 * hidden, hidden), "weight_hh_l0", zero)?,
            b_ih: vb.get_with_hints(3 * hidden, "bias_ih_l0", zero)?,
            b_hh: vb.get_with_hints(3 * hidden, "bias_hh_l0", zero)?,
            hidden,
        })
    }

    /// The hidden states after each step of `input` (batch, steps, d), from a zero state.
    pub(crate) fn states(&self, input: &Tensor) -> Result<Vec<Tensor>> {
        let (batch, steps, _) = input.dims3()?;
        let mut h =
            Tensor::zeros((batch, self.hidden), input.dtype(), input.device())?.contiguous()?;
        let mut out = Vec::with_capacity(steps);
        for t in 0..steps {
            h = self.step(&input.i((.., t, ..))?.contiguous()?, &h)?;
            out.push(h.clone());
        }
        Ok(out)
    }

    /// The hidden states (batch, steps, hidden) after each step of `input` (batch, steps, d).
    pub(crate) fn sequence(&self, input: &Tensor) -> Result<Tensor> {
        if !(fast_cpu(input) && input.dim(0)? == 1) {
            return Tensor::stack(&self.states(input)?, 1);
        }
        let w = Tensor::cat(&[&self.w_ih, &self.w_hh], 1)?;
        let b = Tensor::cat(&[&self.b_ih, &self.b_hh], 0)?;
        ato_kernels::gru_sequence(&input.squeeze(0)?, &w, &b)?.unsqueeze(0)
    }

    /// h' = z ⊙ h + (1 − z) ⊙ n, written as candle's GRU writes it.
    fn step(&self, x: &Tensor, h: &Tensor) -> Result<Tensor> {
        let gi = ato_kernels::matmul(x, &self.w_ih.t()?)?.broadcast_add(&self.b_ih)?;
        let gh = ato_kernels::matmul(h, &self.w_hh.t()?)?.broadcast_add(&self.b_hh)?;
        let gi = gi.chunk(3, 1)?;
        let gh = gh.chunk(3, 1)?;
        let r = candle_nn::ops::sigmoid(&(&gi[0] + &gh[0])?)?;
        let z = candle_nn::ops::sigmoid(&(&gi[1] + &gh[1])?)?;
        let n = (&gi[2] + (r * &gh[2])?)?.tanh()?;
        (&z * h)? - ((&z - 1.)? * n)?
    }
}

/// Whether `t` takes ato-kernels' fused CPU ops (f32 on the CPU, the fast backend): the GRU
/// here and the gates' heads in `network`.
pub(crate) fn fast_cpu(t: &Tensor) -> bool {
    t.device().is_cpu()
        && t.dtype() == candle_core::DType::F32
        && ato_kernels::backend() == ato_kernels::Backend::Fast
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::rnn::{GRUConfig, RNN};
    use candle_nn::{Init, VarMap};

    #[test]
    fn the_fused_sequence_matches_the_composed_states_and_their_gradients() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let init = Init::Uniform { lo: -0.3, up: 0.3 };
        for name in ["weight_ih_l0", "weight_hh_l0"] {
            let dims = if name == "weight_ih_l0" {
                (21, 5)
            } else {
                (21, 7)
            };
            vb.pp("g").get_with_hints(dims, name, init).unwrap();
        }
        for name in ["bias_ih_l0", "bias_hh_l0"] {
            vb.pp("g").get_with_hints(21, name, init).unwrap();
        }
        let gru = Gru::new(5, 7, vb.pp("g")).unwrap();
        let x = Tensor::randn(0f32, 1.0, (1, 6, 5), &Device::Cpu).unwrap();
        let mix = Tensor::randn(0f32, 1.0, (1, 6, 7), &Device::Cpu).unwrap();
        let fused = gru.sequence(&x).unwrap();
        let composed = Tensor::stack(&gru.states(&x).unwrap(), 1).unwrap();
        let gap = |a: &Tensor, b: &Tensor| -> f32 {
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            let s = b.abs().unwrap().max_all().unwrap();
            (d / s).unwrap().to_scalar::<f32>().unwrap()
        };
        assert!(gap(&fused, &composed) < 1e-6);
        let grads = |t: &Tensor| (t * &mix).unwrap().sum_all().unwrap().backward().unwrap();
        let (gf, gc) = (grads(&fused), grads(&composed));
        let vars = varmap.all_vars();
        assert_eq!(vars.len(), 4);
        for v in vars {
            let (a, b) = (gf.get(&v).unwrap(), gc.get(&v).unwrap());
            assert!(gap(a, b) < 1e-5, "{:?}", v.dims());
        }
    }

    #[test]
    fn same_bits_as_candles_gru() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let init = Init::Uniform { lo: -0.3, up: 0.3 };
        let cfg = GRUConfig {
            w_ih_init: init,
            w_hh_init: init,
            b_ih_init: Some(init),
            b_hh_init: Some(init),
        };
        let theirs = candle_nn::rnn::gru(5, 7, cfg, vb.pp("g")).unwrap();
        let ours = Gru::new(5, 7, vb.pp("g")).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 4, 5), &Device::Cpu).unwrap();
        let want: Vec<Tensor> = theirs.seq(&x).unwrap().into_iter().map(|s| s.h).collect();
        let got = ours.states(&x).unwrap();
        assert_eq!(got.len(), 4);
        for (g, w) in got.iter().zip(&want) {
            let bits = |t: &Tensor| -> Vec<u32> {
                let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                v.into_iter().map(f32::to_bits).collect()
            };
            assert_eq!(bits(g), bits(w));
        }
        // negative control: a state one step later differs
        assert_ne!(
            got[1].to_vec2::<f32>().unwrap(),
            want[2].to_vec2::<f32>().unwrap()
        );
    }
}
