//! A one-layer GRU with PyTorch's gate layout, computing what `candle_nn::rnn::GRU` computes
//! (the same operations in the same order, so the same bits by default) with its products
//! taken by [`ato_kernels::matmul`], which follows the process-wide reproducibility mode (the
//! controller's logits are then the same on every CPU in portable mode).

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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::rnn::{GRUConfig, RNN};
    use candle_nn::{Init, VarMap};

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
