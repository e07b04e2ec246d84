//! [`Model`]: a network of the registry with its architecture record, gates and variables.

use crate::config::{Family, ModelConfig};
use crate::graph::{GraphBuilder, NetworkGraph};
use crate::graph_net::GraphNet;
use crate::layers::GateValues;
use crate::mobilenetv2::MobileNetV2;
use crate::params::ParamStore;
use crate::resnet::{ResNet, ResNetLayout};
use crate::ModelError;
use ato_zig::{
    compact_tensors, gates, Arch, ArchBuilder, Gate, KeptChannels, NamedVars, WidthPolynomial,
};
use candle_core::{Device, Result as CandleResult, Tensor, Var};
use candle_nn::VarMap;
use std::collections::HashMap;

enum Network {
    ResNet(ResNet),
    MobileNetV2(MobileNetV2),
    Graph(GraphNet),
}

/// A model of the registry: the network, its [`Arch`], its gates and its variables.
pub struct Model {
    config: ModelConfig,
    arch: Arch,
    gates: Vec<Gate>,
    varmap: VarMap,
    device: Device,
    network: Network,
}

/// A network whose weights are constants (detached tensors), evaluated in eval mode: see
/// [`Model::forward_frozen`] and [`Model::frozen_copy`].
pub struct FrozenModel {
    network: Network,
    gates: Vec<Gate>,
}

impl FrozenModel {
    /// Eval-mode logits of `x` with optional gate vectors (as [`Model::forward_t`]).
    pub fn forward(&self, x: &Tensor, gates: Option<&[Tensor]>) -> CandleResult<Tensor> {
        Model::run(&self.network, &self.gates, x, gates, false)
    }
}

/// True for BN running statistics, which are stored with the model but never trained.
pub fn is_buffer(name: &str) -> bool {
    name.ends_with(".running_mean") || name.ends_with(".running_var")
}

impl Model {
    /// A freshly initialised model; the same seed gives the same weights on every device.
    pub fn new(config: &ModelConfig, device: &Device, seed: u64) -> Result<Self, ModelError> {
        Self::build(config, device, ParamStore::fresh(device, seed))
    }

    /// A model whose tensors (parameters and running statistics) are `tensors`; every tensor
    /// must be present with the architecture's shape, and none may be left over.
    pub fn from_tensors(
        config: &ModelConfig,
        tensors: HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        Self::build(config, device, ParamStore::given(device, tensors))
    }

    fn build(
        config: &ModelConfig,
        device: &Device,
        mut store: ParamStore,
    ) -> Result<Self, ModelError> {
        let (arch, network) = instantiate(config, &mut store)?;
        let varmap = store.finish()?;
        Ok(Self {
            config: config.clone(),
            gates: gates(&arch),
            arch,
            varmap,
            device: device.clone(),
            network,
        })
    }

    /// Logits for a batch `x` of shape (N, 3, H, W). `gates`, when given, holds one (C_g,)
    /// multiplier per gate applied to the gated channels (differentiable: the controller's
    /// masks enter here). `train` selects batch statistics (and updates the running ones).
    pub fn forward_t(
        &self,
        x: &Tensor,
        gates: Option<&[Tensor]>,
        train: bool,
    ) -> CandleResult<Tensor> {
        Self::run(&self.network, &self.gates, x, gates, train)
    }

    fn run(
        network: &Network,
        model_gates: &[Gate],
        x: &Tensor,
        gates: Option<&[Tensor]>,
        train: bool,
    ) -> CandleResult<Tensor> {
        if let Some(g) = gates {
            if g.len() != model_gates.len() {
                candle_core::bail!(
                    "{} gate vectors given, the model has {} gates",
                    g.len(),
                    model_gates.len()
                );
            }
            for (t, gate) in g.iter().zip(model_gates) {
                if t.dims() != [gate.width] {
                    candle_core::bail!(
                        "gate `{}` expects shape [{}], got {:?}",
                        gate.name,
                        gate.width,
                        t.dims()
                    );
                }
            }
        }
        let g = gates.map(GateValues);
        match network {
            Network::ResNet(n) => n.forward_t(x, g, train),
            Network::MobileNetV2(n) => n.forward_t(x, g, train),
            Network::Graph(n) => n.forward_t(x, g, train),
        }
    }

