//! `model.onnx`: a run config's imported model, read from its file and checked against the
//! data set (one error line naming the key and the file).

use super::RunConfig;
use crate::TrainError;
use ato_models::graph::NetworkGraph;
use ato_models::graph_net::GraphSpec;
use ato_models::{ModelConfig, ModelName};

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
        let graph = ato_onnx::read_onnx(path).map_err(|e| bad(e.to_string()))?;
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
