//! The channel groups of a graph, found from its operators (issue 29): which channels are
//! coupled, and which of the coupled sets may be pruned.
//!
//! Every value's channels are a list of **segments**, each a run of channels of one
//! **channel class**. A dense conv (or a hidden linear layer) starts a class for its output
//! channels; BatchNorm, activations, pools and a depthwise conv pass their input's classes
//! through (a depthwise filter and a BN row belong to the class of their channel); `Add`
//! unites the classes of its operands segment by segment (a union–find), so channels coupled
//! through a residual join are one class; `Concat` lists its inputs' segments one after the
//! other (its consumer's input channels are cut at offsets).
//!
//! A class becomes a **gate** (its channels prunable, each with its zero-invariant group) unless
//! it is fixed. Always fixed: the input image's channels, the classifier's outputs, and every
//! class the implementation cannot cut exactly — channels a grouped (not depthwise) conv
//! reads or writes, a BN or depthwise conv over a concatenation, an `Add` whose segments do
//! not line up, a flatten with spatial extent, a hidden linear layer reading a concatenation.
//! [`GroupPolicy::Inner`] (the default) also fixes what the built-in models keep: channels
//! joined by an `Add` (residual streams), the stem's output (the first conv), the channels
//! the classifier reads, and channels no activation follows (linear bottlenecks). So an
//! exported built-in model, imported back, has the built-in's gates.
//! [`GroupPolicy::All`] prunes those too.

use crate::graph::{Node, Op};
use crate::graph_shapes::{is_depthwise, ValueShape};
use serde::{Deserialize, Serialize};

/// Which coupled channel sets become gates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupPolicy {
    /// As the built-in models: block-internal channels only.
    #[default]
    Inner,
    /// Every class that can be cut exactly, residual streams and the stem included.
    All,
}

/// A run of `len` channels of class `class` (a root of the union–find after [`find_groups`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub class: usize,
    pub len: usize,
}

/// The channel classes of a graph and which of them are gates.
#[derive(Clone, Debug)]
pub struct ChannelPlan {
    /// Segments of every value (value 0 = the input).
    pub segments: Vec<Vec<Segment>>,
    /// Per class: its gate index, or `None` when fixed (indexed by class root).
    pub gate_of: Vec<Option<usize>>,
    /// Per gate: its class, its width and its name (the first producing layer's node index).
    pub gates: Vec<(usize, usize, usize)>,
    /// Per class: why it is fixed (`None` for gates and for classes nothing fixed).
    pub fixed_because: Vec<Option<&'static str>>,
}

impl ChannelPlan {
    /// The gate of a segment, if its class is one.
    pub fn gate(&self, s: Segment) -> Option<usize> {
        self.gate_of[s.class]
    }
}

#[derive(Default)]
struct Classes {
    parent: Vec<usize>,
    width: Vec<usize>,
    /// First producing node (conv or hidden linear), if any.
    producer: Vec<Option<usize>>,
    fixed: Vec<Option<&'static str>>,
    inner_fixed: Vec<Option<&'static str>>,
    activated: Vec<bool>,
}

impl Classes {
    fn new_class(&mut self, width: usize, producer: Option<usize>) -> usize {
        self.parent.push(self.parent.len());
        self.width.push(width);
        self.producer.push(producer);
        self.fixed.push(None);
        self.inner_fixed.push(None);
        self.activated.push(false);
        self.parent.len() - 1
    }

    fn root(&mut self, mut c: usize) -> usize {
        while self.parent[c] != c {
            self.parent[c] = self.parent[self.parent[c]];
            c = self.parent[c];
        }
        c
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.root(a), self.root(b));
        if a == b {
            return;
        }
        let (keep, gone) = (a.min(b), a.max(b));
        self.parent[gone] = keep;
        self.producer[keep] = match (self.producer[keep], self.producer[gone]) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        self.fixed[keep] = self.fixed[keep].or(self.fixed[gone]);
        self.inner_fixed[keep] = self.inner_fixed[keep].or(self.inner_fixed[gone]);
        self.activated[keep] |= self.activated[gone];
    }

    fn fix(&mut self, segs: &[Segment], why: &'static str) {
        for s in segs {
            let r = self.root(s.class);
            self.fixed[r].get_or_insert(why);
        }
    }

    fn fix_inner(&mut self, segs: &[Segment], why: &'static str) {
        for s in segs {
            let r = self.root(s.class);
            self.inner_fixed[r].get_or_insert(why);
        }
    }
}

