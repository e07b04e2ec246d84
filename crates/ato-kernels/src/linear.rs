//! Matrix products of tensors that follow the process-wide [`crate::Reproducibility`]:
//! candle's own `matmul` by default, the fixed-order [`crate::portable`] product (forward and
//! backward) in portable mode. Every linear layer and the controller's GRU go through here.

use crate::matrix::{MatMut, MatRef};
use crate::mode::{reproducibility, Reproducibility};
use crate::portable::portable_matmul;
use crate::storage::to_storage;
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Module, Result, Shape, Tensor};

/// `a × b` for 2-D tensors (any strides). By default exactly `a.matmul(b)`; in portable mode
/// (f32 on CPU) the fixed-order product, whose gradients are portable products too.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let portable = reproducibility() == Reproducibility::Portable
        && crate::backend::fast_path(a.device(), a.dtype())
        && b.dtype() == a.dtype();
    if !portable {
        return a.matmul(b);
    }
    if a.rank() != 2 || b.rank() != 2 {
        bail!(
            "portable matmul takes 2-D operands, got {:?} × {:?}",
            a.dims(),
            b.dims()
        );
    }
    a.apply_op2(b, PortableMatMul)
}

struct PortableMatMul;

/// A strided 2-D view of `storage` as laid out by `layout`.
fn view<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<MatRef<'a>> {
    let CpuStorage::F32(data) = storage else {
        bail!("portable matmul: {what} is not f32");
    };
    let (dims, strides) = (layout.dims(), layout.stride());
    if dims.len() != 2 {
        bail!("portable matmul: {what} has shape {dims:?}, not 2-D");
    }
    Ok(MatRef {
        data: &data[layout.start_offset()..],
        rows: dims[0],
        cols: dims[1],
        row_stride: strides[0],
        col_stride: strides[1],
    })
}

impl CustomOp2 for PortableMatMul {
    fn name(&self) -> &'static str {
        "ato-portable-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _pass = crate::profile::Pass::start(self.name());
        let (a, b) = (view(s1, l1, "lhs")?, view(s2, l2, "rhs")?);
        if a.cols != b.rows {
            bail!(
                "portable matmul: inner dimensions {} and {} differ",
                a.cols,
                b.rows
            );
        }
        let mut out = vec![0f32; a.rows * b.cols];
        crate::matmul::checked(
            MatMut::row_major(&mut out, a.rows, b.cols, b.cols),
            a,
            b,
            false,
            crate::parallel::threads(),
            portable_matmul,
        );
        Ok(to_storage(out, (a.rows, b.cols)))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // candle's own rule for matmul: d a = g bᵀ, d b = aᵀ g
        Ok((Some(matmul(grad, &b.t()?)?), Some(matmul(&a.t()?, grad)?)))
    }
}

/// A linear layer `y = x Wᵀ + b` (W: out × in), computed as `candle_nn::Linear` computes it
/// by default and with [`matmul`] in portable mode (inputs of any rank ≥ 2: leading dimensions
/// are flattened).
#[derive(Clone, Debug)]
pub struct Linear {
    inner: candle_nn::Linear,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            inner: candle_nn::Linear::new(weight, bias),
        }
    }

    /// W, (out, in).
    pub fn weight(&self) -> &Tensor {
        self.inner.weight()
    }

    /// b, (out,), if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.inner.bias()
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if reproducibility() == Reproducibility::Machine {
            return self.inner.forward(x);
        }
        let dims = x.dims().to_vec();
        let Some((&last, lead)) = dims.split_last() else {
            bail!("linear: a scalar input");
        };
        let rows: usize = lead.iter().product();
        let y = matmul(&x.reshape((rows, last))?, &self.weight().t()?)?;
        let mut out_dims = lead.to_vec();
        out_dims.push(self.weight().dim(0)?);
        let y = y.reshape(out_dims)?;
        match self.bias() {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}
