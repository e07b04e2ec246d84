//! [`GraphSketch`]: a graph written layer by layer with seeded random tensors, named as the
//! ONNX importer names them — how tests (and `ato-onnx`'s examples) build networks that are
//! not built in, such as [`vgg_with_concat`].

use crate::graph::{NetworkGraph, Node, Op, ValueId};
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// A graph under construction; values are numbered as in [`NetworkGraph`].
pub struct GraphSketch {
    graph: NetworkGraph,
    rng: ChaCha8Rng,
}

impl GraphSketch {
    /// An empty graph on (C, H, W) images, tensors drawn from `seed`.
    pub fn new(input: (usize, usize, usize), seed: u64) -> Self {
        Self {
            graph: NetworkGraph {
                nodes: vec![],
                params: vec![],
                input,
                num_classes: 0,
            },
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A tensor of N(0, std²) values (or `std` everywhere when `constant`).
    fn tensor(&mut self, name: &str, shape: &[usize], std: f32, constant: bool) -> String {
        let n = shape.iter().product();
        let normal = Normal::new(0.0, std).expect("finite std");
        let v: Vec<f32> = (0..n)
            .map(|_| {
                if constant {
                    std
                } else {
                    normal.sample(&mut self.rng)
                }
            })
            .collect();
        let t = Tensor::from_vec(v, shape, &Device::Cpu).expect("shape fits");
        self.graph.params.push((name.to_string(), t));
        name.to_string()
    }

    /// Appends a node; its output value.
    pub fn push(&mut self, op: Op, inputs: &[ValueId]) -> ValueId {
        self.graph.nodes.push(Node {
            op,
            inputs: inputs.to_vec(),
        });
        self.graph.nodes.len()
    }

    /// A 3×3 (or `kernel`) conv, padding `kernel/2`, stride 1, without bias: `{path}.weight`.
    pub fn conv(
        &mut self,
        x: ValueId,
        path: &str,
        cin: usize,
        cout: usize,
        groups: usize,
    ) -> ValueId {
        let std = (2.0 / (9 * cout) as f32).sqrt();
        let weight = self.tensor(
            &format!("{path}.weight"),
            &[cout, cin / groups, 3, 3],
            std,
            false,
        );
        self.push(
            Op::Conv {
                weight,
                bias: None,
                stride: 1,
                padding: 1,
                groups,
            },
            &[x],
        )
    }

    /// Inference BatchNorm over `c` channels: `{path}.weight`, `.bias`, `.running_mean`, `.running_var`.
    pub fn bn(&mut self, x: ValueId, path: &str, c: usize) -> ValueId {
        let op = Op::BatchNorm {
            scale: self.tensor(&format!("{path}.weight"), &[c], 1.0, true),
            bias: self.tensor(&format!("{path}.bias"), &[c], 0.1, false),
            mean: self.tensor(&format!("{path}.running_mean"), &[c], 0.1, false),
            var: self.tensor(&format!("{path}.running_var"), &[c], 1.0, true),
            eps: 1e-5,
        };
        self.push(op, &[x])
    }

    /// conv → BN (`{path}.bn`) → ReLU.
    pub fn conv_bn_relu(&mut self, x: ValueId, path: &str, cin: usize, cout: usize) -> ValueId {
        let c = self.conv(x, path, cin, cout, 1);
        let b = self.bn(c, &format!("{path}.bn"), cout);
        self.push(Op::Relu, &[b])
    }

    /// Global average pooling and a linear classifier `fc`: the finished graph.
    pub fn classifier(mut self, x: ValueId, features: usize, classes: usize) -> NetworkGraph {
        let p = self.push(Op::GlobalAvgPool, &[x]);
        let bound = 1.0 / (features as f32).sqrt();
        let op = Op::Linear {
            weight: self.tensor("fc.weight", &[classes, features], bound, false),
            bias: self.tensor("fc.bias", &[classes], bound, false),
        };
        self.push(op, &[p]);
        self.graph.num_classes = classes;
        self.graph
    }
}

/// A VGG-style plain CNN with an Inception-like concat branch, `width` channels in the first
/// stage: stem → conv → max-pool → {conv | conv → conv} → concat → conv → max-pool → conv →
/// classifier. Not a built-in architecture: what the import tests prune.
pub fn vgg_with_concat(
    input: (usize, usize, usize),
    classes: usize,
    width: usize,
    seed: u64,
) -> NetworkGraph {
    let w = width;
    let mut g = GraphSketch::new(input, seed);
    let h = g.conv_bn_relu(0, "stem", input.0, w);
    let h = g.conv_bn_relu(h, "conv1", w, w);
    let pool = Op::MaxPool {
        kernel: 2,
        stride: 2,
        padding: 0,
    };
    let h = g.push(pool.clone(), &[h]);
    let a = g.conv_bn_relu(h, "branch_a", w, w);
    let b = g.conv_bn_relu(h, "branch_b1", w, w / 2);
    let b = g.conv_bn_relu(b, "branch_b2", w / 2, w);
    let cat = g.push(Op::Concat, &[a, b]);
    let h = g.conv_bn_relu(cat, "conv2", 2 * w, 2 * w);
    let h = g.push(pool, &[h]);
    let h = g.conv_bn_relu(h, "conv3", 2 * w, 2 * w);
    g.classifier(h, 2 * w, classes)
}
