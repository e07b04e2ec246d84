//! The probe's running state in a checkpoint: scalars as metadata (`{:?}` round-trips every
//! f64, ∞ and NaN included), vectors as tensors.

use super::descent::{Averaged, ProbePoint};
use super::ConvergenceProbe;
use crate::bounds::{AveragedSums, ProbeSample};
use crate::state::StateDict;
use crate::{OptimError, Result};
use candle_core::{DType, Device, Tensor};

fn f64s(s: &StateDict, name: &str) -> Result<Vec<f64>> {
    Ok(s.tensor(name)?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

fn put_f64s(s: &mut StateDict, name: &str, v: &[f64], device: &Device) -> Result<()> {
    s.put_tensor(name, Tensor::from_slice(v, v.len(), device)?);
    Ok(())
}

impl ConvergenceProbe {
    /// The running state, for checkpoints.
    pub fn state(&self, device: &Device) -> Result<StateDict> {
        let mut s = StateDict::new();
        let a = &self.averaged;
        for (k, v) in [
            ("weights", a.sums.weights),
            ("weighted_mapping", a.sums.weighted_mapping),
            ("eta_variance", a.sums.eta_variance),
            ("weight_variance", a.sums.weight_variance),
        ] {
            s.put_meta(k, format!("{v:?}"));
        }
        s.put_meta("step_condition", a.sums.step_condition);
        if let Some(o) = a.objective0 {
            s.put_meta("objective0", format!("{o:?}"));
        }
        put_f64s(&mut s, "window_lrs", &self.window_lrs, device)?;
        s.put_meta("window_secant", format!("{:?}", self.window_secant));
        if let Some(p) = &self.penalty {
            s.put_meta(
                "penalty",
                serde_json::to_string(p).expect("numbers serialise"),
            );
        }
        if let Some(w) = &self.window {
            let p = &w.sample;
            for (k, v) in [
                ("window.objective", w.objective),
                ("window.eta", p.eta),
                ("window.lower", p.lower),
                ("window.martingale", p.martingale),
                ("window.smoothness", p.smoothness),
                ("window.variance", p.variance),
            ] {
                s.put_meta(k, format!("{v:?}"));
            }
            s.put_tensor("window.x", Tensor::from_slice(&w.x, w.x.len(), device)?);
            s.put_tensor(
                "window.grad",
                Tensor::from_slice(&w.grad, w.grad.len(), device)?,
            );
            let free: Vec<u8> = w.free.iter().map(|&f| f as u8).collect();
            s.put_tensor("window.free", Tensor::from_vec(free, w.free.len(), device)?);
            put_f64s(&mut s, "window.losses", &w.losses, device)?;
        }
        Ok(s)
    }

    /// Restores [`ConvergenceProbe::state`].
    pub fn load_state(&mut self, s: &StateDict) -> Result<()> {
        self.averaged = Averaged {
            objective0: match s.meta.get("objective0") {
                Some(_) => Some(s.meta("objective0")?),
                None => None,
            },
            sums: AveragedSums {
                weights: s.meta("weights")?,
                weighted_mapping: s.meta("weighted_mapping")?,
                eta_variance: s.meta("eta_variance")?,
                weight_variance: s.meta("weight_variance")?,
                step_condition: s.meta("step_condition")?,
            },
        };
        self.window_lrs = f64s(s, "window_lrs")?;
        self.window_secant = match s.meta.get("window_secant") {
            Some(_) => s.meta("window_secant")?,
            None => 0.0,
        };
        self.penalty = match s.meta.get("penalty") {
            None => None,
            Some(t) => Some(
                serde_json::from_str(t)
                    .map_err(|e| OptimError::State(format!("`penalty`: {e}")))?,
            ),
        };
        self.window = match s.tensors.get("window.x") {
            None => None,
            Some(x) => Some(ProbePoint {
                x: x.to_vec1()?,
                grad: s.tensor("window.grad")?.to_vec1()?,
                free: s
                    .tensor("window.free")?
                    .to_vec1::<u8>()?
                    .into_iter()
                    .map(|f| f != 0)
                    .collect(),
                objective: s.meta("window.objective")?,
                losses: f64s(s, "window.losses")?,
                sample: ProbeSample {
                    eta: s.meta("window.eta")?,
                    lower: s.meta("window.lower")?,
                    martingale: s.meta("window.martingale")?,
                    smoothness: s.meta("window.smoothness")?,
                    variance: s.meta("window.variance")?,
                },
            }),
        };
        Ok(())
    }
}
