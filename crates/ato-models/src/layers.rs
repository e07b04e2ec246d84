//! Layers instantiated from `ato-zig` specs, and the few tensor ops candle lacks
//! (strided subsampling, padded max-pooling with a backward pass, channel gating).
//!
//! Convolutions and BatchNorm run through `ato-kernels`: its fast CPU kernels by default,
//! candle's own ops on other devices or with `ATO_BACKEND=stock`.

use crate::graph::{GraphBuilder, Op, ValueId};
use crate::params::{Init, ParamStore};
use crate::ModelError;
use ato_kernels::Linear;
use ato_kernels::{Activation, BatchNorm2d, ConvParams};
use ato_zig::blocks::{ConvBnSpec, Shortcut};
use ato_zig::{BnSpec, ConvSpec, Dim, GateId, LinearSpec};
use candle_core::{Result, Tensor};

/// BN epsilon, as PyTorch.
pub const BN_EPS: f64 = 1e-5;

/// Resolves a spec's dimension to the widths being built.
pub(crate) fn width(dim: Dim, widths: &[usize]) -> usize {
    dim.resolve(widths)
}

/// A bias-free convolution (`{path}.weight`, C_out × C_in/groups × K × K).
#[derive(Clone, Debug)]
pub struct Conv {
    weight: Tensor,
    params: ConvParams,
    /// The variable path (`{path}.weight`).
    path: String,
}

impl Conv {
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ato_kernels::conv2d(x, &self.weight, self.params)
    }

    /// `act(bn(conv(x)))` in one fused op (`ato-kernels` on CPU).
    pub fn forward_bn_act(
        &self,
        x: &Tensor,
        bn: &BatchNorm2d,
        train: bool,
        act: Activation,
    ) -> Result<Tensor> {
        ato_kernels::conv_batch_norm(x, &self.weight, self.params, bn, train, act)
    }

    /// This conv, with an optional bias `{path}.bias`, as a graph node on `x`.
    pub(crate) fn to_graph(
        &self,
        g: &mut GraphBuilder,
        x: ValueId,
        bias: Option<&Tensor>,
    ) -> ValueId {
        let weight = g.param(format!("{}.weight", self.path), &self.weight);
        let bias = bias.map(|b| g.param(format!("{}.bias", self.path), b));
        let op = Op::Conv {
            weight,
            bias,
            stride: self.params.stride,
            padding: self.params.padding,
            groups: self.params.groups,
        };
        g.push(op, &[x])
    }
}

pub(crate) fn conv(
    spec: &ConvSpec,
    widths: &[usize],
    store: &mut ParamStore,
) -> std::result::Result<Conv, ModelError> {
    let (cin, cout) = (spec.in_width(widths), width(spec.out_dim, widths));
    let groups = if spec.depthwise { cin } else { spec.groups };
    let per_group_in = cin / groups;
    let w = store.var(
        &format!("{}.weight", spec.path),
        &[cout, per_group_in, spec.kernel, spec.kernel],
        Init::KaimingFanOut,
    )?;
    Ok(Conv {
        weight: w,
        params: ConvParams::new(spec.stride, spec.padding, groups),
        path: spec.path.clone(),
    })
}

pub(crate) fn bn(
    spec: &BnSpec,
    widths: &[usize],
    store: &mut ParamStore,
) -> std::result::Result<BatchNorm2d, ModelError> {
    bn_with_eps(spec, widths, store, BN_EPS)
}

/// A BatchNorm with its own epsilon (an imported graph's).
pub(crate) fn bn_with_eps(
    spec: &BnSpec,
    widths: &[usize],
    store: &mut ParamStore,
    eps: f64,
) -> std::result::Result<BatchNorm2d, ModelError> {
    let n = width(spec.dim, widths);
    let p = &spec.path;
    let weight = store.var(&format!("{p}.weight"), &[n], Init::Const(1.0))?;
    let bias = store.var(&format!("{p}.bias"), &[n], Init::Const(0.0))?;
    let mean = store.var(&format!("{p}.running_mean"), &[n], Init::Const(0.0))?;
    let var = store.var(&format!("{p}.running_var"), &[n], Init::Const(1.0))?;
    Ok(BatchNorm2d::new(weight, bias, mean, var, eps)?)
}

