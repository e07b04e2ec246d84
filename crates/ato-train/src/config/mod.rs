//! The run configuration: every key of docs/design.md §7, plain TOML, unknown keys rejected, and
//! [`RunConfig::validate`] turning out-of-range values into one clear line naming the key.
//!
//! Epoch-valued keys (`ato.t_start`, `ato.t_prox`, `ato.t_end`, `oto.n_p`,
//! `otov2.start_pruning`) take an integer epoch or a fraction of `train.epochs` ([`EpochSpec`]);
//! the ATO ones default to the fractions of the authors' runs (0.10·E, 2·T_start, 0.51·E) and
//! [`RunConfig::schedule`] resolves them.

use crate::schedule::AtoSchedule;
use crate::TrainError;
use ato_models::ModelConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod ato;
mod convergence;
mod hesso;
mod keys;
mod knob;
mod magnitude;
mod onnx;
mod oto;
mod otov2;
mod sections;
mod theorem;
mod validate;

pub use ato::*;
pub use convergence::{ConvergenceSection, Fault, ProbeMode};
pub use hesso::{HessoSection, LastGroup};
pub use magnitude::{MagnitudeScopeName, MagnitudeSection};
pub use oto::OtoSection;
pub use otov2::Otov2Section;

pub use keys::{keys, KeyDoc};
pub use knob::{KnobRange, MatchedKnob, LAMBDA_RANGE, SHARE_RANGE};

pub use sections::*;

