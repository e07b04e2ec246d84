//! Which implementation the public ops use: ours ([`Backend::Fast`]) or candle's own
//! ([`Backend::Stock`]). Process-wide; read once from `ATO_BACKEND`, changeable with
//! [`set_backend`].

use candle_core::{DType, Device};
use std::sync::atomic::{AtomicU8, Ordering};

/// The implementation behind [`crate::conv2d`], [`crate::BatchNorm2d`] and [`crate::add_relu`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// This crate's CPU kernels (f32 on CPU); candle's ops on every other device or dtype.
    Fast,
    /// candle's own ops everywhere (`Tensor::conv2d`, `candle_nn::BatchNorm`, `relu`).
    Stock,
}

impl Backend {
    /// `"fast"` or `"stock"` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fast" => Some(Backend::Fast),
            "stock" | "candle" => Some(Backend::Stock),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Fast => "fast",
            Backend::Stock => "stock",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const UNSET: u8 = 0;
const FAST: u8 = 1;
const STOCK: u8 = 2;

static BACKEND: AtomicU8 = AtomicU8::new(UNSET);

/// The process-wide backend: the last [`set_backend`], else `ATO_BACKEND` (`fast`/`stock`),
/// else [`Backend::Fast`]. An unrecognised `ATO_BACKEND` value is reported once on stderr and
/// ignored.
pub fn backend() -> Backend {
    match BACKEND.load(Ordering::Relaxed) {
        FAST => Backend::Fast,
        STOCK => Backend::Stock,
        _ => {
            let from_env = match std::env::var("ATO_BACKEND") {
                Ok(v) => Backend::parse(&v).unwrap_or_else(|| {
                    eprintln!(
                        "warning: ATO_BACKEND={v:?} is neither `fast` nor `stock`; using fast"
                    );
                    Backend::Fast
                }),
                Err(_) => Backend::Fast,
            };
            // Another thread may have called `set_backend` meanwhile: keep its choice.
            let _ = BACKEND.compare_exchange(
                UNSET,
                encode(from_env),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            backend()
        }
    }
}

/// Sets the process-wide backend (overrides `ATO_BACKEND`).
pub fn set_backend(backend: Backend) {
    BACKEND.store(encode(backend), Ordering::Relaxed);
}

fn encode(b: Backend) -> u8 {
    match b {
        Backend::Fast => FAST,
        Backend::Stock => STOCK,
    }
}

/// True when our kernels can handle tensors of `dtype` on `device` (and, the first time,
/// tunes malloc for them: [`crate::tune_allocator`]).
pub(crate) fn fast_path(device: &Device, dtype: DType) -> bool {
    let ours = device.is_cpu() && dtype == DType::F32;
    if ours {
        crate::allocator::tune_allocator();
    }
    ours
}
