//! ResNets: the CIFAR family (He et al. 2016, 6n+2 layers, widths 16/32/64, shortcut A or B)
//! and the ImageNet family of torchvision (ResNet-18/34 basic blocks, ResNet-50 bottlenecks
//! v1.5), both gated as docs/design.md §3 says.

use crate::graph::{GraphBuilder, Op, ValueId};
use crate::layers::{
    apply_gate, global_avg_pool, max_pool_3x3_s2_p1, ConvBn, GateValues, ShortcutLayer,
};
use crate::params::ParamStore;
use crate::ModelError;
use ato_kernels::Activation;
use ato_kernels::Linear;
use ato_zig::blocks::{self, BasicBlockSpec, BottleneckSpec, ShortcutKind};
use ato_zig::{ArchBuilder, Dim, GateId};
use candle_core::{Module, Result, Tensor};

/// A basic residual block; its inner channel is gate `gate`.
#[derive(Clone, Debug)]
pub struct BasicBlock {
    conv1: ConvBn,
    conv2: ConvBn,
    shortcut: ShortcutLayer,
    gate: GateId,
}

impl BasicBlock {
    fn new(
        spec: &BasicBlockSpec,
        w: &[usize],
        s: &mut ParamStore,
    ) -> std::result::Result<Self, ModelError> {
        Ok(Self {
            conv1: ConvBn::new(&spec.conv1, w, s)?,
            conv2: ConvBn::new(&spec.conv2, w, s)?,
            shortcut: ShortcutLayer::new(&spec.shortcut, w, s)?,
            gate: spec.gate,
        })
    }

    fn forward_t(&self, x: &Tensor, gates: Option<GateValues>, train: bool) -> Result<Tensor> {
        let h = self.conv1.forward_act_t(x, train, Activation::Relu)?;
        let h = apply_gate(h, gates, self.gate)?;
        let shortcut = self.shortcut.forward_t(x, train)?;
        self.conv2
            .forward_add_t(&h, &shortcut, train, Activation::Relu)
    }

    fn to_graph(&self, g: &mut GraphBuilder, x: ValueId) -> ValueId {
        let h = self.conv1.to_graph(g, x, Activation::Relu);
        let shortcut = self.shortcut.to_graph(g, x);
        self.conv2.to_graph_add(g, h, shortcut, Activation::Relu)
    }
}

/// A bottleneck block; its two inner channels are gates `gates[0]`, `gates[1]`.
#[derive(Clone, Debug)]
pub struct Bottleneck {
    conv1: ConvBn,
    conv2: ConvBn,
    conv3: ConvBn,
    shortcut: ShortcutLayer,
    gates: [GateId; 2],
}

impl Bottleneck {
    fn new(
        spec: &BottleneckSpec,
        w: &[usize],
        s: &mut ParamStore,
    ) -> std::result::Result<Self, ModelError> {
        Ok(Self {
            conv1: ConvBn::new(&spec.conv1, w, s)?,
            conv2: ConvBn::new(&spec.conv2, w, s)?,
            conv3: ConvBn::new(&spec.conv3, w, s)?,
            shortcut: ShortcutLayer::new(&spec.shortcut, w, s)?,
            gates: spec.gates,
        })
    }

    fn forward_t(&self, x: &Tensor, gates: Option<GateValues>, train: bool) -> Result<Tensor> {
        let h = apply_gate(
            self.conv1.forward_act_t(x, train, Activation::Relu)?,
            gates,
            self.gates[0],
        )?;
        let h = apply_gate(
            self.conv2.forward_act_t(&h, train, Activation::Relu)?,
            gates,
            self.gates[1],
        )?;
        let shortcut = self.shortcut.forward_t(x, train)?;
        self.conv3
            .forward_add_t(&h, &shortcut, train, Activation::Relu)
    }

    fn to_graph(&self, g: &mut GraphBuilder, x: ValueId) -> ValueId {
        let h = self.conv1.to_graph(g, x, Activation::Relu);
        let h = self.conv2.to_graph(g, h, Activation::Relu);
        let shortcut = self.shortcut.to_graph(g, x);
        self.conv3.to_graph_add(g, h, shortcut, Activation::Relu)
    }
}

#[derive(Clone, Debug)]
enum Block {
    Basic(BasicBlock),
    Bottleneck(Bottleneck),
}

/// The block layout of a ResNet.
#[derive(Clone, Copy, Debug)]
pub enum ResNetLayout {
    /// CIFAR: 3×3 stem, three stages of `n` basic blocks at widths base·{1,2,4}.
    Cifar {
        blocks_per_stage: usize,
        shortcut: ShortcutKind,
    },
    /// ImageNet: 7×7/2 stem + max-pool, four stages at widths base·{1,2,4,8}.
    ImageNet {
        blocks: [usize; 4],
        bottleneck: bool,
    },
}

/// A ResNet of either family.
#[derive(Clone, Debug)]
pub struct ResNet {
    stem: ConvBn,
    max_pool: bool,
    blocks: Vec<Block>,
    fc: Linear,
}

