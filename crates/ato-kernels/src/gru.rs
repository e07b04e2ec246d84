//! [`gru_sequence`]: a one-layer GRU over a whole sequence of one item as one op, with its
//! backward through time written out (issue 27: ATO's controller, a bi-GRU over ~10 gate
//! tokens, is a few hundred tiny candle ops per step and their autograd; this is two).
//!
//! PyTorch's gate layout (reset, update, new) and equations, as `candle_nn::rnn::GRU`:
//! r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
//! n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = z ⊙ h − (z − 1) ⊙ n, from h = 0.
//!
//! Every sum is defined as in portable mode ([`crate::portable`]): a product's element is the
//! fused multiply-add chain over its inner index in ascending order from 0, then the bias is
//! added; the gradients of the weights accumulate one `mul_add` per step, last step first. So
//! the results are the same bits on every CPU (in both reproducibility modes), and differ from
//! candle's composed ops by rounding only (tested against them).

use crate::chains::{columns_dot, rows_dot};
use crate::simd::multiversion;
use crate::storage::contiguous_f32;
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

/// The hidden states (steps, hidden) of a GRU over `x` (steps, input) from a zero state.
/// `w` is `[W_ih | W_hh]` (3·hidden, input + hidden) and `b` is `[b_ih; b_hh]` (6·hidden),
/// gates in PyTorch's order. f32 on the CPU.
pub fn gru_sequence(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &b.contiguous()?, GruSequence)
}

#[derive(Clone, Copy, Debug)]
struct Dims {
    steps: usize,
    input: usize,
    hidden: usize,
}

impl Dims {
    fn of(x: &[usize], w: &[usize], b: &[usize]) -> Result<Self> {
        let (&[steps, input], &[rows, cols], &[bias]) = (x, w, b) else {
            bail!("ato-gru: x (steps, input), w (3h, input + h), b (6h); got {x:?}, {w:?}, {b:?}")
        };
        let hidden = rows / 3;
        if rows != 3 * hidden || cols != input + hidden || bias != 6 * hidden {
            bail!("ato-gru: x {x:?}, w {w:?}, b {b:?} do not fit one GRU");
        }
        Ok(Self {
            steps,
            input,
            hidden,
        })
    }
    fn cols(&self) -> usize {
        self.input + self.hidden
    }
}

/// What the backward needs of each step: r, z, n and W_hn h + b_hn, and the state before it.
struct Trace {
    r: Vec<f32>,
    z: Vec<f32>,
    n: Vec<f32>,
    hn: Vec<f32>,
    /// h_0 = 0, h_1, …, h_steps: (steps + 1) × hidden.
    h: Vec<f32>,
}

