//! [`DatasetName`]: the data sets by name, with the shape a model is sized for.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cifar::CIFAR_SIDE;
use crate::digits::DIGITS_SIDE;
use crate::error::{DataError, Result};

/// The data sets ato-rs knows by name: `dataset.name` in a config, `--dataset` of `ato info`
/// and `ato bench`. Its serde spelling is the config's (`synth10`, `cifar100`, `imagenet`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetName {
    /// The embedded synthetic CIFAR-format set, 10 classes (generated on first use).
    Synth10,
    /// The synthetic set with 100 classes in the CIFAR-100 layout.
    Synth100,
    Cifar10,
    Cifar100,
    ImageNet,
    /// The embedded UCI handwritten digits: 8×8 greyscale, 10 classes ([`crate::digits`]).
    Digits,
}

impl DatasetName {
    /// Every data set, in the order `--help` lists them.
    pub const ALL: [DatasetName; 6] = [
        DatasetName::Synth10,
        DatasetName::Synth100,
        DatasetName::Cifar10,
        DatasetName::Cifar100,
        DatasetName::ImageNet,
        DatasetName::Digits,
    ];

    /// Side of the (square) network input: 32 for the CIFAR-format sets, 224 for ImageNet,
    /// 8 for digits.
    pub fn input_side(self) -> usize {
        match self {
            DatasetName::ImageNet => 224,
            DatasetName::Digits => DIGITS_SIDE,
            _ => CIFAR_SIDE,
        }
    }

    /// Channels of the network input: 1 for digits (greyscale), else 3 (RGB).
    pub fn channels(self) -> usize {
        match self {
            DatasetName::Digits => 1,
            _ => 3,
        }
    }

    /// (classes, input side): what a model is sized for.
    pub fn shape(self) -> (usize, usize) {
        (self.num_classes(), self.input_side())
    }

    /// Number of classes.
    pub fn num_classes(self) -> usize {
        match self {
            DatasetName::Cifar10 | DatasetName::Synth10 | DatasetName::Digits => 10,
            DatasetName::Cifar100 | DatasetName::Synth100 => 100,
            DatasetName::ImageNet => 1000,
        }
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Cifar100 => "cifar100",
            DatasetName::Synth10 => "synth10",
            DatasetName::Synth100 => "synth100",
            DatasetName::ImageNet => "imagenet",
            DatasetName::Digits => "digits",
        }
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetName {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "cifar10" => Ok(DatasetName::Cifar10),
            "cifar100" => Ok(DatasetName::Cifar100),
            "synth10" => Ok(DatasetName::Synth10),
            "synth100" => Ok(DatasetName::Synth100),
            "imagenet" => Ok(DatasetName::ImageNet),
            "digits" => Ok(DatasetName::Digits),
            _ => Err(DataError::InvalidArgument(format!(
                "unknown dataset {s:?} (expected cifar10, cifar100, synth10, synth100, imagenet or digits)"
            ))),
        }
    }
}
