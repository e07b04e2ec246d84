//! Zero-invariant groups derived from an [`Arch`]: for every gate, which tensor slices form its
//! groups (members, shrunk and zeroed together), which are only sliced at compaction (BN
//! running statistics and the consuming layers' input channels).

use crate::arch::{Arch, Dim, GateId, Layer};

/// One axis of one named tensor; index `offset + c` along `axis` belongs to group c of the
/// gate. The offset is non-zero only for consumers of a concatenation (the gate's channels
/// start after the parts before it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorAxis {
    pub tensor: String,
    pub axis: usize,
    pub offset: usize,
}

impl TensorAxis {
    fn new(tensor: String, axis: usize) -> Self {
        Self {
            tensor,
            axis,
            offset: 0,
        }
    }
}

/// A prunable channel dimension with its zero-invariant groups.
///
/// If every member slice of group c is zero, channel c outputs exactly zero after BN and the
/// activation, so removing it with its buffer and consumer slices changes no output.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    pub id: GateId,
    pub name: String,
    pub width: usize,
    /// Trainable slices of group c: producing conv rows, depthwise filters, BN γ and β.
    pub members: Vec<TensorAxis>,
    /// Non-trainable slices (BN running mean and variance), sliced at compaction only.
    pub buffers: Vec<TensorAxis>,
    /// Input-channel slices of the layers that read the gated channels.
    pub consumers: Vec<TensorAxis>,
}

impl Gate {
    /// Members, buffers and consumers: every slice compaction must cut.
    pub fn all_slices(&self) -> impl Iterator<Item = &TensorAxis> {
        self.members
            .iter()
            .chain(&self.buffers)
            .chain(&self.consumers)
    }
}

/// The gates of `arch` with their groups, in gate order.
pub fn gates(arch: &Arch) -> Vec<Gate> {
    let mut gates: Vec<Gate> = arch
        .gates
        .iter()
        .enumerate()
        .map(|(id, g)| Gate {
            id,
            name: g.name.clone(),
            width: g.width,
            members: vec![],
            buffers: vec![],
            consumers: vec![],
        })
        .collect();
    let widths = arch.gate_widths();
    let mut member = |d: Dim, t: String, axis: usize| {
        if let Dim::Gate(g) = d {
            gates[g].members.push(TensorAxis::new(t, axis));
        }
    };
    let mut later: Vec<(GateId, TensorAxis, bool)> = Vec::new();
    for layer in &arch.layers {
        match layer {
            Layer::Conv(c) => {
                member(c.out_dim, format!("{}.weight", c.path), 0);
                if c.bias {
                    member(c.out_dim, format!("{}.bias", c.path), 0);
                }
                if !c.depthwise {
                    let mut offset = 0;
                    for part in c.inputs() {
                        if let Dim::Gate(g) = part {
                            let mut slice = TensorAxis::new(format!("{}.weight", c.path), 1);
                            slice.offset = offset;
                            later.push((g, slice, false));
                        }
                        offset += part.resolve(&widths);
                    }
                }
            }
            Layer::Bn(b) => {
                member(b.dim, format!("{}.weight", b.path), 0);
                member(b.dim, format!("{}.bias", b.path), 0);
                if let Dim::Gate(g) = b.dim {
                    for s in ["running_mean", "running_var"] {
                        later.push((g, TensorAxis::new(format!("{}.{s}", b.path), 0), true));
                    }
                }
            }
            Layer::Linear(l) => {
                member(l.out_dim, format!("{}.weight", l.path), 0);
                member(l.out_dim, format!("{}.bias", l.path), 0);
                if let Dim::Gate(g) = l.in_dim {
                    later.push((g, TensorAxis::new(format!("{}.weight", l.path), 1), false));
                }
            }
        }
    }
    for (g, slice, is_buffer) in later {
        if is_buffer {
            gates[g].buffers.push(slice);
        } else {
            gates[g].consumers.push(slice);
        }
    }
    gates
}
