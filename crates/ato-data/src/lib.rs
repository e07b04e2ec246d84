//! # ato-data
//!
//! Data for ato-rs: readers of the official CIFAR-10 / CIFAR-100 binary files, ImageNet as
//! class folders of JPEGs, a synthetic CIFAR-format set that needs a conv net, the standard
//! augmentations, and a prefetching loader that yields candle tensors.
//!
//! ## Formats
//!
//! | data set  | layout under the data root | record |
//! |-----------|----------------------------|--------|
//! | CIFAR-10  | `cifar-10-batches-bin/data_batch_{1..5}.bin`, `test_batch.bin` | 1 label byte + 3072 pixel bytes (CHW) |
//! | CIFAR-100 | `cifar-100-binary/train.bin`, `test.bin` | coarse label, fine label, 3072 pixel bytes; the *fine* label is used |
//! | synth10 / synth100 | `synth{C}-v{GENERATOR_VERSION}-seed{S}/` holding the CIFAR-10 / CIFAR-100 layout above | as CIFAR |
//! | ImageNet  | `train/<class>/*.JPEG`, `val/<class>/*.JPEG`; class index = sorted folder names | any JPEG/PNG |
//! | digits    | none: embedded in the binary ([`digits`], UCI handwritten digits, CC BY 4.0) | 8×8 greyscale |
//!
//! ## Transforms
//!
//! * CIFAR and synth: training = random crop 32 from the 4-pixel zero-padded image + horizontal
//!   flip; both splits normalised with the data set's mean/std ([`CifarFormat::mean`],
//!   [`synth::SYNTH_MEAN`]).
//! * digits: training = a random shift of up to one pixel (zero padding), no flip; the
//!   training split's mean/std.
//! * ImageNet: training = `RandomResizedCrop(size, scale 0.08–1, ratio 3/4–4/3)` + flip
//!   (+ optional [`ColorJitter`]); evaluation = resize shorter side to `size·256/224` +
//!   center crop `size`; ImageNet mean/std. JPEGs are decoded on rayon threads.
//!
//! Randomness never comes from candle: every shuffle and augmentation is drawn from a
//! `ChaCha8Rng` seeded by `(seed, epoch, sample position)`, so runs repeat exactly.
//!
//! ## Example
//!
//! ```no_run
//! use ato_data::{Dataset, DatasetName, DatasetSpec, Loader, LoaderConfig, Split};
//! use candle_core::Device;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let spec = DatasetSpec::new(DatasetName::Synth10, "data");
//! let train = Dataset::open(&spec, Split::Train)?.subset(0.5, 7)?; // generated on first use
//! let loader = Loader::new(&train, LoaderConfig::train(128, 42), &Device::Cpu)?;
//! for epoch in 0..2 {
//!     for batch in loader.epoch(epoch) {
//!         let batch = batch?; // images: [128, 3, 32, 32] f32, labels: [128] u32
//!         assert_eq!(batch.images.dims(), &[128, 3, 32, 32]);
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! ## Errors
//!
//! Missing folders, truncated files, wrong record sizes, labels out of range and unreadable
//! images are [`DataError`]s whose one-line message names the file (and record). The CLI
//! front ends (`ato data fetch | synth | check`) live in `ato-cli` and call [`fetch_cifar`],
//! [`write_synth`] and [`check_cifar_dir`].

pub mod augment;
pub mod cifar;
pub mod cifar_check;
pub mod cifar_write;
pub mod color_jitter;
pub mod dataset;
pub mod digits;
pub mod error;
pub mod fetch;
pub mod imagenet;
pub mod loader;
pub mod name;
pub mod resize;
pub mod synth;

pub use augment::{mix_seed, seeded_rng, CropFlip, Normalize, IMAGENET_MEAN, IMAGENET_STD};
pub use cifar::{
    load_cifar, read_cifar_file, CifarFormat, CifarImages, Split, CIFAR_IMAGE_BYTES, CIFAR_SIDE,
};
pub use cifar_check::{check_cifar_dir, CifarSummary};
pub use cifar_write::write_cifar_file;
pub use color_jitter::ColorJitter;
pub use dataset::{Dataset, DatasetSpec};
pub use digits::{load_digits, parse_digits, GreyImages, DIGITS_COUNT, DIGITS_SIDE};
pub use error::{DataError, Result};
pub use fetch::{fetch_archive, fetch_cifar, ArchiveSource};
pub use imagenet::{CorruptImagePolicy, ImageFolder, ImageNetOptions};
pub use loader::{Batch, EpochBatches, Loader, LoaderConfig, Shard};
pub use name::DatasetName;
pub use synth::{ensure_synth, ensure_synth_sized, write_synth, SynthSize};
