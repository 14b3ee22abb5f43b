//! The layer graph: inputs, parameters and layer ops with shapes inferred at build time, and
//! its lowering ([`Graph::lower`]) into a static forward / loss / backward / optimizer kernel
//! schedule over planned buffer slots ([`Schedule`]), run on a backend by [`Program`].
//!
//! Shapes: every value is either *batched* (its leading axis is the mini-batch; inputs and
//! everything computed from them) or not (parameters, losses). The builder takes per-sample
//! shapes for inputs and infers every other shape when a node is added; a mismatch is an error
//! naming the layer and both shapes. Inference runs at two nominal batch sizes (1 and 2), so a
//! layer that would move the batch axis away from the front is rejected at build time too;
//! shapes in build-time messages show the batch axis as 1.
//!
//! Gradients are static reverse-mode differentiation over the graph, done once by
//! [`Graph::lower`]: see [`schedule`] for the rules of every layer.

pub mod exec;
pub mod schedule;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::{shape_err, ComputeError, Result};
use crate::op::{checked_numel, numel, Activation, Op, Padding, Shape};

pub use exec::{OptimizerState, Program, RunContext, StepHyper, Weights};
pub use schedule::{
    Dispatch, Dynamic, LowerOptions, Mode, Operand, OptimizerKind, Phase, Schedule, Slot, SlotKind,
};

/// A node of a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub usize);

/// How a parameter is initialised (seeded by the trainer).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Init {
    Zeros,
    Ones,
    /// Uniform in `[-bound, bound]`.
    Uniform {
        bound: f32,
    },
    /// Kaiming (He) uniform: uniform in `[-b, b]` with `b = gain * sqrt(3 / fan_in)`. With
    /// `gain = sqrt 2` this is He initialisation for ReLU layers; PyTorch's default layer
    /// initialisation (`kaiming_uniform_(a = sqrt 5)`) is `gain = sqrt(1/3)`.
    KaimingUniform {
        fan_in: usize,
        gain: f32,
    },
}

impl Init {
    /// The bound of the uniform distribution (0 for constants).
    pub fn bound(&self) -> f32 {
        match *self {
            Init::Zeros | Init::Ones => 0.0,
            Init::Uniform { bound } => bound,
            Init::KaimingUniform { fan_in, gain } => gain * (3.0 / fan_in.max(1) as f32).sqrt(),
        }
    }
}

/// A parameter (trainable) or a state tensor (not trained: batch-norm running statistics).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamInfo {
    pub name: String,
    pub shape: Shape,
    pub init: Init,
    pub trainable: bool,
}

/// What an input feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputRole {
    /// Model input (needed to predict).
    Data,
    /// Training target (needed by losses only).
    Target,
}

/// A graph input, with its per-sample shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputInfo {
    pub name: String,
    pub shape: Shape,
    pub role: InputRole,
}

/// Loss functions (mean over elements, see [`Op`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum LossKind {
    Mse,
    /// Binary cross-entropy on logits, positives weighted by `pos_weight`.
    BceWithLogits {
        pos_weight: f32,
    },
    /// Soft Dice on probabilities.
    Dice {
        eps: f32,
    },
}

impl LossKind {
    /// The op computing this loss and its gradient.
    pub fn op(&self) -> Op {
        match *self {
            LossKind::Mse => Op::MseLoss,
            LossKind::BceWithLogits { pos_weight } => Op::BceWithLogits { pos_weight },
            LossKind::Dice { eps } => Op::DiceLoss { eps },
        }
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            LossKind::Mse => "mse",
            LossKind::BceWithLogits { .. } => "bce",
            LossKind::Dice { .. } => "dice",
        }
    }
}

/// What the graph's `prediction` output means (used to pick metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Task {
    /// Real values (reconstruction, denoising): MSE and PSNR apply.
    Regression,
    /// One probability per element (sigmoid head): positive when >= 0.5.
    BinarySegmentation,
    /// Class probabilities along the last axis (softmax head, channels last).
    MultiClassSegmentation { classes: usize },
}

