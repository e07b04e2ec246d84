//! `machine.json`: where a run ran. Results are bit-identical only on machines that take the
//! same code paths (the kernels' SIMD level, the matmul crate's kernels chosen from the CPU's
//! features, the thread count), so every start of a run (a resume included) appends one record:
//! the CPU model and the flags that choose those paths, the kernels' backend and SIMD path, the
//! threads, the device and the numerics mode.

use crate::TrainError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// CPU flags that pick a code path somewhere in the stack (ours, gemm, candle).
const PATH_FLAGS: [&str; 9] = [
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512vl",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
];

/// One start of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachineRecord {
    /// Epochs already done when this start began (0 for a fresh run).
    pub from_epoch: usize,
    /// `model name` of /proc/cpuinfo (empty where there is none).
    pub cpu_model: String,
    /// Which of [`PATH_FLAGS`] the CPU has.
    pub cpu_flags: Vec<String>,
    /// `fast` (ato-kernels) or `stock` (candle's ops).
    pub kernel_backend: String,
    /// The SIMD path of ato-kernels' loops: avx512 | avx2+fma | baseline.
    pub kernel_simd: String,
    /// Threads of the kernels' loops.
    pub threads: usize,
    /// `cpu`, `cuda:N`.
    pub device: String,
    /// `train.reproducible`: `machine` (each CPU takes its fastest paths; bit-identical results
    /// need the same paths) or `portable` (fixed-order products: the same bits on every CPU).
    pub mode: String,
    pub ato_version: String,
}

impl MachineRecord {
    /// The CPU's model name, or `unknown CPU` where /proc/cpuinfo gives none.
    pub fn cpu_name(&self) -> &str {
        if self.cpu_model.is_empty() {
            "unknown CPU"
        } else {
            &self.cpu_model
        }
    }

    /// This machine, for a start at `from_epoch` on `device`.
    pub fn here(device: &candle_core::Device, from_epoch: usize) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let flags = field("flags");
        let have: Vec<&str> = flags.split_whitespace().collect();
        Self {
            from_epoch,
            cpu_model: field("model name"),
            cpu_flags: PATH_FLAGS
                .iter()
                .filter(|f| have.contains(f))
                .map(|f| f.to_string())
                .collect(),
            kernel_backend: match ato_kernels::backend() {
                ato_kernels::Backend::Fast => "fast".into(),
                ato_kernels::Backend::Stock => "stock".into(),
            },
            kernel_simd: ato_kernels::cpu::simd_path().as_str().into(),
            threads: ato_kernels::cpu::kernel_threads(),
            device: match device.location() {
                candle_core::DeviceLocation::Cpu => "cpu".into(),
                candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
                candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
            },
            mode: ato_kernels::reproducibility().as_str().into(),
            ato_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// The records of `path`, oldest first; a missing file has none.
pub fn read_machines(path: &Path) -> Result<Vec<MachineRecord>, TrainError> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| TrainError::Io(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Io(format!("{}: {e}", path.display())))
}

/// Appends `record` to the JSON list in `path` (write-then-rename); a missing file is empty.
pub fn append_machine(path: &Path, record: MachineRecord) -> Result<(), TrainError> {
    let mut all = read_machines(path)?;
    all.push(record);
    let text = serde_json::to_string_pretty(&all).expect("plain fields serialise");
    super::write_text_atomically(path, &format!("{text}\n"))
}
