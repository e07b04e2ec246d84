//! Shapes of a 2-D convolution: input (N, C_in, H, W), weight (C_out, C_in / groups, KH, KW),
//! output (N, C_out, H_out, W_out).

use candle_core::{bail, Result};

/// Stride, zero padding (both applied to height and width) and channel groups of a conv.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvParams {
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
}

impl Default for ConvParams {
    fn default() -> Self {
        Self {
            stride: 1,
            padding: 0,
            groups: 1,
        }
    }
}

impl ConvParams {
    pub fn new(stride: usize, padding: usize, groups: usize) -> Self {
        Self {
            stride,
            padding,
            groups,
        }
    }
}

/// The depthwise kernels keep one accumulator per tap: up to 7×7.
pub(crate) const MAX_DEPTHWISE_TAPS: usize = 49;

/// How our kernels compute a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConvKind {
    /// `groups == 1`: im2col (or the input itself for 1×1/stride 1) times the weight matrix.
    Dense,
    /// `groups == C_in == C_out` (kernels up to 7×7): direct per-channel loops.
    Depthwise,
    /// Any other grouping: left to candle.
    Unsupported,
}

/// Every size of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl ConvGeometry {
    pub fn new(
        x: (usize, usize, usize, usize),
        w: (usize, usize, usize, usize),
        p: ConvParams,
    ) -> Result<Self> {
        let (batch, in_channels, in_h, in_w) = x;
        let (out_channels, per_group_in, kernel_h, kernel_w) = w;
        if p.stride == 0 || p.groups == 0 {
            bail!("conv2d: stride and groups must be positive ({p:?})");
        }
        if in_channels != per_group_in * p.groups || out_channels % p.groups != 0 {
            bail!(
                "conv2d: input has {in_channels} channels, weight {w:?} with {} groups",
                p.groups
            );
        }
        if in_h + 2 * p.padding < kernel_h || in_w + 2 * p.padding < kernel_w {
            bail!(
                "conv2d: kernel {kernel_h}x{kernel_w} larger than the padded input {in_h}x{in_w}"
            );
        }
        Ok(Self {
            batch,
            in_channels,
            in_h,
            in_w,
            out_channels,
            kernel_h,
            kernel_w,
            stride: p.stride,
            padding: p.padding,
            groups: p.groups,
            out_h: (in_h + 2 * p.padding - kernel_h) / p.stride + 1,
            out_w: (in_w + 2 * p.padding - kernel_w) / p.stride + 1,
        })
    }

    pub fn kind(&self) -> ConvKind {
        if self.groups == 1 {
            ConvKind::Dense
        } else if self.groups == self.in_channels
            && self.out_channels == self.in_channels
            && self.taps() <= MAX_DEPTHWISE_TAPS
        {
            ConvKind::Depthwise
        } else {
            ConvKind::Unsupported
        }
    }

    /// Pixels of one input plane.
    pub fn in_plane(&self) -> usize {
        self.in_h * self.in_w
    }
    /// Pixels of one output plane.
    pub fn out_plane(&self) -> usize {
        self.out_h * self.out_w
    }
    /// Elements of one input image.
    pub fn in_image(&self) -> usize {
        self.in_channels * self.in_plane()
    }
    /// Elements of one output image.
    pub fn out_image(&self) -> usize {
        self.out_channels * self.out_plane()
    }
    /// Taps of the kernel.
    pub fn taps(&self) -> usize {
        self.kernel_h * self.kernel_w
    }
    /// Rows of the im2col matrix (C_in · KH · KW for a dense conv).
    pub fn patch_len(&self) -> usize {
        self.in_channels / self.groups * self.taps()
    }
    /// A 1×1, stride-1, unpadded conv: the input image is already the im2col matrix.
    pub fn is_pointwise(&self) -> bool {
        self.kernel_h == 1 && self.kernel_w == 1 && self.stride == 1 && self.padding == 0
    }
    pub fn input_dims(&self) -> (usize, usize, usize, usize) {
        (self.batch, self.in_channels, self.in_h, self.in_w)
    }
    pub fn weight_dims(&self) -> (usize, usize, usize, usize) {
        (
            self.out_channels,
            self.in_channels / self.groups,
            self.kernel_h,
            self.kernel_w,
        )
    }
    pub fn output_dims(&self) -> (usize, usize, usize, usize) {
        (self.batch, self.out_channels, self.out_h, self.out_w)
    }

    /// Output columns `lo..hi` whose input column `o·stride + k − padding` lies in `0..in_w`
    /// for kernel column `k` (the same formula serves rows with `in_h`/`out_h`).
    pub fn valid_outputs(
        k: usize,
        padding: usize,
        stride: usize,
        input: usize,
        output: usize,
    ) -> (usize, usize) {
        // o·s + k ≥ p  ⇔  o ≥ ⌈(p − k) / s⌉
        let lo = padding.saturating_sub(k).div_ceil(stride);
        // o·s + k − p ≤ input − 1  ⇔  o ≤ (input − 1 + p − k) / s
        let hi = if input + padding > k {
            ((input - 1 + padding - k) / stride + 1).min(output)
        } else {
            0
        };
        (lo.min(hi), hi)
    }
}