impl ResNet {
    /// Describes the architecture through `b` and builds its layers from `store`.
    pub(crate) fn build(
        b: &mut ArchBuilder,
        layout: ResNetLayout,
        base: usize,
        num_classes: usize,
        (in_channels, input): (usize, usize),
    ) -> ResNetSpec {
        let hw = (input, input);
        let (stem, max_pool, stages): (_, bool, Vec<(usize, usize, usize)>) = match layout {
            ResNetLayout::Cifar {
                blocks_per_stage: n,
                ..
            } => (
                blocks::conv_bn(
                    b,
                    "conv1",
                    "bn1",
                    Dim::Fixed(in_channels),
                    Dim::Fixed(base),
                    3,
                    1,
                    hw,
                ),
                false,
                vec![(base, n, 1), (2 * base, n, 2), (4 * base, n, 2)],
            ),
            ResNetLayout::ImageNet { blocks: n, .. } => (
                blocks::conv_bn(
                    b,
                    "conv1",
                    "bn1",
                    Dim::Fixed(in_channels),
                    Dim::Fixed(base),
                    7,
                    2,
                    hw,
                ),
                true,
                vec![
                    (base, n[0], 1),
                    (2 * base, n[1], 2),
                    (4 * base, n[2], 2),
                    (8 * base, n[3], 2),
                ],
            ),
        };
        let mut hw = stem.out_hw();
        if max_pool {
            hw = (
                ato_zig::conv_out(hw.0, 3, 2, 1),
                ato_zig::conv_out(hw.1, 3, 2, 1),
            );
        }
        let mut in_ch = base;
        let mut block_specs = Vec::new();
        for (si, &(planes, n, stride)) in stages.iter().enumerate() {
            for bi in 0..n {
                let prefix = format!("layer{}.{bi}", si + 1);
                let stride = if bi == 0 { stride } else { 1 };
                let spec = match layout {
                    ResNetLayout::Cifar { shortcut, .. } => {
                        let s =
                            blocks::basic_block(b, &prefix, in_ch, planes, stride, shortcut, hw);
                        hw = s.conv2.out_hw();
                        in_ch = s.out_channels;
                        BlockSpec::Basic(s)
                    }
                    ResNetLayout::ImageNet {
                        bottleneck: false, ..
                    } => {
                        let s = blocks::basic_block(
                            b,
                            &prefix,
                            in_ch,
                            planes,
                            stride,
                            ShortcutKind::B,
                            hw,
                        );
                        hw = s.conv2.out_hw();
                        in_ch = s.out_channels;
                        BlockSpec::Basic(s)
                    }
                    ResNetLayout::ImageNet {
                        bottleneck: true, ..
                    } => {
                        let s = blocks::bottleneck(b, &prefix, in_ch, planes, stride, hw);
                        hw = s.conv3.out_hw();
                        in_ch = s.out_channels;
                        BlockSpec::Bottleneck(s)
                    }
                };
                block_specs.push(spec);
            }
        }
        let fc = b.linear("fc", Dim::Fixed(in_ch), Dim::Fixed(num_classes));
        ResNetSpec {
            stem,
            max_pool,
            blocks: block_specs,
            fc,
        }
    }

    pub(crate) fn new(
        spec: &ResNetSpec,
        w: &[usize],
        s: &mut ParamStore,
    ) -> std::result::Result<Self, ModelError> {
        let stem = ConvBn::new(&spec.stem, w, s)?;
        let blocks = spec
            .blocks
            .iter()
            .map(|bs| {
                Ok(match bs {
                    BlockSpec::Basic(b) => Block::Basic(BasicBlock::new(b, w, s)?),
                    BlockSpec::Bottleneck(b) => Block::Bottleneck(Bottleneck::new(b, w, s)?),
                })
            })
            .collect::<std::result::Result<_, ModelError>>()?;
        let fc = crate::layers::linear(&spec.fc, w, s)?;
        Ok(Self {
            stem,
            max_pool: spec.max_pool,
            blocks,
            fc,
        })
    }

    pub fn forward_t(&self, x: &Tensor, gates: Option<GateValues>, train: bool) -> Result<Tensor> {
        let mut h = self.stem.forward_act_t(x, train, Activation::Relu)?;
        if self.max_pool {
            h = max_pool_3x3_s2_p1(&h)?;
        }
        for b in &self.blocks {
            h = match b {
                Block::Basic(b) => b.forward_t(&h, gates, train)?,
                Block::Bottleneck(b) => b.forward_t(&h, gates, train)?,
            };
        }
        self.fc.forward(&global_avg_pool(&h)?)
    }

    /// The eval-mode network as graph nodes on `g`'s input.
    pub(crate) fn to_graph(&self, g: &mut GraphBuilder) -> Result<ValueId> {
        let x = g.input();
        let mut h = self.stem.to_graph(g, x, Activation::Relu);
        if self.max_pool {
            h = g.push(
                Op::MaxPool {
                    kernel: 3,
                    stride: 2,
                    padding: 1,
                },
                &[h],
            );
        }
        for b in &self.blocks {
            h = match b {
                Block::Basic(b) => b.to_graph(g, h),
                Block::Bottleneck(b) => b.to_graph(g, h),
            };
        }
        let h = g.push(Op::GlobalAvgPool, &[h]);
        g.linear(h, "fc", &self.fc)
    }
}

pub(crate) enum BlockSpec {
    Basic(BasicBlockSpec),
    Bottleneck(BottleneckSpec),
}

/// What [`ResNet::build`] declared, for [`ResNet::new`] to instantiate.
pub(crate) struct ResNetSpec {
    stem: blocks::ConvBnSpec,
    max_pool: bool,
    blocks: Vec<BlockSpec>,
    fc: ato_zig::LinearSpec,
}
