//! Forward and backward of one model on two devices from the same weights and batch: the
//! train-mode logits and every parameter's gradient, compared relative to the reference.

use super::table::{relative_max_diff, tolerance_row, Row};
use anyhow::Result;
use ato_data::DatasetName;
use ato_models::{Model, ModelConfig, ModelName};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// Logits: float32 on both sides, different summation orders (cuBLAS/im2col vs the CPU
/// kernels) through up to 110 layers with batch-statistics BatchNorm.
pub const LOGITS_TOLERANCE: f32 = 1e-3;
/// Gradients: the same plus one more pass; relative to the largest gradient of the tensor.
pub const GRADS_TOLERANCE: f32 = 1e-2;
/// Scale floor for the relative difference (a tensor whose reference is all ~0).
const FLOOR: f32 = 1e-6;

/// The data set whose shapes a model is checked with: ImageNet ResNets at 224², the rest at 32².
pub fn dataset_for(model: ModelName) -> DatasetName {
    match model {
        ModelName::Resnet18 | ModelName::Resnet34 | ModelName::Resnet50 => DatasetName::ImageNet,
        _ => DatasetName::Cifar10,
    }
}

fn flat(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_device(&Device::Cpu)?.to_vec1::<f32>()?)
}

/// Gradients by parameter name, sorted by name, flattened.
type NamedGrads = Vec<(String, Vec<f32>)>;

/// Logits and gradients (by parameter name) of one train-mode step on `device`.
fn forward_backward(
    config: &ModelConfig,
    tensors: &HashMap<String, Tensor>,
    x: &Tensor,
    y: &Tensor,
    device: &Device,
) -> Result<(Vec<f32>, NamedGrads)> {
    let on_device = tensors
        .iter()
        .map(|(k, t)| Ok((k.clone(), t.to_device(device)?)))
        .collect::<Result<HashMap<_, _>>>()?;
    let model = Model::from_tensors(config, on_device, device)?;
    let logits = model.forward_t(&x.to_device(device)?, None, true)?;
    let loss = candle_nn::loss::cross_entropy(&logits, &y.to_device(device)?)?;
    let grads = loss.backward()?;
    let mut out = Vec::new();
    for (name, var) in model.trainable_vars() {
        if let Some(g) = grads.get(var.as_tensor()) {
            out.push((name, flat(g)?));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((flat(&logits)?, out))
}

/// Two rows (logits, gradients) for `model` on `device` against `reference`. `perturb` adds a
/// constant to one weight tensor on the `device` side only (the negative control of the tests).
pub fn compare_model(
    model: ModelName,
    batch: usize,
    device: &Device,
    reference: &Device,
    perturb: f32,
) -> Result<Vec<Row>> {
    let (classes, side) = dataset_for(model).shape();
    let config = ModelConfig::new(model, classes, side);
    let weights = Model::new(&config, &Device::Cpu, 0)?.tensors();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let pixels: Vec<f32> = (0..batch * 3 * side * side)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let x = Tensor::from_vec(pixels, (batch, 3, side, side), &Device::Cpu)?;
    let labels: Vec<u32> = (0..batch)
        .map(|_| rng.random_range(0..classes as u32))
        .collect();
    let y = Tensor::from_vec(labels, batch, &Device::Cpu)?;

    let mut changed = weights.clone();
    if perturb != 0.0 {
        let mut names: Vec<&String> = weights.keys().filter(|k| k.ends_with("weight")).collect();
        names.sort();
        if let Some(first) = names.first() {
            let t = (&weights[*first] + perturb as f64)?;
            changed.insert((*first).clone(), t);
        }
    }
    let (ref_logits, ref_grads) = forward_backward(&config, &weights, &x, &y, reference)?;
    let (logits, grads) = forward_backward(&config, &changed, &x, &y, device)?;

    let name = model.as_str();
    let logits_rel = relative_max_diff(&logits, &ref_logits, FLOOR);
    let mut worst = (0f32, String::new());
    for ((n, g), (_, r)) in grads.iter().zip(&ref_grads) {
        let rel = relative_max_diff(g, r, FLOOR);
        if rel > worst.0 || rel.is_nan() {
            worst = (rel, n.clone());
        }
    }
    let missing = ref_grads.len() != grads.len();
    let grads_rel = if missing { f32::INFINITY } else { worst.0 };
    Ok(vec![
        tolerance_row(
            format!("{name} forward (train-mode logits)"),
            logits_rel,
            LOGITS_TOLERANCE,
            "",
        ),
        tolerance_row(
            format!("{name} backward ({} grads)", ref_grads.len()),
            grads_rel,
            GRADS_TOLERANCE,
            &format!("worst {}", worst.1),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check_gpu::table::Status;

    #[test]
    fn cpu_against_cpu_agrees_and_a_perturbed_weight_is_caught() {
        let rows = compare_model(ModelName::Resnet20, 2, &Device::Cpu, &Device::Cpu, 0.0).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.status == Status::Ok), "{rows:?}");
        assert!(rows[1].item.starts_with("resnet20 backward ("), "{rows:?}");
        // Negative control: 0.05 added to one conv weight moves logits and gradients far
        // beyond the tolerances.
        let rows = compare_model(ModelName::Resnet20, 2, &Device::Cpu, &Device::Cpu, 0.05).unwrap();
        assert!(rows.iter().all(|r| r.status == Status::Fail), "{rows:?}");
    }

    #[test]
    fn imagenet_resnets_are_checked_at_imagenet_shapes() {
        assert_eq!(dataset_for(ModelName::Resnet50), DatasetName::ImageNet);
        assert_eq!(dataset_for(ModelName::Mobilenetv2), DatasetName::Cifar10);
    }
}
