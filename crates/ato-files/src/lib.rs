//! # ato-files — files that are never seen half-written
//!
//! Every file ato-rs writes (CSV rows, checkpoints, safetensors, the synthetic data set) goes
//! through [`write_atomically`]: the content is written to a uniquely named temporary sibling
//! in the same folder, flushed, and renamed over the target. A process killed at any moment
//! leaves either the old file or the new one under the final name, never a partial one, and
//! concurrent writers of the same file (sweep shards rewriting one `summary.csv`) never write
//! into each other's temporary file. A failed write removes its temporary file.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("rows.csv");
//! ato_files::write_text(&path, "a,b\n1,2\n").unwrap();
//! assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b\n1,2\n");
//! // a writer that fails leaves the old content and no temporary file behind
//! let failed = ato_files::write_atomically(&path, |_| Err("disk full".into()));
//! assert_eq!(failed.unwrap_err().to_string(), format!("{}: disk full", path.display()));
//! assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
//! ```

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A write that failed, naming the file it was meant for.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub message: String,
}

impl WriteError {
    fn new(path: &Path, e: impl std::fmt::Display) -> Self {
        Self {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// What a writer closure may fail with.
pub type WriterError = Box<dyn Error + Send + Sync>;

/// Lets `write` fill a fresh temporary file beside `path` (it gets the temporary file's path,
/// for writers that open files themselves, such as safetensors or csv), then renames it over
/// `path`. On any error the temporary file is removed and `path` is left as it was.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), WriterError>,
) -> Result<(), WriteError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| WriteError::new(path, "not a file name"))?
        .to_string_lossy();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| WriteError::new(path, e))?;
    write(tmp.path()).map_err(|e| WriteError::new(path, e))?;
    tmp.persist(path)
        .map_err(|e| WriteError::new(path, e.error))?;
    Ok(())
}

/// Writes `bytes` to `path` atomically (synced to disk before the rename).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomically(path, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(())
    })
}

/// Writes `text` to `path` atomically.
pub fn write_text(path: &Path, text: &str) -> Result<(), WriteError> {
    write_bytes(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_an_existing_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.txt");
        write_text(&p, "old").unwrap();
        write_text(&p, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_writer_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.txt");
        write_text(&p, "old").unwrap();
        let e = write_atomically(&p, |tmp| {
            std::fs::write(tmp, "half")?;
            Err("stopped".into())
        })
        .unwrap_err();
        assert!(e.to_string().ends_with("x.txt: stopped"), "{e}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/x.txt");
        let e = write_text(&p, "x").unwrap_err();
        assert!(e.to_string().contains("no/such/x.txt"), "{e}");
    }
}
