# Thin recipes over the `ato` binary; every recipe also works as plain cargo (see README).

default:
    @just --list

# Run a sweep of experiments/sweeps/NAME.toml, then write its report: `just sweep demo`, `just sweep cifar100 train.epochs=1`
sweep NAME *ARGS:
    cargo ato sweep {{NAME}} {{ARGS}}
    cargo ato report results/{{NAME}}

# One run: `just train experiments/synth10_resnet20.toml method=ato ato.lambda=2`
train *ARGS:
    cargo ato train {{ARGS}}

# Markdown tables and PNG plots of results/NAME into paper/
report NAME:
    cargo ato report results/{{NAME}}

# Training and inference img/s (fast kernels vs stock candle, and PyTorch where measured), then the kernel benches
bench MODEL="resnet56" *ARGS:
    cargo ato bench train {{MODEL}} {{ARGS}}
    cargo ato bench train {{MODEL}} --backend stock {{ARGS}}
    cargo ato bench infer {{MODEL}} {{ARGS}}
    cargo bench -p ato-kernels
    cargo bench -p ato-data

# Data: `just data synth --out data/synth --classes 100`, `just data fetch cifar100`, `just data check data/cifar-10-batches-bin`
data *ARGS:
    cargo ato data {{ARGS}}

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

# Build the CUDA binary target/cuda/ato; without nvcc, a pinned CUDA 13.0 venv from PyPI (see README)
build-cuda *ARGS:
    scripts/build-cuda {{ARGS}}

# On a GPU host: CUDA vs CPU numerics, CUDA benchmarks and demo epochs in one table (builds if needed)
gpu-check *ARGS:
    scripts/gpu-check {{ARGS}}
