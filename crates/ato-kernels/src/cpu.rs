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

/// The bf16 matrix units a CPU offers, best first: what `train.precision = "bf16"` would run
/// on (issue 31). Only detected so far: no kernel uses them yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Units {
    /// AMX tiles with bf16 (AMX-TILE + AMX-BF16), their register state enabled by the OS.
    Amx,
    /// AVX512-BF16 (dot products of bf16 pairs into f32), with AVX-512's state enabled.
    Avx512Bf16,
    /// Neither.
    None,
}

impl Bf16Units {
    pub fn as_str(self) -> &'static str {
        match self {
            Bf16Units::Amx => "amx",
            Bf16Units::Avx512Bf16 => "avx512-bf16",
            Bf16Units::None => "none",
        }
    }

    /// From the CPUID bits and the OS's enabled state (XCR0): AMX needs CPUID.(7,0):EDX bits
    /// 22 (AMX-BF16) and 24 (AMX-TILE) and XCR0 bits 17–18 (tile configuration and data);
    /// AVX512-BF16 needs CPUID.(7,1):EAX bit 5, AVX-512 F (CPUID.(7,0):EBX bit 16) and XCR0
    /// bits 1–2 and 5–7 (SSE, AVX, opmask and ZMM state). A unit whose state the OS does not
    /// enable is not offered: the next one down is.
    pub fn from_cpuid(leaf7_ebx: u32, leaf7_edx: u32, leaf7_1_eax: u32, xcr0: u64) -> Self {
        let bit32 = |v: u32, b: u32| v >> b & 1 == 1;
        let state = |mask: u64| xcr0 & mask == mask;
        let amx = bit32(leaf7_edx, 22) && bit32(leaf7_edx, 24) && state(0b11 << 17);
        let avx512_state = state(0b1110_0110);
        let avx512bf16 = bit32(leaf7_1_eax, 5) && bit32(leaf7_ebx, 16) && avx512_state;
        if amx {
            Bf16Units::Amx
        } else if avx512bf16 {
            Bf16Units::Avx512Bf16
        } else {
            Bf16Units::None
        }
    }
}

/// This CPU's bf16 units ([`Bf16Units::from_cpuid`] on its CPUID and XCR0).
pub fn bf16_units() -> Bf16Units {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__cpuid, __cpuid_count};
        // SAFETY: CPUID exists on every x86-64 CPU; leaf 7 is read only when leaf 0 says it
        // exists, and XGETBV only when CPUID.1:ECX.OSXSAVE says the OS enabled it.
        unsafe {
            if __cpuid(0).eax < 7 {
                return Bf16Units::None;
            }
            let osxsave = __cpuid(1).ecx >> 27 & 1 == 1;
            if !osxsave {
                return Bf16Units::None;
            }
            let l7 = __cpuid_count(7, 0);
            let l7_1 = if l7.eax >= 1 {
                __cpuid_count(7, 1).eax
            } else {
                0
            };
            Bf16Units::from_cpuid(l7.ebx, l7.edx, l7_1, xcr0())
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Bf16Units::None
    }
}

/// XCR0, the state components the OS saves (XGETBV with ECX = 0).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "xsave")]
unsafe fn xcr0() -> u64 {
    std::arch::x86_64::_xgetbv(0)
}

#[cfg(test)]
mod tests {
    use super::Bf16Units;

    const AVX512F: u32 = 1 << 16;
    const AMX: u32 = 1 << 22 | 1 << 24;
    const AVX512BF16: u32 = 1 << 5;
    const AVX512_STATE: u64 = 0b1110_0111;
    const TILE_STATE: u64 = 0b11 << 17;

    #[test]
    fn the_best_unit_whose_state_the_os_enables() {
        let all = AVX512_STATE | TILE_STATE;
        assert_eq!(
            Bf16Units::from_cpuid(AVX512F, AMX, AVX512BF16, all),
            Bf16Units::Amx
        );
        assert_eq!(
            Bf16Units::from_cpuid(AVX512F, 0, AVX512BF16, all),
            Bf16Units::Avx512Bf16
        );
        // an AMX CPU whose OS does not enable the tile state falls back to AVX512-BF16, and
        // one that lacks that too to none (the fallback forced, as on a kernel without AMX)
        assert_eq!(
            Bf16Units::from_cpuid(AVX512F, AMX, AVX512BF16, AVX512_STATE),
            Bf16Units::Avx512Bf16
        );
        assert_eq!(
            Bf16Units::from_cpuid(AVX512F, AMX, 0, AVX512_STATE),
            Bf16Units::None
        );
        // AVX512-BF16 without the ZMM state (an OS that disabled AVX-512), or without
        // AVX-512 F, is not offered
        assert_eq!(
            Bf16Units::from_cpuid(AVX512F, 0, AVX512BF16, TILE_STATE | 0b111),
            Bf16Units::None
        );
        assert_eq!(
            Bf16Units::from_cpuid(0, 0, AVX512BF16, all),
            Bf16Units::None
        );
        // only one of the two AMX bits: no AMX
        assert_eq!(Bf16Units::from_cpuid(0, 1 << 24, 0, all), Bf16Units::None);
    }

    #[test]
    fn this_cpu_claims_no_unit_the_kernel_s_flags_lack() {
        // /proc/cpuinfo lists what the CPU and the kernel support; the detection may offer less
        // (a kernel that lists AMX without enabling its state), never more
        let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
            return;
        };
        let flags: Vec<&str> = info
            .lines()
            .find(|l| l.starts_with("flags"))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        let has = |f: &str| flags.contains(&f);
        match super::bf16_units() {
            Bf16Units::Amx => assert!(has("amx_bf16") && has("amx_tile"), "{flags:?}"),
            Bf16Units::Avx512Bf16 => assert!(has("avx512_bf16"), "{flags:?}"),
            // offering less than the flags list is allowed (see above)
            Bf16Units::None => {}
        }
    }
}
