//! Issue 32 on CPUs other than this one: the tiny training of `cpu_paths.rs` under
//! `qemu-x86_64 -cpu MODEL`, whose `cpuid` reports the emulated model's features and cache
//! sizes — what the `gemm` crate picks its kernels and blocking from, and what no environment
//! variable can force natively.
//!
//! - Portable mode (`train.reproducible = "portable"`) ends with the same bits natively and on
//!   an emulated Intel Haswell (AVX2 + FMA).
//! - Negative control: the default mode on an emulated Nehalem (SSE4.2, no AVX: gemm takes its
//!   SSE kernels, ours the baseline path) ends elsewhere than natively, so the comparison does
//!   see what a CPU changes.
//!
//! Needs `qemu-x86_64` (Debian's `qemu-user`, which `.ci/run` installs): without it the test
//! says so and passes, except under CI (`CI` set), where a missing emulator fails it.

mod common;

use common::cpu_run::{first_difference, weights, weights_on};

/// True when `qemu-x86_64` runs here.
fn emulator() -> bool {
    let found = std::process::Command::new("qemu-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test: install qemu-user (apt-get install qemu-user)"
        );
        eprintln!("skipped: qemu-x86_64 not found (apt-get install qemu-user)");
    }
    found
}

#[test]
fn portable_mode_trains_the_same_bits_on_an_emulated_cpu_and_the_default_mode_does_not() {
    if !emulator() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let portable = ["train.reproducible=portable"];
    let (native, _) = weights(root.path(), "portable native", &[], &portable);
    let (haswell, path) = weights_on(
        Some("Haswell"),
        root.path(),
        "portable haswell",
        &[],
        &portable,
    );
    assert_eq!(path.0, "avx2+fma", "the emulated Haswell's path");
    assert_eq!(
        first_difference(&native, &haswell),
        None,
        "portable: Haswell"
    );

    let (native, _) = weights(root.path(), "default native", &[], &[]);
    let (nehalem, path) = weights_on(Some("Nehalem"), root.path(), "default nehalem", &[], &[]);
    assert_eq!(path.0, "baseline", "the emulated Nehalem's path");
    let first = first_difference(&native, &nehalem);
    eprintln!("default mode, native vs Nehalem: first tensor that differs {first:?}");
    assert!(first.is_some(), "the default mode moves with the CPU");
}
