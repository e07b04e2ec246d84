//! `model.onnx`: a run config's imported model, read from its file and checked against the
//! data set (one error line naming the key and the file).

use super::RunConfig;
use crate::TrainError;
use ato_models::graph::NetworkGraph;
use ato_models::graph_net::GraphSpec;
use ato_models::{ModelConfig, ModelName};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A file as the cache knows it: its path, length and modification time (to the nanosecond).
type FileStamp = (PathBuf, u64, SystemTime);

/// What one read of an ONNX file gives: the hash of its bytes (for run ids) and its parse.
struct ReadFile {
    hash: u64,
    graph: Result<NetworkGraph, String>,
}

/// How long after its last modification a file's stamp is trusted. File systems keep
/// modification times at a clock tick (a few milliseconds on Linux, 2 s on FAT): two writes
/// within one tick leave the same stamp. A file modified less than this before it is read is
/// read again at every ask and never remembered (git's "racily clean" rule).
const SETTLED: Duration = Duration::from_secs(3);

/// Files read in this process. A sweep asks for the same file's id and graph at every run it
/// plans and starts; without the cache each ask re-read (and re-parsed) the whole file. A file
/// rewritten in place gets a new stamp, so it is read again; a file modified within
/// [`SETTLED`] of the read is not remembered, since a rewrite in the same clock tick would
/// keep its stamp.
fn read_cached(path: &Path) -> Option<Arc<ReadFile>> {
    static FILES: Mutex<Option<HashMap<FileStamp, Arc<ReadFile>>>> = Mutex::new(None);
    let now = SystemTime::now();
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta.modified().ok()?;
    let stamp = (path.to_path_buf(), meta.len(), modified);
    let settled = now.duration_since(modified).is_ok_and(|age| age >= SETTLED);
    let mut files = FILES.lock().unwrap_or_else(|e| e.into_inner());
    let files = files.get_or_insert_with(HashMap::new);
    if settled {
        if let Some(read) = files.get(&stamp) {
            return Some(read.clone());
        }
    }
    let bytes = std::fs::read(path).ok()?;
    let read = Arc::new(ReadFile {
        hash: super::fnv1a(&bytes),
        graph: ato_onnx::parse_onnx(&bytes, &path.display().to_string()).map_err(|e| e.to_string()),
    });
    if settled {
        files.insert(stamp, read.clone());
    }
    Some(read)
}

/// The hash of an ONNX file's bytes, 0 when it cannot be read (its run then fails to start,
/// naming the file).
pub(super) fn file_hash(path: &Path) -> u64 {
    read_cached(path).map_or(0, |r| r.hash)
}

impl RunConfig {
    /// The imported model's config and graph (with the file's tensors), if `model.onnx` is
    /// set; `model.name = "onnx"` without a file is an error.
    pub(crate) fn imported(&self) -> Result<Option<(ModelConfig, NetworkGraph)>, TrainError> {
        let Some(path) = &self.model.onnx else {
            if self.model.name == ModelName::Onnx {
                return Err(TrainError::Config(
                    "model.name: `onnx` needs the file: model.onnx = \"path/to/model.onnx\"".into(),
                ));
            }
            return Ok(None);
        };
        let bad = |why: String| TrainError::Config(format!("model.onnx: {why}"));
        let graph = match read_cached(path) {
            Some(read) => read.graph.clone().map_err(bad)?,
            // not readable: the reader's own error names the cause
            None => ato_onnx::read_onnx(path).map_err(|e| bad(e.to_string()))?,
        };
        let (classes, size) = self.dataset.name.shape();
        let channels = self.dataset.name.channels();
        let (c, h, w) = graph.input;
        if (c, h, w) != (channels, size, size) {
            return Err(bad(format!(
                "`{}` takes {c}×{h}×{w} images, data set {} has {channels}×{size}×{size}",
                path.display(),
                self.dataset.name
            )));
        }
        if graph.num_classes != classes {
            return Err(bad(format!(
                "`{}` has {} outputs, data set {} has {classes} classes",
                path.display(),
                graph.num_classes,
                self.dataset.name
            )));
        }
        let policy = self.model.onnx_groups.unwrap_or_default();
        let spec = GraphSpec::of(&graph, policy, &path.display().to_string());
        let config = ModelConfig::graph(spec, graph.input, classes);
        ato_models::describe(&config).map_err(|e| bad(e.to_string()))?;
        Ok(Some((config, graph)))
    }
}
