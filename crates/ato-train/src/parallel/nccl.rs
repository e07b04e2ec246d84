//! [`NcclCommunicator`]: ranks on GPUs (feature `cuda`), the gradients summed on the devices by
//! NCCL on each device's own candle stream, so the sum is ordered after the backward that wrote
//! the gradients and before the optimiser that reads them, with no host copy.
//!
//! Two ways to form the group: [`NcclCommunicator::group`] makes one communicator per GPU of this
//! process (`ncclCommInitAll`; thread ranks, `dist.backend = "threads"`), and
//! `NcclCommunicator::from_mpi` one per MPI process (`dist.backend = "mpi"`), rank 0's NCCL id
//! sent to the others over MPI. NCCL's ring sum is the same bits on every rank, but not the
//! rank-order sum of the CPU communicators: GPU ranks equal one GPU up to rounding.
//!
//! cudarc 0.19 opens NCCL by the names `libnccl.so` (and `.so.13`, `.so.1`, …), not by its
//! soname `libnccl.so.2`: [`nccl_library_problem`] says so in one line, with the symlink to
//! make, before cudarc would panic.

use super::Communicator;
use candle_core::op::BackpropOp;
use candle_core::{CudaDevice, CudaStorage};
use candle_core::{DType, Device, Error, Result, Storage, Tensor};
use cudarc::nccl::{Comm, Id, ReduceOp};

fn nccl(e: cudarc::nccl::result::NcclError) -> Error {
    Error::Msg(format!("NCCL: {e:?}"))
}

fn driver(e: cudarc::driver::DriverError) -> Error {
    Error::Msg(format!("CUDA: {e}"))
}

/// One GPU rank's NCCL communicator and its candle device.
pub struct NcclCommunicator {
    comm: Comm,
    device: CudaDevice,
}

// SAFETY: an NCCL communicator may be used from any thread as long as one thread at a time uses
// it; each rank owns its communicator and calls it from its own thread only.
unsafe impl Send for NcclCommunicator {}

fn cuda_device(device: &Device) -> Result<CudaDevice> {
    match device {
        Device::Cuda(d) => Ok(d.clone()),
        other => Err(Error::Msg(format!(
            "NCCL ranks run on CUDA devices, not {other:?}"
        ))),
    }
}

impl NcclCommunicator {
    /// One communicator per device, ranked in the order given (all of this process's ranks).
    pub fn group(devices: &[Device]) -> Result<Vec<Self>> {
        nccl_library_problem().map_or(Ok(()), |m| Err(Error::Msg(m)))?;
        let devices = devices
            .iter()
            .map(cuda_device)
            .collect::<Result<Vec<_>>>()?;
        let streams = devices.iter().map(|d| d.cuda_stream()).collect();
        let comms = Comm::from_devices(streams).map_err(nccl)?;
        Ok(comms
            .into_iter()
            .zip(devices)
            .map(|(comm, device)| Self { comm, device })
            .collect())
    }

    /// This process's communicator in an MPI job: rank 0 makes NCCL's id and `mpi` carries its
    /// 128 bytes to the others (as exact small integers in an f32 buffer).
    #[cfg(feature = "mpi")]
    pub fn from_mpi(mpi: &super::MpiCommunicator, device: &Device) -> Result<Self> {
        nccl_library_problem().map_or(Ok(()), |m| Err(Error::Msg(m)))?;
        let device = cuda_device(device)?;
        let mut bytes = [0f32; 128];
        if mpi.rank() == 0 {
            let id = Id::new().map_err(nccl)?;
            for (b, c) in bytes.iter_mut().zip(id.internal()) {
                *b = *c as f32;
            }
        }
        mpi.broadcast(&mut bytes, 0)?;
        let mut internal = [0 as std::ffi::c_char; 128];
        for (c, b) in internal.iter_mut().zip(bytes) {
            *c = b as std::ffi::c_char;
        }
        let comm = Comm::from_rank(
            device.cuda_stream(),
            mpi.rank(),
            mpi.world_size(),
            Id::uninit(internal),
        )
        .map_err(nccl)?;
        Ok(Self { comm, device })
    }