pub(crate) fn linear(
    spec: &LinearSpec,
    widths: &[usize],
    store: &mut ParamStore,
) -> std::result::Result<Linear, ModelError> {
    let (i, o) = (width(spec.in_dim, widths), width(spec.out_dim, widths));
    let w = store.var(
        &format!("{}.weight", spec.path),
        &[o, i],
        Init::UniformFanIn(i),
    )?;
    let b = store.var(&format!("{}.bias", spec.path), &[o], Init::UniformFanIn(i))?;
    Ok(Linear::new(w, Some(b)))
}

/// A convolution followed by batch normalisation.
#[derive(Clone, Debug)]
pub struct ConvBn {
    conv: Conv,
    bn: BatchNorm2d,
    /// The BN's variable path.
    bn_path: String,
}

impl ConvBn {
    pub(crate) fn new(
        spec: &ConvBnSpec,
        widths: &[usize],
        store: &mut ParamStore,
    ) -> std::result::Result<Self, ModelError> {
        Ok(Self {
            conv: conv(&spec.conv, widths, store)?,
            bn: bn(&spec.bn, widths, store)?,
            bn_path: spec.bn.path.clone(),
        })
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_act_t(x, train, Activation::Identity)
    }

    /// `act(bn(conv(x)))`, fused into one op by `ato-kernels` on CPU.
    pub fn forward_act_t(&self, x: &Tensor, train: bool, act: Activation) -> Result<Tensor> {
        ato_kernels::conv_batch_norm(x, &self.conv.weight, self.conv.params, &self.bn, train, act)
    }

    /// `act(bn(conv(x)) + residual)` (a residual block's join), fused by `ato-kernels` on
    /// CPU.
    pub fn forward_add_t(
        &self,
        x: &Tensor,
        residual: &Tensor,
        train: bool,
        act: Activation,
    ) -> Result<Tensor> {
        ato_kernels::conv_batch_norm_add(
            x,
            &self.conv.weight,
            self.conv.params,
            &self.bn,
            residual,
            train,
            act,
        )
    }

    pub fn conv(&self) -> &Conv {
        &self.conv
    }

    /// `act(bn(conv(x)))` as graph nodes.
    pub(crate) fn to_graph(&self, g: &mut GraphBuilder, x: ValueId, act: Activation) -> ValueId {
        let bn = self.conv_bn_graph(g, x);
        g.activation(bn, act)
    }

    /// `act(bn(conv(x)) + residual)` as graph nodes.
    pub(crate) fn to_graph_add(
        &self,
        g: &mut GraphBuilder,
        x: ValueId,
        residual: ValueId,
        act: Activation,
    ) -> ValueId {
        let bn = self.conv_bn_graph(g, x);
        let sum = g.push(Op::Add, &[bn, residual]);
        g.activation(sum, act)
    }

    fn conv_bn_graph(&self, g: &mut GraphBuilder, x: ValueId) -> ValueId {
        let c = &self.conv;
        let y = g.conv(x, &format!("{}.weight", c.path), &c.weight, c.params);
        g.batch_norm(y, &self.bn_path, &self.bn)
    }

    pub fn bn(&self) -> &BatchNorm2d {
        &self.bn
    }
}

/// Per-gate channel multipliers for a gated forward: `values[g]` has shape (C_g,).
#[derive(Clone, Copy, Debug)]
pub struct GateValues<'a>(pub &'a [Tensor]);

/// Multiplies channel c of `x` (N, C, H, W) by the gate's value c, if gate values are given.
pub fn apply_gate(x: Tensor, gates: Option<GateValues>, gate: GateId) -> Result<Tensor> {
    match gates {
        None => Ok(x),
        Some(GateValues(v)) => ato_kernels::scale_channels(&x, &v[gate]),
    }
}

