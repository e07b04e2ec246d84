//! placeholder docs
mod backend;
pub mod batchnorm;
pub mod conv;
mod elementwise;
mod matmul;
mod parallel;
mod simd;
mod storage;

pub use backend::{backend, set_backend, Backend};
pub use batchnorm::{Activation, BatchNorm2d};
pub use conv::{conv2d, conv2d_with, ConvParams};
pub use elementwise::{add_relu, add_relu_with};
