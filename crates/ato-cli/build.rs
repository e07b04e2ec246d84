//! With the `cuda` feature, give the `ato` binary RUNPATH `$ORIGIN`, so CUDA libraries copied next
//! to it (`scripts/build-cuda --bundle`) are found without LD_LIBRARY_PATH, both by the dynamic
//! linker (libcudart) and by the run-time loading of libcuda/libnvrtc/libcublas/libcurand.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let cuda = std::env::var_os("CARGO_FEATURE_CUDA").is_some();
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if cuda && linux {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN");
    }
}
