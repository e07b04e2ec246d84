//! [`Dataset`]: one split of a named data set, with seeded subsets and the per-sample
//! transform (augmentation + normalisation) the loader applies.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

use crate::augment::{crop_flip_normalize, seeded_rng, CropFlip, Normalize};
use crate::cifar::{load_cifar, resolve_cifar_dir, CifarFormat, CifarImages, Split, CIFAR_SIDE};
use crate::digits::{
    load_digits, GreyImages, DIGITS_CLASSES, DIGITS_MEAN, DIGITS_SHIFT, DIGITS_STD,
};
use crate::error::{DataError, Result};
use crate::fetch::fetch_cifar;
use crate::imagenet::{imagenet_split_dir, load_image_sample, ImageFolder, ImageNetOptions};
use crate::name::DatasetName;
use crate::resize::ResizeScratch;
use crate::synth::{ensure_synth_sized, SynthSize, SYNTH_MEAN, SYNTH_STD};

/// Zero padding of the CIFAR random crop.
pub const CIFAR_CROP_PADDING: usize = 4;

/// Everything needed to open a data set by name (mirrors the `dataset.*` config keys).
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetSpec {
    pub name: DatasetName,
    /// Data root: holds `cifar-10-batches-bin/`, `cifar-100-binary/`, `synth10-v2-seed0/` …, or
    /// (for ImageNet) `train/` and `val/`.
    pub root: PathBuf,
    /// Whether a missing CIFAR set may be downloaded.
    pub download: bool,
    /// Seed of the synthetic set (which images; the classes are fixed).
    pub synth_seed: u64,
    /// Image counts of the synthetic set (default: [`SynthSize::default_for`] the classes).
    pub synth_size: Option<SynthSize>,
    pub imagenet: ImageNetOptions,
}

impl DatasetSpec {
    /// A spec with defaults: no download, synth seed 0, ImageNet at 224.
    pub fn new(name: DatasetName, root: impl Into<PathBuf>) -> Self {
        DatasetSpec {
            name,
            root: root.into(),
            download: false,
            synth_seed: 0,
            synth_size: None,
            imagenet: ImageNetOptions::default(),
        }
    }
}

/// Where the samples of a dataset come from.
#[derive(Debug)]
pub(crate) enum Source {
    /// 3×32×32 `u8` images in memory (CIFAR and synth).
    Memory { images: CifarImages },
    /// 1×side×side `u8` images in memory (digits).
    Grey { images: GreyImages },
    /// Image files decoded on demand (ImageNet folders).
    Folder {
        folder: ImageFolder,
        options: ImageNetOptions,
    },
}

/// One split of a data set, possibly a seeded subset of it. Cheap to clone (shared storage).
#[derive(Clone, Debug)]
pub struct Dataset {
    name: String,
    split: Split,
    num_classes: usize,
    normalize: Normalize,
    source: Arc<Source>,
    /// Positions into the source that belong to this (sub)set, ascending.
    indices: Arc<Vec<u32>>,
}

impl Dataset {
    /// Opens a split of the data set described by `spec`, generating (synth) or downloading
    /// (CIFAR, when `spec.download`) it first where needed.
    pub fn open(spec: &DatasetSpec, split: Split) -> Result<Dataset> {
        match spec.name {
            DatasetName::Cifar10 => {
                Dataset::cifar(&spec.root, CifarFormat::Cifar10, split, spec.download)
            }
            DatasetName::Cifar100 => {
                Dataset::cifar(&spec.root, CifarFormat::Cifar100, split, spec.download)
            }
            DatasetName::Synth10 | DatasetName::Synth100 => {
                let classes = spec.name.num_classes();
                let size = spec
                    .synth_size
                    .unwrap_or_else(|| SynthSize::default_for(classes));
                Dataset::synth(&spec.root, classes, spec.synth_seed, size, split)
            }
            DatasetName::ImageNet => Dataset::imagenet(&spec.root, split, spec.imagenet),
            DatasetName::Digits => Dataset::digits(split),
        }
    }

