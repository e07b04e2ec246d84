//! [`ArchBuilder`]: records layers and gates while a model describes itself.

use crate::arch::{Arch, BnSpec, ConvSpec, Dim, GateSpec, Layer, LinearSpec};
use crate::ZigError;

/// Output spatial size of a convolution or pooling window.
pub fn conv_out(size: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    (size + 2 * padding - kernel) / stride + 1
}

/// Records an [`Arch`]. Gate widths default to the width each gate is declared with and can be
/// overridden up front (a compact model is the same builder run with smaller widths).
#[derive(Debug, Default)]
pub struct ArchBuilder {
    arch: Arch,
    width_override: Option<Vec<usize>>,
}

impl ArchBuilder {
    /// A builder whose gates take their declared (full) widths.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder whose i-th declared gate takes `widths[i]` instead of its declared width.
    pub fn with_widths(widths: Option<Vec<usize>>) -> Self {
        Self {
            arch: Arch::default(),
            width_override: widths,
        }
    }

    /// Declares a prunable channel dimension of full width `width`.
    pub fn gate(&mut self, name: impl Into<String>, width: usize) -> Dim {
        let id = self.arch.gates.len();
        let width = match &self.width_override {
            Some(w) => w.get(id).copied().unwrap_or(0),
            None => width,
        };
        self.arch.gates.push(GateSpec {
            name: name.into(),
            width,
        });
        Dim::Gate(id)
    }

    /// Current width of a dimension.
    pub fn width(&self, dim: Dim) -> usize {
        match dim {
            Dim::Fixed(n) => n,
            Dim::Gate(g) => self.arch.gates[g].width,
        }
    }

    /// A dense convolution without bias.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        path: impl Into<String>,
        in_dim: Dim,
        out_dim: Dim,
        kernel: usize,
        stride: usize,
        padding: usize,
        in_hw: (usize, usize),
    ) -> ConvSpec {
        self.push_conv(
            path.into(),
            in_dim,
            out_dim,
            kernel,
            stride,
            padding,
            false,
            in_hw,
        )
    }

    /// A depthwise convolution (one filter per channel) without bias.
    pub fn depthwise(
        &mut self,
        path: impl Into<String>,
        dim: Dim,
        kernel: usize,
        stride: usize,
        padding: usize,
        in_hw: (usize, usize),
    ) -> ConvSpec {
        self.push_conv(path.into(), dim, dim, kernel, stride, padding, true, in_hw)
    }

    #[allow(clippy::too_many_arguments)]
    fn push_conv(
        &mut self,
        path: String,
        in_dim: Dim,
        out_dim: Dim,
        kernel: usize,
        stride: usize,
        padding: usize,
        depthwise: bool,
        in_hw: (usize, usize),
    ) -> ConvSpec {
        let out_hw = (
            conv_out(in_hw.0, kernel, stride, padding),
            conv_out(in_hw.1, kernel, stride, padding),
        );
        let spec = ConvSpec {
            path,
            in_dim,
            in_parts: Vec::new(),
            groups: 1,
            out_dim,
            kernel,
            stride,
            padding,
            depthwise,
            bias: false,
            in_hw,
            out_hw,
        };
        self.arch.layers.push(Layer::Conv(spec.clone()));
        spec
    }

    /// A convolution as specified (concatenated inputs, groups, bias: what an imported graph
    /// needs); `out_hw` is recomputed from `in_hw`. Grouped dense convs must have fixed widths.
    pub fn conv_spec(&mut self, mut spec: ConvSpec) -> ConvSpec {
        spec.out_hw = (
            conv_out(spec.in_hw.0, spec.kernel, spec.stride, spec.padding),
            conv_out(spec.in_hw.1, spec.kernel, spec.stride, spec.padding),
        );
        self.arch.layers.push(Layer::Conv(spec.clone()));
        spec
    }

    /// Batch normalisation over `dim` channels.
    pub fn bn(&mut self, path: impl Into<String>, dim: Dim) -> BnSpec {
        let spec = BnSpec {
            path: path.into(),
            dim,
        };
        self.arch.layers.push(Layer::Bn(spec.clone()));
        spec
    }

    /// A fully connected layer with bias.
    pub fn linear(&mut self, path: impl Into<String>, in_dim: Dim, out_dim: Dim) -> LinearSpec {
        let spec = LinearSpec {
            path: path.into(),
            in_dim,
            out_dim,
        };
        self.arch.layers.push(Layer::Linear(spec.clone()));
        spec
    }

    /// The finished architecture; fails if a width override does not fit the declared gates.
    pub fn finish(self) -> Result<Arch, ZigError> {
        if let Some(w) = &self.width_override {
            if w.len() != self.arch.gates.len() {
                return Err(ZigError::WidthCount {
                    expected: self.arch.gates.len(),
                    got: w.len(),
                });
            }
        }
        if let Some(g) = self.arch.gates.iter().find(|g| g.width == 0) {
            return Err(ZigError::ZeroWidth(g.name.clone()));
        }
        Ok(self.arch)
    }
}
