//! `device = auto | cpu | cuda | cuda:N`.

use crate::TrainError;
use candle_core::Device;

/// The device a config names; `auto` is the first CUDA device when candle was built with CUDA
/// and one is present, the CPU otherwise.
pub fn select_device(name: &str) -> Result<Device, TrainError> {
    let cuda = |n: usize| {
        Device::new_cuda(n).map_err(|e| {
            TrainError::Config(format!(
                "device: `{name}` is not available ({e}); build with `--features cuda` on a machine with a GPU, or use device=cpu"
            ))
        })
    };
    match name {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(if candle_core::utils::cuda_is_available() {
            cuda(0).unwrap_or(Device::Cpu)
        } else {
            Device::Cpu
        }),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => cuda(n),
            None => Err(TrainError::Config(format!(
                "device: `{other}` is not auto, cpu, cuda or cuda:N"
            ))),
        },
    }
}
