//! A model brought as an ONNX file (issue 29): a VGG-style CNN with a concat branch, which is
//! not built in, pruned end to end by ATO to its FLOPs target; its own weights as the start;
//! and the config errors of a bad file, with nothing written.

use ato_models::graph_sketch::vgg_with_concat;
use ato_onnx::{write_onnx, InputSpec};
use ato_train::config::{HyperStep, OnnxWeights};
use ato_train::{run, Method, RunConfig, RunOptions};
use candle_core::{Device, Tensor};
use std::path::Path;

fn onnx_file(dir: &Path, input: (usize, usize, usize), classes: usize) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let graph = vgg_with_concat(input, classes, 16, 3);
    let path = dir.join("vgg_concat.onnx");
    let spec = InputSpec {
        mean: vec![0.5; input.0],
        std: vec![0.25; input.0],
        source: "test".into(),
    };
    write_onnx(&path, &graph, &spec).unwrap();
    path
}

fn config(root: &Path, onnx: &Path) -> RunConfig {
    let mut cfg = RunConfig::from_toml(
        r#"
        name = "onnx"
        device = "cpu"
        method = "ato"
        [dataset]
        name = "synth10"
        synth_train = 512
        synth_test = 256
        [train]
        epochs = 4
        batch_size = 64
        [optim]
        lr = 0.1
        [prune]
        target_flops_reduction = 0.5
        [ato]
        t_start = 1
        t_prox = 2
        t_end = 3
        controller_fraction = 0.25
        settle_steps = 20
        [oto]
        lambda = 1.0
        n_p = 2
        [otov2]
        lambda = 1.0
        start_pruning = 1
        target_group_sparsity = 0.3
        [convergence]
        every = 0
        [bench]
        after_run = false
        "#,
    )
    .unwrap();
    cfg.ato.hyper_step = HyperStep::Auto;
    cfg.model.onnx = Some(onnx.to_path_buf());
    cfg.model.onnx_weights = Some(OnnxWeights::Fresh);
    cfg.dataset.root = root.join("data").display().to_string();
    cfg.out_dir = root.join("results").display().to_string();
    cfg
}

#[test]
fn ato_prunes_an_imported_vgg_with_a_concat_to_half_its_flops() {
    let dir = tempfile::tempdir().unwrap();
    let file = onnx_file(dir.path(), (3, 32, 32), 10);
    let cfg = config(dir.path(), &file);
    let out = run(&cfg, &RunOptions::default()).unwrap();
    let s = &out.summary;
    eprintln!("{s:?}");
    assert_eq!(s.model.as_str(), "onnx");
    assert_eq!(s.target_met, Some(true), "{s:?}");
    assert!(
        s.flops_reduction.unwrap() >= 0.5 - cfg.prune.tolerance,
        "{s:?}"
    );
    assert!(
        out.compact_max_abs_diff < 1e-4,
        "{}",
        out.compact_max_abs_diff
    );
    // the compact model is a graph model that loads on its own, at the kept widths
    let compact =
        ato_models::Model::load(&out.run_dir.join("compact.safetensors"), &Device::Cpu).unwrap();
    assert!(compact.config().graph.is_some());
    assert_eq!(Some(compact.macs()), s.pruned_macs);
    // …and leaves as ONNX again: the exported compact model computes ato's logits
    let exported = dir.path().join("compact.onnx");
    let spec = InputSpec {
        mean: vec![0.5; 3],
        std: vec![0.25; 3],
        source: "test".into(),
    };
    write_onnx(&exported, &compact.graph().unwrap(), &spec).unwrap();
    let back = ato_onnx::read_onnx(&exported).unwrap();
    let x = Tensor::randn(0f32, 1.0, (3, 3, 32, 32), &Device::Cpu).unwrap();
    let ours = compact.forward_t(&x, None, false).unwrap();
    let d = max_abs_diff(&back.evaluate(&x).unwrap(), &ours);
    assert!(d < 1e-4, "{d}");
    assert!(back.nodes.len() == compact.graph().unwrap().nodes.len());
}

/// Every other method trains the imported model too, and ends with a compact model that
/// computes the masked model's logits.
#[test]
fn every_method_trains_an_imported_model() {
    let dir = tempfile::tempdir().unwrap();
    let file = onnx_file(dir.path(), (3, 32, 32), 10);
    for method in [
        Method::Dense,
        Method::Oto,
        Method::Otov2,
        Method::Hesso,
        Method::Magnitude,
    ] {
        let mut cfg = config(dir.path(), &file);
        cfg.method = method;
        cfg.train.epochs = 3;
        cfg.hesso.periods = 4;
        let out = run(&cfg, &RunOptions::default()).unwrap();
        assert_eq!(out.summary.model.as_str(), "onnx");
        assert_eq!(out.metrics.len(), 3, "{method}");
        assert!(
            out.compact_max_abs_diff < 1e-4,
            "{method}: {}",
            out.compact_max_abs_diff
        );
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn an_imported_model_starts_from_the_weights_in_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = onnx_file(dir.path(), (3, 32, 32), 10);
    let mut cfg = config(dir.path(), &file);
    cfg.model.onnx_weights = None;
    let model = cfg.initial_model(&Device::Cpu).unwrap();
    let graph = ato_onnx::read_onnx(&file).unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 3, 32, 32), &Device::Cpu).unwrap();
    let d = max_abs_diff(
        &model.forward_t(&x, None, false).unwrap(),
        &graph.evaluate(&x).unwrap(),
    );
    assert!(d < 1e-4, "{d}");
    // negative control: the seeded initialisation is another model
    cfg.model.onnx_weights = Some(OnnxWeights::Fresh);
    let fresh = cfg.initial_model(&Device::Cpu).unwrap();
    let d = max_abs_diff(
        &fresh.forward_t(&x, None, false).unwrap(),
        &graph.evaluate(&x).unwrap(),
    );
    assert!(d > 1e-3, "{d}");
}

