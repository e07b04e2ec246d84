//! [`gate_heads`]: the heads of ATO's controller as one op: for each gate ℓ its state row h_ℓ
//! goes through one shared LayerNorm, a ReLU and the gate's own linear map (no bias),
//! z_ℓ = W_ℓ · relu(LN(h_ℓ)), with the backward written out (issue 27: per gate ~15 candle ops
//! and their autograd were half of what remained of a controller step after the GRU).
//!
//! LayerNorm as `candle_nn::ops::layer_norm_slow` computes it (biased variance of the centred
//! row, x̂ = (x − μ) / √(σ² + ε), then γ·x̂ + β). Sums are fixed: row sums in index order, a
//! product's element a fused multiply-add chain over its inner index from 0; the same bits on
//! every CPU, within rounding of candle's composed ops (tested).

use crate::chains::{columns_dot, rows_dot};
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

/// LayerNorm's ε (the controller's 1e-5).
const EPS: f32 = 1e-5;

/// The logits of every gate, concatenated: `hidden` (gates, d) one state row per gate,
/// `gamma_beta` the shared LayerNorm's `[γ; β]` (2·d), `weights` the heads' weights stacked
/// (Σ widths, d); gate ℓ's logits are the `widths[ℓ]` values after the previous gates'.
/// f32 on the CPU.
pub fn gate_heads(
    hidden: &Tensor,
    gamma_beta: &Tensor,
    weights: &Tensor,
    widths: &[usize],
) -> Result<Tensor> {
    hidden.contiguous()?.apply_op3(
        &gamma_beta.contiguous()?,
        &weights.contiguous()?,
        GateHeads {
            widths: widths.to_vec(),
        },
    )
}

struct GateHeads {
    widths: Vec<usize>,
}

#[derive(Clone, Copy)]
struct Dims {
    gates: usize,
    width: usize,
    outputs: usize,
}

impl GateHeads {
    fn dims(&self, h: &[usize], gb: &[usize], w: &[usize]) -> Result<Dims> {
        let (&[gates, width], &[gb_len], &[outputs, w_cols]) = (h, gb, w) else {
            bail!("ato-gate-heads: hidden (gates, d), [γ; β] (2d), weights (Σ widths, d); got {h:?}, {gb:?}, {w:?}")
        };
        if gates != self.widths.len()
            || gb_len != 2 * width
            || w_cols != width
            || outputs != self.widths.iter().sum::<usize>()
        {
            bail!(
                "ato-gate-heads: hidden {h:?}, [γ; β] {gb:?}, weights {w:?} do not fit gates of widths {:?}",
                self.widths
            );
        }
        Ok(Dims {
            gates,
            width,
            outputs,
        })
    }
}

/// One row's LayerNorm: (x̂, √(σ² + ε)).
fn normalise(x: &[f32]) -> (Vec<f32>, f32) {
    let n = x.len() as f32;
    let mean = x.iter().fold(0f32, |s, v| s + v) / n;
    let centred: Vec<f32> = x.iter().map(|v| v - mean).collect();
    let var = centred.iter().fold(0f32, |s, v| s + v * v) / n;
    let scale = (var + EPS).sqrt();
    (centred.iter().map(|v| v / scale).collect(), scale)
}

/// Per gate: x̂, √(σ² + ε), the pre-activation y = γ·x̂ + β and a = relu(y).
struct Row {
    xhat: Vec<f32>,
    scale: f32,
    y: Vec<f32>,
    a: Vec<f32>,
}

fn row(x: &[f32], gamma: &[f32], beta: &[f32]) -> Row {
    let (xhat, scale) = normalise(x);
    let y: Vec<f32> = xhat
        .iter()
        .zip(gamma.iter().zip(beta))
        .map(|(v, (g, b))| v * g + b)
        .collect();
    let a = y.iter().map(|v| v.max(0.0)).collect();
    Row { xhat, scale, y, a }
}

