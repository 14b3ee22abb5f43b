//! Running schedules on a backend: parameter storage ([`Weights`]), optimizer state
//! ([`OptimizerState`]) and bound schedules ([`Program`]).

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::backend::{alloc_checked, check_host_memory, Backend, BufId, DeviceKind, Tensor};
use crate::error::{shape_err, ComputeError, Result};
use crate::op::{numel, Op};

use super::schedule::{Dynamic, OptimizerKind, Phase, Schedule, SlotKind};
use super::{Init, ParamInfo};

/// Fills `out` with the values of `init`, from a stream of `seed` chosen by `stream`.
pub fn init_values(init: &Init, seed: u64, stream: u64, out: &mut [f32]) {
    match init {
        Init::Zeros => out.fill(0.0),
        Init::Ones => out.fill(1.0),
        Init::Uniform { .. } | Init::KaimingUniform { .. } => {
            let b = init.bound();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(stream);
            for v in out.iter_mut() {
                *v = (rng.random::<f32>() * 2.0 - 1.0) * b;
            }
        }
    }
}

/// On a CPU backend, checks that buffers of these lengths fit in host memory together (the
/// sum saturates: an overflowing total is refused).
fn check_total(backend: &dyn Backend, lens: impl Iterator<Item = usize>, what: &str) -> Result<()> {
    if backend.kind() != DeviceKind::Cpu {
        return Ok(());
    }
    let total = lens.fold(0usize, |a, b| a.saturating_add(b));
    check_host_memory(total, what)
}

/// Parameters and state tensors of a graph, one buffer each, on a backend.
pub struct Weights {
    backend: Arc<dyn Backend>,
    infos: Vec<ParamInfo>,
    bufs: Vec<BufId>,
}

impl Weights {
    /// Allocates the tensors and initialises them from `seed` (parameter `k` draws from
    /// stream `k` of a ChaCha8 generator seeded with `seed`).
    pub fn new(backend: Arc<dyn Backend>, params: &[ParamInfo], seed: u64) -> Result<Weights> {
        let mut w = Weights {
            backend,
            infos: params.to_vec(),
            bufs: Vec::with_capacity(params.len()),
        };
        check_total(
            w.backend.as_ref(),
            params.iter().map(|p| numel(&p.shape)),
            &format!("the {} parameter and state tensors", params.len()),
        )?;
        for p in params {
            let b = alloc_checked(w.backend.as_ref(), numel(&p.shape), &p.name)?;
            w.bufs.push(b);
        }
        w.init(seed)?;
        Ok(w)
    }

    /// Re-initialises every tensor from `seed`.
    pub fn init(&self, seed: u64) -> Result<()> {
        for (k, p) in self.infos.iter().enumerate() {
            let mut v = vec![0f32; numel(&p.shape)];
            init_values(&p.init, seed, k as u64, &mut v);
            self.backend.upload(self.bufs[k], &v)?;
        }
        Ok(())
    }

    pub fn infos(&self) -> &[ParamInfo] {
        &self.infos
    }

    pub fn len(&self) -> usize {
        self.infos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    pub fn buf(&self, k: usize) -> BufId {
        self.bufs[k]
    }

    /// The index of a tensor by name.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.infos.iter().position(|p| p.name == name)
    }

    /// Downloads tensor `k`.
    pub fn get(&self, k: usize) -> Result<Vec<f32>> {
        let mut v = self.backend.download(self.bufs[k])?;
        v.truncate(numel(&self.infos[k].shape));
        Ok(v)
    }

    /// Uploads tensor `k`; `data` must hold exactly its elements.
    pub fn set(&self, k: usize, data: &[f32]) -> Result<()> {
        let p = &self.infos[k];
        if data.len() != numel(&p.shape) {
            return Err(shape_err(
                "weights",
                format!(
                    "'{}' has shape {:?} ({} values), got {} values",
                    p.name,
                    p.shape,
                    numel(&p.shape),
                    data.len()
                ),
            ));
        }
        self.backend.upload(self.bufs[k], data)
    }
}

