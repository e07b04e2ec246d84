//! The shape of a convolution as the direct kernel ([`super::direct`]) sees it: padded and
//! phase-split sizes, the register blocking per ISA, the tap offsets and the scratch it needs.
//! The kernel and its data layouts ([`super::direct_layout`]) both read it.

use super::direct_simd::Isa;

/// A convolution as the direct kernel sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DirectShape {
    pub in_channels: usize,
    pub out_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: usize,
    pub padding: usize,
}

/// Where the direct kernel's tiles read and write: output vector k (of `lanes` pixels) reads
/// its inputs at `loads[k]` past each tap's offset into the padded input and is stored at
/// `stores[k]` of its channel's output row, the channels' rows `pitch` apart and the output
/// rows `row_pitch` apart within them. `loads.len()` is a whole number of tiles; both lists
/// never decrease (their last entry is their largest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct VectorPlan {
    pub loads: Vec<usize>,
    pub stores: Vec<usize>,
    pub pitch: usize,
    pub row_pitch: usize,
    /// Whether the vectors are the output rows' (stored in the image layout, `pitch` =
    /// H_out·W_out) rather than the wide range (stored in the wide layout).
    pub rows: bool,
}

/// Register blocking: output channels per block (at most; see [`DirectShape::blocks`]) ×
/// vectors of pixels per tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Blocking {
    pub isa: Isa,
    pub channels: usize,
    pub vectors: usize,
}

impl Blocking {
    /// Pixels of one tile.
    pub(super) fn pixels(self) -> usize {
        self.vectors * self.isa.lanes()
    }
}

