//! placeholder docs
mod allocator;
mod backend;
pub mod batchnorm;
pub mod conv;
mod conv_bn;
mod elementwise;
mod matmul;
mod parallel;
mod simd;
mod storage;

pub use allocator::tune_allocator;
pub use backend::{backend, set_backend, Backend};
pub use batchnorm::{Activation, BatchNorm2d};
pub use conv::{conv2d, conv2d_input_grad, conv2d_weight_grad, conv2d_with, ConvParams};
pub use conv_bn::{
    conv_batch_norm, conv_batch_norm_add, conv_batch_norm_add_with, conv_batch_norm_with,
};
pub use elementwise::{add_relu, add_relu_with};
