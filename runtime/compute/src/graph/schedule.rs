//! Lowering a [`Graph`] into a [`Schedule`]: the list of op dispatches of one step (forward,
//! losses, backward, optimizer) over buffer slots planned once.
//!
//! # Reverse mode
//!
//! The backward pass visits the nodes needing a gradient in reverse order. The gradient of a
//! node is the sum (`Add` dispatches) of the contributions of its consumers; a loss term of
//! weight `w` contributes `w * dpred` (the loss ops produce `dpred` with the loss). Per layer
//! (`g` is the node's gradient):
//!
//! | layer | contributions |
//! |---|---|
//! | `MatMul` | `dA = g op(B)ᵀ` / `op(B) gᵀ`, `dB = op(A)ᵀ g` / `gᵀ op(A)` (MatMul with the transposes flipped); a broadcast operand's gradient is summed over the batch with `BiasGrad` |
//! | `BiasAdd` | `dx = g` (shared buffer), `db = BiasGrad(g)` |
//! | `Add` | `g` to both (shared buffer) |
//! | `Conv2d` | `Conv2dBackwardInput(g, w)`, `Conv2dBackwardWeight(x, g)` |
//! | `ConvTranspose2d` (forward `Conv2dBackwardInput(x, w)`, valid) | `Conv2d(g, w)`, `Conv2dBackwardWeight(g, x)` |
//! | `BatchNorm` (train) | `BatchNormBackward(x, g, gamma, mean, invstd)` |
//! | `Act` | `ActBackward(x, g)` |
//! | `MaxPool2` | `MaxPool2Backward(x, y, g)` |
//! | `Upsample2` | `Upsample2Backward(g)` |
//! | `Concat` | `SplitChannels(g)` |
//! | `Dropout` | `DropoutBackward(g)` with the step's seed |
//! | `Softmax` | `SoftmaxBackward(y, g)` |
//! | `Reshape` | `g` reshaped (shared buffer) |
//!
//! Batch-norm running statistics are updated in the forward pass of a training schedule with
//! PyTorch's rule (`momentum` 0.1, unbiased batch variance), using only contract ops:
//! `rm = (1 - m) rm + m mean` and `rv = (1 - m) rv + m / (count - 1) * sum((x - mean)^2)`
//! (`Scale`, `AddScaled`, `BiasAdd`, `Mul`, `BiasGrad`).
//!
//! # Buffers
//!
//! Values live in virtual storages (a reshape or an identity gradient shares its source's
//! storage). Inputs, parameters and state, optimizer state, parameter gradients, loss values
//! and requested outputs are *pinned*: one slot each, alive for the whole step. Every other
//! storage is a temporary placed by a liveness scan: it takes a free slot (best fit, growing
//! the largest free slot when none is big enough) when first written and frees it after its
//! last read. A schedule's slots are allocated once when it is bound ([`super::Program`]) and
//! reused by every step.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::error::{ComputeError, Result};
use crate::op::{numel, Activation, Op, Padding, Shape};

use super::{Graph, Layer, NodeId};

/// What a schedule computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Forward with batch statistics and dropout, losses, backward and (with an optimizer)
    /// the parameter update.
    Train,
    /// Forward with running statistics, losses and the requested outputs.
    Eval,
    /// Forward with running statistics and the requested outputs only (no targets).
    Predict,
}

/// Which optimizer a training schedule updates parameters with (its state tensors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OptimizerKind {
    /// One state tensor: `velocity`.
    Sgd,
    /// Two state tensors: `m` and `v`.
    Adam,
}

impl OptimizerKind {
    /// Names of the state tensors per parameter.
    pub fn state_names(&self) -> &'static [&'static str] {
        match self {
            OptimizerKind::Sgd => &["velocity"],
            OptimizerKind::Adam => &["m", "v"],
        }
    }
}

/// What to lower.
#[derive(Clone, Debug, PartialEq)]
pub struct LowerOptions {
    pub mode: Mode,
    /// Mini-batch size (the leading axis of every batched value).
    pub batch: usize,
    /// The optimizer whose update ends a [`Mode::Train`] schedule; `None` stops after the
    /// backward pass (gradients only).
    pub optimizer: Option<OptimizerKind>,
    /// Named outputs to compute and keep (ignored in training).
    pub outputs: Vec<String>,
}

/// The role of a buffer slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotKind {
    /// Graph input `k` (uploaded before a step).
    Input(usize),
    /// Parameter or state tensor `k` (owned by [`super::Weights`]).
    Param(usize),
    /// Optimizer state `k` of parameter `param` (owned by [`super::OptimizerState`]).
    OptState { param: usize, k: usize },
    /// The gradient of parameter `k`.
    Grad(usize),
    /// The value of loss term `k`.
    Loss(usize),
    /// Named output `k` of the schedule.
    Output(usize),
    /// A planned temporary.
    Temp,
}

/// A buffer slot of a schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    pub kind: SlotKind,
    /// Elements.
    pub len: usize,
    /// A name for printing.
    pub name: String,
}

/// A tensor operand: a slot seen with a shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Operand {
    pub slot: usize,
    pub shape: Shape,
}

/// The part of a step a dispatch belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Forward,
    Loss,
    Backward,
    Optimizer,
}

