//! [`RunData`]: the training and test splits of a run's data set, opened (and the synthetic
//! set generated on first use) as the `[dataset]` keys say, with their loaders. In
//! `convergence.mode = "exact"` the training split is a fixed subset of `train.batch_size`
//! images, one batch per epoch, without augmentation.

use crate::config::{ProbeMode, RunConfig};
use crate::TrainError;
use ato_data::{ColorJitter, Dataset, DatasetSpec, Loader, LoaderConfig, Shard, Split, SynthSize};
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
        let (train_set, train_config) = if cfg.convergence.mode == ProbeMode::Exact {
            exact_subset(&train_set, bs, cfg.seed)?
        } else {
            (train_set, LoaderConfig::train(bs, cfg.seed))
        };
        let train = Loader::new(&train_set, train_config, device)?;
        let test = Loader::new(&test_set, LoaderConfig::eval(bs), device)?;
        Ok(Self {
            train_set,
            train,
            test,
        })
    }
}

impl RunData {
    /// Rank `rank` of `ranks`: its shard of every training batch (`ato_data::Shard`), the
    /// same training set (for the controller's and the probes' own draws) and test loader.
    pub fn shard(&self, rank: usize, ranks: usize, device: &Device) -> Result<Self, TrainError> {
        let config = LoaderConfig {
            shard: Shard { rank, ranks },
            ..*self.train.config()
        };
        Ok(Self {
            train_set: self.train_set.clone(),
            train: Loader::new(self.train.dataset(), config, device)?,
            test: self.test.clone(),
        })
    }
}

/// Mixed into the run's seed to draw the subset of `convergence.mode = "exact"`.
const EXACT_SEED: u64 = 0x0045_5841_4354;

/// The deterministic regime's training data: a seeded subset of `size` images, loaded as one
/// batch in a fixed order without augmentation.
pub(crate) fn exact_subset(
    train: &Dataset,
    size: usize,
    seed: u64,
) -> Result<(Dataset, LoaderConfig), TrainError> {
    let subset = train.subset(size as f64 / train.len() as f64, seed ^ EXACT_SEED)?;
    let config = LoaderConfig {
        shuffle: false,
        augment: false,
        drop_last: false,
        workers: 0,
        ..LoaderConfig::train(subset.len(), seed)
    };
    Ok((subset, config))
}
