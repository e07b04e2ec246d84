//! MobileNetV2 (Sandler et al. 2018, torchvision layout): the hidden width of every inverted
//! residual with expansion > 1 is a gate. The CIFAR variant uses a stride-1 stem.

use crate::graph::{GraphBuilder, Op, ValueId};
use crate::layers::{apply_gate, global_avg_pool, ConvBn, GateValues};
use crate::params::ParamStore;
use crate::ModelError;
use ato_kernels::Activation;
use ato_kernels::Linear;
use ato_zig::blocks::{self, ConvBnSpec, InvertedResidualSpec};
use ato_zig::{ArchBuilder, Dim, GateId, LinearSpec};
use candle_core::{Module, Result, Tensor};

/// (expansion t, output channels c, repeats n, first stride s) of the paper's Table 2.
const SETTINGS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// Rounds `v` to a multiple of 8, never more than 10% below `v` (torchvision's rule).
pub fn make_divisible(v: f64) -> usize {
    let d = 8.0;
    let new = ((v + d / 2.0) / d).floor() * d;
    let new = new.max(d);
    if new < 0.9 * v {
        (new + d) as usize
    } else {
        new as usize
    }
}

struct InvertedResidual {
    expand: Option<ConvBn>,
    dw: ConvBn,
    project: ConvBn,
    gate: Option<GateId>,
    residual: bool,
}

impl InvertedResidual {
    fn new(
        spec: &InvertedResidualSpec,
        w: &[usize],
        s: &mut ParamStore,
    ) -> std::result::Result<Self, ModelError> {
        Ok(Self {
            expand: spec
                .expand
                .as_ref()
                .map(|e| ConvBn::new(e, w, s))
                .transpose()?,
            dw: ConvBn::new(&spec.depthwise, w, s)?,
            project: ConvBn::new(&spec.project, w, s)?,
            gate: spec.gate,
            residual: spec.residual,
        })
    }

    fn forward_t(&self, x: &Tensor, gates: Option<GateValues>, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        if let Some(e) = &self.expand {
            h = e.forward_act_t(&h, train, Activation::Relu6)?;
        }
        h = self.dw.forward_act_t(&h, train, Activation::Relu6)?;
        if let Some(g) = self.gate {
            h = apply_gate(h, gates, g)?;
        }
        if self.residual {
            self.project
                .forward_add_t(&h, x, train, Activation::Identity)
        } else {
            self.project.forward_t(&h, train)
        }
    }

    fn to_graph(&self, g: &mut GraphBuilder, x: ValueId) -> ValueId {
        let mut h = x;
        if let Some(e) = &self.expand {
            h = e.to_graph(g, h, Activation::Relu6);
        }
        h = self.dw.to_graph(g, h, Activation::Relu6);
        if self.residual {
            self.project.to_graph_add(g, h, x, Activation::Identity)
        } else {
            self.project.to_graph(g, h, Activation::Identity)
        }
    }
}

/// MobileNetV2 with gated hidden widths.
pub struct MobileNetV2 {
    stem: ConvBn,
    blocks: Vec<InvertedResidual>,
    head: ConvBn,
    classifier: Linear,
}

pub(crate) struct MobileNetV2Spec {
    stem: ConvBnSpec,
    blocks: Vec<InvertedResidualSpec>,
    head: ConvBnSpec,
    classifier: LinearSpec,
}

impl MobileNetV2 {
    pub(crate) fn build(
        b: &mut ArchBuilder,
        width_mult: f64,
        stem_stride: usize,
        num_classes: usize,
        (in_channels, input): (usize, usize),
    ) -> MobileNetV2Spec {
        let stem_ch = make_divisible(32.0 * width_mult);
        let last_ch = make_divisible(1280.0 * width_mult.max(1.0));
        let stem = blocks::conv_bn(
            b,
            "stem.conv",
            "stem.bn",
            Dim::Fixed(in_channels),
            Dim::Fixed(stem_ch),
            3,
            stem_stride,
            (input, input),
        );
        let mut hw = stem.out_hw();
        let mut in_ch = stem_ch;
        let mut specs = Vec::new();
        for &(t, c, n, s) in &SETTINGS {
            let out_ch = make_divisible(c as f64 * width_mult);
            for i in 0..n {
                let prefix = format!("features.{}", specs.len() + 1);
                let stride = if i == 0 { s } else { 1 };
                let spec = blocks::inverted_residual(b, &prefix, in_ch, out_ch, stride, t, hw);
                hw = spec.project.out_hw();
                in_ch = out_ch;
                specs.push(spec);
            }
        }
        let head = blocks::conv_bn(
            b,
            "head.conv",
            "head.bn",
            Dim::Fixed(in_ch),
            Dim::Fixed(last_ch),
            1,
            1,
            hw,
        );
        let classifier = b.linear("classifier", Dim::Fixed(last_ch), Dim::Fixed(num_classes));
        MobileNetV2Spec {
            stem,
            blocks: specs,
            head,
            classifier,
        }
    }

    pub(crate) fn new(
        spec: &MobileNetV2Spec,
        w: &[usize],
        s: &mut ParamStore,
    ) -> std::result::Result<Self, ModelError> {
        Ok(Self {
            stem: ConvBn::new(&spec.stem, w, s)?,
            blocks: spec
                .blocks
                .iter()
                .map(|b| InvertedResidual::new(b, w, s))
                .collect::<std::result::Result<_, _>>()?,
            head: ConvBn::new(&spec.head, w, s)?,
            classifier: crate::layers::linear(&spec.classifier, w, s)?,
        })
    }

    pub fn forward_t(&self, x: &Tensor, gates: Option<GateValues>, train: bool) -> Result<Tensor> {
        let mut h = self.stem.forward_act_t(x, train, Activation::Relu6)?;
        for b in &self.blocks {
            h = b.forward_t(&h, gates, train)?;
        }
        let h = self.head.forward_act_t(&h, train, Activation::Relu6)?;
        self.classifier.forward(&global_avg_pool(&h)?)
    }

    /// The eval-mode network as graph nodes on `g`'s input.
    pub(crate) fn to_graph(&self, g: &mut GraphBuilder) -> Result<ValueId> {
        let x = g.input();
        let mut h = self.stem.to_graph(g, x, Activation::Relu6);
        for b in &self.blocks {
            h = b.to_graph(g, h);
        }
        let h = self.head.to_graph(g, h, Activation::Relu6);
        let h = g.push(Op::GlobalAvgPool, &[h]);
        g.linear(h, "classifier", &self.classifier)
    }
}