/// Elements `start, start+2, …` (`count` of them) along `dim`; differentiable.
fn take_every_second(x: &Tensor, dim: usize, start: usize, count: usize) -> Result<Tensor> {
    let mut shape = x.dims().to_vec();
    let x = x.narrow(dim, start, 2 * count)?;
    shape[dim] = count;
    shape.insert(dim + 1, 2);
    x.reshape(shape)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)
}

/// Zero-pads `dim` at the end so it is at least `len` long.
fn pad_end_to(x: &Tensor, dim: usize, len: usize) -> Result<Tensor> {
    let have = x.dim(dim)?;
    if have >= len {
        Ok(x.clone())
    } else {
        x.pad_with_zeros(dim, 0, len - have)
    }
}

/// `x[:, :, ::2, ::2]` for any H, W (the output has ⌈H/2⌉ × ⌈W/2⌉ pixels).
pub fn subsample2(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let (ho, wo) = (h.div_ceil(2), w.div_ceil(2));
    let x = pad_end_to(&pad_end_to(x, 2, 2 * ho)?, 3, 2 * wo)?;
    take_every_second(&take_every_second(&x, 2, 0, ho)?, 3, 0, wo)
}

/// 3×3 max-pooling with stride 2 and padding 1 (the ImageNet ResNet stem), differentiable.
///
/// Requires non-negative inputs (it follows a ReLU), so zero padding equals PyTorch's
/// −∞ padding. Separable: rows first, then columns.
pub fn max_pool_3x3_s2_p1(x: &Tensor) -> Result<Tensor> {
    let mut x = x.clone();
    for dim in [2, 3] {
        let n = x.dim(dim)?;
        let out = (n + 2 - 3) / 2 + 1;
        let padded = x.pad_with_zeros(dim, 1, 0)?;
        let padded = pad_end_to(&padded, dim, 2 * out + 2)?;
        let mut m = take_every_second(&padded, dim, 0, out)?;
        for start in 1..3 {
            m = m.maximum(&take_every_second(&padded, dim, start, out)?)?;
        }
        x = m;
    }
    Ok(x)
}

/// Global average pooling (N, C, H, W) → (N, C).
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    x.mean((2, 3))
}

/// A residual block's shortcut branch.
#[derive(Clone, Debug)]
pub enum ShortcutLayer {
    Identity,
    ZeroPad { stride: usize, pad: usize },
    Projection(ConvBn),
}

impl ShortcutLayer {
    pub(crate) fn new(
        spec: &Shortcut,
        widths: &[usize],
        store: &mut ParamStore,
    ) -> std::result::Result<Self, ModelError> {
        Ok(match spec {
            Shortcut::Identity => ShortcutLayer::Identity,
            Shortcut::ZeroPad { stride, pad } => ShortcutLayer::ZeroPad {
                stride: *stride,
                pad: *pad,
            },
            Shortcut::Projection(s) => ShortcutLayer::Projection(ConvBn::new(s, widths, store)?),
        })
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            ShortcutLayer::Identity => Ok(x.clone()),
            ShortcutLayer::ZeroPad { stride, pad } => {
                let x = if *stride == 2 {
                    subsample2(x)?
                } else {
                    x.clone()
                };
                x.pad_with_zeros(1, *pad, *pad)
            }
            ShortcutLayer::Projection(cb) => cb.forward_t(x, train),
        }
    }

    pub(crate) fn to_graph(&self, g: &mut GraphBuilder, x: ValueId) -> ValueId {
        match self {
            ShortcutLayer::Identity => x,
            ShortcutLayer::ZeroPad { stride, pad } => {
                let x = if *stride == 2 {
                    g.push(Op::Subsample2, &[x])
                } else {
                    x
                };
                let op = Op::PadChannels {
                    before: *pad,
                    after: *pad,
                };
                g.push(op, &[x])
            }
            ShortcutLayer::Projection(cb) => cb.to_graph(g, x, Activation::Identity),
        }
    }
}
