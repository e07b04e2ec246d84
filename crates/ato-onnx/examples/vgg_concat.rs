//! Writes a CNN that is not built in — a VGG-style network with an Inception-like concat
//! branch (`ato_models::graph_sketch::vgg_with_concat`), seeded random weights — as an ONNX
//! file: something to try `model.onnx` on without PyTorch at hand.
//!
//! ```sh
//! cargo run --release -p ato-onnx --example vgg_concat -- my_cnn.onnx 1 8 10 16
//! #   FILE CHANNELS SIDE CLASSES WIDTH (defaults 3 32 10 16; digits are 1 × 8 × 8, 10 classes)
//! ```

use ato_models::graph_sketch::vgg_with_concat;
use ato_onnx::{write_onnx, InputSpec};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = PathBuf::from(
        args.next()
            .ok_or("usage: vgg_concat FILE [C SIDE CLASSES WIDTH]")?,
    );
    let mut num = |default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        Ok(args
            .next()
            .map(|a| a.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let (c, side, classes, width) = (num(3)?, num(32)?, num(10)?, num(16)?);
    let graph = vgg_with_concat((c, side, side), classes, width, 0);
    let spec = InputSpec {
        mean: vec![0.0; c],
        std: vec![1.0; c],
        source: "vgg_concat example (untrained)".into(),
    };
    let bytes = write_onnx(&file, &graph, &spec)?;
    println!(
        "{}: {} nodes, {bytes} bytes, input {c}×{side}×{side}, {classes} classes",
        file.display(),
        graph.nodes.len()
    );
    Ok(())
}
