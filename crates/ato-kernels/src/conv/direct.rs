//! Direct convolution with a register-blocked SIMD microkernel (no im2col, no gemm): the
//! forward pass at any stride, and the stride-1 input gradient as the forward of the "full"
//! convolution with transposed, flipped weights.
//!
//! As in [`super::implicit`], the image is zero-padded (Hp × Wp) and output pixels are
//! numbered in padded-width coordinates `q = oh·Wp + ow`, so for tap (kh, kw) the inputs of
//! consecutive outputs are one unaligned vector load at `xp[c, q + kh·Wp + kw]`. At stride
//! s the padded image is first split into its s × s phases (phase (a, b) holds the pixels
//! (s·i + a, s·j + b), a ⌈Hp/s⌉ × ⌈Wp/s⌉ plane), which turns the strided conv into the same
//! shifted loads: tap (kh, kw) reads phase (kh mod s, kw mod s) at `q + (kh/s)·Wq + kw/s`.
//! Each (channel, tap) is thus one offset into the buffer ([`DirectConv::taps`]).
//!
//! The output channels are cut into near-equal blocks of at most 8 or 16 (AVX-512) or 6
//! (AVX2) channels, so any channel count runs full-width vector tiles (13 channels on AVX2:
//! blocks of 4, 4, 5); the tile loops are in [`super::direct_simd`]. Every output is summed
//! over (c, kh, kw) in that order, whatever the blocking and instruction set.

use super::direct_layout::{narrow_affine_into, narrow_into, pad_into};
pub(crate) use super::direct_shape::DirectShape;
use super::direct_shape::VectorPlan;
use super::direct_simd::{run_block, Isa};
use crate::batchnorm::kernels::ChannelAffine;
use crate::output::{as_uninit, assume_init};
use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the direct kernel may run (see [`set_enabled`]).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the direct kernel on or off process-wide (off: the gemm paths run every conv); for
/// benchmarks that compare the two.
pub(crate) fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether the CPU runs the kernel (AVX-512F, or AVX2 and FMA) and it is enabled.
pub(crate) fn available() -> bool {
    ENABLED.load(Ordering::Relaxed) && Isa::detect().is_some()
}

/// Whether the direct kernel handles `s` (padding smaller than the kernel, a CPU with
/// AVX-512F or AVX2 + FMA); any number of channels, any stride.
pub(crate) fn supports(s: &DirectShape) -> bool {
    s.out_channels > 0
        && s.in_channels > 0
        && s.stride > 0
        && s.padding < s.kernel_h.min(s.kernel_w)
        && s.hp() >= s.kernel_h
        && s.wp() >= s.kernel_w
        && available()
}

/// A conv prepared for the direct kernel: its shape, weights (C_out × C_in × KH × KW, read
/// in place), tap offsets and where its tiles read and write.
pub(crate) struct DirectConv<'a> {
    pub shape: DirectShape,
    weights: Cow<'a, [f32]>,
    taps: Vec<usize>,
    plan: VectorPlan,
}

impl<'a> DirectConv<'a> {
    /// From weights in the kernel's order (C_out × C_in × KH × KW of `shape`).
    pub fn new(shape: DirectShape, w: Cow<'a, [f32]>) -> Self {
        assert!(
            supports(&shape),
            "direct conv on an unsupported shape or CPU"
        );
        assert_eq!(
            w.len(),
            shape.out_channels * shape.in_channels * shape.taps()
        );
        Self {
            shape,
            weights: w,
            taps: shape.tap_offsets(),
            plan: shape.vector_plan(),
        }
    }

    /// `out = conv(x, w)` for one image: x is C_in × H × W, out C_out × H_out × W_out;
    /// `scratch` holds at least [`DirectShape::scratch_len`] elements.
    pub fn conv_image(&self, x: &[f32], out: &mut [f32], scratch: &mut [f32]) {
        self.conv_image_into(x, as_uninit(out), scratch);
    }