/// The layer ops of a graph node; operands are the node's `inputs`.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// Graph input `k` (index into [`Graph::inputs`]).
    Input(usize),
    /// Parameter or state `k` (index into [`Graph::params`]).
    Param(usize),
    /// `a, b -> a b` (see [`Op::MatMul`]).
    MatMul {
        trans_a: bool,
        trans_b: bool,
    },
    /// `x, bias -> x + bias` along `axis`.
    BiasAdd {
        axis: usize,
    },
    /// `a, b -> a + b`.
    Add,
    /// `x, w -> conv(x, w)`.
    Conv2d {
        stride: usize,
        padding: Padding,
    },
    /// `x[n, ci, h, w], w[ci, co, kh, kw] -> y[n, co, (h - 1) stride + kh, (w - 1) stride + kw]`:
    /// a transposed convolution without padding (PyTorch's `ConvTranspose2d`, padding 0), the
    /// input gradient of a valid [`Op::Conv2d`] (lowered to [`Op::Conv2dBackwardInput`]).
    ConvTranspose2d {
        stride: usize,
    },
    /// `x, gamma, beta, running_mean, running_var -> y`: batch statistics in training (the
    /// running statistics are updated with `momentum`, PyTorch style: unbiased variance),
    /// running statistics otherwise.
    BatchNorm {
        eps: f32,
        momentum: f32,
    },
    Act(Activation),
    MaxPool2,
    Upsample2,
    /// `a, b -> [a | b]` along channels.
    Concat,
    /// Inverted dropout in training, identity otherwise; the mask changes every step.
    Dropout {
        p: f32,
    },
    /// Softmax over the last axis.
    Softmax,
    /// The same values with another per-sample shape (no copy).
    Reshape(Shape),
    /// `pred, target -> loss[1]`.
    Loss(LossKind),
}

impl Layer {
    /// A short name for schedules and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Layer::Input(_) => "input",
            Layer::Param(_) => "param",
            Layer::MatMul { .. } => "matmul",
            Layer::BiasAdd { .. } => "bias_add",
            Layer::Add => "add",
            Layer::Conv2d { .. } => "conv2d",
            Layer::ConvTranspose2d { .. } => "conv_transpose2d",
            Layer::BatchNorm { .. } => "batchnorm",
            Layer::Act(_) => "activation",
            Layer::MaxPool2 => "maxpool2",
            Layer::Upsample2 => "upsample2",
            Layer::Concat => "concat",
            Layer::Dropout { .. } => "dropout",
            Layer::Softmax => "softmax",
            Layer::Reshape(_) => "reshape",
            Layer::Loss(_) => "loss",
        }
    }
}

/// A node: a layer op over earlier nodes, with its inferred shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub layer: Layer,
    pub inputs: Vec<NodeId>,
    /// Shape with a batch of 1 when [`batched`](Self::batched).
    pub shape: Shape,
    /// Whether the leading axis is the mini-batch.
    pub batched: bool,
}

/// A layer graph. Nodes are added in topological order by the builder methods.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub params: Vec<ParamInfo>,
    pub inputs: Vec<InputInfo>,
    /// Input node of each input, parallel to `inputs`.
    pub input_nodes: Vec<NodeId>,
    /// Param node of each param, parallel to `params`.
    pub param_nodes: Vec<NodeId>,
    /// Loss terms and their weights; the training loss is their weighted sum.
    pub losses: Vec<(NodeId, f32)>,
    /// Named outputs (`prediction` is the model's output; others, e.g. `embedding`, can be
    /// fetched by name).
    pub outputs: Vec<(String, NodeId)>,
    pub task: Option<Task>,
    /// The model description the graph was built from (JSON of [`crate::model::ModelSpec`]),
    /// saved in checkpoints so a checkpoint can rebuild its graph.
    pub spec: Option<serde_json::Value>,
}

