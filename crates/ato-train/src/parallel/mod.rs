//! Data parallelism: a [`Communicator`] moves gradients and state between ranks, each rank
//! training on its own share of the batch.
//!
//! One step on `world_size` ranks: every rank runs forward and backward on its shard, the
//! gradients are all-reduced and divided by the world size ([`all_reduce_mean`]), and every rank
//! applies the same update, so parameters stay identical without being sent. With equal shards
//! and a mean loss this is the one-rank step on the whole batch, up to float summation order.
//!
//! BatchNorm: in train mode each rank normalises with its own shard's statistics (as PyTorch's
//! DataParallel/DDP without SyncBatchNorm, which the authors used), and rank 0's running
//! statistics are kept (DDP's buffer broadcast). Train-mode BN is therefore NOT equal to the
//! one-rank full batch; the tests check equality with BN in eval mode and show the difference.
//! Every rank's parameters and buffers are the same bits after each step, so every rank's
//! pruner draws the same masks without sending them.
//!
//! [`ThreadCommunicator`] runs ranks as threads of one process (`dist.backend = "threads"`),
//! `MpiCommunicator` as MPI processes (`dist.backend = "mpi"`, feature `mpi`); [`DataParallel`]
//! is what the train-once loop does with either. On GPUs (feature `cuda`),
//! `NcclCommunicator` sums on the devices: one per GPU of this process (thread ranks), or one
//! per MPI process with NCCL's id sent over MPI.

mod data_parallel;
#[cfg(feature = "mpi")]
mod mpi;
#[cfg(feature = "cuda")]
mod nccl;
mod threads;

pub use data_parallel::DataParallel;
#[cfg(feature = "mpi")]
pub use mpi::{finish_mpi, MpiCommunicator};
#[cfg(feature = "cuda")]
pub use nccl::NcclCommunicator;
pub use threads::ThreadCommunicator;

/// Ends MPI if a run started it (a no-op in a build without the `mpi` feature); the `ato`
/// binary calls it before it exits.
#[cfg(not(feature = "mpi"))]
pub fn finish_mpi() {}

use candle_core::{Result, Tensor, Var};

/// Collective operations over the ranks of one job; every rank calls each operation in the
/// same order with buffers of the same length.
pub trait Communicator {
    /// This rank, in `0..world_size()`.
    fn rank(&self) -> usize;
    fn world_size(&self) -> usize;
    /// Replaces `data` on every rank by the element-wise sum over ranks (summed in rank order,
    /// so every rank gets bit-identical results).
    fn all_reduce_sum(&self, data: &mut [f32]) -> Result<()>;
    /// Replaces `data` on every rank by rank `root`'s `data`.
    fn broadcast(&self, data: &mut [f32], root: usize) -> Result<()>;
    /// The element-wise sum over ranks of an f32 tensor, on the tensor's device. By default
    /// through a host buffer and [`Communicator::all_reduce_sum`]; NCCL sums device memory.
    fn all_reduce_sum_tensor(&self, t: &Tensor) -> Result<Tensor> {
        let mut buf = t.flatten_all()?.to_vec1::<f32>()?;
        self.all_reduce_sum(&mut buf)?;
        Tensor::from_vec(buf, t.dims(), t.device())
    }
}

/// Flattens `tensors` into one f32 buffer (one collective call for all of them).
fn pack(tensors: &[Tensor]) -> Result<Vec<f32>> {
    let mut buf = Vec::new();
    for t in tensors {
        buf.extend(
            t.flatten_all()?
                .to_dtype(candle_core::DType::F32)?
                .to_vec1::<f32>()?,
        );
    }
    Ok(buf)
}

/// The inverse of [`pack`]: tensors of the same shapes, dtypes and devices as `like`.
fn unpack(buf: &[f32], like: &[Tensor]) -> Result<Vec<Tensor>> {
    let mut out = Vec::with_capacity(like.len());
    let mut at = 0;
    for t in like {
        let n = t.elem_count();
        let part = Tensor::from_slice(&buf[at..at + n], t.dims(), t.device())?;
        out.push(part.to_dtype(t.dtype())?);
        at += n;
    }
    Ok(out)
}

/// The mean over ranks of each tensor (gradients, BN running statistics).
pub fn all_reduce_mean(comm: &dyn Communicator, tensors: &[Tensor]) -> Result<Vec<Tensor>> {
    let mut buf = pack(tensors)?;
    comm.all_reduce_sum(&mut buf)?;
    let scale = 1.0 / comm.world_size() as f32;
    buf.iter_mut().for_each(|v| *v *= scale);
    unpack(&buf, tensors)
}

/// Rank `root`'s tensors on every rank (parameters at start-up, the controller's mask/state).
pub fn broadcast_tensors(
    comm: &dyn Communicator,
    tensors: &[Tensor],
    root: usize,
) -> Result<Vec<Tensor>> {
    let mut buf = pack(tensors)?;
    comm.broadcast(&mut buf, root)?;
    unpack(&buf, tensors)
}

/// Sets every variable to rank `root`'s value.
pub fn broadcast_vars(comm: &dyn Communicator, vars: &[Var], root: usize) -> Result<()> {
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    for (v, t) in vars.iter().zip(broadcast_tensors(comm, &tensors, root)?) {
        v.set(&t)?;
    }
    Ok(())
}

/// One data-parallel SGD step: backward of this rank's `loss` (a mean over its shard), the
/// gradients averaged over ranks (unless `reduce` is false: the tests' negative control), and
/// `v ← v − lr·g` on every variable.
pub fn sgd_step(
    comm: &dyn Communicator,
    vars: &[Var],
    loss: &Tensor,
    lr: f64,
    reduce: bool,
) -> Result<()> {
    let grads = loss.backward()?;
    let local: Vec<Tensor> = vars
        .iter()
        .map(|v| match grads.get(v.as_tensor()) {
            Some(g) => Ok(g.clone()),
            None => v.as_tensor().zeros_like(),
        })
        .collect::<Result<_>>()?;
    let mean = if reduce {
        all_reduce_mean(comm, &local)?
    } else {
        local
    };
    for (v, g) in vars.iter().zip(mean) {
        v.set(&(v.as_tensor() - (g * lr)?)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