    /// A split of the embedded digits ([`crate::digits`]).
    pub fn digits(split: Split) -> Result<Dataset> {
        let images = load_digits(split)?;
        let count = images.len();
        Ok(Dataset {
            name: "digits".into(),
            split,
            num_classes: DIGITS_CLASSES,
            normalize: Normalize::new([DIGITS_MEAN; 3], [DIGITS_STD; 3]),
            source: Arc::new(Source::Grey { images }),
            indices: Arc::new((0..count as u32).collect()),
        })
    }

    /// A CIFAR split from `root` (the data root or the official folder itself); fetched first
    /// if absent and `download` is set.
    pub fn cifar(
        root: &Path,
        format: CifarFormat,
        split: Split,
        download: bool,
    ) -> Result<Dataset> {
        if resolve_cifar_dir(root, format).is_err() {
            fetch_cifar(format, root, download, true)?;
        }
        let images = load_cifar(root, format, split)?;
        let name = match format {
            CifarFormat::Cifar10 => "cifar10",
            CifarFormat::Cifar100 => "cifar100",
        };
        Ok(Dataset::from_images(
            name,
            split,
            images,
            format.num_classes(),
            Normalize::new(format.mean(), format.std()),
        ))
    }

    /// The synthetic set with `classes` (10 or 100) classes, generated under `root` on first
    /// use (see [`ensure_synth_sized`]).
    pub fn synth(
        root: &Path,
        classes: usize,
        seed: u64,
        size: SynthSize,
        split: Split,
    ) -> Result<Dataset> {
        let dir = ensure_synth_sized(root, classes, seed, size)?;
        Dataset::synth_from_dir(&dir, classes, split)
    }

    /// A synthetic set already written to `dir` (e.g. by `ato data synth --out dir`).
    pub fn synth_from_dir(dir: &Path, classes: usize, split: Split) -> Result<Dataset> {
        let format = crate::synth::synth_format(classes)?;
        let images = load_cifar(dir, format, split)?;
        Ok(Dataset::from_images(
            &format!("synth{classes}"),
            split,
            images,
            classes,
            Normalize::new(SYNTH_MEAN, SYNTH_STD),
        ))
    }

    /// An ImageNet split from `root/train` or `root/val`.
    pub fn imagenet(root: &Path, split: Split, options: ImageNetOptions) -> Result<Dataset> {
        if options.output_size == 0 {
            return Err(DataError::InvalidArgument(
                "ImageNet output size must be > 0".into(),
            ));
        }
        let folder = ImageFolder::scan(&imagenet_split_dir(root, split))?;
        let num_classes = folder.classes.len();
        let count = folder.items.len();
        Ok(Dataset {
            name: "imagenet".into(),
            split,
            num_classes,
            normalize: Normalize::imagenet(),
            source: Arc::new(Source::Folder { folder, options }),
            indices: Arc::new((0..count as u32).collect()),
        })
    }

    /// Wraps 32×32 images already in memory.
    pub fn from_images(
        name: &str,
        split: Split,
        images: CifarImages,
        num_classes: usize,
        normalize: Normalize,
    ) -> Dataset {
        let count = images.len();
        Dataset {
            name: name.into(),
            split,
            num_classes,
            normalize,
            source: Arc::new(Source::Memory { images }),
            indices: Arc::new((0..count as u32).collect()),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn split(&self) -> Split {
        self.split
    }

    /// Number of samples in this (sub)set.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    pub fn normalize(&self) -> Normalize {
        self.normalize
    }

    /// `[channels, height, width]` of one loaded sample.
    pub fn sample_shape(&self) -> [usize; 3] {
        match &*self.source {
            Source::Memory { .. } => [3, CIFAR_SIDE, CIFAR_SIDE],
            Source::Grey { images } => [1, images.side, images.side],
            Source::Folder { options, .. } => [3, options.output_size, options.output_size],
        }
    }

    /// Label of sample `i` of this (sub)set.
    pub fn label(&self, i: usize) -> u32 {
        let position = self.indices[i] as usize;
        match &*self.source {
            Source::Memory { images } => images.labels[position],
            Source::Grey { images } => images.labels[position],
            Source::Folder { folder, .. } => folder.items[position].1,
        }
    }

    /// A seeded random subset holding `round(fraction · len)` samples (at least one when
    /// `fraction > 0`), in the original order.
    pub fn subset(&self, fraction: f64, seed: u64) -> Result<Dataset> {
        Ok(self.partition(fraction, seed)?.0)
    }

    /// Splits into a seeded random `(part, rest)` pair, `part` holding `round(fraction · len)`
    /// samples; the two are disjoint and together hold every sample (e.g. a held-out set for
    /// the controller).
    pub fn partition(&self, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(DataError::InvalidArgument(format!(
                "subset fraction {fraction} is not in [0, 1]"
            )));
        }
        let len = self.len();
        let mut count = (fraction * len as f64).round() as usize;
        if fraction > 0.0 && len > 0 {
            count = count.max(1);
        }
        let mut rng = seeded_rng(&[seed, 0x5B5E7]);
        let mut chosen = vec![false; len];
        for i in sample(&mut rng, len, count) {
            chosen[i] = true;
        }
        let pick = |want: bool| {
            let indices: Vec<u32> = (0..len)
                .filter(|&i| chosen[i] == want)
                .map(|i| self.indices[i])
                .collect();
            Dataset {
                indices: Arc::new(indices),
                ..self.clone()
            }
        };
        Ok((pick(true), pick(false)))
    }