fn refused(cfg: &RunConfig, words: &[&str]) {
    let err = match run(cfg, &RunOptions::default()) {
        Ok(_) => panic!("a bad file must be refused"),
        Err(e) => e.to_string(),
    };
    assert_eq!(err.lines().count(), 1, "{err}");
    for w in words {
        assert!(err.contains(w), "`{w}` in: {err}");
    }
    assert!(
        !Path::new(&cfg.out_dir).exists(),
        "nothing is written: {}",
        cfg.out_dir
    );
}

#[test]
fn a_bad_onnx_file_is_one_error_line_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    // an input shape that is not the data set's (synth10 is 3×32×32)
    let wrong_size = onnx_file(&dir.path().join("a"), (3, 16, 16), 10);
    refused(
        &config(dir.path(), &wrong_size),
        &["model.onnx", "3×16×16", "3×32×32"],
    );
    let wrong_classes = onnx_file(&dir.path().join("b"), (3, 32, 32), 7);
    refused(
        &config(dir.path(), &wrong_classes),
        &["model.onnx", "7 outputs", "10 classes"],
    );
    // a truncated file
    let bytes = std::fs::read(&wrong_classes).unwrap();
    let cut = dir.path().join("cut.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    refused(&config(dir.path(), &cut), &["model.onnx", "cut.onnx"]);
    // a missing file
    refused(
        &config(dir.path(), &dir.path().join("none.onnx")),
        &["model.onnx", "none.onnx"],
    );
    // a model with no prunable group under the default policy: stem → classifier
    let mut g = ato_models::graph_sketch::GraphSketch::new((3, 32, 32), 0);
    let h = g.conv_bn_relu(0, "stem", 3, 8);
    let graph = g.classifier(h, 8, 10);
    let flat = dir.path().join("flat.onnx");
    let spec = InputSpec {
        mean: vec![0.5; 3],
        std: vec![0.25; 3],
        source: "test".into(),
    };
    write_onnx(&flat, &graph, &spec).unwrap();
    refused(
        &config(dir.path(), &flat),
        &["model.onnx", "no prunable channel group"],
    );
}

#[test]
fn a_runs_id_follows_its_files_bytes_when_the_file_is_rewritten_in_place() {
    // the file is read once per process and remembered by path, length and modification
    // time: a rewrite with other weights (same length) must still give another run id
    let dir = tempfile::tempdir().unwrap();
    let path = onnx_file(dir.path(), (3, 32, 32), 10);
    let cfg = config(dir.path(), &path);
    let first = cfg.run_id();
    assert_eq!(cfg.run_id(), first, "the same file, the same id");
    let meta = std::fs::metadata(&path).unwrap();
    rewrite_with_other_weights(&path);
    // a file system whose clock ticks coarser than two writes: the rewrite keeps the stamp
    set_modified(&path, meta.modified().unwrap());
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        meta.len(),
        "same length"
    );
    assert_ne!(cfg.run_id(), first, "other bytes, another id");
}

#[test]
fn a_settled_file_is_read_once_and_its_rewrite_read_again() {
    // a file last modified long ago is remembered by its stamp; a rewrite moves the stamp
    let dir = tempfile::tempdir().unwrap();
    let path = onnx_file(dir.path(), (3, 32, 32), 10);
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    set_modified(&path, long_ago);
    let cfg = config(dir.path(), &path);
    let first = cfg.run_id();
    assert_eq!(cfg.run_id(), first, "the same file, the same id");
    rewrite_with_other_weights(&path);
    assert_ne!(cfg.run_id(), first, "other bytes, another id");
}

/// The file of [`onnx_file`] written again in place: the same graph and length, other weights.
fn rewrite_with_other_weights(path: &Path) {
    let spec = InputSpec {
        mean: vec![0.5; 3],
        std: vec![0.25; 3],
        source: "test".into(),
    };
    write_onnx(path, &vgg_with_concat((3, 32, 32), 10, 16, 4), &spec).unwrap();
}

fn set_modified(path: &Path, when: std::time::SystemTime) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_modified(when).unwrap();
}
