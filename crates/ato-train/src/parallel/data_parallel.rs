//! [`DataParallel`]: what the train-once loop does differently on one rank of `dist.world_size`.
//!
//! One collective per step keeps every rank's state bit-identical: the gradients of the
//! trainable variables are summed over ranks (in rank order, so every rank gets the same bits)
//! and divided by the world size, and in the same buffer rank 0's BatchNorm running statistics
//! are sent to all (the others add zeros), as PyTorch's DDP broadcasts its buffers. With equal
//! shards and a mean loss, the averaged gradient is the one-rank gradient of the whole batch,
//! up to summation order. Since parameters, buffers and the seed are the same on every rank,
//! so are every pruner's and probe's decisions: nothing else needs to be sent.

use super::Communicator;
use crate::objective::Tally;
use crate::TrainError;
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

type Result<T> = std::result::Result<T, TrainError>;

fn ranks(e: candle_core::Error) -> TrainError {
    TrainError::Ranks(e.to_string())
}

/// This rank's link to the others.
pub struct DataParallel {
    comm: Box<dyn Communicator>,
}

impl DataParallel {
    pub fn new(comm: Box<dyn Communicator>) -> Self {
        Self { comm }
    }

    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    pub fn world_size(&self) -> usize {
        self.comm.world_size()
    }

    /// Replaces each trainable variable's gradient by its mean over ranks and sets `buffers`
    /// (BatchNorm running statistics, in the same order on every rank) to rank 0's. A variable
    /// without a gradient keeps none, as on one rank (the optimiser then leaves it alone); every
    /// rank runs the same graph, so the same ones have gradients (the communicator checks the
    /// lengths).
    pub fn reduce_step(&self, grads: &mut GradStore, vars: &[Var], buffers: &[Var]) -> Result<()> {
        let vars: Vec<&Var> = vars
            .iter()
            .filter(|v| grads.get(v.as_tensor()).is_some())
            .collect();
        let mut tensors = Vec::with_capacity(vars.len() + buffers.len());
        for v in &vars {
            tensors.extend(grads.get(v.as_tensor()).cloned());
        }
        let root = self.rank() == 0;
        for b in buffers {
            let t = b.as_tensor();
            tensors.push(if root { t.clone() } else { t.zeros_like()? });
        }
        // one flat f32 tensor on the training device: NCCL reduces it where it lies, the CPU
        // communicators through one host buffer
        let flat = tensors
            .iter()
            .map(|t| t.flatten_all()?.to_dtype(DType::F32))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let summed = self
            .comm
            .all_reduce_sum_tensor(&Tensor::cat(&flat, 0)?)
            .map_err(ranks)?;
        let scale = Tensor::new(1.0 / self.world_size() as f32, summed.device())?;
        let mut at = 0;
        let mut parts = Vec::with_capacity(tensors.len());
        for (i, t) in tensors.iter().enumerate() {
            let part = summed.narrow(0, at, t.elem_count())?;
            at += t.elem_count();
            // gradients: the sum over ranks divided by their number; buffers: rank 0's
            let part = if i < vars.len() {
                part.broadcast_mul(&scale)?
            } else {
                part
            };
            parts.push(part.reshape(t.dims())?.to_dtype(t.dtype())?);
        }
        let (mean_grads, root_buffers) = parts.split_at(vars.len());
        for (v, g) in vars.iter().zip(mean_grads) {
            grads.insert(v.as_tensor(), g.clone());
        }
        for (b, t) in buffers.iter().zip(root_buffers) {
            b.set(t)?;
        }
        Ok(())
    }

    /// The epoch's training tally over every rank's shard.
    pub fn reduce_tally(&self, tally: &Tally) -> Result<Tally> {
        // counts below 2^24 are exact in f32; the loss sum is carried as f32 too (a report
        // figure, not a training input)
        let mut buf = [
            tally.samples as f32,
            tally.loss_sum as f32,
            tally.top1 as f32,
            tally.top5 as f32,
        ];
        self.comm.all_reduce_sum(&mut buf).map_err(ranks)?;
        Ok(Tally {
            samples: buf[0] as usize,
            loss_sum: buf[1] as f64,
            top1: buf[2] as usize,
            top5: buf[3] as usize,
        })
    }
}
