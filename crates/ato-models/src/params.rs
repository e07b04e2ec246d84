//! [`ParamStore`]: creates a model's variables, either freshly initialised from a seeded RNG
//! (candle's CPU RNG cannot be seeded, docs/design.md §10) or taken from a given tensor set
//! (loading, compaction), checking every shape.

use crate::ModelError;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use std::collections::HashMap;

/// How a fresh parameter is initialised.
#[derive(Clone, Copy, Debug)]
pub enum Init {
    /// Kaiming normal, fan-out mode, for ReLU networks (torchvision's conv init).
    KaimingFanOut,
    /// U(−1/√fan_in, 1/√fan_in) (PyTorch's default for linear layers).
    UniformFanIn(usize),
    Const(f32),
}

enum Source {
    Fresh(Box<ChaCha8Rng>),
    Given(HashMap<String, Tensor>),
    /// Detached views of another model's variables: shared storage, no gradient tracking, and
    /// nothing registered in the map.
    Frozen(HashMap<String, Tensor>),
}

/// Collects a model's variables into a [`VarMap`] as the model is built.
pub struct ParamStore {
    varmap: VarMap,
    device: Device,
    source: Source,
}

impl ParamStore {
    /// Fresh parameters drawn from `ChaCha8Rng::seed_from_u64(seed)` in build order.
    pub fn fresh(device: &Device, seed: u64) -> Self {
        Self {
            varmap: VarMap::new(),
            device: device.clone(),
            source: Source::Fresh(Box::new(ChaCha8Rng::seed_from_u64(seed))),
        }
    }

    /// Parameters taken from `tensors`; every requested name must be present with the
    /// requested shape, and [`ParamStore::finish`] rejects leftovers.
    pub fn given(device: &Device, tensors: HashMap<String, Tensor>) -> Self {
        Self {
            varmap: VarMap::new(),
            device: device.clone(),
            source: Source::Given(tensors),
        }
    }

    /// Detached views of `tensors` (which share storage with the variables they come from):
    /// a network built from this store sees every later update of those variables but never
    /// records a gradient for them.
    pub fn frozen(device: &Device, tensors: HashMap<String, Tensor>) -> Self {
        Self {
            varmap: VarMap::new(),
            device: device.clone(),
            source: Source::Frozen(tensors),
        }
    }

    /// The variable `name` of `shape`, registered in the map.
    pub fn var(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Tensor, ModelError> {
        let tensor = match &mut self.source {
            Source::Frozen(map) => {
                return map
                    .get(name)
                    .map(Tensor::detach)
                    .ok_or_else(|| ModelError::MissingTensor(name.to_string()));
            }
            Source::Fresh(rng) => fresh_tensor(rng, shape, init, &self.device)?,
            Source::Given(map) => {
                let t = map
                    .remove(name)
                    .ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
                if t.dims() != shape {
                    return Err(ModelError::ShapeMismatch {
                        name: name.to_string(),
                        expected: shape.to_vec(),
                        got: t.dims().to_vec(),
                    });
                }
                t.to_dtype(DType::F32)?.to_device(&self.device)?
            }
        };
        let var = Var::from_tensor(&tensor)?;
        let out = var.as_tensor().clone();
        let mut data = self.varmap.data().lock().expect("var map lock");
        if data.insert(name.to_string(), var).is_some() {
            return Err(ModelError::DuplicateTensor(name.to_string()));
        }
        Ok(out)
    }

    /// The finished map; fails if given tensors were left unused.
    pub fn finish(self) -> Result<VarMap, ModelError> {
        if let Source::Given(map) = &self.source {
            if let Some(name) = map.keys().min() {
                return Err(ModelError::UnexpectedTensor(name.clone()));
            }
        }
        Ok(self.varmap)
    }
}

fn fresh_tensor(
    rng: &mut ChaCha8Rng,
    shape: &[usize],
    init: Init,
    device: &Device,
) -> Result<Tensor, ModelError> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = match init {
        Init::Const(v) => vec![v; n],
        Init::KaimingFanOut => {
            let fan_out = shape[0] * shape[2..].iter().product::<usize>();
            let std = (2.0 / fan_out as f64).sqrt();
            let normal = Normal::new(0.0, std).expect("finite std");
            (0..n).map(|_| normal.sample(rng) as f32).collect()
        }
        Init::UniformFanIn(fan_in) => {
            let bound = 1.0 / (fan_in as f32).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        }
    };
    Ok(Tensor::from_vec(values, shape, device)?)
}