    /// Eval-mode logits through detached views of the weights: gradients reach `x` and the
    /// gate vectors but no parameter, and no weight gradient is computed — what the ATO
    /// controller's step needs (its loss trains the controller only). The views share storage
    /// with the variables, so they always see the current weights and running statistics.
    pub fn forward_frozen(&self, x: &Tensor, gates: Option<&[Tensor]>) -> CandleResult<Tensor> {
        self.frozen_view()?.forward(x, gates)
    }

    /// The network on detached views of the variables (shared storage): it computes what the
    /// model's weights are when it is called.
    pub fn frozen_view(&self) -> CandleResult<FrozenModel> {
        self.frozen_with(|t| Ok(t.clone()))
    }

    /// The network on a copy of the current weights and running statistics, detached: it
    /// computes what [`Model::forward_frozen`] computes now, whatever the model's variables
    /// do afterwards, and it can move to another thread.
    pub fn frozen_copy(&self) -> CandleResult<FrozenModel> {
        self.frozen_with(Tensor::copy)
    }

    fn frozen_with(
        &self,
        take: impl Fn(&Tensor) -> CandleResult<Tensor>,
    ) -> CandleResult<FrozenModel> {
        let tensors = self
            .named_vars()
            .into_iter()
            .map(|(n, v)| Ok((n, take(v.as_tensor())?)))
            .collect::<CandleResult<_>>()?;
        let mut store = ParamStore::frozen(&self.device, tensors);
        let (_, network) = instantiate(&self.config, &mut store)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        Ok(FrozenModel {
            network,
            gates: self.gates.clone(),
        })
    }

    /// The eval-mode network as a graph of standard operators (for exporters; see
    /// [`crate::graph`]), with the model's current tensors.
    pub fn graph(&self) -> CandleResult<NetworkGraph> {
        let mut g = GraphBuilder::new();
        match &self.network {
            Network::ResNet(n) => n.to_graph(&mut g)?,
            Network::MobileNetV2(n) => n.to_graph(&mut g)?,
            Network::Graph(n) => n.to_graph(&mut g)?,
        };
        let c = &self.config;
        Ok(g.finish((c.in_channels, c.input_size, c.input_size), c.num_classes))
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }
    pub fn arch(&self) -> &Arch {
        &self.arch
    }
    /// The gates with their zero-invariant groups.
    pub fn gates(&self) -> &[Gate] {
        &self.gates
    }
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A snapshot of the name → variable map (variables share storage with the model).
    pub fn named_vars(&self) -> NamedVars {
        self.varmap.data().lock().expect("var map lock").clone()
    }

    /// Trainable variables (everything but BN running statistics), sorted by name so that
    /// optimisers visit them in a deterministic order.
    pub fn trainable_vars(&self) -> Vec<(String, Var)> {
        let mut v: Vec<(String, Var)> = self
            .named_vars()
            .into_iter()
            .filter(|(n, _)| !is_buffer(n))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Detached copies of every tensor (parameters and running statistics).
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.named_vars()
            .into_iter()
            .map(|(n, v)| (n, v.as_detached_tensor().copy().expect("copy")))
            .collect()
    }

    /// Trainable parameters, counted from the variables themselves.
    pub fn param_count(&self) -> usize {
        self.trainable_vars()
            .iter()
            .map(|(_, v)| v.elem_count())
            .sum()
    }

    /// The MACs polynomial of this architecture.
    pub fn macs_polynomial(&self) -> WidthPolynomial {
        WidthPolynomial::macs(&self.arch)
    }

    /// Conv + linear multiply-accumulates for one image at the current widths.
    pub fn macs(&self) -> u64 {
        self.macs_polynomial().eval(&self.arch.gate_widths())
    }

    /// The same architecture at the kept widths, with every member, running-statistic and
    /// consumer tensor sliced. Where the dropped groups are zero, its outputs equal this
    /// model's (docs/design.md §3).
    pub fn compact(&self, kept: &KeptChannels) -> Result<Model, ModelError> {
        let tensors = compact_tensors(&self.gates, &self.tensors(), kept)?;
        let widths: Vec<usize> = kept.widths();
        let mut config = self.config.clone();
        config.widths = Some(widths);
        Model::from_tensors(&config, tensors, &self.device)
    }
}

