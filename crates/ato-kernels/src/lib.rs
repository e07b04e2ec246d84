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
//! same threads (DESIGN.md §9). Where its time goes:
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
//!   any stride, padding and kernel; other groupings fall back to candle. Stride-1 convs run
//!   a direct AVX-512 microkernel (8–16 output channels × 16–48 pixels held in registers,
//!   reading shifted vectors of the zero-padded image, no im2col) for the forward pass and
//!   for the input gradient (the "full" conv with transposed, flipped weights); the weight
//!   gradient is an implicit GEMM (one `gemm` per tap on shifted views of the padded image);
//!   strided and 1×1 convs use im2col (or the image itself) with `gemm`. Depthwise convs are
//!   direct per-channel loops. The batch runs in parallel, one image per task, with
//!   per-thread scratch buffers reused across calls.
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
//! - `CANDLE_NUM_THREADS` / `RAYON_NUM_THREADS` set the threads (our kernels run on candle's
//!   CPU worker pool, the calling thread plus `CANDLE_NUM_THREADS − 1` workers).
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
//! ## Measured
//!
//! `ato bench train|infer MODEL` (CIFAR-10 shapes, batch 128, 2 threads, AMD Zen 5 with
//! AVX-512, 2 cores, measured peak 522 GFLOP/s f32), images/s from the median step, best of
//! three runs on a shared machine (±5–10%); PyTorch 2.15 CPU from
//! `benches/pytorch_reference.py` with `torch.set_num_threads(2)` (best of 2–3 runs, see
//! `benches/pytorch_reference_results.json`):
//!
//! | model, step | stock candle | ato-kernels | PyTorch | vs stock | vs PyTorch |
//! |---|---|---|---|---|---|
//! | ResNet-20 train | 43.5 | 812 | 715 | 18.7× | 1.14× |
//! | ResNet-20 inference | 254 | 3756 | 3208 | 14.8× | 1.17× |
//! | ResNet-56 train | 17.2 | 298 | 283 | 17.3× | 1.05× |
//! | ResNet-56 inference | 118 | 1233 | 1163 | 10.4× | 1.06× |
//! | MobileNetV2 train | 3.8 | 346 | 327 | 91× | 1.06× |
//! | MobileNetV2 inference | 8.4 | 1936 | 2008 | 230× | 0.96× |
//!
//! ResNet-56 training at 298 images/s is 225 GFLOP/s (43% of peak, counting 3× the forward's
//! 125.7 M MACs per image), inference 310 GFLOP/s (59%). `cargo bench -p ato-kernels` compares
//! each kernel with candle's (e.g. the 3×3 conv at 16 channels, 32×32, batch 128: forward
//! 1.6 ms vs 36.6 ms, input gradient 1.6 ms vs 90.7 ms, weight gradient 2.5 ms vs 36.4 ms).
//!
//! ## Limits
//!
//! - f32 only; other dtypes and devices take candle's path. On CUDA that includes candle's
//!   per-group split of depthwise convs (a CUDA depthwise kernel is future work).
//! - The direct kernel needs AVX-512F and output channels in multiples of 8; otherwise the
//!   gemm paths run (still far faster than stock, see the benches).
//! - Dilation is not supported (no model here uses it).

mod allocator;
mod backend;
pub mod batchnorm;
mod channel_scale;
pub mod conv;
mod conv_bn;
mod elementwise;
mod matmul;
mod output;
mod parallel;
mod simd;
mod storage;

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
