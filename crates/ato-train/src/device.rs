//! `device = auto | cpu | cuda | cuda:N`, and the check that the CUDA libraries load.
//!
//! A CUDA build opens libcuda, libnvrtc, libcublas, libcublasLt and libcurand at run time
//! (vendor/README.md); before the first CUDA device is created they are looked for, and a
//! missing one is named in one line instead of a panic deep inside cudarc.

use crate::TrainError;
use candle_core::Device;

/// The libraries a CUDA run opens, as (cudarc's name, the soname it looks for first on Linux,
/// where it comes from).
pub const CUDA_LIBRARIES: [(&str, &str, &str); 5] = [
    (
        "cuda",
        "libcuda.so.1",
        "the NVIDIA driver (>= 580 for CUDA 13)",
    ),
    (
        "nvrtc",
        "libnvrtc.so.13",
        "CUDA 13 toolkit or pip nvidia-cuda-nvrtc",
    ),
    (
        "cublas",
        "libcublas.so.13",
        "CUDA 13 toolkit or pip nvidia-cublas",
    ),
    (
        "cublasLt",
        "libcublasLt.so.13",
        "CUDA 13 toolkit or pip nvidia-cublas",
    ),
    (
        "curand",
        "libcurand.so.10",
        "CUDA 13 toolkit or pip nvidia-curand",
    ),
];

/// One line naming the missing CUDA libraries (cudarc names) and where to get them.
pub fn missing_libraries_message(missing: &[&str]) -> String {
    let named: Vec<String> = CUDA_LIBRARIES
        .iter()
        .filter(|(name, _, _)| missing.contains(name))
        .map(|(_, soname, from)| format!("{soname} ({from})"))
        .collect();
    format!(
        "CUDA libraries not found: {}; put them on LD_LIBRARY_PATH or next to the `ato` binary \
         (`scripts/build-cuda --bundle` copies them there)",
        named.join(", ")
    )
}

/// The cudarc names of the CUDA libraries that cannot be opened (always empty without `cuda`).
pub fn missing_cuda_libraries() -> Vec<&'static str> {
    #[cfg(feature = "cuda")]
    {
        use cudarc::{cublas, cublaslt, curand, driver, nvrtc};
        // SAFETY: each call only tries to dlopen the library and drops the handle.
        let present = unsafe {
            [
                driver::sys::is_culib_present(),
                nvrtc::sys::is_culib_present(),
                cublas::sys::is_culib_present(),
                cublaslt::sys::is_culib_present(),
                curand::sys::is_culib_present(),
            ]
        };
        CUDA_LIBRARIES
            .iter()
            .zip(present)
            .filter(|(_, ok)| !ok)
            .map(|((name, _, _), _)| *name)
            .collect()
    }
    #[cfg(not(feature = "cuda"))]
    Vec::new()
}

/// The device a config names; `auto` is the first CUDA device when candle was built with CUDA
/// and one is present, the CPU otherwise.
pub fn select_device(name: &str) -> Result<Device, TrainError> {
    let cuda = |n: usize| {
        if cfg!(feature = "cuda") {
            let missing = missing_cuda_libraries();
            if !missing.is_empty() {
                return Err(TrainError::Config(format!(
                    "device: `{name}`: {}",
                    missing_libraries_message(&missing)
                )));
            }
        }
        Device::new_cuda(n).map_err(|e| {
            TrainError::Config(format!(
                "device: `{name}` is not available ({e}); build with `--features cuda` on a machine with a GPU, or use device=cpu"
            ))
        })
    };
    match name {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(
            if candle_core::utils::cuda_is_available() && missing_cuda_libraries().is_empty() {
                cuda(0).unwrap_or(Device::Cpu)
            } else {
                Device::Cpu
            },
        ),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => cuda(n),
            None => Err(TrainError::Config(format!(
                "device: `{other}` is not auto, cpu, cuda or cuda:N"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_message_names_each_soname_and_its_source() {
        let line = missing_libraries_message(&["cublas", "curand"]);
        assert!(line.contains("libcublas.so.13 (CUDA 13 toolkit or pip nvidia-cublas)"));
        assert!(line.contains("libcurand.so.10"));
        assert!(!line.contains("libcuda.so.1"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn cpu_build_reports_no_missing_library_and_refuses_cuda_in_one_line() {
        if cfg!(feature = "cuda") {
            return;
        }
        assert!(missing_cuda_libraries().is_empty());
        let err = select_device("cuda").unwrap_err().to_string();
        assert!(err.contains("device: `cuda` is not available"), "{err}");
        assert!(select_device("cuda:x").is_err());
        assert!(matches!(select_device("auto"), Ok(Device::Cpu)));
    }
}