/// A whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Run name: results go to `<out_dir>/<name>/<run-id>/`.
    pub name: String,
    pub dataset: DatasetSection,
    pub model: ModelSection,
    /// dense | ato | oto | otov2 | hesso | magnitude.
    pub method: Method,
    pub train: TrainSection,
    pub optim: OptimSection,
    pub prune: PruneSection,
    pub ato: AtoSection,
    pub oto: OtoSection,
    pub otov2: Otov2Section,
    pub hesso: HessoSection,
    pub magnitude: MagnitudeSection,
    pub convergence: ConvergenceSection,
    pub bench: BenchSection,
    pub dist: DistSection,
    /// Seed of every random draw (init, data order, augmentation, controller).
    pub seed: u64,
    /// auto | cpu | cuda | cuda:N
    pub device: String,
    /// Results root: runs go to `<out_dir>/<name>/<run-id>/`.
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
            hesso: HessoSection::default(),
            magnitude: MagnitudeSection::default(),
            convergence: ConvergenceSection::default(),
            bench: BenchSection::default(),
            dist: DistSection::default(),
            seed: 0,
            device: "auto".into(),
            out_dir: "results".into(),
        }
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

    /// The model this run trains, sized for its data set (an imported model's graph is read
    /// from its file).
    pub fn model_config(&self) -> Result<ModelConfig, TrainError> {
        Ok(match self.imported()? {
            Some((config, _)) => config,
            None => self.builtin_config(),
        })
    }

    /// The registry name of the model (`onnx` for an imported one).
    pub fn model_name(&self) -> ato_models::ModelName {
        match self.model.onnx {
            Some(_) => ato_models::ModelName::Onnx,
            None => self.model.name,
        }
    }

    /// The model at the start of the run: an imported model's own weights
    /// (`model.onnx_weights = "file"`), else the seeded initialisation.
    pub fn initial_model(
        &self,
        device: &candle_core::Device,
    ) -> Result<ato_models::Model, TrainError> {
        Ok(match self.imported()? {
            Some((config, graph)) if self.model.onnx_weights != Some(OnnxWeights::Fresh) => {
                let tensors = graph.params.into_iter().collect();
                ato_models::Model::from_tensors(&config, tensors, device)?
            }
            Some((config, _)) => ato_models::Model::new(&config, device, self.seed)?,
            None => ato_models::Model::new(&self.builtin_config(), device, self.seed)?,
        })
    }

    fn builtin_config(&self) -> ModelConfig {
        let (classes, size) = self.dataset.name.shape();
        let mut m = ModelConfig::new(self.model.name, classes, size);
        m.in_channels = self.dataset.name.channels();
        m.shortcut = self.model.shortcut;
        m.base_width = self.model.base_width;
        m.width_mult = self.model.width_mult;
        m.stem_stride = self.model.stem_stride;
        m
    }

    /// The FLOPs reduction the run is asked for: `prune.target_flops_reduction` for every
    /// pruning method (ATO, HESSO and magnitude aim at it; OTO and OTOv2 are judged against
    /// it, their knobs being λ and the group sparsity), none for dense.
    pub fn flops_target(&self) -> Option<f64> {
        (self.method != Method::Dense).then_some(self.prune.target_flops_reduction)
    }

    /// `prune.round_to` for the pruners that take it.
    pub fn round_to(&self) -> usize {
        self.prune.round_to
    }

    /// The ATO epochs with defaults resolved.
    pub fn schedule(&self) -> AtoSchedule {
        let e = self.train.epochs;
        let t_start = self
            .ato
            .t_start
            .unwrap_or(EpochSpec::Fraction(0.10))
            .resolve(e);
        let t_end = self
            .ato
            .t_end
            .unwrap_or(EpochSpec::Fraction(0.51))
            .resolve(e);
        let t_prox = self.ato.t_prox.map_or(2 * t_start, |t| t.resolve(e));
        let a = &self.ato;
        AtoSchedule {
            epochs: e,
            t_start,
            t_prox,
            t_end,
            lambda: a.lambda,
            lambda_final_mult: a.lambda_final_mult,
            lambda_switch: a
                .lambda_switch
                .unwrap_or(EpochSpec::Fraction(0.49))
                .resolve(e),
            controller_lr: a.controller_lr,
            controller_lr_drop: a
                .controller_lr_drop
                .unwrap_or(EpochSpec::Fraction(0.498))
                .resolve(e),
            controller_lr_drop_factor: a.controller_lr_drop_factor,
        }
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
    /// every key that can change the run's results: not `name`, `out_dir`, `dataset.root` or
    /// `dataset.download` (where the data lives), nor the sections of the other methods (an
    /// OTO run does not depend on `ato.lambda`), nor `[bench]` (timing only), nor
    /// `prune.round_to` at its default 1 (so ids from before the key existed stay valid). A
    /// synthetic data set's generator version is part of the hash from version 3 on
    /// ([`RunConfig::run_id_for_generator`]): runs on other images never share an id. Two runs
    /// with the same settings share an id, which is how sweeps skip finished runs and resume
    /// interrupted ones.
    pub fn run_id(&self) -> String {
        self.run_id_for_generator(ato_data::synth::GENERATOR_VERSION)
    }

    /// [`RunConfig::run_id`] as if the synthetic images came from generator `version`: real
    /// data sets and versions ≤ 2 hash the settings alone (the ids written then stay valid;
    /// they never carried a version), later versions add a line naming the version.
    #[doc(hidden)]
    pub fn run_id_for_generator(&self, version: u32) -> String {
        let mut key = self.clone();
        key.name.clear();
        key.out_dir.clear();
        key.dataset.root.clear();
        key.dataset.download = false;
        key.prune.reference_run = None;
        let d = RunConfig::default();
        if self.method != Method::Ato {
            // another method's run does not read [ato]: its id hashes the section as its
            // defaults read before `controller_lr_sum` and the 40/100-step defaults, so the
            // ids written then stay valid
            key.ato = AtoSection {
                min_controller_steps: 400,
                settle_steps: 400,
                ..d.ato
            };
        }
        // OTO and OTOv2 are only judged against the FLOPs target: it does not change their
        // run; every method rounds its kept widths
        if !matches!(self.method, Method::Ato | Method::Hesso | Method::Magnitude) {
            key.prune = PruneSection {
                round_to: self.prune.round_to,
                ..d.prune
            };
        }
        if self.method != Method::Hesso {
            key.hesso = d.hesso;
        }
        if self.method != Method::Magnitude {
            key.magnitude = d.magnitude;
        }
        if self.method != Method::Oto {
            key.oto = d.oto;
        }
        if self.method != Method::Otov2 {
            key.otov2 = d.otov2;
        }
        let mut text = key.results_toml();
        let synthetic = matches!(
            self.dataset.name,
            DatasetName::Synth10 | DatasetName::Synth100
        );
        if synthetic && version > 2 {
            text.push_str(&format!("\n# synthetic images: generator v{version}\n"));
        }
        if let Some(path) = &self.model.onnx {
            // the file's content, not only its name, identifies the run
            let hash = onnx::file_hash(path);
            text.push_str(&format!("\n# onnx file: {hash:016x}\n"));
        }
        let h = fnv1a(text.as_bytes());
        format!(
            "{}-{}-s{}-{:08x}",
            self.method.as_str(),
            self.model_name(),
            self.seed,
            h as u32
        )
    }

    /// `config.toml`'s text without the `[bench]` table, without `prune.round_to` when it
    /// is 1, without `train.reproducible` when it is `machine` or `train.precision` when it is
    /// `fp32`, without `[dist]` when
    /// `world_size` is 1, without `convergence.inject` when it is none, without HESSO's
    /// `momentum` and `last_group` outside HESSO runs and without `ato.controller_lr_sum` and
    /// `ato.settle_lr_mult` outside ATO runs: exactly the text of the same config before those keys existed.
    #[doc(hidden)]
    pub fn results_toml(&self) -> String {
        let text = self.to_toml();
        let mut doc: toml_edit::DocumentMut = text.parse().expect("own TOML parses");
        doc.remove("bench");
        if self.prune.round_to == 1 {
            if let Some(prune) = doc.get_mut("prune").and_then(|p| p.as_table_mut()) {
                prune.remove("round_to");
            }
        }
        if self.method != Method::Ato {
            if let Some(a) = doc.get_mut("ato").and_then(|p| p.as_table_mut()) {
                a.remove("controller_lr_sum");
                a.remove("settle_lr_mult");
            }
        }
        // HESSO's own momentum and last-group rule say nothing about another method's run
        // (and runs of other methods keep the ids written before these keys existed)
        if self.method != Method::Hesso {
            if let Some(h) = doc.get_mut("hesso").and_then(|p| p.as_table_mut()) {
                h.remove("momentum");
                h.remove("last_group");
            }
        }
        // the backend carries the same sums in the same order: not part of a run
        if self.dist.world_size == 1 {
            doc.remove("dist");
        } else if let Some(d) = doc.get_mut("dist").and_then(|p| p.as_table_mut()) {
            d.remove("backend");
        }
        if let Some(t) = doc.get_mut("train").and_then(|p| p.as_table_mut()) {
            if self.train.reproducible == Reproducible::Machine {
                t.remove("reproducible");
            }
            if self.train.precision == Precision::Fp32 {
                t.remove("precision");
            }
        }
        if self.convergence.inject == Fault::None {
            if let Some(c) = doc.get_mut("convergence").and_then(|p| p.as_table_mut()) {
                c.remove("inject");
            }
        }
        doc.to_string()
    }

    /// `<out_dir>/<name>/<run_id>`.
    pub fn run_dir(&self) -> std::path::PathBuf {
        std::path::Path::new(&self.out_dir)
            .join(&self.name)
            .join(self.run_id())
    }
}
