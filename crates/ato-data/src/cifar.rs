//! Readers for the official CIFAR-10 and CIFAR-100 binary formats.
//!
//! * CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1.bin` … `data_batch_5.bin` and
//!   `test_batch.bin`, each a sequence of 3073-byte records: one label byte (0–9), then 3072
//!   pixel bytes, channel-major (1024 red, 1024 green, 1024 blue; rows top to bottom).
//! * CIFAR-100 (`cifar-100-binary/`): `train.bin` and `test.bin`, 3074-byte records: coarse
//!   label (0–19), fine label (0–99), 3072 pixel bytes. We train on the fine labels.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// Side of a CIFAR image in pixels.
pub const CIFAR_SIDE: usize = 32;
/// Pixel bytes per CIFAR image (3 × 32 × 32, CHW).
pub const CIFAR_IMAGE_BYTES: usize = 3 * CIFAR_SIDE * CIFAR_SIDE;
/// Number of CIFAR-100 superclasses (coarse labels).
pub const CIFAR100_COARSE_CLASSES: usize = 20;

/// Which of the two CIFAR binary layouts a file or folder uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CifarFormat {
    Cifar10,
    Cifar100,
}

/// Training or evaluation part of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Test,
}

impl CifarFormat {
    /// Bytes per record: label byte(s) + 3072 pixels.
    pub fn record_size(self) -> usize {
        self.label_bytes() + CIFAR_IMAGE_BYTES
    }

    fn label_bytes(self) -> usize {
        match self {
            CifarFormat::Cifar10 => 1,
            CifarFormat::Cifar100 => 2,
        }
    }

    /// Number of (fine) classes.
    pub fn num_classes(self) -> usize {
        match self {
            CifarFormat::Cifar10 => 10,
            CifarFormat::Cifar100 => 100,
        }
    }

    /// The folder name the official archive extracts to.
    pub fn folder_name(self) -> &'static str {
        match self {
            CifarFormat::Cifar10 => "cifar-10-batches-bin",
            CifarFormat::Cifar100 => "cifar-100-binary",
        }
    }

    /// The spelling of `dataset.name` and of `ato data fetch`.
    pub fn config_name(self) -> &'static str {
        match self {
            CifarFormat::Cifar10 => "cifar10",
            CifarFormat::Cifar100 => "cifar100",
        }
    }

    /// Human name used in messages.
    pub fn display_name(self) -> &'static str {
        match self {
            CifarFormat::Cifar10 => "CIFAR-10",
            CifarFormat::Cifar100 => "CIFAR-100",
        }
    }

    /// The file names of one split, in reading order.
    pub fn split_files(self, split: Split) -> &'static [&'static str] {
        match (self, split) {
            (CifarFormat::Cifar10, Split::Train) => &[
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            (CifarFormat::Cifar10, Split::Test) => &["test_batch.bin"],
            (CifarFormat::Cifar100, Split::Train) => &["train.bin"],
            (CifarFormat::Cifar100, Split::Test) => &["test.bin"],
        }
    }

    /// Every data file of the format (train files, then test files).
    pub fn all_files(self) -> Vec<&'static str> {
        let mut files = self.split_files(Split::Train).to_vec();
        files.extend_from_slice(self.split_files(Split::Test));
        files
    }

    /// The published per-channel mean of the training set (RGB, in [0, 1]).
    pub fn mean(self) -> [f32; 3] {
        match self {
            CifarFormat::Cifar10 => [0.4914, 0.4822, 0.4465],
            CifarFormat::Cifar100 => [0.5071, 0.4865, 0.4409],
        }
    }

    /// The per-channel standard deviation of the training set (RGB, in [0, 1]).
    pub fn std(self) -> [f32; 3] {
        match self {
            CifarFormat::Cifar10 => [0.2470, 0.2435, 0.2616],
            CifarFormat::Cifar100 => [0.2673, 0.2564, 0.2762],
        }
    }

    /// Where a user must put the files of this format, as one sentence.
    pub fn placement_hint(self, root: &Path) -> String {
        let folder = root.join(self.folder_name());
        format!(
            "put {} into {} (extracted from the official {}), or run `ato data fetch {}` with network access",
            self.all_files().join(", "),
            folder.display(),
            match self {
                CifarFormat::Cifar10 => "cifar-10-binary.tar.gz",
                CifarFormat::Cifar100 => "cifar-100-binary.tar.gz",
            },
            match self {
                CifarFormat::Cifar10 => "cifar10",
                CifarFormat::Cifar100 => "cifar100",
            }
        )
    }
}

