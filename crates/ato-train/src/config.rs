//! The run configuration: every key of DESIGN.md §7, plain TOML, unknown keys rejected, and
//! [`RunConfig::validate`] turning out-of-range values into one clear line naming the key.
//!
//! Epoch-valued ATO keys (`ato.t_start`, `ato.t_prox`, `ato.t_end`) default to the fractions
//! of the authors' runs (0.10·E, 2·T_start, 0.51·E); [`RunConfig::schedule`] resolves them.

use crate::schedule::AtoSchedule;
use crate::TrainError;
use ato_models::{ModelConfig, ModelName, ShortcutKind};
use serde::{Deserialize, Serialize};

/// The data sets a run can train on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetName {
    /// The embedded synthetic CIFAR-format set, 10 classes (generated on first use).
    Synth10,
    /// The synthetic set with 100 classes in the CIFAR-100 layout.
    Synth100,
    Cifar10,
    Cifar100,
    Imagenet,
}

impl DatasetName {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Synth10 => "synth10",
            DatasetName::Synth100 => "synth100",
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Cifar100 => "cifar100",
            DatasetName::Imagenet => "imagenet",
        }
    }

    /// (classes, input side) of the data set.
    pub fn shape(self) -> (usize, usize) {
        match self {
            DatasetName::Synth10 | DatasetName::Cifar10 => (10, 32),
            DatasetName::Synth100 | DatasetName::Cifar100 => (100, 32),
            DatasetName::Imagenet => (1000, 224),
        }
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[dataset]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetSection {
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
}

impl Default for DatasetSection {
    fn default() -> Self {
        Self {
            name: DatasetName::Synth10,
            root: "data".into(),
            download: false,
            synth_train: None,
            synth_test: None,
        }
    }
}

/// `[model]`: the architecture keys; class count and input size follow the data set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    pub name: ModelName,
    pub shortcut: ShortcutKind,
    pub base_width: Option<usize>,
    pub width_mult: f64,
    pub stem_stride: Option<usize>,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            name: ModelName::Resnet20,
            shortcut: ShortcutKind::B,
            base_width: None,
            width_mult: 1.0,
            stem_stride: None,
        }
    }
}

/// The pruning method of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Dense,
    Ato,
    Oto,
    Otov2,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Dense => "dense",
            Method::Ato => "ato",
            Method::Oto => "oto",
            Method::Otov2 => "otov2",
        }
    }
}

/// `[train]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    pub epochs: usize,
    pub batch_size: usize,
    pub label_smoothing: f64,
    /// Mixup α; 0 disables mixup.
    pub mixup: f64,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            epochs: 200,
            batch_size: 128,
            label_smoothing: 0.0,
            mixup: 0.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerName {
    Sgd,
    Adamw,
}

/// Learning-rate schedule after warm-up: cosine to 0, ×0.1 at 50% and 75% of the epochs, or
/// constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    Cosine,
    Multistep,
    Constant,
}

/// `[optim]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimSection {
    pub name: OptimizerName,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub warmup_epochs: usize,
    pub schedule: LrSchedule,
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
            schedule: LrSchedule::Cosine,
            decay_norm_and_bias: false,
        }
    }
}

/// `[prune]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PruneSection {
    /// ρ: the share of the full model's conv+fc MACs to remove, in (0, 1).
    pub target_flops_reduction: f64,
}

impl Default for PruneSection {
    fn default() -> Self {
        Self {
            target_flops_reduction: 0.5,
        }
    }
}

/// How masked groups are driven to zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Projector {
    /// The group proximal step of DESIGN.md §4.
    Prox,
    /// HSPG's half-space test on the masked groups.
    HalfSpace,
}

/// Noise of the Gumbel-sigmoid relaxation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Noise {
    Logistic,
    Gumbel,
}

