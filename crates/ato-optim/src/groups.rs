//! [`GroupSet`]: the zero-invariant groups of `ato-zig` bound to a model's variables.
//!
//! Every member slice of a gate is a row block along axis 0 (conv filters, depthwise filters,
//! BN γ and β), so the members of gate ℓ read as one `(C_ℓ, D_ℓ)` matrix whose row c is group
//! c — the view HSPG, DHSPG and the prox work on. Pure rescaling of groups (the prox) is applied
//! to each member in place without building the matrix.

use crate::{OptimError, Result};
use ato_zig::{Gate, Mask, NamedVars};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var, D};

/// One member tensor of a gate: the variable and its row length.
#[derive(Clone, Debug)]
struct Member {
    name: String,
    var: Var,
    cols: usize,
}

/// The groups of one gate.
#[derive(Clone, Debug)]
pub struct GateGroups {
    pub name: String,
    /// Number of groups (channels), C.
    pub width: usize,
    members: Vec<Member>,
}

/// Values of every gate's groups at one moment, one `(C, D)` matrix per gate.
#[derive(Clone, Debug)]
pub struct GroupSnapshot {
    pub per_gate: Vec<Tensor>,
}

impl GroupSnapshot {
    /// The groups that were not exactly zero at the snapshot (`true` = non-zero).
    pub fn nonzero_mask(&self) -> Result<Mask> {
        Ok(Mask::from_keep(
            self.per_gate
                .iter()
                .map(|x| Ok(row_sums(&x.sqr()?)?.into_iter().map(|n| n != 0.0).collect()))
                .collect::<Result<_>>()?,
        ))
    }
}

/// Every gate of a model with its groups' variables.
#[derive(Clone, Debug)]
pub struct GroupSet {
    gates: Vec<GateGroups>,
}

impl GateGroups {
    /// Elements per group, D.
    pub fn group_dim(&self) -> usize {
        self.members.iter().map(|m| m.cols).sum()
    }

    /// The device the variables live on.
    pub fn device(&self) -> &Device {
        self.members[0].var.device()
    }

    /// Names of the member tensors.
    pub fn member_names(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| m.name.as_str())
    }

    fn gather(&self, part: impl Fn(&Member) -> Result<Tensor>) -> Result<Tensor> {
        let rows: Vec<Tensor> = self
            .members
            .iter()
            .map(|m| Ok(part(m)?.reshape((self.width, m.cols))?))
            .collect::<Result<_>>()?;
        if rows.len() == 1 {
            // a reshape shares storage with the variable: copy so the result is a snapshot
            Ok(rows[0].copy()?)
        } else {
            Ok(Tensor::cat(&rows, 1)?)
        }
    }

    /// The current values, `(C, D)`, as a copy.
    pub fn values(&self) -> Result<Tensor> {
        self.gather(|m| Ok(m.var.as_tensor().detach()))
    }

    /// The gradients, `(C, D)`; members without a gradient contribute zeros.
    pub fn grads(&self, grads: &GradStore) -> Result<Tensor> {
        self.gather(|m| match grads.get(m.var.as_tensor()) {
            Some(g) => Ok(g.detach()),
            None => Ok(m.var.as_tensor().zeros_like()?),
        })
    }

    /// Writes a `(C, D)` matrix back into the member variables.
    pub fn set_values(&self, values: &Tensor) -> Result<()> {
        let mut start = 0;
        for m in &self.members {
            let part = values.narrow(1, start, m.cols)?;
            m.var.set(&part.reshape(m.var.shape())?.contiguous()?)?;
            start += m.cols;
        }
        Ok(())
    }

    /// Multiplies group c of every member by `factors[c]` (a `(C,)` tensor), in place.
    pub fn scale(&self, factors: &Tensor) -> Result<()> {
        for m in &self.members {
            let t = m.var.as_tensor();
            let mut shape = vec![1usize; t.rank()];
            shape[0] = self.width;
            let f = factors.to_dtype(t.dtype())?.reshape(shape)?;
            m.var.set(&t.broadcast_mul(&f)?)?;
        }
        Ok(())
    }

    /// Adds the `(C, D)` matrix `m` into the gradients of the member tensors, creating the
    /// entry of a member that has none.
    pub fn add_to_grads(&self, m: &Tensor, grads: &mut GradStore) -> Result<()> {
        let mut start = 0;
        for mem in &self.members {
            let t = mem.var.as_tensor();
            let part = m
                .narrow(1, start, mem.cols)?
                .reshape(t.shape())?
                .to_dtype(t.dtype())?;
            let sum = match grads.get(t) {
                Some(g) => (g.detach() + part)?,
                None => part.contiguous()?,
            };
            grads.insert(t, sum);
            start += mem.cols;
        }
        Ok(())
    }

    /// A `(1, D)` row holding `coef(member)` in every column of that member, or `None` when
    /// every coefficient is 0.
    pub fn column_coefficients(&self, coef: impl Fn(&str) -> f64) -> Result<Option<Tensor>> {
        let mut row = Vec::with_capacity(self.group_dim());
        for m in &self.members {
            row.extend(std::iter::repeat_n(coef(&m.name) as f32, m.cols));
        }
        if row.iter().all(|&c| c == 0.0) {
            return Ok(None);
        }
        let n = row.len();
        Ok(Some(Tensor::from_vec(row, (1, n), self.device())?))
    }

    /// Squared norm of every group, as host values.
    pub fn norms_sq(&self) -> Result<Vec<f32>> {
        row_sums(&self.values()?.sqr()?)
    }
}