impl Drop for Weights {
    fn drop(&mut self) {
        for b in &self.bufs {
            self.backend.free(*b);
        }
    }
}

/// Optimizer state tensors (zeros at first) and the step count.
pub struct OptimizerState {
    backend: Arc<dyn Backend>,
    pub kind: OptimizerKind,
    /// Per parameter (empty for state tensors): one buffer per state tensor.
    bufs: Vec<Vec<BufId>>,
    /// Updates applied so far.
    pub step: u32,
}

impl OptimizerState {
    pub fn new(
        backend: Arc<dyn Backend>,
        kind: OptimizerKind,
        params: &[ParamInfo],
    ) -> Result<OptimizerState> {
        let mut s = OptimizerState {
            backend,
            kind,
            bufs: Vec::with_capacity(params.len()),
            step: 0,
        };
        let states = kind.state_names().len();
        check_total(
            s.backend.as_ref(),
            params
                .iter()
                .filter(|p| p.trainable)
                .map(|p| numel(&p.shape).saturating_mul(states)),
            &format!("the {kind:?} optimizer state"),
        )?;
        for p in params {
            let mut v = Vec::new();
            if p.trainable {
                for n in kind.state_names() {
                    let what = format!("the {n} of '{}'", p.name);
                    v.push(alloc_checked(s.backend.as_ref(), numel(&p.shape), &what)?);
                }
            }
            s.bufs.push(v);
        }
        Ok(s)
    }

    /// State tensor `k` of parameter `param`.
    pub fn buf(&self, param: usize, k: usize) -> Option<BufId> {
        self.bufs.get(param).and_then(|v| v.get(k)).copied()
    }

    /// Downloads state tensor `k` of parameter `param`.
    pub fn get(&self, param: usize, k: usize, len: usize) -> Result<Vec<f32>> {
        let b = self.buf(param, k).ok_or_else(|| {
            ComputeError::Other(format!("no optimizer state {k} for parameter {param}"))
        })?;
        let mut v = self.backend.download(b)?;
        v.truncate(len);
        Ok(v)
    }

    /// Uploads state tensor `k` of parameter `param`.
    pub fn set(&self, param: usize, k: usize, data: &[f32]) -> Result<()> {
        let b = self.buf(param, k).ok_or_else(|| {
            ComputeError::Other(format!("no optimizer state {k} for parameter {param}"))
        })?;
        let len = self.backend.len(b)?;
        if len != data.len() {
            return Err(shape_err(
                "optimizer",
                format!(
                    "state {k} of parameter {param} holds {len} values, got {}",
                    data.len()
                ),
            ));
        }
        self.backend.upload(b, data)
    }

    /// Zeroes every state tensor and the step count.
    pub fn reset(&mut self) -> Result<()> {
        for v in &self.bufs {
            for b in v {
                let len = self.backend.len(*b)?;
                self.backend.upload(*b, &vec![0f32; len])?;
            }
        }
        self.step = 0;
        Ok(())
    }
}

impl Drop for OptimizerState {
    fn drop(&mut self) {
        for v in &self.bufs {
            for b in v {
                self.backend.free(*b);
            }
        }
    }
}

/// Optimizer hyper-parameters of one update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepHyper {
    Sgd {
        lr: f32,
        momentum: f32,
        weight_decay: f32,
    },
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        decoupled: bool,
    },
}

impl StepHyper {
    /// The optimizer op for update number `step` (from 1).
    pub fn op(&self, step: u32) -> Op {
        match *self {
            StepHyper::Sgd {
                lr,
                momentum,
                weight_decay,
            } => Op::Sgd {
                lr,
                momentum,
                weight_decay,
            },
            StepHyper::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled,
            } => Op::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled,
                step,
            },
        }
    }

    pub fn kind(&self) -> OptimizerKind {
        match self {
            StepHyper::Sgd { .. } => OptimizerKind::Sgd,
            StepHyper::Adam { .. } => OptimizerKind::Adam,
        }
    }
}

