//! `ato export PATH --onnx FILE` through the real binary: the file is `ato-onnx`'s for the
//! saved model and the data set's normalisation; bad input is one line with nothing written.

use ato_models::{Model, ModelConfig, ModelName, ShortcutKind};
use candle_core::Device;
use onnx_protobuf::Message;
use std::path::Path;
use std::process::Command;

fn ato(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ato"))
        .args(args)
        .output()
        .expect("run ato")
}

/// A compact ResNet-20 (base width 4, shortcut A) saved as ato saves models.
fn saved_model(dir: &Path) -> (Model, String) {
    let mut c = ModelConfig::new(ModelName::Resnet20, 10, 16);
    c.base_width = Some(4);
    c.shortcut = ShortcutKind::A;
    c.widths = Some(vec![2, 3, 2, 5, 8, 4, 9, 16, 12]);
    let m = Model::new(&c, &Device::Cpu, 3).unwrap();
    let path = dir.join("compact.safetensors");
    m.save(&path).unwrap();
    (m, path.display().to_string())
}

#[test]
fn the_command_writes_the_librarys_onnx_file() {
    let dir = tempfile::tempdir().unwrap();
    let (m, path) = saved_model(dir.path());
    let onnx = dir.path().join("out/model.onnx");
    let out = ato(&[
        "export",
        &path,
        "--onnx",
        onnx.to_str().unwrap(),
        "--dataset",
        "cifar10",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("opset 17"));
    // byte for byte what ato-onnx writes for the model and CIFAR-10's normalisation (whose
    // file an independent runtime checks in ato-onnx's tests)
    let spec = ato_onnx::InputSpec {
        mean: vec![0.4914, 0.4822, 0.4465],
        std: vec![0.2470, 0.2435, 0.2616],
        source: format!("{path} (cifar10)"),
    };
    let want = ato_onnx::to_onnx(&m.graph().unwrap(), &spec)
        .unwrap()
        .write_to_bytes()
        .unwrap();
    assert_eq!(std::fs::read(&onnx).unwrap(), want);
}

#[test]
fn bad_exports_are_one_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = saved_model(dir.path());
    let onnx = dir.path().join("model.onnx");
    let o = onnx.to_str().unwrap();
    let one_line = |out: &std::process::Output, needle: &str| {
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert_eq!(e.trim().lines().count(), 1, "{e}");
        assert!(e.contains(needle), "{e}");
    };
    // a model file without the data set its input is normalised for
    one_line(&ato(&["export", &path, "--onnx", o]), "--dataset");
    // a run folder that has not finished
    let empty = dir.path().join("run");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("config.toml"), "").unwrap();
    one_line(
        &ato(&["export", empty.to_str().unwrap(), "--onnx", o]),
        "compact",
    );
    // a truncated model file
    let truncated = dir.path().join("cut.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::copy(
        dir.path().join("compact.arch.json"),
        dir.path().join("cut.arch.json"),
    )
    .unwrap();
    let out = ato(&[
        "export",
        truncated.to_str().unwrap(),
        "--onnx",
        o,
        "--dataset",
        "cifar10",
    ]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1
    );
    // an unknown data set: clap's error (its first line names the value)
    let out = ato(&["export", &path, "--onnx", o, "--dataset", "mnist"]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.lines()
            .next()
            .unwrap()
            .contains("`mnist` is not a data set"),
        "{e}"
    );
    assert!(!onnx.exists(), "nothing written");
}