fn instantiate(
    config: &ModelConfig,
    store: &mut ParamStore,
) -> Result<(Arch, Network), ModelError> {
    let (arch, declared) = declare(config)?;
    let widths = arch.gate_widths();
    let network = match declared {
        Declared::ResNet(s) => Network::ResNet(ResNet::new(&s, &widths, store)?),
        Declared::MobileNetV2(s) => Network::MobileNetV2(MobileNetV2::new(&s, &widths, store)?),
        Declared::Graph(d) => {
            let spec = config
                .graph
                .as_ref()
                .expect("validated: a graph model has its graph");
            Network::Graph(GraphNet::new(spec, &d, &widths, store)?)
        }
    };
    Ok((arch, network))
}

/// The architecture record of `config` without creating any tensor (what `ato info` prints).
pub fn describe(config: &ModelConfig) -> Result<Arch, ModelError> {
    Ok(declare(config)?.0)
}

fn declare(config: &ModelConfig) -> Result<(Arch, Declared), ModelError> {
    config.validate()?;
    let mut b = ArchBuilder::with_widths(config.widths.clone());
    let resnet = match config.name.family() {
        Family::CifarResNet { blocks_per_stage } => Some((
            ResNetLayout::Cifar {
                blocks_per_stage,
                shortcut: config.shortcut,
            },
            16,
        )),
        Family::ImageNetBasic { blocks } => Some((
            ResNetLayout::ImageNet {
                blocks,
                bottleneck: false,
            },
            64,
        )),
        Family::ImageNetBottleneck { blocks } => Some((
            ResNetLayout::ImageNet {
                blocks,
                bottleneck: true,
            },
            64,
        )),
        Family::MobileNetV2 | Family::Graph => None,
    };
    let declared = match resnet {
        Some((layout, default_base)) => Declared::ResNet(ResNet::build(
            &mut b,
            layout,
            config.base_width.unwrap_or(default_base),
            config.num_classes,
            (config.in_channels, config.input_size),
        )),
        None if config.name.family() == Family::Graph => {
            let spec = config
                .graph
                .as_ref()
                .expect("validated: a graph model has its graph");
            let input = [config.in_channels, config.input_size, config.input_size];
            Declared::Graph(crate::graph_spec::declare(spec, input, &mut b)?)
        }
        None => {
            let stride = config
                .stem_stride
                .unwrap_or(if config.input_size <= 64 { 1 } else { 2 });
            Declared::MobileNetV2(MobileNetV2::build(
                &mut b,
                config.width_mult,
                stride,
                config.num_classes,
                (config.in_channels, config.input_size),
            ))
        }
    };
    Ok((b.finish()?, declared))
}

enum Declared {
    ResNet(crate::resnet::ResNetSpec),
    MobileNetV2(crate::mobilenetv2::MobileNetV2Spec),
    Graph(crate::graph_spec::GraphDecl),
}

#[cfg(test)]
mod frozen_tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn a_frozen_copy_keeps_the_weights_it_was_taken_with() {
        assert_send::<FrozenModel>();
        let mut cfg = ModelConfig::new(crate::ModelName::Resnet20, 10, 8);
        cfg.base_width = Some(4);
        let model = Model::new(&cfg, &Device::Cpu, 3).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &Device::Cpu).unwrap();
        let copy = model.frozen_copy().unwrap();
        let before = model.forward_frozen(&x, None).unwrap();
        let bits = |t: &Tensor| -> Vec<u32> {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            v.iter().map(|f| f.to_bits()).collect()
        };
        assert_eq!(bits(&copy.forward(&x, None).unwrap()), bits(&before));
        // move the model's weights: the copy keeps computing the old logits, the views follow
        for (_, var) in model.trainable_vars() {
            var.set(&var.as_tensor().affine(0.5, 0.01).unwrap())
                .unwrap();
        }
        let after = model.forward_frozen(&x, None).unwrap();
        assert_ne!(
            bits(&after),
            bits(&before),
            "negative control: the weights did move"
        );
        assert_eq!(bits(&copy.forward(&x, None).unwrap()), bits(&before));
    }
}