/// Run-time values of a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunContext {
    /// Seed of dropout masks (with `step`).
    pub seed: u64,
    /// The step number (dropout masks differ per step; Adam's bias correction uses it).
    pub step: u32,
    /// Optimizer hyper-parameters (required when the schedule has an optimizer phase).
    pub hyper: Option<StepHyper>,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The dropout seed of a node for a step.
pub fn dropout_seed(seed: u64, step: u32, salt: u32) -> u32 {
    let h = splitmix(splitmix(seed ^ splitmix(step as u64)) ^ salt as u64);
    (h ^ (h >> 32)) as u32
}

/// A schedule bound to buffers on a backend: temporaries allocated once, parameters and
/// optimizer state shared with their owners. Run it once per step.
pub struct Program {
    backend: Arc<dyn Backend>,
    schedule: Schedule,
    /// Buffer of each slot.
    bufs: Vec<BufId>,
    /// Buffers this program allocated (freed on drop).
    owned: Vec<BufId>,
    /// Tensors of each dispatch, built once.
    operands: Vec<(Vec<Tensor>, Vec<Tensor>)>,
}

impl Program {
    /// Allocates the schedule's own slots and binds parameters and optimizer state.
    pub fn bind(
        backend: Arc<dyn Backend>,
        schedule: Schedule,
        weights: &Weights,
        opt: Option<&OptimizerState>,
    ) -> Result<Program> {
        let own = |k: &SlotKind| !matches!(k, SlotKind::Param(_) | SlotKind::OptState { .. });
        check_total(
            backend.as_ref(),
            schedule
                .slots
                .iter()
                .filter(|s| own(&s.kind))
                .map(|s| s.len.max(1)),
            &format!("the activations of a {:?} schedule", schedule.mode),
        )?;
        let mut bufs = Vec::with_capacity(schedule.slots.len());
        let mut owned = Vec::new();
        let mut err = None;
        for s in &schedule.slots {
            let b = match s.kind {
                SlotKind::Param(k) => {
                    if k >= weights.len() {
                        err = Some(format!(
                            "slot {} refers to parameter {k}, the weights have {}",
                            s.name,
                            weights.len()
                        ));
                        break;
                    }
                    weights.buf(k)
                }
                SlotKind::OptState { param, k } => match opt.and_then(|o| o.buf(param, k)) {
                    Some(b) => b,
                    None => {
                        err = Some(format!("slot {} needs optimizer state", s.name));
                        break;
                    }
                },
                _ => {
                    match alloc_checked(backend.as_ref(), s.len.max(1), &format!("slot {}", s.name))
                    {
                        Ok(b) => {
                            owned.push(b);
                            b
                        }
                        Err(e) => {
                            for b in &owned {
                                backend.free(*b);
                            }
                            return Err(e);
                        }
                    }
                }
            };
            bufs.push(b);
        }
        if let Some(e) = err {
            for b in &owned {
                backend.free(*b);
            }
            return Err(ComputeError::Other(format!("binding a schedule: {e}")));
        }
        if let (Some(k), Some(o)) = (schedule.optimizer, opt) {
            if k != o.kind {
                for b in &owned {
                    backend.free(*b);
                }
                return Err(ComputeError::Other(format!(
                    "binding a schedule: it updates with {k:?}, the optimizer state is for {:?}",
                    o.kind
                )));
            }
        }
        let operands = schedule
            .dispatches
            .iter()
            .map(|d| {
                let t = |o: &super::Operand| Tensor::new(bufs[o.slot], o.shape.clone());
                (
                    d.inputs.iter().map(t).collect(),
                    d.outputs.iter().map(t).collect(),
                )
            })
            .collect();
        Ok(Program {
            backend,
            schedule,
            bufs,
            owned,
            operands,
        })
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Buffer elements this program allocated itself.
    pub fn owned_elements(&self) -> usize {
        self.owned
            .iter()
            .map(|b| self.backend.len(*b).unwrap_or(0))
            .sum()
    }

    /// Uploads graph input `k` (named `name` in errors) for the next step; `data` must hold
    /// exactly the elements of the input's shape in this schedule.
    pub fn set_input(&self, k: usize, name: &str, data: &[f32]) -> Result<()> {
        let o = self.schedule.input(k).ok_or_else(|| {
            ComputeError::Other(format!("this schedule does not read input '{name}'"))
        })?;
        if data.len() != numel(&o.shape) {
            return Err(shape_err(
                "input",
                format!(
                    "input '{name}' must have shape {:?} ({} values), got {} values",
                    o.shape,
                    numel(&o.shape),
                    data.len()
                ),
            ));
        }
        self.backend.upload(self.bufs[o.slot], data)
    }

    /// Runs every dispatch.
    pub fn run(&self, ctx: &RunContext) -> Result<()> {
        self.run_until(ctx, Phase::Optimizer)
    }

    /// Runs the dispatches of the phases up to `last` (inclusive).
    pub fn run_until(&self, ctx: &RunContext, last: Phase) -> Result<()> {
        self.run_phases(ctx, Phase::Forward, last)
    }

    /// Runs the dispatches of the phases from `first` on.
    pub fn run_from(&self, ctx: &RunContext, first: Phase) -> Result<()> {
        self.run_phases(ctx, first, Phase::Optimizer)
    }

    /// Runs the dispatches whose phase is in `first..=last` (loss dispatches may sit among
    /// forward ones).
    pub fn run_phases(&self, ctx: &RunContext, first: Phase, last: Phase) -> Result<()> {
        for (d, (ins, outs)) in self.schedule.dispatches.iter().zip(&self.operands) {
            if d.phase < first || d.phase > last {
                continue;
            }
            let op = match d.dynamic {
                Dynamic::None => d.op.clone(),
                Dynamic::DropoutSeed(salt) => {
                    let seed = dropout_seed(ctx.seed, ctx.step, salt);
                    match d.op {
                        Op::Dropout { p, .. } => Op::Dropout { p, seed },
                        Op::DropoutBackward { p, .. } => Op::DropoutBackward { p, seed },
                        ref o => o.clone(),
                    }
                }
                Dynamic::Optimizer { .. } => {
                    let h = ctx.hyper.ok_or_else(|| {
                        ComputeError::Other(
                            "this schedule updates parameters: the run needs optimizer hyper-parameters"
                                .into(),
                        )
                    })?;
                    h.op(ctx.step.max(1))
                }
            };
            let ir: Vec<&Tensor> = ins.iter().collect();
            let or: Vec<&Tensor> = outs.iter().collect();
            self.backend.dispatch(&op, &ir, &or).map_err(|e| match e {
                ComputeError::Shape { op, message } => ComputeError::Shape {
                    op,
                    message: format!("{message} (in '{}')", d.node),
                },
                other => other,
            })?;
        }
        Ok(())
    }

    fn read(&self, o: &super::Operand) -> Result<Vec<f32>> {
        let mut v = self.backend.download(self.bufs[o.slot])?;
        v.truncate(numel(&o.shape));
        Ok(v)
    }

    /// The loss terms of the last step (unweighted), in the graph's order.
    pub fn losses(&self) -> Result<Vec<f32>> {
        self.schedule
            .losses
            .iter()
            .map(|(_, _, o)| self.read(o).map(|v| v[0]))
            .collect()
    }

    /// A named output of the last step.
    pub fn output(&self, name: &str) -> Result<Vec<f32>> {
        let o = self
            .schedule
            .output(name)
            .ok_or_else(|| ComputeError::Other(format!("this schedule has no output '{name}'")))?
            .clone();
        self.read(&o)
    }

    /// The gradient of parameter `k` from the last step, if the schedule computes it.
    pub fn grad(&self, k: usize) -> Result<Option<Vec<f32>>> {
        match self.schedule.grads.iter().find(|(p, _)| *p == k) {
            Some((_, o)) => Ok(Some(self.read(&o.clone())?)),
            None => Ok(None),
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        for b in &self.owned {
            self.backend.free(*b);
        }
    }
}
