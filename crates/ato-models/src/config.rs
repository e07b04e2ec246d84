//! Model configuration (the `[model]` table of a run config, and the architecture file of a
//! saved model) and the registry of model names.

use crate::ModelError;
pub use ato_zig::blocks::ShortcutKind;
use serde::{Deserialize, Serialize};

/// Every model of the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelName {
    Resnet20,
    Resnet32,
    Resnet56,
    Resnet110,
    Resnet18,
    Resnet34,
    Resnet50,
    Mobilenetv2,
    /// A network read from a graph (`model.onnx`); its topology is [`ModelConfig::graph`].
    Onnx,
}

/// The architecture family a name belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// He et al. 2016 CIFAR ResNets: 6n+2 layers of basic blocks, widths 16/32/64.
    CifarResNet {
        blocks_per_stage: usize,
    },
    /// torchvision ResNets with basic blocks.
    ImageNetBasic {
        blocks: [usize; 4],
    },
    /// torchvision ResNets with bottlenecks (v1.5: stride on the 3×3).
    ImageNetBottleneck {
        blocks: [usize; 4],
    },
    MobileNetV2,
    /// An imported graph (see [`crate::graph_net`]).
    Graph,
}

impl ModelName {
    pub const ALL: [ModelName; 8] = [
        ModelName::Resnet20,
        ModelName::Resnet32,
        ModelName::Resnet56,
        ModelName::Resnet110,
        ModelName::Resnet18,
        ModelName::Resnet34,
        ModelName::Resnet50,
        ModelName::Mobilenetv2,
    ];

    /// The registry name, as written in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelName::Resnet20 => "resnet20",
            ModelName::Resnet32 => "resnet32",
            ModelName::Resnet56 => "resnet56",
            ModelName::Resnet110 => "resnet110",
            ModelName::Resnet18 => "resnet18",
            ModelName::Resnet34 => "resnet34",
            ModelName::Resnet50 => "resnet50",
            ModelName::Mobilenetv2 => "mobilenetv2",
            ModelName::Onnx => "onnx",
        }
    }

    /// Looks a name up in the registry.
    pub fn parse(name: &str) -> Result<Self, ModelError> {
        Self::ALL
            .into_iter()
            .chain([ModelName::Onnx])
            .find(|m| m.as_str() == name.to_ascii_lowercase())
            .ok_or_else(|| ModelError::UnknownModel(name.to_string()))
    }

    pub fn family(self) -> Family {
        match self {
            ModelName::Resnet20 => Family::CifarResNet {
                blocks_per_stage: 3,
            },
            ModelName::Resnet32 => Family::CifarResNet {
                blocks_per_stage: 5,
            },
            ModelName::Resnet56 => Family::CifarResNet {
                blocks_per_stage: 9,
            },
            ModelName::Resnet110 => Family::CifarResNet {
                blocks_per_stage: 18,
            },
            ModelName::Resnet18 => Family::ImageNetBasic {
                blocks: [2, 2, 2, 2],
            },
            ModelName::Resnet34 => Family::ImageNetBasic {
                blocks: [3, 4, 6, 3],
            },
            ModelName::Resnet50 => Family::ImageNetBottleneck {
                blocks: [3, 4, 6, 3],
            },
            ModelName::Mobilenetv2 => Family::MobileNetV2,
            ModelName::Onnx => Family::Graph,
        }
    }
}

impl std::fmt::Display for ModelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn default_num_classes() -> usize {
    10
}
fn default_input_size() -> usize {
    32
}
fn default_in_channels() -> usize {
    3
}
fn default_width_mult() -> f64 {
    1.0
}

