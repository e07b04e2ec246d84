//! A bounds-checked front end for strided f32 matrix products: the `gemm` crate, or in
//! portable mode the fixed-order product of [`crate::portable`].

use gemm::Parallelism;

pub(crate) use crate::matrix::{MatMut, MatRef};

/// `dst = lhs × rhs`, or `dst += lhs × rhs` when `accumulate` (portable mode: the fixed order
/// of [`crate::portable`]).
///
/// `threads > 1` lets gemm split the output between rayon threads (it never splits the inner
/// dimension, so the result does not depend on the thread count's scheduling).
pub(crate) fn matmul(dst: MatMut, lhs: MatRef, rhs: MatRef, accumulate: bool, threads: usize) {
    let kernel = match crate::mode::reproducibility() {
        crate::Reproducibility::Portable => crate::portable::portable_matmul,
        crate::Reproducibility::Machine => gemm_matmul,
    };
    checked(dst, lhs, rhs, accumulate, threads, kernel);
}

/// A product kernel, called only on views [`checked`] has checked, with `K > 0`.
pub(crate) type Kernel = fn(MatMut, MatRef, MatRef, bool, usize);

/// Checks shapes and that every view lies inside its slice (panicking otherwise: the callers
/// build the views), handles empty products, then runs `kernel`.
pub(crate) fn checked(
    dst: MatMut,
    lhs: MatRef,
    rhs: MatRef,
    accumulate: bool,
    threads: usize,
    kernel: Kernel,
) {
    assert_eq!(lhs.rows, dst.rows, "matmul: lhs rows");
    assert_eq!(rhs.cols, dst.cols, "matmul: rhs cols");
    assert_eq!(lhs.cols, rhs.rows, "matmul: inner dimensions");
    lhs.check("matmul lhs");
    rhs.check("matmul rhs");
    if dst.rows == 0 || dst.cols == 0 {
        return;
    }
    assert!(
        (dst.rows - 1) * dst.row_stride + dst.cols <= dst.data.len(),
        "matmul: dst view exceeds its slice"
    );
    if lhs.cols == 0 {
        if !accumulate {
            for r in 0..dst.rows {
                dst.data[r * dst.row_stride..][..dst.cols].fill(0.0);
            }
        }
        return;
    }
    kernel(dst, lhs, rhs, accumulate, threads);
}

/// The `gemm` crate's product (its kernels and blocking depend on the CPU).
fn gemm_matmul(dst: MatMut, lhs: MatRef, rhs: MatRef, accumulate: bool, threads: usize) {
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: `checked` verified that every index the views can address lies inside its
    // slice, `dst` is exclusively borrowed, and gemm reads `dst` only when `accumulate` is set.
    unsafe {
        gemm::gemm(
            dst.rows,
            dst.cols,
            lhs.cols,
            dst.data.as_mut_ptr(),
            1,
            dst.row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Negative control for portable mode: the default kernel (`gemm`) does not compute the
    /// defined fixed-order chain of [`crate::portable`], so which one runs matters.
    #[test]
    fn gemm_groups_a_long_sum_otherwise_than_the_portable_chain() {
        let (m, k, n) = (8, 4096, 16);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 3.0)
            .collect();
        let product = |kernel: Kernel| {
            let mut out = vec![0f32; m * n];
            checked(
                MatMut::row_major(&mut out, m, n, n),
                MatRef::row_major(&a, m, k, k),
                MatRef::row_major(&b, k, n, n),
                false,
                1,
                kernel,
            );
            out.into_iter().map(f32::to_bits).collect::<Vec<u32>>()
        };
        assert_ne!(
            product(gemm_matmul),
            product(crate::portable::portable_matmul)
        );
    }
}
