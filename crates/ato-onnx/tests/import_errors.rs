//! Bad ONNX files fail with one message naming the cause.

mod common;

use ato_models::ModelName;
use ato_onnx::{from_proto, read_onnx, to_onnx, OnnxError};
use common::*;
use onnx_protobuf::{AttributeProto, Message, ModelProto};

// ---- bad files ----

fn message(e: OnnxError) -> String {
    e.to_string()
}

/// A one-conv network followed by `tail` (a node on the conv's output named `tail_out`).
fn conv_then(tail: Option<(&str, &str)>, conv_attrs: Vec<AttributeProto>) -> ModelProto {
    let mut o = Onnx::default();
    let w = o.init("c.weight", random(&[2, 1, 3, 3], 1));
    let mut y = o.node("conv_0", "Conv", &["x", &w], conv_attrs);
    let y2 = o.node("gap", "GlobalAveragePool", &[&y], vec![]);
    y = o.node("flat", "Flatten", &[&y2], vec![]);
    if let Some((name, op)) = tail {
        y = o.node(name, op, &[&y], vec![]);
    }
    o.model(1, 6, &y, 2)
}

#[test]
fn an_unsupported_operator_is_named() {
    let ok = from_proto(&conv_then(None, vec![])).unwrap();
    assert_eq!(ok.nodes.len(), 2);
    let e = message(from_proto(&conv_then(Some(("softmax_3", "Softmax")), vec![])).unwrap_err());
    assert!(e.contains("softmax_3") && e.contains("`Softmax`"), "{e}");
    assert!(e.contains("supported: Conv, BatchNormalization"), "{e}");
}

#[test]
fn a_dilated_conv_is_refused() {
    let e = from_proto(&conv_then(None, vec![square("dilations", 2)])).unwrap_err();
    let e = message(e);
    assert!(
        e.contains("conv_0") && e.contains("dilations [2, 2]"),
        "{e}"
    );
    let e =
        message(from_proto(&conv_then(None, vec![attr_ints("pads", &[0, 1, 0, 1])])).unwrap_err());
    assert!(e.contains("pads [0, 1, 0, 1]"), "{e}");
}

#[test]
fn shared_weights_and_excluded_padding_are_refused() {
    let mut o = Onnx::default();
    let w = o.init("w", random(&[1, 1, 3, 3], 1));
    let y = conv_node(&mut o, "first", "x", &w, None, 1);
    let y = conv_node(&mut o, "second", &y, &w, None, 1);
    let y = o.node("gap", "GlobalAveragePool", &[&y], vec![]);
    let e = message(from_proto(&o.model(1, 4, &y, 1)).unwrap_err());
    assert!(
        e.contains("`w`") && e.contains("shared") && e.contains("first"),
        "{e}"
    );

    let mut o = Onnx::default();
    let y = o.node(
        "avg",
        "AveragePool",
        &["x"],
        vec![square("kernel_shape", 3), pads(1)],
    );
    let y = o.node("gap", "GlobalAveragePool", &[&y], vec![]);
    let e = message(from_proto(&o.model(1, 4, &y, 1)).unwrap_err());
    assert!(e.contains("avg") && e.contains("count_include_pad"), "{e}");
}

#[test]
fn a_truncated_file_is_not_a_readable_model() {
    let cfg = small(ModelName::Resnet20, 16, Some(4));
    let g = model(&cfg, 8).graph().unwrap();
    let bytes = to_onnx(&g, &spec()).unwrap().write_to_bytes().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.onnx");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = message(read_onnx(&path).unwrap_err());
    assert!(
        e.contains("cut.onnx") && e.contains("not a readable ONNX model"),
        "{e}"
    );
    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    let e = message(read_onnx(&empty).unwrap_err());
    assert!(
        e.contains("empty.onnx") && e.contains("not a readable ONNX model"),
        "{e}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let e = message(read_onnx(&dir.path().join("nope.onnx")).unwrap_err());
    assert!(e.contains("nope.onnx"), "{e}");
}