    fn sum_on_device(&self, t: &Tensor) -> Result<Tensor> {
        if t.dtype() != DType::F32 {
            return Err(Error::Msg(format!(
                "NCCL sums f32 here, not {:?}",
                t.dtype()
            )));
        }
        let t = t.flatten_all()?.contiguous()?;
        let n = t.elem_count();
        let stream = self.device.cuda_stream();
        let mut out = stream.alloc_zeros::<f32>(n).map_err(driver)?;
        {
            let (storage, layout) = t.storage_and_layout();
            let Storage::Cuda(s) = &*storage else {
                return Err(Error::Msg("NCCL needs a tensor on the GPU".into()));
            };
            let from = layout.start_offset();
            let src = s.as_cuda_slice::<f32>()?.slice(from..from + n);
            self.comm
                .all_reduce(&src, &mut out, &ReduceOp::Sum)
                .map_err(nccl)?;
        }
        let storage = CudaStorage::wrap_cuda_slice(out, self.device.clone());
        Ok(Tensor::from_storage(
            Storage::Cuda(storage),
            n,
            BackpropOp::none(),
            false,
        ))
    }
}

impl Communicator for NcclCommunicator {
    fn rank(&self) -> usize {
        self.comm.rank()
    }

    fn world_size(&self) -> usize {
        self.comm.world_size()
    }

    fn all_reduce_sum(&self, data: &mut [f32]) -> Result<()> {
        let device = Device::Cuda(self.device.clone());
        let t = Tensor::from_slice(data, data.len(), &device)?;
        data.copy_from_slice(&self.sum_on_device(&t)?.to_vec1::<f32>()?);
        Ok(())
    }

    fn broadcast(&self, data: &mut [f32], root: usize) -> Result<()> {
        let stream = self.device.cuda_stream();
        let mut buf = stream.clone_htod(data).map_err(driver)?;
        self.comm
            .broadcast_in_place(&mut buf, root as i32)
            .map_err(nccl)?;
        stream.memcpy_dtoh(&buf, data).map_err(driver)?;
        stream.synchronize().map_err(driver)
    }

    fn all_reduce_sum_tensor(&self, t: &Tensor) -> Result<Tensor> {
        self.sum_on_device(t)?.reshape(t.dims())
    }
}

/// Why NCCL cannot be opened, in one line, or `None` when it can.
pub fn nccl_library_problem() -> Option<String> {
    // SAFETY: only tries to dlopen the library and drops the handle.
    if unsafe { cudarc::nccl::sys::is_culib_present() } {
        return None;
    }
    let found = installed_nccl();
    Some(match found {
        Some(path) => format!(
            "NCCL is installed as {} but cudarc 0.19 opens it as libnccl.so: link it next to \
             the `ato` binary (`ln -s {} $(dirname $(command -v ato))/libnccl.so`) or into a \
             folder on LD_LIBRARY_PATH",
            path.display(),
            path.display()
        ),
        None => "NCCL (libnccl.so.2) not found: install it (Debian's libnccl2, or pip \
                 nvidia-nccl-cu13) and link it as libnccl.so next to the `ato` binary or on \
                 LD_LIBRARY_PATH; cudarc 0.19 does not look for the soname libnccl.so.2"
            .into(),
    })
}

/// The first `libnccl.so.2` on LD_LIBRARY_PATH, next to this binary, or in the usual system
/// folders.
fn installed_nccl() -> Option<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = std::env::var("LD_LIBRARY_PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(Into::into)
        .collect();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Into::into))
    {
        dirs.push(dir);
    }
    dirs.extend(
        [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/local/cuda/lib64",
            "/usr/lib64",
            "/usr/lib",
        ]
        .map(Into::into),
    );
    dirs.into_iter()
        .map(|d| d.join("libnccl.so.2"))
        .find(|p| p.exists())
}