/// `[ato]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AtoSection {
    /// λ of the group proximal step.
    pub lambda: f64,
    /// λ is multiplied by this from T_end on.
    pub lambda_final_mult: f64,
    /// γ, the weight of the FLOPs regulariser in the controller loss.
    pub gamma: f64,
    /// First epoch with controller steps [default: round(0.10·E)].
    pub t_start: Option<usize>,
    /// First epoch with the proximal step [default: 2·T_start].
    pub t_prox: Option<usize>,
    /// Epoch at which the mask freezes [default: round(0.51·E)].
    pub t_end: Option<usize>,
    /// One controller step every this many target steps.
    pub hyper_step: usize,
    /// Share of the training set the controller learns on.
    pub controller_fraction: f64,
    pub projector: Projector,
    /// ε of the half-space test when `projector = "half_space"`.
    pub epsilon: f64,
    pub noise: Noise,
    /// AdamW learning rate of the controller.
    pub controller_lr: f64,
    /// AdamW weight decay of the controller (weights only).
    pub controller_weight_decay: f64,
}

impl Default for AtoSection {
    fn default() -> Self {
        Self {
            lambda: 10.0,
            lambda_final_mult: 10.0,
            gamma: 8.0,
            t_start: None,
            t_prox: None,
            t_end: None,
            hyper_step: 20,
            controller_fraction: 0.05,
            projector: Projector::Prox,
            epsilon: 0.0,
            noise: Noise::Logistic,
            controller_lr: 1e-3,
            controller_weight_decay: 1e-2,
        }
    }
}

/// `[oto]`: HSPG (DESIGN.md §5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtoSection {
    pub lambda: f64,
    pub epsilon: f64,
    /// Epoch at which the half-space stage begins [default: E/4].
    pub n_p: Option<usize>,
}

impl Default for OtoSection {
    fn default() -> Self {
        Self {
            lambda: 1e-3,
            epsilon: 0.0,
            n_p: None,
        }
    }
}

/// `[otov2]`: DHSPG (DESIGN.md §5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Otov2Section {
    pub target_group_sparsity: f64,
    pub lambda: f64,
    pub epsilon: f64,
    /// Epoch of the one-off partition into redundant and important groups [default: E/10].
    pub start_pruning: Option<usize>,
}

impl Default for Otov2Section {
    fn default() -> Self {
        Self {
            target_group_sparsity: 0.5,
            lambda: 1e-3,
            epsilon: 0.95,
            start_pruning: None,
        }
    }
}

/// `[convergence]`: the probes of DESIGN.md §6.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConvergenceSection {
    /// Probe every this many optimiser steps (and once before training); 0 = off.
    pub every: u64,
    /// Fixed probe mini-batches per measurement (≥ 2).
    pub batches: usize,
}

impl Default for ConvergenceSection {
    fn default() -> Self {
        Self {
            every: 100,
            batches: 4,
        }
    }
}

/// A whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Run name: results go to `<out_dir>/<name>/<run-id>/`.
    pub name: String,
    pub dataset: DatasetSection,
    pub model: ModelSection,
    pub method: Method,
    pub train: TrainSection,
    pub optim: OptimSection,
    pub prune: PruneSection,
    pub ato: AtoSection,
    pub oto: OtoSection,
    pub otov2: Otov2Section,
    pub convergence: ConvergenceSection,
    pub seed: u64,
    /// auto | cpu | cuda | cuda:N
    pub device: String,
    pub out_dir: String,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            name: "default".into(),
            dataset: DatasetSection::default(),
            model: ModelSection::default(),
            method: Method::Ato,
            train: TrainSection::default(),
            optim: OptimSection::default(),
            prune: PruneSection::default(),
            ato: AtoSection::default(),
            oto: OtoSection::default(),
            otov2: Otov2Section::default(),
            convergence: ConvergenceSection::default(),
            seed: 0,
            device: "auto".into(),
            out_dir: "results".into(),
        }
    }
}

fn invalid(key: &str, why: impl std::fmt::Display) -> TrainError {
    TrainError::Config(format!("{key}: {why}"))
}

fn check(
    ok: bool,
    key: &str,
    value: impl std::fmt::Display,
    range: &str,
) -> Result<(), TrainError> {
    if ok {
        Ok(())
    } else {
        Err(invalid(key, format!("{value} is outside {range}")))
    }
}

