# Thin recipes over the `ato` binary; every recipe also works as plain cargo (see README).

default:
    @just --list

# Parameters, MACs and gates of a model, e.g. `just info resnet56 --dataset cifar100`
info MODEL *ARGS:
    cargo ato info {{MODEL}} {{ARGS}}

# The whole test suite (what CI runs after fmt and clippy)
test:
    cargo test --workspace

# Formatting and lints as CI checks them
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Build with CUDA (needs nvcc; see README)
build-cuda:
    cargo build --release --features ato-cli/cuda
