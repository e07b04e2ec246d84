//! Which code path the CPU kernels take on this machine: the SIMD level the multiversioned
//! loops dispatch to ([`simd_path`], the one rule the dispatch itself uses) and the threads
//! they share out work to. A run records them (`machine.json`), because results are only
//! bit-identical on machines that take the same path.

/// The instruction set a multiversioned kernel runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimdPath {
    /// AVX-512 F + VL (with AVX2 and FMA).
    Avx512,
    /// AVX2 + FMA.
    Avx2Fma,
    /// The build's baseline (SSE2 on x86-64), or another architecture.
    Baseline,
}

impl SimdPath {
    pub fn as_str(self) -> &'static str {
        match self {
            SimdPath::Avx512 => "avx512",
            SimdPath::Avx2Fma => "avx2+fma",
            SimdPath::Baseline => "baseline",
        }
    }
}

/// The path this CPU takes: the best it supports, or a lower one forced with `ATO_SIMD`
/// (`avx512`, `avx2` or `baseline`; read once; a path the CPU lacks is never taken). Forcing
/// is how `ato-cli/tests/cpu_paths.rs` checks that the kernels compute the same bits on
/// every path (issue 32).
#[inline]
pub fn simd_path() -> SimdPath {
    static PATH: std::sync::OnceLock<SimdPath> = std::sync::OnceLock::new();
    *PATH.get_or_init(|| {
        let best = detected_path();
        match std::env::var("ATO_SIMD").ok().as_deref() {
            Some("avx2") if best == SimdPath::Avx512 => SimdPath::Avx2Fma,
            Some("baseline") => SimdPath::Baseline,
            _ => best,
        }
    })
}

/// The best path this CPU supports (std caches the feature checks).
pub fn detected_path() -> SimdPath {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return SimdPath::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return SimdPath::Avx2Fma;
        }
    }
    SimdPath::Baseline
}

/// Threads the kernels' loops use (the calling thread included).
pub fn kernel_threads() -> usize {
    crate::parallel::threads()
}