impl RunConfig {
    /// Parses a TOML document (unknown keys are errors).
    pub fn from_toml(text: &str) -> Result<Self, TrainError> {
        toml::from_str(text).map_err(|e| TrainError::Config(e.message().to_string()))
    }

    /// The merged configuration as TOML (what `config.toml` of a run holds).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("config serialises")
    }

    /// The model this run trains, sized for its data set.
    pub fn model_config(&self) -> ModelConfig {
        let (classes, size) = self.dataset.name.shape();
        let mut m = ModelConfig::new(self.model.name, classes, size);
        m.shortcut = self.model.shortcut;
        m.base_width = self.model.base_width;
        m.width_mult = self.model.width_mult;
        m.stem_stride = self.model.stem_stride;
        m
    }

    /// The ATO epochs with defaults resolved.
    pub fn schedule(&self) -> AtoSchedule {
        let e = self.train.epochs;
        let t_start = self
            .ato
            .t_start
            .unwrap_or((0.10 * e as f64).round() as usize);
        let t_end = self.ato.t_end.unwrap_or((0.51 * e as f64).round() as usize);
        let t_prox = self.ato.t_prox.unwrap_or(2 * t_start);
        AtoSchedule {
            epochs: e,
            t_start,
            t_prox,
            t_end,
            lambda: self.ato.lambda,
            lambda_final_mult: self.ato.lambda_final_mult,
        }
    }

    /// Rejects values no run can use; the error names the key and the allowed range.
    pub fn validate(&self) -> Result<(), TrainError> {
        let t = &self.train;
        check(t.epochs >= 1, "train.epochs", t.epochs, "[1, ∞)")?;
        check(
            t.batch_size >= 1,
            "train.batch_size",
            t.batch_size,
            "[1, ∞)",
        )?;
        check(
            (0.0..1.0).contains(&t.label_smoothing),
            "train.label_smoothing",
            t.label_smoothing,
            "[0, 1)",
        )?;
        check(
            t.mixup >= 0.0 && t.mixup.is_finite(),
            "train.mixup",
            t.mixup,
            "[0, ∞)",
        )?;
        let o = &self.optim;
        check(o.lr > 0.0 && o.lr.is_finite(), "optim.lr", o.lr, "(0, ∞)")?;
        check(
            (0.0..1.0).contains(&o.momentum),
            "optim.momentum",
            o.momentum,
            "[0, 1)",
        )?;
        check(
            o.weight_decay >= 0.0 && o.weight_decay.is_finite(),
            "optim.weight_decay",
            o.weight_decay,
            "[0, ∞)",
        )?;
        check(
            o.warmup_epochs < t.epochs,
            "optim.warmup_epochs",
            o.warmup_epochs,
            "[0, train.epochs)",
        )?;
        let rho = self.prune.target_flops_reduction;
        check(
            rho > 0.0 && rho < 1.0,
            "prune.target_flops_reduction",
            rho,
            "(0, 1)",
        )?;
        let a = &self.ato;
        check(
            a.lambda >= 0.0 && a.lambda.is_finite(),
            "ato.lambda",
            a.lambda,
            "[0, ∞)",
        )?;
        check(
            a.gamma >= 0.0 && a.gamma.is_finite(),
            "ato.gamma",
            a.gamma,
            "[0, ∞)",
        )?;
        check(
            a.lambda_final_mult >= 0.0 && a.lambda_final_mult.is_finite(),
            "ato.lambda_final_mult",
            a.lambda_final_mult,
            "[0, ∞)",
        )?;
        check(a.hyper_step >= 1, "ato.hyper_step", a.hyper_step, "[1, ∞)")?;
        check(
            (0.0..1.0).contains(&a.epsilon),
            "ato.epsilon",
            a.epsilon,
            "[0, 1)",
        )?;
        check(
            a.controller_lr > 0.0 && a.controller_lr.is_finite(),
            "ato.controller_lr",
            a.controller_lr,
            "(0, ∞)",
        )?;
        check(
            a.controller_weight_decay >= 0.0 && a.controller_weight_decay.is_finite(),
            "ato.controller_weight_decay",
            a.controller_weight_decay,
            "[0, ∞)",
        )?;
        check(
            a.controller_fraction > 0.0 && a.controller_fraction <= 1.0,
            "ato.controller_fraction",
            a.controller_fraction,
            "(0, 1]",
        )?;
        let s = self.schedule();
        if s.t_start > s.t_end {
            return Err(invalid(
                "ato.t_start",
                format!("T_start = {} is after T_end = {}", s.t_start, s.t_end),
            ));
        }
        check(
            s.t_end <= t.epochs,
            "ato.t_end",
            s.t_end,
            &format!("[T_start, train.epochs = {}]", t.epochs),
        )?;
        if s.t_prox < s.t_start || s.t_prox >= t.epochs {
            return Err(invalid(
                "ato.t_prox",
                format!("T_prox = {} is outside the run: it must lie in [T_start = {}, train.epochs = {})", s.t_prox, s.t_start, t.epochs),
            ));
        }
        let h = &self.oto;
        check(
            h.lambda >= 0.0 && h.lambda.is_finite(),
            "oto.lambda",
            h.lambda,
            "[0, ∞)",
        )?;
        check(
            (0.0..1.0).contains(&h.epsilon),
            "oto.epsilon",
            h.epsilon,
            "[0, 1)",
        )?;
        if let Some(n) = h.n_p {
            check(n < t.epochs, "oto.n_p", n, "[0, train.epochs)")?;
        }
        let d = &self.otov2;
        check(
            d.target_group_sparsity > 0.0 && d.target_group_sparsity < 1.0,
            "otov2.target_group_sparsity",
            d.target_group_sparsity,
            "(0, 1)",
        )?;
        check(
            d.lambda >= 0.0 && d.lambda.is_finite(),
            "otov2.lambda",
            d.lambda,
            "[0, ∞)",
        )?;
        check(
            (0.0..1.0).contains(&d.epsilon),
            "otov2.epsilon",
            d.epsilon,
            "[0, 1)",
        )?;
        if let Some(n) = d.start_pruning {
            check(n < t.epochs, "otov2.start_pruning", n, "[0, train.epochs)")?;
        }
        for (key, n) in [
            ("dataset.synth_train", self.dataset.synth_train),
            ("dataset.synth_test", self.dataset.synth_test),
        ] {
            if let Some(n) = n {
                check(n >= 1, key, n, "[1, ∞)")?;
            }
        }
        let c = &self.convergence;
        if c.every > 0 {
            check(c.batches >= 2, "convergence.batches", c.batches, "[2, ∞)")?;
        }
        let dev = self.device.as_str();
        let cuda_n = dev
            .strip_prefix("cuda:")
            .map(|n| n.parse::<usize>().is_ok());
        if !(matches!(dev, "auto" | "cpu" | "cuda") || cuda_n == Some(true)) {
            return Err(invalid(
                "device",
                format!("`{dev}` is not auto, cpu, cuda or cuda:N"),
            ));
        }
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            return Err(invalid(
                "name",
                format!("`{}` must be a non-empty folder name", self.name),
            ));
        }
        self.model_config()
            .validate()
            .map_err(|e| TrainError::Config(e.to_string()))?;
        Ok(())
    }
}

/// 64-bit FNV-1a, for short stable identifiers.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl RunConfig {
    /// A readable, stable identifier: `{method}-{model}-s{seed}-{hash}` where the hash covers
    /// every key except `name` and `out_dir`. Two runs with the same settings share an id,
    /// which is how sweeps skip finished runs and resume interrupted ones.
    pub fn run_id(&self) -> String {
        let mut key = self.clone();
        key.name.clear();
        key.out_dir.clear();
        let h = fnv1a(key.to_toml().as_bytes());
        format!(
            "{}-{}-s{}-{:08x}",
            self.method.as_str(),
            self.model.name,
            self.seed,
            h as u32
        )
    }

    /// `<out_dir>/<name>/<run_id>`.
    pub fn run_dir(&self) -> std::path::PathBuf {
        std::path::Path::new(&self.out_dir)
            .join(&self.name)
            .join(self.run_id())
    }
}
