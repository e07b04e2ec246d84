//! `ato data check`: validate a CIFAR folder file by file.

use std::path::{Path, PathBuf};

use crate::cifar::{read_cifar_file, resolve_cifar_dir, CifarFormat, Split};
use crate::error::{DataError, Result};

/// What `ato data check` found in a CIFAR folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CifarSummary {
    pub folder: PathBuf,
    pub format: CifarFormat,
    /// `(file name, record count)` for every data file, train files first.
    pub files: Vec<(String, usize)>,
    pub train_count: usize,
    pub test_count: usize,
    /// Number of distinct labels seen in the training files.
    pub train_classes_seen: usize,
}

impl std::fmt::Display for CifarSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files: Vec<String> = self
            .files
            .iter()
            .map(|(name, count)| format!("{name}={count}"))
            .collect();
        write!(
            f,
            "OK {} at {}: {} train + {} test images, labels in 0..{} ({} classes seen in train); files: {}",
            self.format.display_name(),
            self.folder.display(),
            self.train_count,
            self.test_count,
            self.format.num_classes(),
            self.train_classes_seen,
            files.join(" ")
        )
    }
}

/// Detects the format of a CIFAR folder (or a data root holding one) and validates every
/// file: presence, whole records, label ranges.
pub fn check_cifar_dir(dir: &Path) -> Result<CifarSummary> {
    if !dir.is_dir() {
        return Err(DataError::MissingDir {
            path: dir.to_path_buf(),
            hint: "expected a cifar-10-batches-bin or cifar-100-binary folder (or its parent)"
                .into(),
        });
    }
    let format = [CifarFormat::Cifar10, CifarFormat::Cifar100]
        .into_iter()
        .find(|f| resolve_cifar_dir(dir, *f).is_ok())
        .ok_or_else(|| DataError::MissingFile {
            path: dir.join("data_batch_1.bin"),
            hint: "no CIFAR-10 (data_batch_1.bin …) or CIFAR-100 (train.bin) files found".into(),
        })?;
    let folder = resolve_cifar_dir(dir, format)?;
    let mut files = Vec::new();
    let mut counts = [0usize; 2];
    let mut seen = vec![false; format.num_classes()];
    for (slot, split) in [Split::Train, Split::Test].into_iter().enumerate() {
        for name in format.split_files(split) {
            let images = read_cifar_file(&folder.join(name), format)?;
            if split == Split::Train {
                for &label in &images.labels {
                    seen[label as usize] = true;
                }
            }
            counts[slot] += images.len();
            files.push((name.to_string(), images.len()));
        }
    }
    Ok(CifarSummary {
        folder,
        format,
        files,
        train_count: counts[0],
        test_count: counts[1],
        train_classes_seen: seen.iter().filter(|s| **s).count(),
    })
}
