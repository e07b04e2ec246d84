//! # ato-kernels — conv nets on the CPU at PyTorch speed, inside candle
//!
//! Convolution, BatchNorm and their fusions as candle custom ops (`CustomOp2`/`CustomOp3`
//! with `cpu_fwd` and `bwd`; each backward is itself a custom op), so they work under
//! `loss.backward()` like any candle op. On CPU with f32 they run this crate's kernels; on any
//! other device or dtype (CUDA), and under [`Backend::Stock`], they run candle's own ops.
//!
//! ## Why
//!
//! Stock candle 0.11 trains CIFAR ResNets on a 2-core CPU 5–10× slower than PyTorch with the
//! same threads (docs/design.md §9). Where its time goes:
//!
//! - **conv backward**: the weight gradient is a conv2d of the transposed input with the
//!   transposed output gradient (the batch as channels, a whole feature map as the "kernel")
//!   and the input gradient a `conv_transpose2d`; both run far below gemm speed (10–30× slower
//!   than the kernels here, see `benches/conv.rs`);
//! - **grouped convs** (every depthwise conv of MobileNetV2) are split into one conv per group
//!   and concatenated: hundreds of tiny ops per layer (~100× slower here);
//! - **BatchNorm** is a dozen elementwise ops with broadcasts, each a pass over the activations
//!   forward and backward, and **every graph node** costs its input gradient a zero-filled
//!   buffer plus an add in candle's backward (`GradStore::or_insert`);
//! - **the runtime**: glibc gives freed activation buffers back to the kernel, so every step
//!   page-faults them in again (a third of a step), and a second thread pool (rayon) next to
//!   candle's spinning barrier pool oversubscribes a 2-core machine.
//!
//! ## What
//!
//! - [`conv2d`]: dense convs (`groups == 1`) and depthwise convs (`groups == C_in == C_out`),
//!   any stride, padding and kernel; other groupings fall back to candle. The forward pass
//!   of every dense conv but the 1×1 stride-1 ones, and the input gradient of stride-1
//!   convs (the "full" conv with transposed, flipped weights), run a direct microkernel
//!   (AVX-512: 8–16 output channels × 16–48 pixels held in registers; AVX2: 4–6 × 16–24),
//!   reading shifted vectors of the zero-padded image (split into its phases at stride > 1),
//!   no im2col. Any channel count runs full-width tiles: the output channels are cut into
//!   near-equal blocks (13 channels on AVX2: 4, 4, 5), so the odd widths of pruned models
//!   cost about their share of multiply-accumulates. The weight gradient is an implicit
//!   GEMM (one `gemm` per tap on shifted views of the padded image); strided input
//!   gradients and 1×1 stride-1 convs use im2col (or the image itself) with `gemm`.
//!   Depthwise convs are direct per-channel loops. The batch runs in parallel, one image per
//!   task (one thread for less than about a million multiply-accumulates), with per-thread
//!   scratch buffers reused across calls; outputs are allocated uninitialised and each
//!   image's piece is written in place by the direct kernel, or zero-filled just before its
//!   kernel writes it (in cache), never exposed uninitialised.
//! - [`conv_batch_norm`] / [`conv_batch_norm_add`]: conv → BatchNorm → activation
//!   (→ + residual) as **one** graph node. Train mode computes each image's conv output and
//!   its per-channel moments while the image is in cache, then normalises and activates in one
//!   pass; its backward computes the BN gradient per image into a scratch buffer and feeds it
//!   straight to the conv's input and weight gradients. Eval mode applies BN and the
//!   activation right after each image's conv. This is what `ato-models` uses.
//! - [`BatchNorm2d`]: BatchNorm with an optional fused [`Activation`] (ReLU, ReLU6), PyTorch
//!   semantics as `candle_nn::BatchNorm::forward_t`: biased variance to normalise, unbiased for
//!   the running variance, momentum 0.1; running statistics are updated in place.
//! - [`add_relu`]: `relu(a + b)` with a one-pass backward.
//! - [`scale_channels`]: `x · g` with one factor per channel (the models' gated forward), whose
//!   factor gradient is a per-plane dot product instead of candle's strided reduction.
//! - [`matmul`] and [`Linear`]: candle's matrix product by default; under
//!   [`Reproducibility::Portable`] ([`set_reproducibility`]) every product of this crate —
//!   these and the convs' GEMM paths — is one defined FMA chain per element ([`portable`]),
//!   so results do not depend on the CPU's gemm kernels or cache sizes.
//! - [`gru_sequence`] and [`gate_heads`]: ATO's controller (a bi-GRU over ~10 gate tokens,
//!   LayerNorm → ReLU → linear heads) as two ops per step of θ instead of hundreds of tiny
//!   candle ops and their autograd; backward through time written out, every sum a fixed
//!   fused multiply-add chain (`chains`), the same bits on every CPU.
//!
//! Loops are compiled for AVX-512 and AVX2+FMA as well as the baseline and chosen at run time.
//! Results are **deterministic**: every sum runs in a fixed order (per-image partial weight
//! gradients over a fixed chunking of the batch, reduced in chunk order; BatchNorm moments per
//! plane, combined in image order), so the same inputs give bit-identical outputs whatever the
//! thread timing.
//!
//! ## How to switch
//!
//! The process-wide [`backend()`] is [`Backend::Fast`] unless the environment says
//! `ATO_BACKEND=stock`; [`set_backend`] changes it at run time, and every op has a `*_with`
//! variant taking the backend explicitly (the tests compare both). Also read from the
//! environment:
//!
//! - `ATO_TUNE_MALLOC=0` keeps glibc's default malloc settings (by default the first fast op
//!   calls [`tune_allocator`]: blocks up to 32 MiB stay on the heap and freed memory stays
//!   mapped, trading a higher resident size for no page faults);
//! - `CANDLE_NUM_THREADS` / `RAYON_NUM_THREADS` set the threads (our kernels run on the
//!   calling thread plus `CANDLE_NUM_THREADS − 1` helpers of their own, which sleep when idle
//!   and which the caller never waits for before they start: on a loaded machine a loop
//!   costs at worst what one thread takes, where candle's barrier pool waited for every
//!   worker to check in).
//!
//! ```no_run
//! use ato_kernels::{conv2d, set_backend, Backend, ConvParams};
//! use candle_core::{DType, Device, Tensor, Var};
//! let x = Var::zeros((8, 16, 32, 32), DType::F32, &Device::Cpu).unwrap();
//! let w = Var::zeros((32, 16, 3, 3), DType::F32, &Device::Cpu).unwrap();
//! let y = conv2d(x.as_tensor(), w.as_tensor(), ConvParams::new(1, 1, 1)).unwrap();
//! let grads = y.sum_all().unwrap().backward().unwrap();
//! assert_eq!(grads.get(w.as_tensor()).unwrap().dims(), [32, 16, 3, 3]);
//! set_backend(Backend::Stock); // candle's own conv2d from here on
//! ```
//!
//! ## Measuring
//!
//! `cargo bench -p ato-kernels` compares each kernel with candle's on CIFAR and MobileNetV2
//! shapes; `ato bench train|infer MODEL` gives images/s of whole steps (and PyTorch's, from
//! `benches/pytorch_reference_results.json`); the `compact_speed` example of `ato-models`
//! times pruned against dense ResNet-20 inference. Figures depend on the machine and its load:
//! they belong in the notes of the day they were measured, not here.
//!
//! ## Limits
//!
//! - f32 only; other dtypes and devices take candle's path. On CUDA that includes candle's
//!   per-group split of depthwise convs (a CUDA depthwise kernel is future work).
//! - The direct kernel needs AVX-512F or AVX2 + FMA (any channel count, any stride, padding
//!   smaller than the kernel); elsewhere the gemm paths run (still far faster than stock,
//!   see the benches). With fewer images than threads it runs each image on one thread.
//! - Dilation is not supported (no model here uses it).

mod allocator;
mod backend;
pub mod batchnorm;
mod chains;
mod channel_scale;
pub mod conv;
mod conv_bn;
pub mod cpu;
mod elementwise;
mod gate_heads;
mod gru;
mod linear;
mod matmul;
mod matrix;
mod mode;
mod output;
mod parallel;
mod pool;
pub mod portable;
pub mod profile;
mod simd;
mod storage;
#[cfg(test)]
mod test_inputs;

pub use allocator::tune_allocator;
pub use backend::{backend, set_backend, Backend};
pub use batchnorm::{Activation, BatchNorm2d};
pub use channel_scale::{scale_channels, scale_channels_with};
#[doc(hidden)]
pub use conv::set_direct_conv;
pub use conv::{conv2d, conv2d_input_grad, conv2d_weight_grad, conv2d_with, ConvParams};
pub use conv_bn::{
    conv_batch_norm, conv_batch_norm_add, conv_batch_norm_add_with, conv_batch_norm_with,
};
pub use elementwise::{add_relu, add_relu_with};
pub use gate_heads::gate_heads;
pub use gru::gru_sequence;
pub use linear::{matmul, Linear};
pub use mode::{
    lease_reproducibility, reproducibility, set_reproducibility, ModeLease, Reproducibility,
};