impl DirectShape {
    pub(super) fn hp(&self) -> usize {
        self.in_h + 2 * self.padding
    }
    pub(super) fn wp(&self) -> usize {
        self.in_w + 2 * self.padding
    }
    pub fn out_h(&self) -> usize {
        (self.hp() - self.kernel_h) / self.stride + 1
    }
    pub fn out_w(&self) -> usize {
        (self.wp() - self.kernel_w) / self.stride + 1
    }
    /// Phase rows and columns the kernel reads (s, or fewer for a smaller kernel).
    pub(super) fn phases(&self) -> (usize, usize) {
        (
            self.stride.min(self.kernel_h),
            self.stride.min(self.kernel_w),
        )
    }
    /// Rows of one phase plane.
    pub(super) fn hq(&self) -> usize {
        self.hp().div_ceil(self.stride)
    }
    /// Columns of one phase plane: the row pitch of the output's wide coordinates.
    pub(super) fn wq(&self) -> usize {
        self.wp().div_ceil(self.stride)
    }
    /// Elements of one phase plane.
    pub(super) fn plane(&self) -> usize {
        self.hq() * self.wq()
    }
    /// Phase planes of the whole image (channel-major).
    pub(super) fn planes(&self) -> usize {
        let (ph, pw) = self.phases();
        self.in_channels * ph * pw
    }
    /// Output columns in wide coordinates `oh·Wq + ow`.
    pub(super) fn wide(&self) -> usize {
        (self.out_h() - 1) * self.wq() + self.out_w()
    }
    /// The tile shape: on AVX-512, 8 channels × 3 vectors of 16 pixels on wide images, else
    /// 16 × 1 (or 8 × 1); on AVX2 (16 registers), 6 channels × 2 vectors of 8 pixels, or
    /// 4 × 3.
    pub(super) fn blocking(&self) -> Blocking {
        let isa = Isa::detect().expect("direct conv without AVX2 or AVX-512");
        let wide = self.wide() >= 192;
        let (channels, vectors) = match isa {
            Isa::Avx512 if wide => (8, 3),
            Isa::Avx512 if self.out_channels.is_multiple_of(16) => (16, 1),
            Isa::Avx512 => (8, 1),
            // 12 accumulators (enough independent FMA chains to cover their latency), the
            // inputs and a broadcast: 15 or 16 of the 16 registers. Channel counts that
            // split into blocks of at most 4 (up to 4, 7, 8) take 4 × 3 tiles.
            Isa::Avx2 if self.out_channels.div_ceil(self.out_channels.div_ceil(6)) <= 4 => (4, 3),
            Isa::Avx2 => (6, 2),
        };
        Blocking {
            isa,
            channels,
            vectors,
        }
    }
    /// The output channels cut into consecutive blocks of at most `blocking().channels`,
    /// as equal as possible (13 channels in blocks of up to 6: 4, 4, 5), as (first, len).
    pub(super) fn blocks(&self) -> impl Iterator<Item = (usize, usize)> {
        let co = self.out_channels;
        let n = co.div_ceil(self.blocking().channels);
        (0..n).map(move |b| (b * co / n, (b + 1) * co / n - b * co / n))
    }
    /// Output columns computed (a whole number of tiles): the row pitch of the wide output.
    pub(super) fn wide_rounded(&self) -> usize {
        let px = self.blocking().pixels();
        self.wide().div_ceil(px) * px
    }
    /// Where the tiles of every block read and write ([`VectorPlan`]). Where the output's
    /// width is a whole number of vectors, the vectors are the output rows' (no junk
    /// columns: 8 × 8 outputs at 8 lanes compute 64 columns, not the 80 of the wide range)
    /// and store into the image layout; else they cover the wide range
    /// [`Self::wide_rounded`] and store into the wide layout.
    pub(super) fn vector_plan(&self) -> VectorPlan {
        let b = self.blocking();
        let lanes = b.isa.lanes();
        let (oh, ow, wq) = (self.out_h(), self.out_w(), self.wq());
        if !ow.is_multiple_of(lanes) {
            let starts: Vec<usize> = (0..self.wide_rounded()).step_by(lanes).collect();
            return VectorPlan {
                loads: starts.clone(),
                stores: starts,
                pitch: self.wide_rounded(),
                row_pitch: wq,
                rows: false,
            };
        }
        // Whole tiles: the last one repeats the last vector (the same value stored twice).
        let pad = |starts: Vec<usize>| {
            let last = *starts
                .last()
                .expect("a conv output has at least one vector");
            let slots = starts.len().div_ceil(b.vectors) * b.vectors;
            let mut padded = starts;
            padded.resize(slots, last);
            padded
        };
        VectorPlan {
            loads: pad(self.row_vectors(lanes, wq)),
            stores: pad(self.row_vectors(lanes, ow)),
            pitch: oh * ow,
            row_pitch: ow,
            rows: true,
        }
    }
    /// The first column of every `lanes`-wide vector along the output rows (W_out a multiple
    /// of `lanes`; 1: every output column), the rows `pitch` apart, in increasing order.
    pub(super) fn row_vectors(&self, lanes: usize, pitch: usize) -> Vec<usize> {
        let ow = self.out_w();
        (0..self.out_h())
            .flat_map(|r| (0..ow).step_by(lanes).map(move |c| r * pitch + c))
            .collect()
    }
    /// The buffer offset of every (c, kh, kw), in weight order.
    pub(super) fn tap_offsets(&self) -> Vec<usize> {
        let (ph, pw) = self.phases();
        let (s, wq, plane) = (self.stride, self.wq(), self.plane());
        let mut taps = Vec::with_capacity(self.in_channels * self.taps());
        for c in 0..self.in_channels {
            for kh in 0..self.kernel_h {
                for kw in 0..self.kernel_w {
                    let phase = (c * ph + kh % s) * pw + kw % s;
                    taps.push(phase * plane + (kh / s) * wq + kw / s);
                }
            }
        }
        taps
    }
    /// The largest tap offset (that of the last channel, whose phases come last).
    pub(super) fn last_tap(&self) -> usize {
        let (ph, pw) = self.phases();
        let (s, wq, plane) = (self.stride, self.wq(), self.plane());
        let c = self.in_channels - 1;
        let mut last = 0;
        for kh in 0..self.kernel_h {
            for kw in 0..self.kernel_w {
                let phase = (c * ph + kh % s) * pw + kw % s;
                last = last.max(phase * plane + (kh / s) * wq + kw / s);
            }
        }
        last
    }
    /// Elements of the padded (phase-split) input buffer, with slack for the last tile's
    /// reads.
    pub(super) fn padded_len(&self) -> usize {
        (self.last_tap() + self.wide_rounded()).max(self.planes() * self.plane())
    }
    /// Scratch elements [`DirectConv::conv_image`] needs.
    pub fn scratch_len(&self) -> usize {
        self.padded_len() + self.out_channels * self.wide_rounded()
    }
    pub(super) fn taps(&self) -> usize {
        self.kernel_h * self.kernel_w
    }
}