/// Nominal batch sizes used by build-time shape inference.
const NOMINAL: [usize; 2] = [1, 2];

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    /// The node's data.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// The node's shape for a batch of `batch` (parameters and losses do not depend on it).
    pub fn shape_at(&self, id: NodeId, batch: usize) -> Shape {
        let n = self.node(id);
        let mut s = n.shape.clone();
        if n.batched {
            s[0] = batch;
        }
        s
    }

    /// The per-sample shape of a batched node (its shape without the batch axis).
    pub fn sample_shape(&self, id: NodeId) -> Shape {
        let n = self.node(id);
        if n.batched {
            n.shape[1..].to_vec()
        } else {
            n.shape.clone()
        }
    }

    /// An input by name.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|i| i.name == name)
    }

    /// A named output.
    pub fn output(&self, name: &str) -> Option<NodeId> {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    }

    /// A parameter's index by name.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// The indices of the data inputs.
    pub fn data_inputs(&self) -> Vec<usize> {
        (0..self.inputs.len())
            .filter(|&k| self.inputs[k].role == InputRole::Data)
            .collect()
    }

    /// Total number of trainable parameter values.
    pub fn num_trainable(&self) -> usize {
        self.params
            .iter()
            .filter(|p| p.trainable)
            .map(|p| numel(&p.shape))
            .sum()
    }

    fn unique_name(&self, name: &str) -> Result<()> {
        if self.nodes.iter().any(|n| n.name == name) {
            return Err(ComputeError::Other(format!(
                "graph: a node named '{name}' already exists"
            )));
        }
        Ok(())
    }

    fn push(
        &mut self,
        name: String,
        layer: Layer,
        inputs: Vec<NodeId>,
        batched: bool,
        shape: Shape,
    ) -> NodeId {
        let id = NodeId(self.nodes.len());
        self.nodes.push(Node {
            name,
            layer,
            inputs,
            shape,
            batched,
        });
        id
    }

    /// Adds a data input with the given per-sample shape.
    pub fn input(&mut self, name: &str, sample_shape: &[usize]) -> Result<NodeId> {
        self.add_input(name, sample_shape, InputRole::Data)
    }

    /// Adds a target input with the given per-sample shape.
    pub fn target(&mut self, name: &str, sample_shape: &[usize]) -> Result<NodeId> {
        self.add_input(name, sample_shape, InputRole::Target)
    }

    fn add_input(&mut self, name: &str, sample_shape: &[usize], role: InputRole) -> Result<NodeId> {
        self.unique_name(name)?;
        if sample_shape.contains(&0) {
            return Err(shape_err(
                "input",
                format!("input '{name}' has an empty shape {sample_shape:?}"),
            ));
        }
        too_large("input", name, sample_shape, true)?;
        let k = self.inputs.len();
        self.inputs.push(InputInfo {
            name: name.to_string(),
            shape: sample_shape.to_vec(),
            role,
        });
        let mut shape = vec![1];
        shape.extend_from_slice(sample_shape);
        let id = self.push(name.to_string(), Layer::Input(k), vec![], true, shape);
        self.input_nodes.push(id);
        Ok(id)
    }

    /// Adds a trainable parameter.
    pub fn param(&mut self, name: &str, shape: &[usize], init: Init) -> Result<NodeId> {
        self.add_param(name, shape, init, true)
    }

    /// Adds a state tensor: saved and loaded with the parameters, never trained.
    pub fn state(&mut self, name: &str, shape: &[usize], init: Init) -> Result<NodeId> {
        self.add_param(name, shape, init, false)
    }

    fn add_param(
        &mut self,
        name: &str,
        shape: &[usize],
        init: Init,
        trainable: bool,
    ) -> Result<NodeId> {
        self.unique_name(name)?;
        if shape.is_empty() || shape.contains(&0) {
            return Err(shape_err(
                "param",
                format!("parameter '{name}' has an empty shape {shape:?}"),
            ));
        }
        too_large("param", name, shape, false)?;
        let k = self.params.len();
        self.params.push(ParamInfo {
            name: name.to_string(),
            shape: shape.to_vec(),
            init,
            trainable,
        });
        let id = self.push(
            name.to_string(),
            Layer::Param(k),
            vec![],
            false,
            shape.to_vec(),
        );
        self.param_nodes.push(id);
        Ok(id)
    }

    /// Adds a node computing `layer` over `inputs`, inferring its shape.
    pub fn layer(&mut self, name: &str, layer: Layer, inputs: &[NodeId]) -> Result<NodeId> {
        self.unique_name(name)?;
        if matches!(layer, Layer::Input(_) | Layer::Param(_)) {
            return Err(ComputeError::Other(format!(
                "graph: '{name}': use Graph::input / Graph::param to add inputs and parameters"
            )));
        }
        if let Some(bad) = inputs.iter().find(|i| i.0 >= self.nodes.len()) {
            return Err(ComputeError::Other(format!(
                "graph: '{name}': unknown node {bad:?}"
            )));
        }
        let batched =
            !matches!(layer, Layer::Loss(_)) && inputs.iter().any(|i| self.nodes[i.0].batched);
        let mut shapes = Vec::new();
        for b in NOMINAL {
            let ins: Vec<Shape> = inputs.iter().map(|&i| self.shape_at(i, b)).collect();
            let refs: Vec<&[usize]> = ins.iter().map(|s| s.as_slice()).collect();
            let s = infer(&layer, &refs, b).map_err(|e| in_layer(name, e))?;
            if checked_numel(&s).is_none() {
                return Err(shape_err(
                    layer.name(),
                    format!(
                        "layer '{name}': output {s:?} has more elements than fit in memory (inputs {ins:?})"
                    ),
                ));
            }
            if batched && s.first() != Some(&b) {
                return Err(shape_err(
                    layer.name(),
                    format!(
                        "layer '{name}': output {s:?} does not keep the batch axis first (inputs {:?})",
                        ins
                    ),
                ));
            }
            shapes.push(s);
        }
        if let Layer::Loss(_) = layer {
            if !self.nodes[inputs[0].0].batched && !self.nodes[inputs[1].0].batched {
                return Err(ComputeError::Other(format!(
                    "graph: loss '{name}' must compare batched values"
                )));
            }
        }
        let shape = shapes.swap_remove(0);
        Ok(self.push(name.to_string(), layer, inputs.to_vec(), batched, shape))
    }

    // ---- Layer-level builders ----------------------------------------------------------

    /// A dense layer `y = x Wᵀ + b` on `x[.., in]` with `W[out, in]` (PyTorch layout) named
    /// `{name}.weight` (Kaiming-uniform with `gain`) and `{name}.bias` (zeros).
    pub fn dense(
        &mut self,
        name: &str,
        x: NodeId,
        out: usize,
        bias: bool,
        gain: f32,
    ) -> Result<NodeId> {
        let xs = self.node(x).shape.clone();
        let fan_in = *xs.last().unwrap_or(&0);
        if xs.len() < 2 {
            return Err(shape_err(
                "dense",
                format!("layer '{name}': input {xs:?} needs a batch and a feature axis"),
            ));
        }
        let w = self.param(
            &format!("{name}.weight"),
            &[out, fan_in],
            Init::KaimingUniform { fan_in, gain },
        )?;
        let mm = self.layer(
            &format!("{name}.matmul"),
            Layer::MatMul {
                trans_a: false,
                trans_b: true,
            },
            &[x, w],
        )?;
        if !bias {
            return Ok(mm);
        }
        let b = self.param(&format!("{name}.bias"), &[out], Init::Zeros)?;
        let axis = xs.len() - 1;
        self.layer(name, Layer::BiasAdd { axis }, &[mm, b])
    }

    /// A 2-D convolution on `x[n, c, h, w]` with `{name}.weight[out, c, k, k]` (Kaiming-uniform
    /// with `gain`) and, when `bias`, `{name}.bias[out]` (zeros).
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d(
        &mut self,
        name: &str,
        x: NodeId,
        out: usize,
        kernel: usize,
        stride: usize,
        padding: Padding,
        bias: bool,
        gain: f32,
    ) -> Result<NodeId> {
        let xs = self.nchw("conv2d", name, x)?;
        let fan_in = xs[1] * kernel * kernel;
        let w_shape = [out, xs[1], kernel, kernel];
        let layer = Layer::Conv2d { stride, padding };
        self.weighted(name, x, layer, &w_shape, fan_in, gain, bias.then_some(out))
    }

    /// The shape of `x`, which layer `name` (an `op`) needs as `[n, c, h, w]`.
    fn nchw(&self, op: &'static str, name: &str, x: NodeId) -> Result<Vec<usize>> {
        let xs = self.node(x).shape.clone();
        if xs.len() != 4 {
            return Err(shape_err(
                op,
                format!("layer '{name}': input {xs:?} must be [n, c, h, w]"),
            ));
        }
        Ok(xs)
    }

    /// `layer(x, {name}.weight)` with a Kaiming-uniform weight of `w_shape`, then, with
    /// `bias: Some(c)`, `+ {name}.bias[c]` (zeros) along axis 1 (the layer node is then
    /// `{name}.conv`, the sum `{name}`).
    #[allow(clippy::too_many_arguments)]
    fn weighted(
        &mut self,
        name: &str,
        x: NodeId,
        layer: Layer,
        w_shape: &[usize],
        fan_in: usize,
        gain: f32,
        bias: Option<usize>,
    ) -> Result<NodeId> {
        let w = self.param(
            &format!("{name}.weight"),
            w_shape,
            Init::KaimingUniform { fan_in, gain },
        )?;
        let Some(out) = bias else {
            return self.layer(name, layer, &[x, w]);
        };
        let y = self.layer(&format!("{name}.conv"), layer, &[x, w])?;
        let b = self.param(&format!("{name}.bias"), &[out], Init::Zeros)?;
        self.layer(name, Layer::BiasAdd { axis: 1 }, &[y, b])
    }

    /// A transposed convolution (no padding) on `x[n, c, h, w]` with
    /// `{name}.weight[c, out, k, k]` (PyTorch's `ConvTranspose2d` layout; Kaiming-uniform with
    /// `gain` and PyTorch's fan-in `out * k * k`) and, when `bias`, `{name}.bias[out]` (zeros).
    /// The output is `[n, out, (h - 1) stride + k, (w - 1) stride + k]`.
    #[allow(clippy::too_many_arguments)]
    pub fn conv_transpose2d(
        &mut self,
        name: &str,
        x: NodeId,
        out: usize,
        kernel: usize,
        stride: usize,
        bias: bool,
        gain: f32,
    ) -> Result<NodeId> {
        let xs = self.nchw("conv_transpose2d", name, x)?;
        if kernel == 0 || stride == 0 || out == 0 {
            return Err(shape_err(
                "conv_transpose2d",
                format!(
                    "layer '{name}': filters {out}, kernel {kernel} and stride {stride} must be positive"
                ),
            ));
        }
        let fan_in = out.saturating_mul(kernel).saturating_mul(kernel);
        let w_shape = [xs[1], out, kernel, kernel];
        let layer = Layer::ConvTranspose2d { stride };
        self.weighted(name, x, layer, &w_shape, fan_in, gain, bias.then_some(out))
    }

    /// Batch norm over axis 1 with `{name}.gamma` (ones), `{name}.beta` (zeros) and the state
    /// `{name}.running_mean` (zeros), `{name}.running_var` (ones); `eps = 1e-5`,
    /// `momentum = 0.1` as PyTorch.
    pub fn batch_norm(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        let xs = self.node(x).shape.clone();
        if xs.len() < 2 {
            return Err(shape_err(
                "batchnorm",
                format!("layer '{name}': input {xs:?} needs a channel axis"),
            ));
        }
        let c = [xs[1]];
        let g = self.param(&format!("{name}.gamma"), &c, Init::Ones)?;
        let b = self.param(&format!("{name}.beta"), &c, Init::Zeros)?;
        let rm = self.state(&format!("{name}.running_mean"), &c, Init::Zeros)?;
        let rv = self.state(&format!("{name}.running_var"), &c, Init::Ones)?;
        self.layer(
            name,
            Layer::BatchNorm {
                eps: 1e-5,
                momentum: 0.1,
            },
            &[x, g, b, rm, rv],
        )
    }

    /// `a + b` (same shapes; residual connections).
    pub fn add(&mut self, name: &str, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.layer(name, Layer::Add, &[a, b])
    }

    /// A pointwise activation.
    pub fn act(&mut self, name: &str, x: NodeId, a: Activation) -> Result<NodeId> {
        self.layer(name, Layer::Act(a), &[x])
    }

    pub fn max_pool2(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        self.layer(name, Layer::MaxPool2, &[x])
    }

    pub fn upsample2(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        self.layer(name, Layer::Upsample2, &[x])
    }

    pub fn concat(&mut self, name: &str, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.layer(name, Layer::Concat, &[a, b])
    }

    pub fn dropout(&mut self, name: &str, x: NodeId, p: f32) -> Result<NodeId> {
        if !(0.0..1.0).contains(&p) {
            return Err(ComputeError::Other(format!(
                "graph: dropout '{name}': p must be in [0, 1), got {p}"
            )));
        }
        self.layer(name, Layer::Dropout { p }, &[x])
    }

    pub fn softmax(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        self.layer(name, Layer::Softmax, &[x])
    }

    /// The same values with another per-sample shape.
    pub fn reshape(&mut self, name: &str, x: NodeId, sample_shape: &[usize]) -> Result<NodeId> {
        self.layer(name, Layer::Reshape(sample_shape.to_vec()), &[x])
    }

    /// Adds a loss term `weight * loss(pred, target)` to the training loss.
    pub fn loss(
        &mut self,
        name: &str,
        kind: LossKind,
        pred: NodeId,
        target: NodeId,
        weight: f32,
    ) -> Result<NodeId> {
        let id = self.layer(name, Layer::Loss(kind), &[pred, target])?;
        self.losses.push((id, weight));
        Ok(id)
    }

    /// Names a node as an output (`prediction` is the model's output).
    pub fn set_output(&mut self, name: &str, node: NodeId) -> Result<()> {
        if node.0 >= self.nodes.len() {
            return Err(ComputeError::Other(format!("graph: unknown node {node:?}")));
        }
        if !self.nodes[node.0].batched {
            return Err(ComputeError::Other(format!(
                "graph: output '{name}' must be a batched value"
            )));
        }
        self.outputs.retain(|(n, _)| n != name);
        self.outputs.push((name.to_string(), node));
        Ok(())
    }

    /// Whether a node depends on any trainable parameter (and so needs a gradient).
    pub(crate) fn requires_grad(&self) -> Vec<bool> {
        let mut rg = vec![false; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            rg[i] = match n.layer {
                Layer::Param(k) => self.params[k].trainable,
                Layer::Input(_) => false,
                _ => n.inputs.iter().any(|j| rg[j.0]),
            };
        }
        rg
    }

    /// The nodes `roots` depend on (including themselves).
    pub(crate) fn ancestors(&self, roots: &[NodeId]) -> Vec<bool> {
        let mut need = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeId> = roots.to_vec();
        let mut seen = HashSet::new();
        while let Some(n) = stack.pop() {
            if !seen.insert(n) {
                continue;
            }
            need[n.0] = true;
            stack.extend(self.nodes[n.0].inputs.iter().copied());
        }
        need
    }

    /// A one-line-per-node description of the graph with shapes (batch axis shown as `N`).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let shape = if n.batched {
                let rest: Vec<String> = n.shape[1..].iter().map(|d| d.to_string()).collect();
                if rest.is_empty() {
                    "[N]".to_string()
                } else {
                    format!("[N, {}]", rest.join(", "))
                }
            } else {
                format!("{:?}", n.shape)
            };
            let ins: Vec<String> = n.inputs.iter().map(|j| format!("%{}", j.0)).collect();
            s.push_str(&format!(
                "%{i} {} = {}({}) {shape}\n",
                n.name,
                n.layer.name(),
                ins.join(", ")
            ));
        }
        s
    }
}

