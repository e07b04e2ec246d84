//! Evaluation of a model on labelled batches, in eval mode (BN running statistics), with or
//! without a mask multiplied into the gated channels.

use crate::objective::{cross_entropy, Tally};
use crate::TrainError;
use ato_data::Loader;
use ato_models::Model;
use ato_zig::Mask;
use candle_core::{Device, Tensor};

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

/// One (c,) f32 vector of 0/1 per gate from a mask.
pub fn mask_tensors(mask: &Mask, device: &Device) -> candle_core::Result<Vec<Tensor>> {
    mask.gates()
        .iter()
        .map(|m| {
            let v: Vec<f32> = m.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
            Tensor::from_vec(v, m.len(), device)
        })
        .collect()
}

/// Loss and top-k of `model` on the test loader, with `mask` multiplied into the gates.
pub fn evaluate_loader(
    model: &Model,
    test: &Loader,
    mask: Option<&Mask>,
) -> Result<Tally, TrainError> {
    let gates = mask.map(|m| mask_tensors(m, model.device())).transpose()?;
    let batches = test.epoch(0).map(|b| {
        b.map(|b| (b.images, b.labels))
            .map_err(|e| candle_core::Error::Msg(e.to_string()))
    });
    Ok(evaluate(model, batches, gates.as_deref())?)
}
