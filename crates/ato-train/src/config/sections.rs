//! The shared sections of a run config (`[dataset]`, `[model]`, `[train]`, `[optim]`,
//! `[prune]`, `[bench]`), each with its defaults and unknown keys rejected; every method's own
//! section has a file of its own (`ato.rs`, `oto.rs`, `otov2.rs`, `hesso.rs`,
//! `magnitude.rs`), as `[convergence]` has.

pub use ato_data::DatasetName;
use ato_models::{ModelName, ShortcutKind};
pub use ato_optim::DecayKind;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An epoch, written as a whole number (`25`) or as a fraction of `train.epochs` (`0.1`, a
/// float in [0, 1]). Fractions keep a schedule valid when a sweep or a smoke test changes the
/// number of epochs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EpochSpec {
    Epoch(usize),
    Fraction(f64),
}

impl EpochSpec {
    /// The epoch this spec names in a run of `epochs` epochs (fractions round to nearest).
    pub fn resolve(self, epochs: usize) -> usize {
        match self {
            EpochSpec::Epoch(e) => e,
            EpochSpec::Fraction(f) => (f * epochs as f64).round() as usize,
        }
    }
}

/// `[dataset]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetSection {
    /// synth10 | synth100 | cifar10 | cifar100 | imagenet | digits (embedded, 8×8 greyscale).
    #[schemars(with = "String")]
    pub name: DatasetName,
    /// Folder holding `cifar-10-batches-bin/`, `cifar-100-binary/`, ImageNet's `train/` and
    /// `val/`, or where the synthetic set is generated.
    pub root: String,
    /// Whether `ato` may download CIFAR archives that are missing.
    pub download: bool,
    /// Training images of the synthetic set [default: 10,000 for synth10, 20,000 for synth100].
    pub synth_train: Option<usize>,
    /// Test images of the synthetic set [default: 2,000 for synth10, 4,000 for synth100].
    pub synth_test: Option<usize>,
    /// ImageNet training only: `ColorJitter(s, s, s)` (brightness, contrast, saturation), a
    /// strength in [0, 1]; unset = no jitter. The authors use 0.4 for ResNets, none for
    /// MobileNetV2.
    pub color_jitter: Option<f64>,
    /// ImageNet training only: the maximum hue shift of the jitter, in [0, 0.5] (authors' ResNets:
    /// 0.2); unset = none.
    pub color_jitter_hue: Option<f64>,
}

impl Default for DatasetSection {
    fn default() -> Self {
        Self {
            name: DatasetName::Synth10,
            root: "data".into(),
            download: false,
            synth_train: None,
            synth_test: None,
            color_jitter: None,
            color_jitter_hue: None,
        }
    }
}

/// `[model]`: the architecture keys; class count and input size follow the data set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// resnet20 | resnet32 | resnet56 | resnet110 | resnet18 | resnet34 | resnet50 | mobilenetv2.
    #[schemars(with = "String")]
    pub name: ModelName,
    /// CIFAR ResNet shortcuts: A (zero-pad) or B (1×1 conv + BN).
    #[schemars(with = "String")]
    pub shortcut: ShortcutKind,
    /// Width of the first stage (CIFAR ResNets: 16) [default: the model's own].
    pub base_width: Option<usize>,
    /// Width multiplier of every layer.
    pub width_mult: f64,
    /// Stride of the stem [default: the model's own; MobileNetV2 uses 1 for inputs ≤ 64 px].
    pub stem_stride: Option<usize>,
    /// An ONNX file to train instead of a built-in (then `name` is ignored): a CNN of Conv,
    /// BatchNormalization, Relu/Clip, Add, Concat, pools, Flatten/Reshape and Gemm/MatMul;
    /// its channel groups are found from the graph (docs/onnx.md).
    pub onnx: Option<std::path::PathBuf>,
    /// Imported models: `inner` prunes the channels inside blocks, as the built-ins do;
    /// `all` also residual streams, the stem, linear bottlenecks and the classifier's input
    /// [default: inner].
    #[schemars(with = "Option<String>")]
    pub onnx_groups: Option<ato_models::graph_groups::GroupPolicy>,
    /// Imported models: `file` starts from the weights in the file (prune a pretrained
    /// model), `fresh` from the seeded initialisation [default: file].
    #[schemars(with = "Option<String>")]
    pub onnx_weights: Option<OnnxWeights>,
}