/// Everything needed to rebuild a model's architecture. Saved beside every model file, so a
/// compact model (whose `widths` are its kept channel counts) loads on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Registry name: resnet20|resnet32|resnet56|resnet110|resnet18|resnet34|resnet50|mobilenetv2.
    pub name: ModelName,
    /// Classifier outputs.
    #[serde(default = "default_num_classes")]
    pub num_classes: usize,
    /// Side of the square input image (32 for CIFAR, 224 for ImageNet).
    #[serde(default = "default_input_size")]
    pub input_size: usize,
    /// Channels of the input image (3 for RGB, 1 for greyscale sets such as digits).
    #[serde(default = "default_in_channels")]
    pub in_channels: usize,
    /// CIFAR ResNets: `A` (zero-padded identity) or `B` (1×1 conv + BN) shortcuts.
    #[serde(default)]
    pub shortcut: ShortcutKind,
    /// ResNets: channels of the first stage (16 for CIFAR, 64 for ImageNet when unset).
    #[serde(default)]
    pub base_width: Option<usize>,
    /// MobileNetV2 width multiplier.
    #[serde(default = "default_width_mult")]
    pub width_mult: f64,
    /// MobileNetV2 stem stride; unset = 1 for inputs up to 64 pixels (CIFAR variant), else 2.
    #[serde(default)]
    pub stem_stride: Option<usize>,
    /// Per-gate widths (a compact model); unset = the full widths.
    #[serde(default)]
    pub widths: Option<Vec<usize>>,
    /// The topology of an imported model (`name = "onnx"`); unset for built-ins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<crate::graph_net::GraphSpec>,
}

impl ModelConfig {
    /// A full-width model with the given name and class count, for `input_size` images.
    pub fn new(name: ModelName, num_classes: usize, input_size: usize) -> Self {
        Self {
            name,
            num_classes,
            input_size,
            in_channels: 3,
            shortcut: ShortcutKind::default(),
            base_width: None,
            width_mult: 1.0,
            stem_stride: None,
            widths: None,
            graph: None,
        }
    }

    /// An imported model: `graph` for images of `input` (C, H, W) and `num_classes` classes.
    pub fn graph(
        graph: crate::graph_net::GraphSpec,
        input: (usize, usize, usize),
        num_classes: usize,
    ) -> Self {
        let mut c = Self::new(ModelName::Onnx, num_classes, input.1);
        c.in_channels = input.0;
        c.graph = Some(graph);
        c
    }

    /// A model for 32×32 inputs (CIFAR, synth). Panics on an unknown name; see [`ModelName::parse`].
    pub fn cifar(name: &str, num_classes: usize) -> Self {
        Self::new(
            ModelName::parse(name).expect("registry name"),
            num_classes,
            32,
        )
    }

    /// A model for 224×224 ImageNet inputs and 1000 classes.
    pub fn imagenet(name: &str) -> Self {
        Self::new(ModelName::parse(name).expect("registry name"), 1000, 224)
    }

    /// Checks the values a builder cannot work with; the error names the field.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |field: &str, why: String| {
            Err(ModelError::InvalidConfig(format!("model.{field}: {why}")))
        };
        if (self.name == ModelName::Onnx) != self.graph.is_some() {
            return bad(
                "name",
                "`onnx` goes with an imported graph (model.onnx = \"file.onnx\"), and only it"
                    .into(),
            );
        }
        if self.num_classes == 0 {
            return bad("num_classes", "must be at least 1".into());
        }
        if !(1..=4).contains(&self.in_channels) {
            return bad(
                "in_channels",
                format!("{} is not in 1..=4", self.in_channels),
            );
        }
        if self.input_size < 8 {
            return bad(
                "input_size",
                format!("{} is too small (at least 8)", self.input_size),
            );
        }
        if !(self.width_mult.is_finite() && self.width_mult > 0.0 && self.width_mult <= 4.0) {
            return bad(
                "width_mult",
                format!("{} is outside (0, 4]", self.width_mult),
            );
        }
        if let Some(w) = self.base_width {
            if !(1..=1024).contains(&w) {
                return bad("base_width", format!("{w} is outside [1, 1024]"));
            }
            if self.shortcut == ShortcutKind::A && !w.is_multiple_of(2) {
                return bad("base_width", "must be even with shortcut A".into());
            }
        }
        if let Some(s) = self.stem_stride {
            if !(1..=2).contains(&s) {
                return bad("stem_stride", format!("{s} is not 1 or 2"));
            }
        }
        if let Some(w) = &self.widths {
            if w.contains(&0) {
                return bad("widths", "every gate keeps at least one channel".into());
            }
        }
        Ok(())
    }
}