/// Refuses a shape whose element count overflows `usize` (with a batch axis of 2 in front when
/// `batched`, the larger of build-time inference's nominal batches).
fn too_large(op: &'static str, name: &str, shape: &[usize], batched: bool) -> Result<()> {
    let n = checked_numel(shape).and_then(|n| if batched { n.checked_mul(2) } else { Some(n) });
    if n.is_none() {
        return Err(shape_err(
            op,
            format!("'{name}' has shape {shape:?}, more elements than fit in memory"),
        ));
    }
    Ok(())
}

/// Prefixes a shape error with the layer's name.
fn in_layer(name: &str, e: ComputeError) -> ComputeError {
    match e {
        ComputeError::Shape { op, message } => ComputeError::Shape {
            op,
            message: format!("layer '{name}': {message}"),
        },
        other => other,
    }
}

/// The output shape of `layer` for these input shapes.
pub(crate) fn infer(layer: &Layer, ins: &[&[usize]], batch: usize) -> Result<Shape> {
    let arity = |n: usize| -> Result<()> {
        if ins.len() != n {
            return Err(shape_err(
                layer.name(),
                format!("takes {n} inputs, got {}", ins.len()),
            ));
        }
        Ok(())
    };
    let first = |op: Op, k: usize| -> Result<Shape> {
        arity(k)?;
        Ok(op.output_shapes(ins)?.swap_remove(0))
    };
    match layer {
        Layer::Input(_) | Layer::Param(_) => Err(ComputeError::Other(
            "inputs and parameters have no inferred shape".into(),
        )),
        Layer::MatMul { trans_a, trans_b } => first(
            Op::MatMul {
                trans_a: *trans_a,
                trans_b: *trans_b,
            },
            2,
        ),
        Layer::BiasAdd { axis } => first(Op::BiasAdd { axis: *axis }, 2),
        Layer::Add => first(Op::Add, 2),
        Layer::Conv2d { stride, padding } => first(
            Op::Conv2d {
                stride: *stride,
                padding: *padding,
            },
            2,
        ),
        Layer::ConvTranspose2d { stride } => {
            arity(2)?;
            let (x, w) = (ins[0], ins[1]);
            if x.len() != 4 || w.len() != 4 {
                return Err(shape_err(
                    layer.name(),
                    format!("input {x:?} must be [n, c, h, w] and weight {w:?} [c, out, kh, kw]"),
                ));
            }
            if *stride == 0 || w[2] == 0 || w[3] == 0 {
                return Err(shape_err(
                    layer.name(),
                    format!("stride {stride} and kernel {w:?} must be positive"),
                ));
            }
            let grow = |n: usize, k: usize| n.checked_sub(1)?.checked_mul(*stride)?.checked_add(k);
            let (Some(in_h), Some(in_w)) = (grow(x[2], w[2]), grow(x[3], w[3])) else {
                return Err(shape_err(
                    layer.name(),
                    format!("output of input {x:?}, weight {w:?}, stride {stride} overflows"),
                ));
            };
            Ok(Op::Conv2dBackwardInput {
                stride: *stride,
                padding: Padding::Valid,
                in_h,
                in_w,
            }
            .output_shapes(ins)?
            .swap_remove(0))
        }
        Layer::BatchNorm { eps, .. } => first(Op::BatchNormEval { eps: *eps }, 5),
        Layer::Act(a) => first(Op::Act(*a), 1),
        Layer::MaxPool2 => first(Op::MaxPool2, 1),
        Layer::Upsample2 => first(Op::Upsample2, 1),
        Layer::Concat => first(Op::ConcatChannels, 2),
        Layer::Dropout { p } => first(Op::Dropout { p: *p, seed: 0 }, 1),
        Layer::Softmax => first(Op::Softmax, 1),
        Layer::Reshape(to) => {
            arity(1)?;
            let x = ins[0];
            let mut s = vec![batch];
            s.extend_from_slice(to);
            if x.first() != Some(&batch) || numel(x) != numel(&s) {
                return Err(shape_err(
                    "reshape",
                    format!("cannot reshape {x:?} to {s:?} (element counts or batch differ)"),
                ));
            }
            Ok(s)
        }
        Layer::Loss(kind) => {
            arity(2)?;
            let (p, t) = (ins[0], ins[1]);
            if p != t {
                return Err(shape_err(
                    kind.op().name(),
                    format!("prediction {p:?} and target {t:?} differ"),
                ));
            }
            Ok(vec![1])
        }
    }
}