/// Where an imported model's initial weights come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnnxWeights {
    /// The tensors stored in the ONNX file.
    #[default]
    File,
    /// The seeded initialisation of every built-in (conv: Kaiming, BN: 1/0, linear: uniform).
    Fresh,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            name: ModelName::Resnet20,
            shortcut: ShortcutKind::B,
            base_width: None,
            width_mult: 1.0,
            stem_stride: None,
            onnx: None,
            onnx_groups: None,
            onnx_weights: None,
        }
    }
}

/// The pruning method of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Dense,
    Ato,
    Oto,
    Otov2,
    Hesso,
    Magnitude,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Method {
    type Err = String;

    /// A method by its config name (`dense`, `ato`, `oto`, `otov2`, `hesso`, `magnitude`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown method {s:?}"))
    }
}

impl Method {
    /// Every method, in the order of `--help`.
    pub const ALL: [Method; 6] = [
        Method::Dense,
        Method::Ato,
        Method::Oto,
        Method::Otov2,
        Method::Hesso,
        Method::Magnitude,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Dense => "dense",
            Method::Ato => "ato",
            Method::Oto => "oto",
            Method::Otov2 => "otov2",
            Method::Hesso => "hesso",
            Method::Magnitude => "magnitude",
        }
    }
}

/// `[train]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// Epochs E of the run.
    pub epochs: usize,
    /// Images per target step.
    pub batch_size: usize,
    /// Label smoothing ε of the cross-entropy.
    pub label_smoothing: f64,
    /// Mixup α; 0 disables mixup.
    pub mixup: f64,
    /// `machine` (the default): the same numbers on the same machine, from its fastest
    /// kernels; `portable`: the same numbers on every x86-64 CPU with AVX2 and FMA, every
    /// matrix product in one fixed order (docs/reproducibility.md; slower, see its measured
    /// cost).
    pub reproducible: Reproducible,
    /// `fp32` (the default). `bf16` is refused with one line that names this CPU's bf16 units
    /// (AMX, AVX512-BF16 or neither): the bf16 kernels are not built yet, and a run labelled
    /// bf16 that trained in fp32 would be a wrong label (docs/performance.md).
    pub precision: Precision,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            epochs: 200,
            batch_size: 128,
            label_smoothing: 0.0,
            mixup: 0.0,
            reproducible: Reproducible::Machine,
            precision: Precision::Fp32,
        }
    }
}

/// `train.precision`: the numbers convs and matmuls take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 everywhere.
    #[default]
    Fp32,
    /// Mixed precision in the manner of PyTorch's CPU autocast (not built yet: refused).
    Bf16,
}

/// `train.reproducible`: where a run's numbers can be reproduced bit for bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Reproducible {
    /// On the same machine (same CPU paths); the fastest kernels.
    #[default]
    Machine,
    /// On every x86-64 CPU with AVX2 and FMA: fixed-order matrix products
    /// (`ato_kernels::portable`).
    Portable,
}