/// Decoded CIFAR images held in memory as raw bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CifarImages {
    /// `len() × 3072` pixel bytes, each image CHW.
    pub pixels: Vec<u8>,
    /// Fine labels, one per image.
    pub labels: Vec<u32>,
}

impl CifarImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The 3072 CHW bytes of image `index`.
    pub fn image(&self, index: usize) -> &[u8] {
        &self.pixels[index * CIFAR_IMAGE_BYTES..(index + 1) * CIFAR_IMAGE_BYTES]
    }

    fn append(&mut self, other: CifarImages) {
        self.pixels.extend_from_slice(&other.pixels);
        self.labels.extend_from_slice(&other.labels);
    }
}

/// Parses the bytes of one CIFAR file; `path` is only used in error messages.
pub fn parse_cifar_bytes(bytes: &[u8], format: CifarFormat, path: &Path) -> Result<CifarImages> {
    let record_size = format.record_size();
    if !bytes.len().is_multiple_of(record_size) {
        return Err(DataError::BadRecordSize {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
            record_size,
            whole_records: (bytes.len() / record_size) as u64,
            format: format.display_name(),
        });
    }
    let count = bytes.len() / record_size;
    let mut images = CifarImages {
        pixels: Vec::with_capacity(count * CIFAR_IMAGE_BYTES),
        labels: Vec::with_capacity(count),
    };
    let out_of_range = |index: usize, kind, label: u8, num_classes| DataError::LabelOutOfRange {
        path: path.to_path_buf(),
        index,
        kind,
        label: label as u32,
        num_classes,
    };
    for (index, record) in bytes.chunks_exact(record_size).enumerate() {
        let fine = match format {
            CifarFormat::Cifar10 => record[0],
            CifarFormat::Cifar100 => {
                if record[0] as usize >= CIFAR100_COARSE_CLASSES {
                    return Err(out_of_range(
                        index,
                        "coarse",
                        record[0],
                        CIFAR100_COARSE_CLASSES,
                    ));
                }
                record[1]
            }
        };
        if fine as usize >= format.num_classes() {
            let kind = match format {
                CifarFormat::Cifar10 => "class",
                CifarFormat::Cifar100 => "fine",
            };
            return Err(out_of_range(index, kind, fine, format.num_classes()));
        }
        images.labels.push(fine as u32);
        images
            .pixels
            .extend_from_slice(&record[format.label_bytes()..]);
    }
    Ok(images)
}

/// Reads and validates one CIFAR binary file.
pub fn read_cifar_file(path: &Path, format: CifarFormat) -> Result<CifarImages> {
    let bytes = fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::MissingFile {
                path: path.to_path_buf(),
                hint: format!("expected a {} binary file", format.display_name()),
            }
        } else {
            DataError::io(path, e)
        }
    })?;
    parse_cifar_bytes(&bytes, format, path)
}

/// Finds the folder holding the data files: `dir/<official folder name>` if that exists,
/// else `dir` itself if it holds the first data file.
pub fn resolve_cifar_dir(dir: &Path, format: CifarFormat) -> Result<PathBuf> {
    let nested = dir.join(format.folder_name());
    if nested.is_dir() {
        return Ok(nested);
    }
    if dir.join(format.all_files()[0]).is_file() {
        return Ok(dir.to_path_buf());
    }
    if !dir.is_dir() {
        return Err(DataError::MissingDir {
            path: dir.to_path_buf(),
            hint: format.placement_hint(dir),
        });
    }
    Err(DataError::MissingDir {
        path: nested,
        hint: format.placement_hint(dir),
    })
}

/// Reads one split of a CIFAR data set from `dir` (the data root or the official folder).
pub fn load_cifar(dir: &Path, format: CifarFormat, split: Split) -> Result<CifarImages> {
    let folder = resolve_cifar_dir(dir, format)?;
    let mut images = CifarImages::default();
    for name in format.split_files(split) {
        let path = folder.join(name);
        if !path.is_file() {
            return Err(DataError::MissingFile {
                hint: format.placement_hint(folder.parent().unwrap_or(&folder)),
                path,
            });
        }
        images.append(read_cifar_file(&path, format)?);
    }
    Ok(images)
}
