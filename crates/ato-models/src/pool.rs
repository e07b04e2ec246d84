//! Square pooling windows with padding, differentiable: what imported graphs use (the
//! built-in ImageNet stem keeps its faster [`crate::layers::max_pool_3x3_s2_p1`]).

use candle_core::{Result, Tensor};

/// `count` elements of `x` along `dim`, `start, start + stride, …` (the axis must hold
/// `start + stride·count` elements); differentiable.
fn strided(x: &Tensor, dim: usize, start: usize, stride: usize, count: usize) -> Result<Tensor> {
    let x = x.narrow(dim, start, stride * count)?;
    if stride == 1 {
        return Ok(x);
    }
    let mut shape = x.dims().to_vec();
    shape[dim] = count;
    shape.insert(dim + 1, stride);
    x.reshape(shape)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)
}

/// Pools H then W with square windows, separably: `pad` pads an axis with `fill`, `join`
/// combines the window's elements (max or sum). Built from narrow/reshape/maximum, so it
/// has a backward pass for every kernel and stride (candle's pools only for kernel = stride).
fn pool(
    x: &Tensor,
    (kernel, stride, padding): (usize, usize, usize),
    fill: f32,
    join: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let mut x = x.clone();
    for dim in [2, 3] {
        let n = x.dim(dim)?;
        let out = (n + 2 * padding - kernel) / stride + 1;
        // room for every start + stride·out, padded with `fill`
        let after = (kernel - 1 + stride * out).saturating_sub(n + padding);
        let mut parts = Vec::new();
        for len in [padding, after] {
            let mut shape = x.dims().to_vec();
            shape[dim] = len;
            parts.push(Tensor::full(fill, shape, x.device())?.to_dtype(x.dtype())?);
        }
        let padded = Tensor::cat(&[&parts[0], &x, &parts[1]], dim)?;
        let mut acc = strided(&padded, dim, 0, stride, out)?;
        for start in 1..kernel {
            acc = join(&acc, &strided(&padded, dim, start, stride, out)?)?;
        }
        x = acc;
    }
    Ok(x)
}

/// Max-pooling; padded pixels never win (PyTorch's and ONNX's −∞ padding).
pub fn max_pool(x: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    pool(x, (kernel, stride, padding), f32::MIN, |a, b| a.maximum(b))
}

/// Average pooling; padded pixels count as zeros (`count_include_pad`).
pub fn avg_pool(x: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    let sum = pool(x, (kernel, stride, padding), 0.0, |a, b| a + b)?;
    sum / (kernel * kernel) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn overlapping_pools_have_a_gradient() {
        let x = candle_core::Var::from_tensor(
            &Tensor::arange(0f32, 25.0, &Device::Cpu)
                .unwrap()
                .reshape((1, 1, 5, 5))
                .unwrap(),
        )
        .unwrap();
        let y = max_pool(x.as_tensor(), 3, 2, 1).unwrap();
        // maxima of the 3×3 windows at rows/cols {0, 2, 4}: pixels (1|3|4, 1|3|4)
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [6.0, 8.0, 9.0, 16.0, 18.0, 19.0, 21.0, 23.0, 24.0]
        );
        let g = y.sum_all().unwrap().backward().unwrap();
        let gx = g
            .get(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(gx.iter().sum::<f32>(), 9.0);
        assert_eq!(gx[24], 1.0);
        let a = avg_pool(x.as_tensor(), 3, 1, 0).unwrap();
        assert_eq!(a.dims(), [1, 1, 3, 3]);
        // the centre window's mean is the centre pixel, 12
        assert_eq!(a.flatten_all().unwrap().to_vec1::<f32>().unwrap()[4], 12.0);
        assert!(a.sum_all().unwrap().backward().is_ok());
    }

    #[test]
    fn padded_pools_match_hand_computed_values() {
        // one 3×3 image: 1..9, negative so −∞ padding matters for the max
        let v: Vec<f32> = (1..=9).map(|i| -(i as f32)).collect();
        let x = Tensor::from_vec(v, (1, 1, 3, 3), &Device::Cpu).unwrap();
        let m = max_pool(&x, 3, 2, 1).unwrap().flatten_all().unwrap();
        // windows centred on (0,0), (0,2), (2,0), (2,2): maxima −1, −2, −4, −5
        assert_eq!(m.to_vec1::<f32>().unwrap(), [-1.0, -2.0, -4.0, -5.0]);
        let a = avg_pool(&x, 2, 2, 1).unwrap().flatten_all().unwrap();
        // zero-padded 5×5, 2×2 windows at (0,0),(0,2),(2,0),(2,2): −1/4, −(2+3)/4, −(4+7)/4, −(5+6+8+9)/4
        assert_eq!(a.to_vec1::<f32>().unwrap(), [-0.25, -1.25, -2.75, -7.0]);
    }
}
