//! Evaluation of a model on labelled batches, in eval mode (BN running statistics).

use crate::objective::{cross_entropy, Tally};
use ato_models::Model;
use candle_core::Tensor;

/// Loss and top-1/top-5 of `model` over `batches` of (images, labels); `gates`, when given,
/// are multiplied into the gated channels (a mask).
pub fn evaluate<I>(
    model: &Model,
    batches: I,
    gates: Option<&[Tensor]>,
) -> candle_core::Result<Tally>
where
    I: IntoIterator<Item = candle_core::Result<(Tensor, Tensor)>>,
{
    let mut tally = Tally::default();
    for batch in batches {
        let (x, y) = batch?;
        let logits = model.forward_t(&x, gates, false)?.detach();
        let loss = cross_entropy(&logits, &y, 0.0)?.to_scalar::<f32>()? as f64;
        tally.add(&logits, &y, loss)?;
    }
    Ok(tally)
}
