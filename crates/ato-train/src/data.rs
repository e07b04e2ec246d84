//! [`RunData`]: the training and test splits of a run's data set, opened (and the synthetic
//! set generated on first use) as the `[dataset]` keys say, with their loaders.

use crate::config::RunConfig;
use crate::TrainError;
use ato_data::{ColorJitter, Dataset, DatasetSpec, Loader, LoaderConfig, Split, SynthSize};
use candle_core::Device;

/// The data of a run.
pub struct RunData {
    pub train_set: Dataset,
    pub train: Loader,
    pub test: Loader,
}

impl RunData {
    /// Opens (generating the synthetic set on first use) the training and test splits.
    pub fn open(cfg: &RunConfig, device: &Device) -> Result<Self, TrainError> {
        let d = &cfg.dataset;
        let mut spec = DatasetSpec::new(d.name, &d.root);
        spec.download = d.download;
        if d.synth_train.is_some() || d.synth_test.is_some() {
            let default = SynthSize::default_for(d.name.num_classes());
            spec.synth_size = Some(SynthSize {
                train: d.synth_train.unwrap_or(default.train),
                test: d.synth_test.unwrap_or(default.test),
            });
        }
        if d.color_jitter.is_some() || d.color_jitter_hue.is_some() {
            let s = d.color_jitter.unwrap_or(0.0) as f32;
            spec.imagenet.color_jitter = Some(ColorJitter {
                brightness: s,
                contrast: s,
                saturation: s,
                hue: d.color_jitter_hue.unwrap_or(0.0) as f32,
            });
        }
        let train_set = Dataset::open(&spec, Split::Train)?;
        let test_set = Dataset::open(&spec, Split::Test)?;
        let bs = cfg.train.batch_size;
        if train_set.len() < bs {
            return Err(TrainError::Config(format!(
                "train.batch_size: {bs} is larger than the training set ({} images)",
                train_set.len()
            )));
        }
        let train = Loader::new(&train_set, LoaderConfig::train(bs, cfg.seed), device)?;
        let test = Loader::new(&test_set, LoaderConfig::eval(bs), device)?;
        Ok(Self {
            train_set,
            train,
            test,
        })
    }
}