    /// Writes sample `i` (normalised CHW `f32`, augmented when `augment`) into `out` and
    /// returns its label. `rng` drives the augmentation.
    pub(crate) fn write_sample(
        &self,
        i: usize,
        augment: bool,
        rng: &mut ChaCha8Rng,
        tables: &SampleTables,
        scratch: &mut ResizeScratch,
        out: &mut [f32],
    ) -> Result<u32> {
        let position = self.indices[i] as usize;
        match &*self.source {
            Source::Memory { images } => {
                let crop = if augment {
                    CropFlip::sample(rng, CIFAR_CROP_PADDING)
                } else {
                    CropFlip::IDENTITY
                };
                let src = images.image(position);
                crop_flip_normalize(src, 3, CIFAR_SIDE, crop, &tables.bytes, out);
                Ok(images.labels[position])
            }
            Source::Grey { images } => {
                let crop = if augment {
                    CropFlip::sample_shift(rng, DIGITS_SHIFT)
                } else {
                    CropFlip::IDENTITY
                };
                let src = images.image(position);
                crop_flip_normalize(src, 1, images.side, crop, &tables.bytes, out);
                Ok(images.labels[position])
            }
            Source::Folder { folder, options } => {
                let (path, label) = &folder.items[position];
                load_image_sample(path, augment, options, &self.normalize, rng, scratch, out)?;
                Ok(*label)
            }
        }
    }

    /// Whether samples are decoded from files (worth spreading over rayon threads).
    pub(crate) fn decodes_files(&self) -> bool {
        matches!(&*self.source, Source::Folder { .. })
    }

    /// How the loader should treat undecodable files.
    pub(crate) fn corrupt_policy(&self) -> crate::imagenet::CorruptImagePolicy {
        match &*self.source {
            Source::Memory { .. } | Source::Grey { .. } => {
                crate::imagenet::CorruptImagePolicy::Fail
            }
            Source::Folder { options, .. } => options.on_corrupt,
        }
    }
}

/// Precomputed lookup tables for fast normalisation.
pub(crate) struct SampleTables {
    pub bytes: [[f32; 256]; 3],
}

impl SampleTables {
    pub fn new(normalize: &Normalize) -> Self {
        SampleTables {
            bytes: normalize.byte_table(),
        }
    }
}

impl DatasetName {
    /// The normalisation the loader of this data set applies (without opening it): what a model
    /// trained on it expects, e.g. in an exported file's metadata. Digits are greyscale: the
    /// first channel is the one used.
    pub fn normalize(self) -> Normalize {
        match self {
            DatasetName::Synth10 | DatasetName::Synth100 => Normalize::new(SYNTH_MEAN, SYNTH_STD),
            DatasetName::Cifar10 => cifar_normalize(CifarFormat::Cifar10),
            DatasetName::Cifar100 => cifar_normalize(CifarFormat::Cifar100),
            DatasetName::ImageNet => Normalize::imagenet(),
            DatasetName::Digits => Normalize::new([DIGITS_MEAN; 3], [DIGITS_STD; 3]),
        }
    }
}

fn cifar_normalize(format: CifarFormat) -> Normalize {
    Normalize::new(format.mean(), format.std())
}