/// Finds the channel classes of `nodes` (whose value shapes are `shapes`, see
/// [`crate::graph_shapes::value_shapes`]) and makes gates of them under `policy`.
pub fn find_groups(nodes: &[Node], shapes: &[ValueShape], policy: GroupPolicy) -> ChannelPlan {
    let mut cl = Classes::default();
    let input = cl.new_class(shapes[0][0], None);
    cl.fixed[input] = Some("the input image's channels");
    let mut segs: Vec<Vec<Segment>> = vec![vec![Segment {
        class: input,
        len: shapes[0][0],
    }]];
    let mut first_conv = true;
    let last = nodes.len().saturating_sub(1);
    for (k, node) in nodes.iter().enumerate() {
        let a = segs[node.inputs[0]].clone();
        let out_channels = shapes[k + 1][0];
        let fresh = |cl: &mut Classes, producer| {
            vec![Segment {
                class: cl.new_class(out_channels, Some(producer)),
                len: out_channels,
            }]
        };
        let out = match &node.op {
            Op::Conv { groups, .. } => {
                let in_channels = shapes[node.inputs[0]][0];
                if is_depthwise(*groups, in_channels, out_channels) {
                    if a.len() > 1 {
                        cl.fix(&a, "a depthwise conv over a concatenation");
                    }
                    a
                } else {
                    let out = fresh(&mut cl, k);
                    if *groups > 1 {
                        cl.fix(&a, "read by a grouped conv");
                        cl.fix(&out, "written by a grouped conv");
                    }
                    if std::mem::take(&mut first_conv) {
                        cl.fix_inner(&out, "the stem's output");
                    }
                    out
                }
            }
            Op::BatchNorm { .. } => {
                if a.len() > 1 {
                    cl.fix(&a, "a BatchNorm over a concatenation");
                }
                a
            }
            Op::Relu | Op::Relu6 => {
                for s in &a {
                    let r = cl.root(s.class);
                    cl.activated[r] = true;
                }
                a
            }
            Op::Add => {
                let b = segs[node.inputs[1]].clone();
                let lens = |s: &[Segment]| s.iter().map(|x| x.len).collect::<Vec<_>>();
                if lens(&a) == lens(&b) {
                    for (x, y) in a.iter().zip(&b) {
                        cl.union(x.class, y.class);
                    }
                } else {
                    cl.fix(&a, "an Add whose operands' segments do not line up");
                    cl.fix(&b, "an Add whose operands' segments do not line up");
                }
                cl.fix_inner(&a, "a residual stream (joined by an Add)");
                a
            }
            Op::PadChannels { before, after } => {
                let mut out = Vec::new();
                for n in [*before, *after] {
                    let c = cl.new_class(n, None);
                    cl.fixed[c] = Some("zero padding");
                    out.push(Segment { class: c, len: n });
                }
                let tail = out.pop().expect("two pads");
                out.extend(a);
                out.push(tail);
                out.retain(|s| s.len > 0);
                out
            }
            Op::Subsample2 | Op::MaxPool { .. } | Op::AvgPool { .. } | Op::GlobalAvgPool => a,
            Op::Flatten => {
                let spatial: usize = shapes[node.inputs[0]].iter().skip(1).product();
                if spatial == 1 {
                    a
                } else {
                    cl.fix(&a, "flattened with its spatial extent");
                    let c = cl.new_class(out_channels, None);
                    cl.fixed[c] = Some("flattened with its spatial extent");
                    vec![Segment {
                        class: c,
                        len: out_channels,
                    }]
                }
            }
            Op::Concat => node.inputs.iter().flat_map(|&v| segs[v].clone()).collect(),
            Op::Linear { .. } => {
                if k == last {
                    cl.fix_inner(&a, "read by the classifier");
                } else if a.len() > 1 {
                    cl.fix(&a, "a hidden linear layer reading a concatenation");
                }
                fresh(&mut cl, k)
            }
        };
        segs.push(out);
    }
    if let Some(out) = segs.last().cloned() {
        cl.fix(&out, "the classifier's outputs");
    }
    // roots everywhere, then the gates in order of first appearance
    let n = cl.parent.len();
    let roots: Vec<usize> = (0..n).map(|c| cl.root(c)).collect();
    for v in &mut segs {
        for s in v.iter_mut() {
            s.class = roots[s.class];
        }
    }
    let mut fixed_because = vec![None; n];
    let mut gate_of = vec![None; n];
    let mut gates = Vec::new();
    for v in &segs {
        for s in v {
            let c = s.class;
            if gate_of[c].is_some() || fixed_because[c].is_some() {
                continue;
            }
            let why = cl.fixed[c].or(match policy {
                GroupPolicy::All => None,
                GroupPolicy::Inner => cl.inner_fixed[c].or(if cl.activated[c] {
                    None
                } else {
                    Some("no activation follows (a linear bottleneck)")
                }),
            });
            match (why, cl.producer[c]) {
                (Some(w), _) => fixed_because[c] = Some(w),
                (None, None) => fixed_because[c] = Some("no layer produces it"),
                (None, Some(p)) => {
                    gate_of[c] = Some(gates.len());
                    gates.push((c, cl.width[c], p));
                }
            }
        }
    }
    ChannelPlan {
        segments: segs,
        gate_of,
        gates,
        fixed_because,
    }
}
