//! Matrix–vector products of one sequence item (ATO's controller: the GRU and the gates'
//! heads), each output element the fused multiply-add chain over its inner index in ascending
//! order from 0, as [`crate::portable`] defines a product: the same bits on every CPU, however
//! the outputs are grouped.

use crate::simd::multiversion;

/// Rows computed together (independent chains the CPU overlaps).
const GROUP: usize = 8;

multiversion! {
/// `out[j] = Σ_k w[j·stride + offset + k] · v[k]` (the chain in k) for each row j of `w`.
pub(crate) fn rows_dot(out: &mut [f32], w: &[f32], stride: usize, offset: usize, v: &[f32]) {
    let n = v.len();
    let mut j = 0;
    while j + GROUP <= out.len() {
        let mut acc = [0f32; GROUP];
        for (k, &vk) in v.iter().enumerate() {
            for (r, a) in acc.iter_mut().enumerate() {
                *a = w[(j + r) * stride + offset + k].mul_add(vk, *a);
            }
        }
        out[j..j + GROUP].copy_from_slice(&acc);
        j += GROUP;
    }
    for (jj, o) in out.iter_mut().enumerate().skip(j) {
        let row = &w[jj * stride + offset..][..n];
        *o = row.iter().zip(v).fold(0f32, |s, (a, b)| a.mul_add(*b, s));
    }
}
}

multiversion! {
/// `out[k] = Σ_j w[j·stride + offset + k] · a[j]` (the chain in j): `wᵀ a` over the same rows.
pub(crate) fn columns_dot(out: &mut [f32], w: &[f32], stride: usize, offset: usize, a: &[f32]) {
    let n = out.len();
    out.fill(0.0);
    for (j, &aj) in a.iter().enumerate() {
        for (o, &wv) in out.iter_mut().zip(&w[j * stride + offset..][..n]) {
            *o = wv.mul_add(aj, *o);
        }
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_output_is_its_chain_whatever_the_grouping() {
        // 19 rows: two groups of 8 and 3 rows alone; offset and stride select a block
        let (rows, stride, offset, n) = (19, 13, 4, 7);
        let w: Vec<f32> = (0..rows * stride)
            .map(|i| ((i * 7919) % 101) as f32 / 37.0 - 1.3)
            .collect();
        let v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.77).sin()).collect();
        let chain =
            |j: usize| (0..n).fold(0f32, |s, k| w[j * stride + offset + k].mul_add(v[k], s));
        let mut out = vec![0f32; rows];
        rows_dot(&mut out, &w, stride, offset, &v);
        for (j, o) in out.iter().enumerate() {
            assert_eq!(o.to_bits(), chain(j).to_bits(), "row {j}");
        }
        // the transpose: a chain over the rows for each column
        let a: Vec<f32> = (0..rows).map(|j| (j as f32 * 0.31).cos()).collect();
        let mut cols = vec![0f32; n];
        columns_dot(&mut cols, &w, stride, offset, &a);
        for (k, c) in cols.iter().enumerate() {
            let want = (0..rows).fold(0f32, |s, j| w[j * stride + offset + k].mul_add(a[j], s));
            assert_eq!(c.to_bits(), want.to_bits(), "column {k}");
        }
        // negative control: an unfused multiply-add is another number somewhere
        let unfused = (0..rows).any(|j| {
            let plain = (0..n).fold(0f32, |s, k| s + w[j * stride + offset + k] * v[k]);
            plain.to_bits() != out[j].to_bits()
        });
        assert!(unfused);
    }
}