    /// [`Self::conv_image`] into uninitialised memory of exactly C_out × H_out × W_out
    /// elements, returned initialised.
    pub fn conv_image_into<'o>(
        &self,
        x: &[f32],
        out: &'o mut [MaybeUninit<f32>],
        scratch: &mut [f32],
    ) -> &'o mut [f32] {
        self.conv_image_then_into(x, out, scratch, None)
    }

    /// [`Self::conv_image_into`], with `epi` (eval-mode BatchNorm, activation, residual) fused
    /// into the copy out of the wide layout when given.
    pub fn conv_image_then_into<'o>(
        &self,
        x: &[f32],
        out: &'o mut [MaybeUninit<f32>],
        scratch: &mut [f32],
        epi: Option<&ChannelAffine>,
    ) -> &'o mut [f32] {
        let s = &self.shape;
        assert!(x.len() >= s.in_channels * s.in_h * s.in_w);
        let plane = s.out_h() * s.out_w();
        let out = &mut out[..s.out_channels * plane];
        let (xp, wide) = scratch.split_at_mut(s.padded_len());
        pad_into(s, x, xp);
        let plan = &self.plan;
        if plan.rows {
            // The tiles store straight into the image layout.
            self.run_blocks(xp, out.as_mut_ptr().cast(), out.len());
            // SAFETY: the plan's vectors cover every output row (`vector_plan`), so the
            // blocks wrote every element of `out` (C_out planes of H_out × W_out, its whole
            // length).
            let out = unsafe { assume_init(out) };
            if let Some(epi) = epi {
                epi.apply_in_place(out, plane);
            }
            return out;
        }
        let wide = &mut wide[..s.out_channels * plan.pitch];
        self.run_blocks(xp, wide.as_mut_ptr(), wide.len());
        let rows = (plan.pitch, plan.row_pitch);
        match epi {
            None => narrow_into(s, wide, out, rows),
            Some(epi) => {
                assert!(epi.scale.len() >= s.out_channels && epi.shift.len() >= s.out_channels);
                assert!(epi
                    .residual
                    .is_none_or(|r| r.len() >= s.out_channels * plane));
                narrow_affine_into(s, wide, out, epi, rows)
            }
        }
        // SAFETY: `narrow_into` and `narrow_affine_into` write every element of `out` (C_out
        // planes of H_out × W_out, its whole length).
        unsafe { assume_init(out) }
    }

    /// `out[o·P + stores[k] + l] = Σ_t w[o, t] · xp[loads[k] + l + taps[t]]` for every block
    /// of channels and every vector k of the plan (P its pitch); `out` holds `out_len`
    /// elements.
    fn run_blocks(&self, xp: &[f32], out: *mut f32, out_len: usize) {
        let s = &self.shape;
        let b = s.blocking();
        let plan = &self.plan;
        let lanes = b.isa.lanes();
        let per_channel = self.taps.len();
        let last_tap = self.taps.iter().copied().max().unwrap_or(0);
        debug_assert_eq!(last_tap, s.last_tap());
        let (loads, stores) = (plan.loads.last(), plan.stores.last());
        let (Some(&last_load), Some(&last_store)) = (loads, stores) else {
            unreachable!("a conv output has at least one vector")
        };
        assert!(
            last_tap + last_load + lanes <= xp.len(),
            "direct conv: padded input too short"
        );
        assert!((s.out_channels - 1) * plan.pitch + last_store + lanes <= out_len);
        assert!(plan.loads.len() == plan.stores.len());
        assert!(plan.loads.len().is_multiple_of(b.vectors));
        assert!(self.weights.len() >= s.out_channels * per_channel);
        for (first, len) in s.blocks() {
            assert!(b.isa.has_tile(len, b.vectors));
            let w = self.weights[first * per_channel..].as_ptr();
            // SAFETY: `supports` (asserted in `new`) checked the CPU's instruction set
            // (`blocking` picked it) and the tile exists (asserted); the plan is a whole
            // number of tiles (asserted); the asserts above bound every read of `xp` and
            // `weights` and every write of this block's `len` rows of `out` (a buffer of
            // `out_len` elements, distinct from both inputs).
            unsafe {
                let out = out.add(first * plan.pitch);
                run_block(b.isa, &self.taps, len, b.vectors, xp.as_ptr(), w, out, plan)
            };
        }
    }
}
