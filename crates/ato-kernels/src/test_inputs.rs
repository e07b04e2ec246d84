//! Inputs for the kernels' unit tests: the same pseudo-random values on every run (a linear
//! congruential sequence), so a test that fails once fails again.

/// `n` values in [−half, half) from the sequence started at `seed`.
pub(crate) fn lcg_values(n: usize, seed: u64, half: f32) -> Vec<f32> {
    let step = |s: u64| {
        s.wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
    };
    let mut state = step(seed);
    (0..n)
        .map(|_| {
            state = step(state);
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * half
        })
        .collect()
}