impl Reproducible {
    /// The kernels' process-wide mode for this setting (same name: `config::tests`).
    pub fn kernels(self) -> ato_kernels::Reproducibility {
        match self {
            Reproducible::Machine => ato_kernels::Reproducibility::Machine,
            Reproducible::Portable => ato_kernels::Reproducibility::Portable,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerName {
    Sgd,
    Adamw,
}

impl OptimizerName {
    pub fn as_str(self) -> &'static str {
        match self {
            OptimizerName::Sgd => "sgd",
            OptimizerName::Adamw => "adamw",
        }
    }
}

/// `[optim]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OptimSection {
    /// sgd | adamw.
    pub name: OptimizerName,
    /// Base learning rate η₀.
    pub lr: f64,
    /// SGD's momentum; Adam's β₁ for `adamw`.
    pub momentum: f64,
    /// Nesterov momentum (SGD only).
    pub nesterov: bool,
    /// Weight decay (L2 for SGD, decoupled for AdamW).
    pub weight_decay: f64,
    /// Epochs of linear warm-up.
    pub warmup_epochs: usize,
    /// After warm-up: cosine | multistep (×0.1 at 50% and 75%) | constant.
    #[schemars(with = "String")]
    pub schedule: DecayKind,
    /// Apply weight decay to BN γ/β and biases too (default: conv and linear weights only).
    pub decay_norm_and_bias: bool,
}

impl Default for OptimSection {
    fn default() -> Self {
        Self {
            name: OptimizerName::Sgd,
            lr: 0.1,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 5e-4,
            warmup_epochs: 0,
            schedule: DecayKind::Cosine,
            decay_norm_and_bias: false,
        }
    }
}

/// `[prune]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PruneSection {
    /// ρ: the share of the full model's conv+fc MACs to remove, in (0, 1).
    pub target_flops_reduction: f64,
    /// A run meets its target when the reduction it achieves is within ± this of it.
    pub tolerance: f64,
    /// Every method keeps a multiple of this many channels per gate (never none, never more
    /// than the full width), so the compact model has kernel-friendly widths; the budget and
    /// ATO's FLOPs term count the rounded widths. 1 = no rounding.
    pub round_to: usize,
    /// The run id of the ATO run whose achieved FLOPs reduction this run was matched to
    /// (set by a sweep with `match_flops`; recorded in `summary.csv`, not part of the run id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_run: Option<String>,
}

impl Default for PruneSection {
    fn default() -> Self {
        Self {
            target_flops_reduction: 0.5,
            tolerance: 0.02,
            round_to: 1,
            reference_run: None,
        }
    }
}

/// `[bench]`: the latency measurement at the end of a run (compact vs dense model, side by
/// side on the run's device; `summary.csv` columns `dense_ms`, `compact_ms`, `speedup`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BenchSection {
    /// Time the compact model against the dense one after compaction (eval-mode forward).
    pub after_run: bool,
    /// Images per timed forward.
    pub batch: usize,
    /// Interleaved rounds (one forward of each model per round); the figures are medians.
    pub repeats: usize,
}

impl Default for BenchSection {
    fn default() -> Self {
        Self {
            after_run: true,
            batch: 64,
            repeats: 5,
        }
    }
}

/// `[dist]`: data parallelism. `world_size` ranks train one model, each on its shard of every
/// batch (`train.batch_size / world_size` images); gradients are averaged over the ranks once
/// per step and every rank takes the same step. BatchNorm normalises each shard with its own
/// statistics (no SyncBatchNorm: what the authors' DataParallel runs did) and rank 0's running
/// statistics are kept, as PyTorch's DDP does. Ranks run as threads of one process or as MPI
/// processes, on the CPU or one GPU each with NCCL between them (docs/scaling.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DistSection {
    /// Ranks of the run; 1 trains without data parallelism. Must divide `train.batch_size`.
    pub world_size: usize,
    /// threads (ranks as threads of this process) | mpi (one rank per process, started by
    /// `mpirun -np <world_size>` or `srun`; a build with `--features mpi`). The same numbers
    /// either way on the CPU. With `device = "cuda[:K]"` rank r runs on GPU K + r (threads) or
    /// on GPU K + its local rank (mpi), NCCL summing the gradients.
    pub backend: DistBackend,
}

impl Default for DistSection {
    fn default() -> Self {
        Self {
            world_size: 1,
            backend: DistBackend::Threads,
        }
    }
}

/// `dist.backend`: what carries the ranks' collectives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DistBackend {
    #[default]
    Threads,
    Mpi,
}
