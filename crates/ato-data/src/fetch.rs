//! Downloading the official CIFAR archives: opt-in, MD5-verified, with a progress bar, and
//! extracted atomically. Without a network the error says which file goes where.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

use crate::cifar::{resolve_cifar_dir, CifarFormat};
use crate::error::{one_line, DataError, Result};

/// Where an archive comes from and what it must hash to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveSource {
    pub format: CifarFormat,
    pub url: String,
    /// Lower-case hex MD5 of the archive.
    pub md5: String,
    /// File name of the archive in the data root.
    pub archive_name: String,
}

impl ArchiveSource {
    /// The archive published by the CIFAR authors.
    pub fn official(format: CifarFormat) -> Self {
        let (name, md5) = match format {
            CifarFormat::Cifar10 => ("cifar-10-binary.tar.gz", "c58f30108f718f92721af3b95e74349a"),
            CifarFormat::Cifar100 => (
                "cifar-100-binary.tar.gz",
                "03b5dce01913d631647c71ecec9e9cb8",
            ),
        };
        ArchiveSource {
            format,
            url: format!("https://www.cs.toronto.edu/~kriz/{name}"),
            md5: md5.into(),
            archive_name: name.into(),
        }
    }

    /// One sentence telling a user without network what to do.
    pub fn offline_hint(&self, root: &Path) -> String {
        format!(
            "fetch {} (md5 {}) elsewhere and put it at {} (it is verified and extracted on the next run), \
             or extract it so that {} holds {}",
            self.url,
            self.md5,
            root.join(&self.archive_name).display(),
            root.join(self.format.folder_name()).display(),
            self.format.all_files().join(", ")
        )
    }
}

/// Makes sure the official CIFAR folder exists under `root`, downloading the archive when
/// `download` is set (or using one already placed at `root/<archive>`). Returns the folder.
pub fn fetch_cifar(
    format: CifarFormat,
    root: &Path,
    download: bool,
    progress: bool,
) -> Result<PathBuf> {
    fetch_archive(&ArchiveSource::official(format), root, download, progress)
}

/// [`fetch_cifar`] for any source (tests point it at a local URL).
pub fn fetch_archive(
    source: &ArchiveSource,
    root: &Path,
    download: bool,
    progress: bool,
) -> Result<PathBuf> {
    let format = source.format;
    if let Ok(folder) = resolve_cifar_dir(root, format) {
        return Ok(folder);
    }
    let archive = root.join(&source.archive_name);
    if !archive.is_file() {
        if !download {
            return Err(DataError::DownloadDisabled {
                what: format!("{} ({})", format.display_name(), format.folder_name()),
                root: root.to_path_buf(),
                hint: format!(
                    "run `ato data fetch {} --root {}` or set dataset.download = true, or {}",
                    format.config_name(),
                    root.display(),
                    source.offline_hint(root)
                ),
            });
        }
        fs::create_dir_all(root).map_err(|e| DataError::io(root, e))?;
        download_file(source, &archive, progress)?;
    }
    let actual = md5_hex(&archive)?;
    if actual != source.md5 {
        return Err(DataError::Checksum {
            path: archive,
            actual,
            expected: source.md5.clone(),
        });
    }
    extract_archive(&archive, root, format)
}

/// Streams `source.url` into `destination` (through a `.part` file) with a progress bar.
fn download_file(source: &ArchiveSource, destination: &Path, progress: bool) -> Result<()> {
    let failure = |reason: String| DataError::Download {
        url: source.url.clone(),
        reason,
        hint: source.offline_hint(destination.parent().unwrap_or(Path::new("."))),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build()
        .into();
    let response = agent
        .get(&source.url)
        .call()
        .map_err(|e| failure(one_line(e)))?;
    let body = response.into_body();
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(body.content_length().unwrap_or(0));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(source.archive_name.clone());
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let partial = destination.with_extension("part");
    let mut file = File::create(&partial).map_err(|e| DataError::io(&partial, e))?;
    let mut reader = body.into_reader();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = reader.read(&mut buffer).map_err(|e| failure(one_line(e)))?;
        if read == 0 {
            break;
        }
        file.write_all(&buffer[..read])
            .map_err(|e| DataError::io(&partial, e))?;
        bar.inc(read as u64);
    }
    bar.finish();
    file.sync_all().map_err(|e| DataError::io(&partial, e))?;
    fs::rename(&partial, destination).map_err(|e| DataError::io(destination, e))
}

/// Lower-case hex MD5 of a file.
pub fn md5_hex(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file.read(&mut buffer).map_err(|e| DataError::io(path, e))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Extracts a `.tar.gz` into a temporary folder under `root`, then renames the data folder
/// into place, so a killed extraction never looks complete.
fn extract_archive(archive: &Path, root: &Path, format: CifarFormat) -> Result<PathBuf> {
    let staging = root.join(format!(
        ".extract-{}-{}",
        format.folder_name(),
        std::process::id()
    ));
    let file = File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    tar.unpack(&staging)
        .map_err(|e| DataError::io(archive, e))?;
    let extracted = staging.join(format.folder_name());
    let folder = root.join(format.folder_name());
    let result = if extracted.is_dir() {
        fs::rename(&extracted, &folder).map_err(|e| DataError::io(&folder, e))
    } else {
        Err(DataError::MissingDir {
            path: extracted,
            hint: format!(
                "{} does not contain {}",
                archive.display(),
                format.folder_name()
            ),
        })
    };
    let _ = fs::remove_dir_all(&staging);
    result?;
    resolve_cifar_dir(root, format)
}