/// Op fields filled in at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dynamic {
    None,
    /// Dropout seed: a hash of the run seed, the step and this salt (the node).
    DropoutSeed(u32),
    /// The optimizer op of parameter `param` (hyper-parameters and step count).
    Optimizer {
        param: usize,
    },
}

/// One op dispatch.
#[derive(Clone, Debug, PartialEq)]
pub struct Dispatch {
    /// The op (for dynamic dispatches, a template whose dynamic fields are replaced).
    pub op: Op,
    pub inputs: Vec<Operand>,
    pub outputs: Vec<Operand>,
    pub phase: Phase,
    pub dynamic: Dynamic,
    /// The graph node this dispatch belongs to.
    pub node: String,
}

/// A lowered step: dispatches over planned slots.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub mode: Mode,
    pub batch: usize,
    pub optimizer: Option<OptimizerKind>,
    pub slots: Vec<Slot>,
    pub dispatches: Vec<Dispatch>,
    /// Graph input index and operand of each input the step reads.
    pub inputs: Vec<(usize, Operand)>,
    /// Loss terms: node name, weight, operand (shape `[1]`).
    pub losses: Vec<(String, f32, Operand)>,
    /// Named outputs kept after the step.
    pub outputs: Vec<(String, Operand)>,
    /// Parameter index and operand of every parameter gradient.
    pub grads: Vec<(usize, Operand)>,
    /// Elements of all temporaries without reuse, and as planned.
    pub temp_elements_unplanned: usize,
    pub temp_elements_planned: usize,
}

impl Schedule {
    /// The operand of graph input `k`, if the step reads it.
    pub fn input(&self, k: usize) -> Option<&Operand> {
        self.inputs.iter().find(|(i, _)| *i == k).map(|(_, o)| o)
    }

    /// A named output's operand.
    pub fn output(&self, name: &str) -> Option<&Operand> {
        self.outputs.iter().find(|(n, _)| n == name).map(|(_, o)| o)
    }

    /// Number of dispatches in a phase.
    pub fn count(&self, phase: Phase) -> usize {
        self.dispatches.iter().filter(|d| d.phase == phase).count()
    }
}

/// A value during lowering: a virtual storage seen with a shape.
#[derive(Clone, Debug)]
struct Val {
    store: usize,
    shape: Shape,
}

#[derive(Clone, Debug)]
struct Store {
    kind: SlotKind,
    len: usize,
    pinned: bool,
    name: String,
}

struct VDispatch {
    op: Op,
    inputs: Vec<Val>,
    outputs: Vec<Val>,
    phase: Phase,
    dynamic: Dynamic,
    node: String,
}

struct Lowering {
    stores: Vec<Store>,
    disp: Vec<VDispatch>,
    pinned_of: HashMap<SlotKind, usize>,
}

impl Lowering {
    fn store(&mut self, kind: SlotKind, len: usize, name: String) -> usize {
        if kind != SlotKind::Temp {
            if let Some(&s) = self.pinned_of.get(&kind) {
                return s;
            }
        }
        self.stores.push(Store {
            kind,
            len,
            pinned: kind != SlotKind::Temp,
            name,
        });
        let s = self.stores.len() - 1;
        if kind != SlotKind::Temp {
            self.pinned_of.insert(kind, s);
        }
        s
    }

    fn temp(&mut self, shape: &[usize]) -> Val {
        let store = self.store(SlotKind::Temp, numel(shape), String::new());
        Val {
            store,
            shape: shape.to_vec(),
        }
    }

    /// Emits a dispatch with fresh temporaries as outputs.
    fn emit(
        &mut self,
        op: Op,
        inputs: Vec<Val>,
        phase: Phase,
        dynamic: Dynamic,
        node: &str,
    ) -> Result<Vec<Val>> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|v| v.shape.as_slice()).collect();
        let want = op
            .output_shapes(&shapes)
            .map_err(|e| lowering_bug(node, e))?;
        let outputs: Vec<Val> = want.iter().map(|s| self.temp(s)).collect();
        self.disp.push(VDispatch {
            op,
            inputs,
            outputs: outputs.clone(),
            phase,
            dynamic,
            node: node.to_string(),
        });
        Ok(outputs)
    }

    /// Emits a dispatch writing given outputs (running statistics, optimizer updates).
    fn emit_into(
        &mut self,
        op: Op,
        inputs: Vec<Val>,
        outputs: Vec<Val>,
        phase: Phase,
        dynamic: Dynamic,
        node: &str,
    ) -> Result<()> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|v| v.shape.as_slice()).collect();
        let want = op
            .output_shapes(&shapes)
            .map_err(|e| lowering_bug(node, e))?;
        let got: Vec<Shape> = outputs.iter().map(|v| v.shape.clone()).collect();
        if want != got {
            return Err(lowering_bug(
                node,
                ComputeError::Other(format!("{}: outputs {got:?}, expected {want:?}", op.name())),
            ));
        }
        self.disp.push(VDispatch {
            op,
            inputs,
            outputs,
            phase,
            dynamic,
            node: node.to_string(),
        });
        Ok(())
    }

    fn one(&mut self, op: Op, inputs: Vec<Val>, phase: Phase, node: &str) -> Result<Val> {
        Ok(self
            .emit(op, inputs, phase, Dynamic::None, node)?
            .swap_remove(0))
    }
}

