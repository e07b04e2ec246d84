//! The crate's error type: every failure names the file (and record) it concerns.

use std::path::PathBuf;

/// Every way reading, generating or fetching data can fail. Each variant's message is one
/// line that names the file involved, so a user can act on it without a backtrace.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be written.
    #[error(transparent)]
    Write(#[from] ato_files::WriteError),
    /// An operating-system error on a file or folder.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A folder the data set needs does not exist.
    #[error("missing data folder {path}: {hint}")]
    MissingDir { path: PathBuf, hint: String },
    /// A file the data set needs does not exist.
    #[error("missing data file {path}: {hint}")]
    MissingFile { path: PathBuf, hint: String },
    /// A CIFAR file whose size is not a whole number of records (truncated or another format).
    #[error(
        "{path}: {len} bytes is not a whole number of {record_size}-byte {format} records \
         (truncated after record {whole_records}, or not a {format} file)"
    )]
    BadRecordSize {
        path: PathBuf,
        len: u64,
        record_size: usize,
        whole_records: u64,
        format: &'static str,
    },
    /// A label byte outside the data set's class range.
    #[error("{path}: record {index}: {kind} label {label} is out of range 0..{num_classes}")]
    LabelOutOfRange {
        path: PathBuf,
        index: usize,
        kind: &'static str,
        label: u32,
        num_classes: usize,
    },
    /// An image file that cannot be decoded.
    #[error("{path}: unreadable image: {reason}")]
    UnreadableImage { path: PathBuf, reason: String },
    /// An image folder with no class folders or no images in them.
    #[error("{path}: {reason}")]
    EmptyImageFolder { path: PathBuf, reason: String },
    /// Download is switched off and the files are absent.
    #[error(
        "{what} not found under {root} and downloading is off (dataset.download = false): {hint}"
    )]
    DownloadDisabled {
        what: String,
        root: PathBuf,
        hint: String,
    },
    /// The download failed (typically: no network).
    #[error("could not download {url}: {reason}. Without network access: {hint}")]
    Download {
        url: String,
        reason: String,
        hint: String,
    },
    /// A downloaded archive whose MD5 does not match the published one.
    #[error("{path}: md5 {actual} does not match the published {expected} (corrupt or partial download; delete it and retry)")]
    Checksum {
        path: PathBuf,
        actual: String,
        expected: String,
    },
    /// A data file whose content is not what its format says (the message names the line).
    #[error("{0}")]
    Corrupt(String),
    /// A caller passed a value the function cannot work with.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A tensor could not be built on the target device.
    #[error("building a batch tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    /// A loader worker thread died (a bug, reported rather than hidden).
    #[error("data loader worker stopped unexpectedly: {0}")]
    WorkerStopped(String),
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, DataError>;

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Collapses a multi-line message into one line (some library errors span several).
pub(crate) fn one_line(message: impl std::fmt::Display) -> String {
    message
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