impl CustomOp3 for GateHeads {
    fn name(&self) -> &'static str {
        "ato-gate-heads"
    }

    fn cpu_fwd(
        &self,
        hs: &CpuStorage,
        hl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        let d = self.dims(hl.dims(), gl.dims(), wl.dims())?;
        let (h, gb, w) = (
            crate::storage::contiguous_f32(hs, hl, "gate-heads hidden")?,
            crate::storage::contiguous_f32(gs, gl, "gate-heads [γ; β]")?,
            crate::storage::contiguous_f32(ws, wl, "gate-heads weights")?,
        );
        let (gamma, beta) = gb.split_at(d.width);
        let mut out = vec![0f32; d.outputs];
        let mut at = 0;
        for (g, &c) in self.widths.iter().enumerate() {
            let r = row(&h[g * d.width..][..d.width], gamma, beta);
            let rows = &w[at * d.width..][..c * d.width];
            rows_dot(&mut out[at..at + c], rows, d.width, 0, &r.a);
            at += c;
        }
        Ok((CpuStorage::F32(out), Shape::from(d.outputs)))
    }

    fn bwd(
        &self,
        hidden: &Tensor,
        gamma_beta: &Tensor,
        weights: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let _pass = crate::profile::Pass::start("ato-gate-heads-grad");
        let d = self.dims(hidden.dims(), gamma_beta.dims(), weights.dims())?;
        let flat = |t: &Tensor| -> Result<Vec<f32>> { t.flatten_all()?.to_vec1::<f32>() };
        let (h, gb, w, dz) = (
            flat(hidden)?,
            flat(gamma_beta)?,
            flat(weights)?,
            flat(grad)?,
        );
        let (gamma, beta) = gb.split_at(d.width);
        let mut dh = vec![0f32; d.gates * d.width];
        let mut dgb = vec![0f32; 2 * d.width];
        let mut dw = vec![0f32; d.outputs * d.width];
        let mut da = vec![0f32; d.width];
        let n = d.width as f32;
        let mut at = 0;
        for (g, &c) in self.widths.iter().enumerate() {
            let r = row(&h[g * d.width..][..d.width], gamma, beta);
            let dzg = &dz[at..at + c];
            for (ci, &dzc) in dzg.iter().enumerate() {
                for (dwv, &av) in dw[(at + ci) * d.width..][..d.width].iter_mut().zip(&r.a) {
                    *dwv = dzc * av;
                }
            }
            columns_dot(&mut da, &w[at * d.width..][..c * d.width], d.width, 0, dzg);
            // through the ReLU, then γ·x̂ + β
            let dy: Vec<f32> = da
                .iter()
                .zip(&r.y)
                .map(|(g, &y)| if y > 0.0 { *g } else { 0.0 })
                .collect();
            let (dgamma, dbeta) = dgb.split_at_mut(d.width);
            for k in 0..d.width {
                dgamma[k] += dy[k] * r.xhat[k];
                dbeta[k] += dy[k];
            }
            // through the normalisation: dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂ ⊙ x̂)) / √(σ² + ε)
            let dxhat: Vec<f32> = dy.iter().zip(gamma).map(|(a, b)| a * b).collect();
            let mean_d = dxhat.iter().fold(0f32, |s, v| s + v) / n;
            let mean_dx = dxhat.iter().zip(&r.xhat).fold(0f32, |s, (a, b)| s + a * b) / n;
            for (k, out) in dh[g * d.width..][..d.width].iter_mut().enumerate() {
                *out = (dxhat[k] - mean_d - r.xhat[k] * mean_dx) / r.scale;
            }
            at += c;
        }
        let dev = hidden.device();
        Ok((
            Some(Tensor::from_vec(dh, hidden.dims(), dev)?),
            Some(Tensor::from_vec(dgb, gamma_beta.dims(), dev)?),
            Some(Tensor::from_vec(dw, weights.dims(), dev)?),
        ))
    }
}

#[cfg(test)]
mod tests;