fn lowering_bug(node: &str, e: ComputeError) -> ComputeError {
    ComputeError::Other(format!("lowering '{node}': {e}"))
}

fn alias(v: &Val, shape: &[usize]) -> Val {
    Val {
        store: v.store,
        shape: shape.to_vec(),
    }
}

impl Graph {
    /// A training schedule for `batch` (gradients only when `optimizer` is `None`).
    pub fn lower_train(&self, batch: usize, optimizer: Option<OptimizerKind>) -> Result<Schedule> {
        self.lower(&LowerOptions {
            mode: Mode::Train,
            batch,
            optimizer,
            outputs: vec![],
        })
    }

    /// An evaluation schedule (losses and the `prediction` output, when there is one).
    pub fn lower_eval(&self, batch: usize) -> Result<Schedule> {
        let outputs = self
            .output("prediction")
            .map(|_| vec!["prediction".to_string()])
            .unwrap_or_default();
        self.lower(&LowerOptions {
            mode: Mode::Eval,
            batch,
            optimizer: None,
            outputs,
        })
    }

    /// A prediction schedule computing the named outputs.
    pub fn lower_predict(&self, batch: usize, outputs: &[&str]) -> Result<Schedule> {
        self.lower(&LowerOptions {
            mode: Mode::Predict,
            batch,
            optimizer: None,
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// Lowers the graph into a schedule (see the module documentation).
    pub fn lower(&self, opts: &LowerOptions) -> Result<Schedule> {
        let batch = opts.batch;
        if batch == 0 {
            return Err(ComputeError::Other(
                "lower: batch size must be at least 1".into(),
            ));
        }
        let train = opts.mode == Mode::Train;
        let with_losses = opts.mode != Mode::Predict;
        if with_losses && self.losses.is_empty() {
            return Err(ComputeError::Other(format!(
                "lower: a {:?} schedule needs a loss, and the graph has none",
                opts.mode
            )));
        }
        let mut out_nodes = Vec::new();
        if !train {
            for name in &opts.outputs {
                let id = self.output(name).ok_or_else(|| {
                    let known: Vec<&str> = self.outputs.iter().map(|(n, _)| n.as_str()).collect();
                    ComputeError::Other(format!(
                        "lower: the graph has no output '{name}' (outputs: {})",
                        known.join(", ")
                    ))
                })?;
                out_nodes.push((name.clone(), id));
            }
        }
        let mut roots: Vec<NodeId> = out_nodes.iter().map(|(_, id)| *id).collect();
        if with_losses {
            roots.extend(self.losses.iter().map(|(id, _)| *id));
        }
        let need = self.ancestors(&roots);
        let rg = self.requires_grad();
        let mut lw = Lowering {
            stores: Vec::new(),
            disp: Vec::new(),
            pinned_of: HashMap::new(),
        };
        let shapes: Vec<Shape> = (0..self.nodes.len())
            .map(|i| self.shape_at(NodeId(i), batch))
            .collect();
        if let Some(i) = (0..self.nodes.len())
            .find(|&i| need[i] && crate::op::checked_numel(&shapes[i]).is_none())
        {
            return Err(crate::error::shape_err(
                self.nodes[i].layer.name(),
                format!(
                    "lower: '{}' has shape {:?} at batch size {batch}, more elements than fit in memory",
                    self.nodes[i].name, shapes[i]
                ),
            ));
        }
        let mut fwd: Vec<Option<Val>> = vec![None; self.nodes.len()];
        // Batch-norm saved statistics (mean, invstd) and loss gradients, by node.
        let mut saved: HashMap<usize, (Val, Val)> = HashMap::new();
        let mut dpred: HashMap<usize, Val> = HashMap::new();
        let mut loss_vals: Vec<(String, f32, Val)> = Vec::new();

        // ---- Forward and losses ----------------------------------------------------------
        for (i, node) in self.nodes.iter().enumerate() {
            if !need[i] {
                continue;
            }
            let name = node.name.as_str();
            let x = |k: usize| -> Val { fwd[node.inputs[k].0].clone().expect("topological order") };
            let phase = Phase::Forward;
            let v = match &node.layer {
                Layer::Input(k) => {
                    let s = lw.store(SlotKind::Input(*k), numel(&shapes[i]), format!("in:{name}"));
                    Val {
                        store: s,
                        shape: shapes[i].clone(),
                    }
                }
                Layer::Param(k) => {
                    let s = lw.store(SlotKind::Param(*k), numel(&shapes[i]), format!("p:{name}"));
                    Val {
                        store: s,
                        shape: shapes[i].clone(),
                    }
                }
                Layer::MatMul { trans_a, trans_b } => lw.one(
                    Op::MatMul {
                        trans_a: *trans_a,
                        trans_b: *trans_b,
                    },
                    vec![x(0), x(1)],
                    phase,
                    name,
                )?,
                Layer::BiasAdd { axis } => {
                    lw.one(Op::BiasAdd { axis: *axis }, vec![x(0), x(1)], phase, name)?
                }
                Layer::Add => lw.one(Op::Add, vec![x(0), x(1)], phase, name)?,
                Layer::Conv2d { stride, padding } => lw.one(
                    Op::Conv2d {
                        stride: *stride,
                        padding: *padding,
                    },
                    vec![x(0), x(1)],
                    phase,
                    name,
                )?,
                Layer::ConvTranspose2d { stride } => lw.one(
                    Op::Conv2dBackwardInput {
                        stride: *stride,
                        padding: Padding::Valid,
                        in_h: shapes[i][2],
                        in_w: shapes[i][3],
                    },
                    vec![x(0), x(1)],
                    phase,
                    name,
                )?,
                Layer::BatchNorm { eps, momentum } => {
                    if train {
                        let mut o = lw.emit(
                            Op::BatchNormTrain { eps: *eps },
                            vec![x(0), x(1), x(2)],
                            phase,
                            Dynamic::None,
                            name,
                        )?;
                        let invstd = o.pop().expect("3 outputs");
                        let mean = o.pop().expect("3 outputs");
                        let y = o.pop().expect("3 outputs");
                        running_stats(&mut lw, name, &x(0), &mean, &x(3), &x(4), *momentum)?;
                        saved.insert(i, (mean, invstd));
                        y
                    } else {
                        lw.one(
                            Op::BatchNormEval { eps: *eps },
                            vec![x(0), x(1), x(2), x(3), x(4)],
                            phase,
                            name,
                        )?
                    }
                }
                Layer::Act(a) => lw.one(Op::Act(*a), vec![x(0)], phase, name)?,
                Layer::MaxPool2 => lw.one(Op::MaxPool2, vec![x(0)], phase, name)?,
                Layer::Upsample2 => lw.one(Op::Upsample2, vec![x(0)], phase, name)?,
                Layer::Concat => lw.one(Op::ConcatChannels, vec![x(0), x(1)], phase, name)?,
                Layer::Dropout { p } => {
                    if train && *p > 0.0 {
                        lw.emit(
                            Op::Dropout { p: *p, seed: 0 },
                            vec![x(0)],
                            phase,
                            Dynamic::DropoutSeed(i as u32),
                            name,
                        )?
                        .swap_remove(0)
                    } else {
                        x(0)
                    }
                }
                Layer::Softmax => lw.one(Op::Softmax, vec![x(0)], phase, name)?,
                Layer::Reshape(_) => alias(&x(0), &shapes[i]),
                Layer::Loss(kind) => {
                    let mut o = lw.emit(
                        kind.op(),
                        vec![x(0), x(1)],
                        Phase::Loss,
                        Dynamic::None,
                        name,
                    )?;
                    let d = o.pop().expect("2 outputs");
                    let l = o.pop().expect("2 outputs");
                    let k = self
                        .losses
                        .iter()
                        .position(|(id, _)| id.0 == i)
                        .ok_or_else(|| {
                            ComputeError::Other(format!(
                                "lower: loss node '{name}' is not among the graph's loss terms"
                            ))
                        })?;
                    let st = &mut lw.stores[l.store];
                    st.kind = SlotKind::Loss(k);
                    st.pinned = true;
                    st.name = format!("loss:{name}");
                    loss_vals.push((name.to_string(), self.losses[k].1, l.clone()));
                    dpred.insert(i, d);
                    l
                }
            };
            fwd[i] = Some(v);
        }
        // Losses in graph order.
        loss_vals.sort_by_key(|(n, _, _)| {
            self.losses
                .iter()
                .position(|(id, _)| self.nodes[id.0].name == *n)
        });

        // ---- Backward ---------------------------------------------------------------------
        let mut grads: Vec<(usize, Val)> = Vec::new();
        if train {
            let mut contrib: Vec<Vec<Val>> = vec![Vec::new(); self.nodes.len()];
            for &(id, w) in &self.losses {
                let node = &self.nodes[id.0];
                let name = node.name.as_str();
                let d = dpred[&id.0].clone();
                let (pred, target) = (node.inputs[0].0, node.inputs[1].0);
                if rg[pred] {
                    let c = if w == 1.0 {
                        d.clone()
                    } else {
                        lw.one(
                            Op::Scale { alpha: w },
                            vec![d.clone()],
                            Phase::Backward,
                            name,
                        )?
                    };
                    contrib[pred].push(c);
                }
                if rg[target] {
                    match self.nodes[id.0].layer {
                        Layer::Loss(super::LossKind::Mse) => {
                            let c = lw.one(Op::Scale { alpha: -w }, vec![d], Phase::Backward, name)?;
                            contrib[target].push(c);
                        }
                        Layer::Loss(k) => {
                            return Err(ComputeError::Other(format!(
                                "lower: loss '{name}': the gradient of a {} loss with respect to its target is not available",
                                k.name()
                            )))
                        }
                        _ => unreachable!("loss terms are loss nodes"),
                    }
                }
            }
            let mut claimed: HashSet<usize> = HashSet::new();
            for i in (0..self.nodes.len()).rev() {
                if !need[i] || !rg[i] || contrib[i].is_empty() {
                    continue;
                }
                let node = &self.nodes[i];
                let name = node.name.as_str();
                let ph = Phase::Backward;
                let cs = std::mem::take(&mut contrib[i]);
                let mut g = cs[0].clone();
                for c in &cs[1..] {
                    g = lw.one(
                        Op::Add,
                        vec![g, c.clone()],
                        ph,
                        &format!("{name} (sum of gradients)"),
                    )?;
                }
                let x = |k: usize| -> Val { fwd[node.inputs[k].0].clone().expect("forward value") };
                let needs = |k: usize| rg[node.inputs[k].0];
                let inp = |k: usize| node.inputs[k].0;
                match &node.layer {
                    Layer::Param(k) => {
                        // A gradient shared with another parameter, or not a temporary,
                        // gets its own copy.
                        if lw.stores[g.store].kind != SlotKind::Temp || claimed.contains(&g.store) {
                            g = lw.one(Op::Scale { alpha: 1.0 }, vec![g], ph, name)?;
                        }
                        claimed.insert(g.store);
                        let st = &mut lw.stores[g.store];
                        st.kind = SlotKind::Grad(*k);
                        st.pinned = true;
                        st.name = format!("grad:{name}");
                        grads.push((*k, g));
                    }
                    Layer::Input(_) | Layer::Loss(_) => {}
                    Layer::MatMul { trans_a, trans_b } => {
                        let (ta, tb) = (*trans_a, *trans_b);
                        let (a, b) = (x(0), x(1));
                        if needs(0) {
                            let da = if !ta {
                                lw.one(
                                    Op::MatMul {
                                        trans_a: false,
                                        trans_b: !tb,
                                    },
                                    vec![g.clone(), b.clone()],
                                    ph,
                                    name,
                                )?
                            } else {
                                lw.one(
                                    Op::MatMul {
                                        trans_a: tb,
                                        trans_b: true,
                                    },
                                    vec![b.clone(), g.clone()],
                                    ph,
                                    name,
                                )?
                            };
                            let da = reduce_batch(&mut lw, da, &a.shape, name)?;
                            contrib[inp(0)].push(da);
                        }
                        if needs(1) {
                            let db = if !tb {
                                lw.one(
                                    Op::MatMul {
                                        trans_a: !ta,
                                        trans_b: false,
                                    },
                                    vec![a.clone(), g.clone()],
                                    ph,
                                    name,
                                )?
                            } else {
                                lw.one(
                                    Op::MatMul {
                                        trans_a: true,
                                        trans_b: ta,
                                    },
                                    vec![g.clone(), a.clone()],
                                    ph,
                                    name,
                                )?
                            };
                            let db = reduce_batch(&mut lw, db, &b.shape, name)?;
                            contrib[inp(1)].push(db);
                        }
                    }
                    Layer::BiasAdd { axis } => {
                        if needs(0) {
                            contrib[inp(0)].push(g.clone());
                        }
                        if needs(1) {
                            let db = lw.one(Op::BiasGrad { axis: *axis }, vec![g], ph, name)?;
                            contrib[inp(1)].push(db);
                        }
                    }
                    Layer::Add => {
                        for k in 0..2 {
                            if needs(k) {
                                contrib[inp(k)].push(g.clone());
                            }
                        }
                    }
                    Layer::Conv2d { stride, padding } => {
                        let (xv, w) = (x(0), x(1));
                        if needs(0) {
                            let dx = lw.one(
                                Op::Conv2dBackwardInput {
                                    stride: *stride,
                                    padding: *padding,
                                    in_h: xv.shape[2],
                                    in_w: xv.shape[3],
                                },
                                vec![g.clone(), w.clone()],
                                ph,
                                name,
                            )?;
                            contrib[inp(0)].push(dx);
                        }
                        if needs(1) {
                            let dw = lw.one(
                                Op::Conv2dBackwardWeight {
                                    stride: *stride,
                                    padding: *padding,
                                    kh: w.shape[2],
                                    kw: w.shape[3],
                                },
                                vec![xv, g],
                                ph,
                                name,
                            )?;
                            contrib[inp(1)].push(dw);
                        }
                    }
                    Layer::ConvTranspose2d { stride } => {
                        // The forward pass is the input gradient of a valid convolution of
                        // `y` by `w`, so its gradients are that convolution and its weight
                        // gradient with the roles of `x` and `y` swapped.
                        let (xv, w) = (x(0), x(1));
                        if needs(0) {
                            let dx = lw.one(
                                Op::Conv2d {
                                    stride: *stride,
                                    padding: Padding::Valid,
                                },
                                vec![g.clone(), w.clone()],
                                ph,
                                name,
                            )?;
                            contrib[inp(0)].push(dx);
                        }
                        if needs(1) {
                            let dw = lw.one(
                                Op::Conv2dBackwardWeight {
                                    stride: *stride,
                                    padding: Padding::Valid,
                                    kh: w.shape[2],
                                    kw: w.shape[3],
                                },
                                vec![g, xv],
                                ph,
                                name,
                            )?;
                            contrib[inp(1)].push(dw);
                        }
                    }
                    Layer::BatchNorm { .. } => {
                        let (mean, invstd) = saved[&i].clone();
                        let o = lw.emit(
                            Op::BatchNormBackward,
                            vec![x(0), g, x(1), mean, invstd],
                            ph,
                            Dynamic::None,
                            name,
                        )?;
                        for (k, d) in o.into_iter().enumerate() {
                            if needs(k) {
                                contrib[inp(k)].push(d);
                            }
                        }
                    }
                    Layer::Act(a) => {
                        if needs(0) {
                            let dx = lw.one(Op::ActBackward(*a), vec![x(0), g], ph, name)?;
                            contrib[inp(0)].push(dx);
                        }
                    }
                    Layer::MaxPool2 => {
                        if needs(0) {
                            let y = fwd[i].clone().expect("forward value");
                            let dx = lw.one(Op::MaxPool2Backward, vec![x(0), y, g], ph, name)?;
                            contrib[inp(0)].push(dx);
                        }
                    }
                    Layer::Upsample2 => {
                        if needs(0) {
                            let dx = lw.one(Op::Upsample2Backward, vec![g], ph, name)?;
                            contrib[inp(0)].push(dx);
                        }
                    }
                    Layer::Concat => {
                        let first = x(0).shape[1];
                        let o = lw.emit(
                            Op::SplitChannels { first },
                            vec![g],
                            ph,
                            Dynamic::None,
                            name,
                        )?;
                        for (k, d) in o.into_iter().enumerate() {
                            if needs(k) {
                                contrib[inp(k)].push(d);
                            }
                        }
                    }
                    Layer::Dropout { p } => {
                        if needs(0) {
                            let dx = if *p > 0.0 {
                                lw.emit(
                                    Op::DropoutBackward { p: *p, seed: 0 },
                                    vec![g],
                                    ph,
                                    Dynamic::DropoutSeed(i as u32),
                                    name,
                                )?
                                .swap_remove(0)
                            } else {
                                g
                            };
                            contrib[inp(0)].push(dx);
                        }
                    }
                    Layer::Softmax => {
                        if needs(0) {
                            let y = fwd[i].clone().expect("forward value");
                            let dx = lw.one(Op::SoftmaxBackward, vec![y, g], ph, name)?;
                            contrib[inp(0)].push(dx);
                        }
                    }
                    Layer::Reshape(_) => {
                        if needs(0) {
                            let s = shapes[inp(0)].clone();
                            contrib[inp(0)].push(alias(&g, &s));
                        }
                    }
                }
            }
            grads.sort_by_key(|(k, _)| *k);
            // ---- Optimizer ----------------------------------------------------------------
            if let Some(kind) = opts.optimizer {
                for (k, g) in &grads {
                    let p = &self.params[*k];
                    let pv = fwd[self.param_nodes[*k].0]
                        .clone()
                        .expect("parameter value");
                    let mut outs = vec![pv];
                    for (j, sname) in kind.state_names().iter().enumerate() {
                        let s = lw.store(
                            SlotKind::OptState { param: *k, k: j },
                            numel(&p.shape),
                            format!("opt:{}.{sname}", p.name),
                        );
                        outs.push(Val {
                            store: s,
                            shape: p.shape.clone(),
                        });
                    }
                    let template = match kind {
                        OptimizerKind::Sgd => Op::Sgd {
                            lr: 0.0,
                            momentum: 0.0,
                            weight_decay: 0.0,
                        },
                        OptimizerKind::Adam => Op::Adam {
                            lr: 0.0,
                            beta1: 0.9,
                            beta2: 0.999,
                            eps: 1e-8,
                            weight_decay: 0.0,
                            decoupled: false,
                            step: 1,
                        },
                    };
                    lw.emit_into(
                        template,
                        vec![g.clone()],
                        outs,
                        Phase::Optimizer,
                        Dynamic::Optimizer { param: *k },
                        &p.name,
                    )?;
                }
            }
        }

        // ---- Outputs: pinned ----------------------------------------------------------------
        let mut out_vals = Vec::new();
        for (k, (name, id)) in out_nodes.iter().enumerate() {
            let v = fwd[id.0].clone().expect("outputs are computed");
            let st = &mut lw.stores[v.store];
            if st.kind == SlotKind::Temp {
                st.kind = SlotKind::Output(k);
                st.name = format!("out:{name}");
            }
            st.pinned = true;
            out_vals.push((name.clone(), v));
        }
        let mut inputs = Vec::new();
        for (k, id) in self.input_nodes.iter().enumerate() {
            if let Some(v) = &fwd[id.0] {
                inputs.push((k, v.clone()));
            }
        }
        Ok(plan(lw, opts, inputs, loss_vals, out_vals, grads))
    }
}

/// Sums a MatMul operand gradient over the batch axes when the operand was broadcast.
fn reduce_batch(lw: &mut Lowering, d: Val, want: &[usize], node: &str) -> Result<Val> {
    if d.shape == want {
        return Ok(d);
    }
    let inner = numel(want);
    let total = numel(&d.shape);
    if inner == 0
        || !total.is_multiple_of(inner)
        || !d.shape.ends_with(&want[want.len().saturating_sub(2)..])
    {
        return Err(lowering_bug(
            node,
            ComputeError::Other(format!("cannot reduce gradient {:?} to {want:?}", d.shape)),
        ));
    }
    let flat = alias(&d, &[total / inner, inner]);
    let s = lw.one(Op::BiasGrad { axis: 1 }, vec![flat], Phase::Backward, node)?;
    Ok(alias(&s, want))
}

/// Emits the running-statistics update of a training batch norm.
fn running_stats(
    lw: &mut Lowering,
    name: &str,
    x: &Val,
    mean: &Val,
    rm: &Val,
    rv: &Val,
    m: f32,
) -> Result<()> {
    let ph = Phase::Forward;
    let c = mean.shape[0];
    let count = numel(&x.shape) / c.max(1);
    // rm = (1 - m) rm + m mean
    let t = lw.one(Op::Scale { alpha: 1.0 - m }, vec![rm.clone()], ph, name)?;
    lw.emit_into(
        Op::AddScaled { alpha: m },
        vec![t, mean.clone()],
        vec![rm.clone()],
        ph,
        Dynamic::None,
        name,
    )?;
    // rv = (1 - m) rv + m / (count - 1) sum((x - mean)^2)
    let neg = lw.one(Op::Scale { alpha: -1.0 }, vec![mean.clone()], ph, name)?;
    let xc = lw.one(Op::BiasAdd { axis: 1 }, vec![x.clone(), neg], ph, name)?;
    let sq = lw.one(Op::Mul, vec![xc.clone(), xc], ph, name)?;
    let ss = lw.one(Op::BiasGrad { axis: 1 }, vec![sq], ph, name)?;
    let t = lw.one(Op::Scale { alpha: 1.0 - m }, vec![rv.clone()], ph, name)?;
    let unbiased = m / (count.saturating_sub(1).max(1)) as f32;
    lw.emit_into(
        Op::AddScaled { alpha: unbiased },
        vec![t, ss],
        vec![rv.clone()],
        ph,
        Dynamic::None,
        name,
    )
}

/// Assigns slots to storages (pinned: one each; temporaries: liveness scan) and builds the
/// schedule.
fn plan(
    lw: Lowering,
    opts: &LowerOptions,
    inputs: Vec<(usize, Val)>,
    losses: Vec<(String, f32, Val)>,
    outputs: Vec<(String, Val)>,
    grads: Vec<(usize, Val)>,
) -> Schedule {
    let n = lw.stores.len();
    let mut first = vec![usize::MAX; n];
    let mut last = vec![0usize; n];
    for (i, d) in lw.disp.iter().enumerate() {
        for v in d.inputs.iter().chain(&d.outputs) {
            first[v.store] = first[v.store].min(i);
            last[v.store] = last[v.store].max(i);
        }
    }
    let mut slots: Vec<Slot> = Vec::new();
    let mut slot_of = vec![usize::MAX; n];
    // Pinned storages first, in a stable order: inputs, params, grads, opt state, losses,
    // outputs.
    let rank = |k: &SlotKind| match k {
        SlotKind::Input(i) => (0, *i, 0),
        SlotKind::Param(i) => (1, *i, 0),
        SlotKind::Grad(i) => (2, *i, 0),
        SlotKind::OptState { param, k } => (3, *param, *k),
        SlotKind::Loss(i) => (4, *i, 0),
        SlotKind::Output(i) => (5, *i, 0),
        SlotKind::Temp => (6, 0, 0),
    };
    let mut pinned: Vec<usize> = (0..n).filter(|&s| lw.stores[s].pinned).collect();
    pinned.sort_by_key(|&s| (rank(&lw.stores[s].kind), s));
    for s in pinned {
        let st = &lw.stores[s];
        slot_of[s] = slots.len();
        let name = if st.name.is_empty() {
            format!("pin{}", slots.len())
        } else {
            st.name.clone()
        };
        slots.push(Slot {
            kind: st.kind,
            len: st.len,
            name,
        });
    }
    let mut free: Vec<usize> = Vec::new();
    let mut temp_count = 0;
    let mut unplanned = 0;
    for (i, d) in lw.disp.iter().enumerate() {
        for v in &d.outputs {
            let s = v.store;
            if lw.stores[s].pinned || slot_of[s] != usize::MAX {
                continue;
            }
            let len = lw.stores[s].len;
            unplanned += len;
            // Best fit, else grow the largest free slot, else a new slot.
            let fit = free
                .iter()
                .enumerate()
                .filter(|(_, &sl)| slots[sl].len >= len)
                .min_by_key(|(_, &sl)| slots[sl].len)
                .map(|(k, _)| k);
            let pick = fit.or_else(|| {
                free.iter()
                    .enumerate()
                    .max_by_key(|(_, &sl)| slots[sl].len)
                    .map(|(k, _)| k)
            });
            let sl = match pick {
                Some(k) => {
                    let sl = free.swap_remove(k);
                    slots[sl].len = slots[sl].len.max(len);
                    sl
                }
                None => {
                    slots.push(Slot {
                        kind: SlotKind::Temp,
                        len,
                        name: format!("t{temp_count}"),
                    });
                    temp_count += 1;
                    slots.len() - 1
                }
            };
            slot_of[s] = sl;
        }
        // Free the temporaries whose last use is this dispatch.
        let mut dead: Vec<usize> = d
            .inputs
            .iter()
            .chain(&d.outputs)
            .map(|v| v.store)
            .filter(|&s| !lw.stores[s].pinned && last[s] == i)
            .collect();
        dead.sort_unstable();
        dead.dedup();
        for s in dead {
            free.push(slot_of[s]);
        }
    }
    let planned = slots
        .iter()
        .filter(|s| s.kind == SlotKind::Temp)
        .map(|s| s.len)
        .sum();
    let op = |v: &Val| Operand {
        slot: slot_of[v.store],
        shape: v.shape.clone(),
    };
    let dispatches = lw
        .disp
        .iter()
        .map(|d| Dispatch {
            op: d.op.clone(),
            inputs: d.inputs.iter().map(op).collect(),
            outputs: d.outputs.iter().map(op).collect(),
            phase: d.phase,
            dynamic: d.dynamic,
            node: d.node.clone(),
        })
        .collect();
    Schedule {
        mode: opts.mode,
        batch: opts.batch,
        optimizer: if opts.mode == Mode::Train {
            opts.optimizer
        } else {
            None
        },
        slots,
        dispatches,
        inputs: inputs.iter().map(|(k, v)| (*k, op(v))).collect(),
        losses: losses
            .iter()
            .map(|(n, w, v)| (n.clone(), *w, op(v)))
            .collect(),
        outputs: outputs.iter().map(|(n, v)| (n.clone(), op(v))).collect(),
        grads: grads.iter().map(|(k, v)| (*k, op(v))).collect(),
        temp_elements_unplanned: unplanned,
        temp_elements_planned: planned,
    }
}

// ---- Printing ------------------------------------------------------------------------------

fn act_name(a: &Activation) -> String {
    match a {
        Activation::Relu => "relu".into(),
        Activation::LeakyRelu(al) => format!("leaky_relu {al}"),
        Activation::Sigmoid => "sigmoid".into(),
        Activation::Tanh => "tanh".into(),
        Activation::Gelu => "gelu".into(),
    }
}

fn pad_name(p: &Padding) -> &'static str {
    match p {
        Padding::Same => "same",
        Padding::Valid => "valid",
    }
}

/// A compact op label: name and parameters.
fn op_label(op: &Op) -> String {
    let args = match op {
        Op::MatMul { trans_a, trans_b } => format!(
            "{}{}",
            if *trans_a { "aᵀ" } else { "a" },
            if *trans_b { " bᵀ" } else { " b" }
        ),
        Op::AddScaled { alpha } | Op::Scale { alpha } => format!("{alpha}"),
        Op::BiasAdd { axis } | Op::BiasGrad { axis } => format!("axis {axis}"),
        Op::Act(a) | Op::ActBackward(a) => act_name(a),
        Op::Conv2d { stride, padding } => format!("stride {stride}, {}", pad_name(padding)),
        Op::Conv2dBackwardInput {
            stride,
            padding,
            in_h,
            in_w,
        } => format!("stride {stride}, {}, in {in_h}x{in_w}", pad_name(padding)),
        Op::Conv2dBackwardWeight {
            stride,
            padding,
            kh,
            kw,
        } => format!("stride {stride}, {}, kernel {kh}x{kw}", pad_name(padding)),
        Op::SplitChannels { first } => format!("first {first}"),
        Op::BatchNormTrain { eps } | Op::BatchNormEval { eps } | Op::LayerNorm { eps } => {
            format!("eps {eps}")
        }
        Op::Dropout { p, .. } | Op::DropoutBackward { p, .. } => format!("p {p}, seed per step"),
        Op::BceWithLogits { pos_weight } => format!("pos_weight {pos_weight}"),
        Op::DiceLoss { eps } => format!("eps {eps}"),
        Op::Sgd { .. } | Op::Adam { .. } => "lr, step per step".into(),
        _ => String::new(),
    };
    if args.is_empty() {
        op.name().to_string()
    } else {
        format!("{}({args})", op.name())
    }
}

fn fmt_shape(s: &[usize]) -> String {
    let v: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("[{}]", v.join(","))
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::Train => match self.optimizer {
                Some(OptimizerKind::Sgd) => "train (sgd)",
                Some(OptimizerKind::Adam) => "train (adam)",
                None => "train (gradients only)",
            },
            Mode::Eval => "eval",
            Mode::Predict => "predict",
        };
        let temps = self
            .slots
            .iter()
            .filter(|s| s.kind == SlotKind::Temp)
            .count();
        writeln!(
            f,
            "schedule {mode}, batch {}: {} dispatches ({} forward, {} loss, {} backward, {} optimizer)",
            self.batch,
            self.dispatches.len(),
            self.count(Phase::Forward),
            self.count(Phase::Loss),
            self.count(Phase::Backward),
            self.count(Phase::Optimizer)
        )?;
        writeln!(
            f,
            "buffers: {} slots ({} pinned, {temps} temporaries); temporaries hold {} floats ({} without reuse)",
            self.slots.len(),
            self.slots.len() - temps,
            self.temp_elements_planned,
            self.temp_elements_unplanned
        )?;
        let name = |o: &Operand| format!("{}{}", self.slots[o.slot].name, fmt_shape(&o.shape));
        let mut phase = None;
        for (i, d) in self.dispatches.iter().enumerate() {
            if phase != Some(d.phase) {
                phase = Some(d.phase);
                let p = match d.phase {
                    Phase::Forward => "forward",
                    Phase::Loss => "loss",
                    Phase::Backward => "backward",
                    Phase::Optimizer => "optimizer",
                };
                writeln!(f, "-- {p}")?;
            }
            let ins: Vec<String> = d.inputs.iter().map(name).collect();
            let outs: Vec<String> = d.outputs.iter().map(name).collect();
            writeln!(
                f,
                "{i:>4}  {:<40} {} -> {}   # {}",
                op_label(&d.op),
                ins.join(", "),
                outs.join(", "),
                d.node
            )?;
        }
        Ok(())
    }
}