/// Sum over the columns of a `(C, D)` matrix, as host values.
pub fn row_sums(m: &Tensor) -> Result<Vec<f32>> {
    Ok(m.sum(D::Minus1)?.to_vec1::<f32>()?)
}

/// `⟨a_c, b_c⟩` for every row c of two `(C, D)` matrices, as host values.
pub fn row_dots(a: &Tensor, b: &Tensor) -> Result<Vec<f32>> {
    row_sums(&(a * b)?)
}

impl GroupSet {
    /// Binds `gates` to the model's variables `vars`; every member must exist and be a row
    /// block along axis 0.
    pub fn new(gates: &[Gate], vars: &NamedVars) -> Result<Self> {
        let gates = gates
            .iter()
            .map(|g| {
                let members = g
                    .members
                    .iter()
                    .map(|ta| {
                        let var = vars
                            .get(&ta.tensor)
                            .ok_or_else(|| ato_zig::ZigError::MissingTensor(ta.tensor.clone()))?;
                        if ta.axis != 0 || var.dim(0)? != g.width {
                            return Err(OptimError::Config(format!(
                                "member `{}` of gate `{}` is not a row block of {} channels",
                                ta.tensor, g.name, g.width
                            )));
                        }
                        Ok(Member {
                            name: ta.tensor.clone(),
                            var: var.clone(),
                            cols: var.elem_count() / g.width,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                if members.is_empty() {
                    return Err(ato_zig::ZigError::NoMembers(g.name.clone()).into());
                }
                Ok(GateGroups {
                    name: g.name.clone(),
                    width: g.width,
                    members,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { gates })
    }

    pub fn gates(&self) -> &[GateGroups] {
        &self.gates
    }

    /// Number of gates.
    pub fn len(&self) -> usize {
        self.gates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.gates.is_empty()
    }

    /// Number of groups over all gates.
    pub fn total_groups(&self) -> usize {
        self.gates.iter().map(|g| g.width).sum()
    }

    /// Copies of every gate's current values.
    pub fn snapshot(&self) -> Result<GroupSnapshot> {
        Ok(GroupSnapshot {
            per_gate: self
                .gates
                .iter()
                .map(GateGroups::values)
                .collect::<Result<_>>()?,
        })
    }

    /// The groups that are not exactly zero, as a mask (`true` = non-zero, i.e. kept).
    pub fn nonzero_mask(&self) -> Result<Mask> {
        Ok(Mask::from_keep(
            self.gates
                .iter()
                .map(|g| Ok(g.norms_sq()?.into_iter().map(|n| n != 0.0).collect()))
                .collect::<Result<_>>()?,
        ))
    }

    /// Number of exactly-zero groups.
    pub fn count_zero_groups(&self) -> Result<usize> {
        Ok(self.nonzero_mask()?.dropped_count())
    }

    /// Whether every group `mask` drops is exactly zero in the model: then the masked forward
    /// equals the unmasked one (a zero group's channel is zero whatever its gate).
    pub fn zero_where_dropped(&self, mask: &Mask) -> Result<bool> {
        for (g, keep) in self.gates.iter().zip(mask.gates()) {
            if keep.iter().all(|&k| k) {
                continue;
            }
            // element by element: a squared norm underflows to 0 below ~1e-23
            let rows = g
                .values()?
                .to_dtype(candle_core::DType::F32)?
                .to_vec2::<f32>()?;
            if keep
                .iter()
                .zip(&rows)
                .any(|(&k, row)| !k && row.iter().any(|&w| w != 0.0))
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `f()` evaluated while the groups `mask` drops are zero (as [`GroupSet::zero_dropped`]
    /// sets them), every member tensor of a gate with a dropped group restored bit for bit
    /// afterwards. The model then computes exactly what the masked model does (zero
    /// invariance; `ato-models`' compaction test asserts the two forwards bitwise equal), at
    /// the price of an unmasked forward.
    pub fn with_dropped_zeroed<T>(&self, mask: &Mask, f: impl FnOnce() -> T) -> Result<T> {
        let saved = self
            .gates
            .iter()
            .zip(mask.gates())
            .filter(|(_, keep)| keep.iter().any(|&k| !k))
            .flat_map(|(g, _)| &g.members)
            .map(|m| Ok((m.var.clone(), m.var.as_tensor().copy()?)))
            .collect::<Result<Vec<_>>>()?;
        self.zero_dropped(mask)?;
        let out = f();
        for (var, value) in saved {
            var.set(&value)?;
        }
        Ok(out)
    }

    /// Sets the groups `mask` drops to exactly zero.
    pub fn zero_dropped(&self, mask: &Mask) -> Result<()> {
        for (g, keep) in self.gates.iter().zip(mask.gates()) {
            if keep.iter().any(|&k| !k) {
                let f: Vec<f32> = keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
                g.scale(&Tensor::from_vec(f, g.width, g.device())?)?;
            }
        }
        Ok(())
    }
}