/// `v += bias`, element by element.
fn add(v: &mut [f32], bias: &[f32]) {
    for (o, b) in v.iter_mut().zip(bias) {
        *o += b;
    }
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

multiversion! {
/// `dst[j, offset + k] += a[j] · v[k]` (one `mul_add`) for the packed rows of `dst`.
fn add_outer(dst: &mut [f32], stride: usize, offset: usize, a: &[f32], v: &[f32]) {
    for (j, &aj) in a.iter().enumerate() {
        for (d, &vk) in dst[j * stride + offset..][..v.len()].iter_mut().zip(v) {
            *d = aj.mul_add(vk, *d);
        }
    }
}
}

/// The forward, keeping what the backward needs.
fn forward(x: &[f32], w: &[f32], b: &[f32], d: Dims) -> Trace {
    let (h, g) = (d.hidden, 3 * d.hidden);
    let (b_ih, b_hh) = b.split_at(g);
    let stride = d.cols();
    let mut t = Trace {
        r: vec![0.0; d.steps * h],
        z: vec![0.0; d.steps * h],
        n: vec![0.0; d.steps * h],
        hn: vec![0.0; d.steps * h],
        h: vec![0.0; (d.steps + 1) * h],
    };
    let (mut gi, mut gh) = (vec![0f32; g], vec![0f32; g]);
    for s in 0..d.steps {
        rows_dot(&mut gi, w, stride, 0, &x[s * d.input..][..d.input]);
        add(&mut gi, b_ih);
        let (before, after) = t.h.split_at_mut((s + 1) * h);
        let prev = &before[s * h..];
        rows_dot(&mut gh, w, stride, d.input, prev);
        add(&mut gh, b_hh);
        for j in 0..h {
            let r = sigmoid(gi[j] + gh[j]);
            let z = sigmoid(gi[h + j] + gh[h + j]);
            let hn = gh[2 * h + j];
            let n = (gi[2 * h + j] + r * hn).tanh();
            after[j] = z * prev[j] - (z - 1.0) * n;
            let at = s * h + j;
            (t.r[at], t.z[at], t.n[at], t.hn[at]) = (r, z, n, hn);
        }
    }
    t
}

/// (dx when `need_dx`, dw packed as w, db) from the gradient `dh` of every state.
fn backward(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    dh: &[f32],
    d: Dims,
    need_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let (h, g, stride) = (d.hidden, 3 * d.hidden, d.cols());
    let t = forward(x, w, b, d);
    let mut dx = need_dx.then(|| vec![0f32; d.steps * d.input]);
    let mut dw = vec![0f32; g * stride];
    let mut db = vec![0f32; 2 * g];
    let mut carry = vec![0f32; h];
    let (mut dgi, mut dgh) = (vec![0f32; g], vec![0f32; g]);
    let mut through = vec![0f32; h];
    for s in (0..d.steps).rev() {
        let prev = &t.h[s * h..][..h];
        for j in 0..h {
            let at = s * h + j;
            let (r, z, n, hn) = (t.r[at], t.z[at], t.n[at], t.hn[at]);
            let dhj = dh[at] + carry[j];
            let dz = dhj * (prev[j] - n);
            let dan = dhj * (1.0 - z) * (1.0 - n * n);
            let dar = dan * hn * r * (1.0 - r);
            let daz = dz * z * (1.0 - z);
            (dgi[j], dgi[h + j], dgi[2 * h + j]) = (dar, daz, dan);
            (dgh[j], dgh[h + j], dgh[2 * h + j]) = (dar, daz, dan * r);
            carry[j] = dhj * z;
        }
        for j in 0..g {
            db[j] += dgi[j];
            db[g + j] += dgh[j];
        }
        add_outer(&mut dw, stride, 0, &dgi, &x[s * d.input..][..d.input]);
        add_outer(&mut dw, stride, d.input, &dgh, prev);
        columns_dot(&mut through, w, stride, d.input, &dgh);
        for (c, v) in carry.iter_mut().zip(&through) {
            *c += v;
        }
        if let Some(dx) = dx.as_mut() {
            columns_dot(&mut dx[s * d.input..][..d.input], w, stride, 0, &dgi);
        }
    }
    (dx, dw, db)
}

struct GruSequence;

impl CustomOp3 for GruSequence {
    fn name(&self) -> &'static str {
        "ato-gru"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        let d = Dims::of(xl.dims(), wl.dims(), bl.dims())?;
        let (x, w, b) = (
            contiguous_f32(xs, xl, "ato-gru x")?,
            contiguous_f32(ws, wl, "ato-gru w")?,
            contiguous_f32(bs, bl, "ato-gru b")?,
        );
        let t = forward(x, w, b, d);
        let states = t.h[d.hidden..].to_vec();
        Ok((CpuStorage::F32(states), Shape::from((d.steps, d.hidden))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let _pass = crate::profile::Pass::start("ato-gru-grad");
        let d = Dims::of(x.dims(), w.dims(), b.dims())?;
        let flat = |t: &Tensor| -> Result<Vec<f32>> { t.flatten_all()?.to_vec1::<f32>() };
        let (dx, dw, db) = backward(
            &flat(x)?,
            &flat(w)?,
            &flat(b)?,
            &flat(grad)?,
            d,
            x.track_op(),
        );
        let dev = x.device();
        Ok((
            dx.map(|v| Tensor::from_vec(v, x.dims(), dev)).transpose()?,
            Some(Tensor::from_vec(dw, w.dims(), dev)?),
            Some(Tensor::from_vec(db, b.dims(), dev)?),
        ))
    }
}

#[cfg(test)]
mod tests;
