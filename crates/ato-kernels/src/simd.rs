//! Small loops written so that LLVM vectorises them (independent lanes, no reassociation
//! needed), with a fixed summation order.

const LANES: usize = 16;

/// `y += a · x`.
#[inline]
pub(crate) fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// Σ xᵢ·yᵢ, summed in 16 interleaved lanes, then the lanes in order.
#[inline]
pub(crate) fn dot(x: &[f32], y: &[f32]) -> f32 {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut acc = [0f32; LANES];
    let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..LANES {
            acc[l] += a[l] * b[l];
        }
    }
    let mut tail = 0.0;
    for (a, b) in xr.iter().zip(yr) {
        tail += a * b;
    }
    acc.iter().sum::<f32>() + tail
}

/// (Σ (xᵢ − shift), Σ (xᵢ − shift)²) in 16 interleaved lanes.
#[inline]
pub(crate) fn shifted_sum_and_squares(x: &[f32], shift: f32) -> (f32, f32) {
    let mut s = [0f32; LANES];
    let mut q = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            let d = c[l] - shift;
            s[l] += d;
            q[l] += d * d;
        }
    }
    let (mut ts, mut tq) = (0.0, 0.0);
    for &v in rest {
        let d = v - shift;
        ts += d;
        tq += d * d;
    }
    (s.iter().sum::<f32>() + ts, q.iter().sum::<f32>() + tq)
}
