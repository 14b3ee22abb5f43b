//! Training: the [`Trainer`] runs a graph's lowered schedules on a backend over mini-batches
//! with seeded shuffling and initialisation, a validation split, early stopping and
//! per-epoch metrics; checkpoints are safetensors files.
//!
//! Determinism: parameters are initialised from the seed (one ChaCha8 stream per parameter),
//! every epoch's order is a ChaCha8 shuffle seeded from the seed and the epoch number, and
//! dropout masks hash the seed, the step and the layer; on a backend with deterministic
//! kernels (the CPU backend), the same seed gives bitwise the same weights.
//!
//! Mini-batches: a training epoch runs `floor(n / batch_size)` steps of `batch_size` samples
//! (the last partial batch is skipped; with shuffling every sample is still used across
//! epochs), so one schedule serves every step. Evaluation and prediction cover every sample
//! (a second schedule handles the remainder). A `batch_size` larger than the training set
//! (after the validation split) is an error, as are 0 epochs.
//!
//! Bad data is refused, naming the sample: NaN or infinite values (a NaN can vanish in a
//! ReLU and leave the loss finite, so the data is checked, not only the loss: training
//! batches step by step, validation samples, evaluation and prediction inputs up front),
//! and targets outside [0, 1] for a BCE or Dice loss.
//!
//! Checkpoints (safetensors, little-endian `f32`): `param/{name}` (trainable parameters),
//! `state/{name}` (batch-norm running statistics), `optim/{name}/{velocity|m|v}`; metadata
//! `format` = `mlp-compute-checkpoint`, `version` = `1`, `config` (JSON: the model spec and
//! the training configuration), `optimizer_step` and `epoch`. Saving writes a temporary file
//! beside the target and renames it over the target, so a failed save leaves the earlier
//! checkpoint whole. Loading refuses tensors the model does not have (a checkpoint of another
//! model), tensors of another shape or dtype, and metadata that does not parse.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::error::{shape_err, ComputeError, Result};
use crate::graph::{
    Graph, InputRole, Layer, LossKind, Mode, OptimizerKind, OptimizerState, Phase, Program,
    RunContext, StepHyper, Task, Weights,
};
use crate::model::ModelSpec;
use crate::op::numel;

/// Tensors by name: `(name, values)`.
pub type NamedTensors = Vec<(String, Vec<f32>)>;

/// Optimizers (the contract's `Sgd` and `Adam` ops).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    /// SGD with momentum and L2 weight decay.
    Sgd { momentum: f32, weight_decay: f32 },
    /// Adam (L2 weight decay added to the gradient).
    Adam {
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
    /// AdamW (decoupled weight decay).
    AdamW {
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
}

impl Optimizer {
    pub fn sgd(momentum: f32) -> Optimizer {
        Optimizer::Sgd {
            momentum,
            weight_decay: 0.0,
        }
    }

    /// Adam with PyTorch's defaults (0.9, 0.999, 1e-8).
    pub fn adam() -> Optimizer {
        Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// AdamW with PyTorch's defaults and the given weight decay.
    pub fn adamw(weight_decay: f32) -> Optimizer {
        Optimizer::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }

    pub fn kind(&self) -> OptimizerKind {
        match self {
            Optimizer::Sgd { .. } => OptimizerKind::Sgd,
            _ => OptimizerKind::Adam,
        }
    }

    /// The hyper-parameters of an update with learning rate `lr`.
    pub fn hyper(&self, lr: f32) -> StepHyper {
        match *self {
            Optimizer::Sgd {
                momentum,
                weight_decay,
            } => StepHyper::Sgd {
                lr,
                momentum,
                weight_decay,
            },
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => StepHyper::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled: false,
            },
            Optimizer::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => StepHyper::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled: true,
            },
        }
    }
}

/// Learning-rate schedule over the epochs of one `fit` call (the rate is updated at every
/// step).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum LrSchedule {
    #[default]
    Constant,
    /// Cosine decay from `lr` to `min_lr` over the run.
    Cosine { min_lr: f32 },
    /// `lr * gamma^(epoch / every)` (epochs counted from 0 in this run).
    Step { every: usize, gamma: f32 },
}

impl LrSchedule {
    /// The rate at `progress` (step index in the run over total steps) of epoch `epoch`
    /// (0-based in the run).
    pub fn lr(&self, lr: f32, epoch: usize, step: usize, total_steps: usize) -> f32 {
        match *self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine { min_lr } => {
                let t = step as f64 / total_steps.max(1) as f64;
                let c = 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
                (min_lr as f64 + (lr - min_lr) as f64 * c) as f32
            }
            LrSchedule::Step { every, gamma } => lr * gamma.powi((epoch / every.max(1)) as i32),
        }
    }
}

/// Per-epoch metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Metric {
    /// Intersection over union of the positive class (probability >= 0.5, or the argmax
    /// for class probabilities), over all pixels of the evaluated set.
    Iou,
    /// Fraction of pixels whose class is right.
    PixelAccuracy,
    /// `10 log10(range^2 / mse)`, `range` = max - min of the targets.
    Psnr,
    /// Mean squared error of the prediction.
    Mse,
}

/// Training configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    pub optimizer: Optimizer,
    /// Seeds initialisation, the validation split, shuffling and dropout.
    pub seed: u64,
    /// Fraction of the samples held out for validation when `fit` gets no validation set.
    pub validation_split: f32,
    /// Stop after this many epochs without improvement of the monitored loss (validation
    /// loss, or training loss without validation).
    pub early_stopping_patience: Option<usize>,
    /// The least decrease counted as an improvement.
    pub min_delta: f32,
    /// At the end of `fit`, go back to the weights of the best epoch.
    pub restore_best: bool,
    pub shuffle: bool,
    /// Metrics computed on the validation set each epoch (empty: chosen from the task: IoU
    /// and pixel accuracy for segmentation, MSE and PSNR for regression).
    pub metrics: Vec<Metric>,
    /// The class whose IoU is reported for class-probability outputs.
    pub positive_class: usize,
    /// Print one line per epoch to stderr.
    pub verbose: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 32,
            lr: 1e-3,
            lr_schedule: LrSchedule::Constant,
            optimizer: Optimizer::adam(),
            seed: 0,
            validation_split: 0.0,
            early_stopping_patience: None,
            min_delta: 0.0,
            restore_best: false,
            shuffle: true,
            metrics: vec![],
            positive_class: 1,
            verbose: false,
        }
    }
}

/// Samples: `inputs` is `samples x features` (row-major, the features of a sample in the
/// layout of the graph's data input); `targets` likewise for the target input. Without
/// targets, the inputs serve as targets when the shapes agree (autoencoders).
#[derive(Clone, Copy, Debug)]
pub struct Dataset<'a> {
    pub inputs: &'a [f32],
    pub targets: Option<&'a [f32]>,
}

impl<'a> Dataset<'a> {
    pub fn new(inputs: &'a [f32], targets: &'a [f32]) -> Dataset<'a> {
        Dataset {
            inputs,
            targets: Some(targets),
        }
    }

    /// Inputs only (autoencoders, prediction).
    pub fn inputs(inputs: &'a [f32]) -> Dataset<'a> {
        Dataset {
            inputs,
            targets: None,
        }
    }
}

/// Metric values (those computed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub iou: Option<f64>,
    pub pixel_accuracy: Option<f64>,
    pub psnr: Option<f64>,
    pub mse: Option<f64>,
}

/// Loss and metrics over a dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Weighted sum of the loss terms, averaged over batches weighted by their size.
    pub loss: f32,
    /// Each loss term (name, mean value).
    pub terms: Vec<(String, f32)>,
    pub metrics: Metrics,
}

/// One epoch's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based, counted over the trainer's life.
    pub epoch: usize,
    pub train_loss: f32,
    pub val_loss: Option<f32>,
    /// On the validation set.
    pub metrics: Metrics,
    pub seconds: f64,
}

impl fmt::Display for EpochMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epoch {:>3}: loss {:.6}", self.epoch, self.train_loss)?;
        if let Some(v) = self.val_loss {
            write!(f, ", val loss {v:.6}")?;
        }
        let m = &self.metrics;
        if let Some(v) = m.iou {
            write!(f, ", IoU {v:.4}")?;
        }
        if let Some(v) = m.pixel_accuracy {
            write!(f, ", pixel acc {v:.4}")?;
        }
        if let Some(v) = m.mse {
            write!(f, ", MSE {v:.6}")?;
        }
        if let Some(v) = m.psnr {
            write!(f, ", PSNR {v:.2} dB")?;
        }
        write!(f, " ({:.2} s)", self.seconds)
    }
}

/// The outcome of [`Trainer::fit`].
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    pub epochs: Vec<EpochMetrics>,
    /// The epoch with the lowest monitored loss.
    pub best_epoch: usize,
    pub best_loss: f32,
    pub stopped_early: bool,
    /// Whether the weights were reset to the best epoch's.
    pub restored_best: bool,
    pub seconds: f64,
}

/// Trains and runs a graph on a backend.
pub struct Trainer {
    backend: Arc<dyn Backend>,
    graph: Graph,
    config: TrainConfig,
    weights: Weights,
    opt: OptimizerState,
    data_input: usize,
    target_input: Option<usize>,
    /// Training programs by batch size (with optimizer).
    train_progs: HashMap<usize, Program>,
    /// Gradient-only programs by batch size.
    grad_progs: HashMap<usize, Program>,
    /// Evaluation programs by batch size.
    eval_progs: HashMap<usize, Program>,
    /// Prediction programs by (batch size, output).
    predict_progs: HashMap<(usize, String), Program>,
    epochs_done: usize,
}

fn other(msg: impl Into<String>) -> ComputeError {
    ComputeError::Other(msg.into())
}

fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const SPLIT_STREAM: u64 = 0x0053_504c_4954;
const SHUFFLE_STREAM: u64 = 0x5348_5546;

impl Trainer {
    /// A trainer for `graph` with parameters initialised from `config.seed`.
    ///
    /// The graph needs one data input and at most one target input.
    pub fn new(backend: Arc<dyn Backend>, graph: Graph, config: TrainConfig) -> Result<Trainer> {
        check_config(&config)?;
        check_positive_class(&graph, &config)?;
        let data: Vec<usize> = graph.data_inputs();
        if data.len() != 1 {
            return Err(other(format!(
                "trainer: the graph needs exactly one data input, it has {}",
                data.len()
            )));
        }
        let targets: Vec<usize> = (0..graph.inputs.len())
            .filter(|&k| graph.inputs[k].role == InputRole::Target)
            .collect();
        if targets.len() > 1 {
            return Err(other(format!(
                "trainer: the graph may have one target input, it has {}",
                targets.len()
            )));
        }
        let weights = Weights::new(backend.clone(), &graph.params, config.seed)?;
        let opt = OptimizerState::new(backend.clone(), config.optimizer.kind(), &graph.params)?;
        Ok(Trainer {
            backend,
            data_input: data[0],
            target_input: targets.first().copied(),
            graph,
            config,
            weights,
            opt,
            train_progs: HashMap::new(),
            grad_progs: HashMap::new(),
            eval_progs: HashMap::new(),
            predict_progs: HashMap::new(),
            epochs_done: 0,
        })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Epochs trained so far.
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// Optimizer updates applied so far.
    pub fn steps_done(&self) -> u32 {
        self.opt.step
    }

    /// Changes the training configuration (the optimizer kind must stay the same: its state
    /// is kept). Takes effect at the next `fit`.
    pub fn set_config(&mut self, config: TrainConfig) -> Result<()> {
        check_config(&config)?;
        check_positive_class(&self.graph, &config)?;
        if config.optimizer.kind() != self.config.optimizer.kind() {
            return Err(other(
                "trainer: set_config cannot switch between SGD and Adam (the optimizer state differs)",
            ));
        }
        self.config = config;
        Ok(())
    }

    /// The training schedule for the configured batch size (for printing).
    pub fn train_schedule(&self) -> Result<crate::graph::Schedule> {
        self.graph
            .lower_train(self.config.batch_size, Some(self.config.optimizer.kind()))
    }

    fn x_len(&self) -> usize {
        numel(&self.graph.inputs[self.data_input].shape)
    }

    fn y_len(&self) -> Option<usize> {
        self.target_input
            .map(|k| numel(&self.graph.inputs[k].shape))
    }

    /// Checks a dataset's sizes against the graph's inputs; returns the number of samples
    /// and the targets to use.
    fn check_data<'d>(
        &self,
        d: &Dataset<'d>,
        need_targets: bool,
    ) -> Result<(usize, Option<&'d [f32]>)> {
        let xi = &self.graph.inputs[self.data_input];
        let xl = self.x_len();
        if d.inputs.is_empty() || !d.inputs.len().is_multiple_of(xl) {
            return Err(shape_err(
                "dataset",
                format!(
                    "inputs hold {} values, not a positive multiple of the per-sample shape {:?} of input '{}' ({xl} values)",
                    d.inputs.len(),
                    xi.shape,
                    xi.name
                ),
            ));
        }
        let n = d.inputs.len() / xl;
        if !need_targets {
            return Ok((n, None));
        }
        let Some(tk) = self.target_input else {
            return Ok((n, None));
        };
        let ti = &self.graph.inputs[tk];
        let yl = numel(&ti.shape);
        let targets = match d.targets {
            Some(t) => t,
            None if yl == xl => d.inputs,
            None => {
                return Err(shape_err(
                    "dataset",
                    format!(
                        "targets are required: input '{}' {:?} and target '{}' {:?} differ, so the inputs cannot serve as targets",
                        xi.name, xi.shape, ti.name, ti.shape
                    ),
                ))
            }
        };
        if targets.len() != n * yl {
            let mut want = vec![n];
            want.extend_from_slice(&ti.shape);
            return Err(shape_err(
                "dataset",
                format!(
                    "targets hold {} values, expected shape {want:?} ({} values) for {n} samples of inputs {:?}",
                    targets.len(),
                    n * yl,
                    {
                        let mut s = vec![n];
                        s.extend_from_slice(&xi.shape);
                        s
                    }
                ),
            ));
        }
        self.check_target_range(targets, yl)?;
        Ok((n, Some(targets)))
    }

    /// Targets of a BCE or Dice loss are probabilities (0/1 masks): a value outside [0, 1]
    /// (a 0/255 mask, class ids, NaN) trains on nonsense without a NaN to stop it.
    fn check_target_range(&self, targets: &[f32], per: usize) -> Result<()> {
        let Some(tk) = self.target_input else {
            return Ok(());
        };
        let tnode = self.graph.input_nodes[tk];
        let loss = self.graph.losses.iter().find_map(|(id, _)| {
            let n = self.graph.node(*id);
            match n.layer {
                Layer::Loss(k @ (LossKind::BceWithLogits { .. } | LossKind::Dice { .. }))
                    if n.inputs.get(1) == Some(&tnode) =>
                {
                    Some((n.name.clone(), k))
                }
                _ => None,
            }
        });
        let Some((name, kind)) = loss else {
            return Ok(());
        };
        if let Some(i) = targets.iter().position(|t| !(0.0..=1.0).contains(t)) {
            return Err(other(format!(
                "dataset: the {} loss '{name}' needs targets in [0, 1] (probabilities or 0/1 masks), but sample {} of the targets holds {} (value {} of {per})",
                kind.name(),
                i / per,
                targets[i],
                i % per
            )));
        }
        Ok(())
    }

    fn gathered(src: &[f32], per: usize, idx: &[usize]) -> Vec<f32> {
        let mut v = Vec::new();
        Self::gather(src, per, idx, &mut v);
        v
    }

    fn gather(src: &[f32], per: usize, idx: &[usize], out: &mut Vec<f32>) {
        out.clear();
        for &i in idx {
            out.extend_from_slice(&src[i * per..(i + 1) * per]);
        }
    }

    fn program(&mut self, mode: Mode, batch: usize, output: Option<&str>) -> Result<&Program> {
        match mode {
            Mode::Predict => {
                let out = output.unwrap_or("prediction");
                let key = (batch, out.to_string());
                if !self.predict_progs.contains_key(&key) {
                    let s = self.graph.lower_predict(batch, &[out])?;
                    let p = Program::bind(self.backend.clone(), s, &self.weights, None)?;
                    self.predict_progs.insert(key.clone(), p);
                }
                Ok(&self.predict_progs[&key])
            }
            Mode::Train => {
                if !self.train_progs.contains_key(&batch) {
                    let s = self
                        .graph
                        .lower_train(batch, Some(self.config.optimizer.kind()))?;
                    let p = Program::bind(self.backend.clone(), s, &self.weights, Some(&self.opt))?;
                    self.train_progs.insert(batch, p);
                }
                Ok(&self.train_progs[&batch])
            }
            Mode::Eval => {
                if !self.eval_progs.contains_key(&batch) {
                    let s = self.graph.lower_eval(batch)?;
                    let p = Program::bind(self.backend.clone(), s, &self.weights, None)?;
                    self.eval_progs.insert(batch, p);
                }
                Ok(&self.eval_progs[&batch])
            }
        }
    }

    fn grad_program(&mut self, batch: usize) -> Result<&Program> {
        if !self.grad_progs.contains_key(&batch) {
            let s = self.graph.lower_train(batch, None)?;
            let p = Program::bind(self.backend.clone(), s, &self.weights, None)?;
            self.grad_progs.insert(batch, p);
        }
        Ok(&self.grad_progs[&batch])
    }

    fn weighted(&self, terms: &[f32]) -> f32 {
        terms
            .iter()
            .zip(&self.graph.losses)
            .map(|(l, (_, w))| l * w)
            .sum()
    }

    fn loss_names(&self) -> Vec<String> {
        self.graph
            .losses
            .iter()
            .map(|(id, _)| self.graph.node(*id).name.clone())
            .collect()
    }

    /// Trains for `config.epochs` epochs (or until early stopping). Without `val`, a
    /// `validation_split` fraction of `train` (chosen by a seeded shuffle) is held out.
    pub fn fit(&mut self, train: &Dataset, val: Option<&Dataset>) -> Result<TrainReport> {
        let start = Instant::now();
        let (n, ty) = self.check_data(train, true)?;
        let xl = self.x_len();
        let yl = self.y_len().unwrap_or(0);
        // Validation: given, or split off.
        let mut order: Vec<usize> = (0..n).collect();
        let mut val_idx: Vec<usize> = Vec::new();
        let val_data = match val {
            Some(v) => {
                self.check_data(v, true)?;
                Some(*v)
            }
            None => {
                if self.config.validation_split > 0.0 {
                    let mut rng = ChaCha8Rng::seed_from_u64(mix(self.config.seed, SPLIT_STREAM));
                    order.shuffle(&mut rng);
                    let nv = ((n as f64) * self.config.validation_split as f64).round() as usize;
                    let nv = nv.min(n.saturating_sub(1));
                    val_idx = order.drain(..nv).collect();
                    val_idx.sort_unstable();
                    order.sort_unstable();
                }
                None
            }
        };
        let train_idx = order;
        let nt = train_idx.len();
        if nt == 0 {
            return Err(other("fit: no training samples"));
        }
        if self.config.epochs == 0 {
            return Err(other(
                "fit: epochs is 0, so there is nothing to train (set TrainConfig::epochs to at least 1)",
            ));
        }
        if self.config.batch_size > nt {
            let held = if val_idx.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} of {n} samples are held out by validation_split {})",
                    val_idx.len(),
                    self.config.validation_split
                )
            };
            return Err(other(format!(
                "fit: batch_size {} is larger than the {nt} training samples{held}; use batch_size {nt} or less, or more data",
                self.config.batch_size
            )));
        }
        // Validation samples are checked once here (a NaN may vanish in a ReLU and leave the
        // validation loss finite); training batches are checked step by step below.
        match &val_data {
            Some(v) => {
                let (_, vy) = self.check_data(v, true)?;
                check_finite("fit", "validation inputs", v.inputs, self.x_len(), None)?;
                if let Some(vy) = vy {
                    check_finite("fit", "validation targets", vy, yl, None)?;
                }
            }
            None if !val_idx.is_empty() => {
                let vx = Self::gathered(train.inputs, xl, &val_idx);
                check_finite("fit", "inputs", &vx, xl, Some(&val_idx))?;
                if let Some(t) = ty {
                    let vy = Self::gathered(t, yl, &val_idx);
                    check_finite("fit", "targets", &vy, yl, Some(&val_idx))?;
                }
            }
            None => {}
        }
        let batch = self.config.batch_size;
        let steps = nt / batch;
        let total_steps = steps * self.config.epochs;
        let names = self.loss_names();
        let patience = self.config.early_stopping_patience;
        let mut report = TrainReport {
            epochs: vec![],
            best_epoch: 0,
            best_loss: f32::INFINITY,
            stopped_early: false,
            restored_best: false,
            seconds: 0.0,
        };
        let mut best_weights: Option<Vec<Vec<f32>>> = None;
        let mut wait = 0usize;
        let mut xb = Vec::with_capacity(batch * xl);
        let mut yb = Vec::with_capacity(batch * yl);
        let x_name = self.graph.inputs[self.data_input].name.clone();
        let t_name = self
            .target_input
            .map(|k| self.graph.inputs[k].name.clone())
            .unwrap_or_default();
        for run_epoch in 0..self.config.epochs {
            let t0 = Instant::now();
            let epoch = self.epochs_done + 1;
            let mut perm = train_idx.clone();
            if self.config.shuffle {
                let mut rng = ChaCha8Rng::seed_from_u64(mix(
                    mix(self.config.seed, SHUFFLE_STREAM),
                    epoch as u64,
                ));
                perm.shuffle(&mut rng);
            }
            let mut sum = 0f64;
            for s in 0..steps {
                let idx = &perm[s * batch..(s + 1) * batch];
                Self::gather(train.inputs, xl, idx, &mut xb);
                if let (Some(t), Some(_)) = (ty, self.target_input) {
                    Self::gather(t, yl, idx, &mut yb);
                }
                let step = self.opt.step + 1;
                let bad = non_finite(&xb, xl, idx).map(|b| ("inputs", b)).or_else(|| {
                    (ty.is_some() && self.target_input.is_some())
                        .then(|| non_finite(&yb, yl, idx))
                        .flatten()
                        .map(|b| ("targets", b))
                });
                if let Some((what, (sample, k, v))) = bad {
                    return Err(ComputeError::NonFinite(format!(
                        "training stopped: sample {sample} of the training {what} holds {} (value {k} of {}) at epoch {epoch}, step {} of {steps} (global step {step}); the parameters are those before this step",
                        finite_name(v),
                        if what == "inputs" { xl } else { yl },
                        s + 1
                    )));
                }
                let lr = self.config.lr_schedule.lr(
                    self.config.lr,
                    run_epoch,
                    run_epoch * steps + s,
                    total_steps,
                );
                let ctx = RunContext {
                    seed: self.config.seed,
                    step,
                    hyper: Some(self.config.optimizer.hyper(lr)),
                };
                let (data_input, target_input) = (self.data_input, self.target_input);
                let prog = self.program(Mode::Train, batch, None)?;
                prog.set_input(data_input, &x_name, &xb)?;
                if let Some(tk) = target_input {
                    if prog.schedule().input(tk).is_some() {
                        prog.set_input(tk, &t_name, &yb)?;
                    }
                }
                prog.run_until(&ctx, Phase::Backward)?;
                let terms = prog.losses()?;
                let total = self.weighted(&terms);
                if !total.is_finite() {
                    let detail: Vec<String> = names
                        .iter()
                        .zip(&terms)
                        .map(|(n, v)| format!("{n} = {v}"))
                        .collect();
                    return Err(ComputeError::NonFinite(format!(
                        "training stopped: the loss is {} at epoch {epoch}, step {} of {steps} (global step {step}; {}); the parameters are those before this step",
                        finite_name(total),
                        s + 1,
                        detail.join(", ")
                    )));
                }
                let prog = self.program(Mode::Train, batch, None)?;
                prog.run_from(&ctx, Phase::Optimizer)?;
                self.opt.step = step;
                sum += total as f64;
            }
            let train_loss = (sum / steps.max(1) as f64) as f32;
            // Validation.
            let ev = if let Some(v) = &val_data {
                let (nv, vy) = self.check_data(v, true)?;
                let idx: Vec<usize> = (0..nv).collect();
                Some(self.evaluate_idx(v.inputs, vy, &idx)?)
            } else if !val_idx.is_empty() {
                Some(self.evaluate_idx(train.inputs, ty, &val_idx.clone())?)
            } else {
                None
            };
            self.epochs_done = epoch;
            let rec = EpochMetrics {
                epoch,
                train_loss,
                val_loss: ev.as_ref().map(|e| e.loss),
                metrics: ev.as_ref().map(|e| e.metrics).unwrap_or_default(),
                seconds: t0.elapsed().as_secs_f64(),
            };
            if self.config.verbose {
                eprintln!("{rec}");
            }
            if let Some(v) = rec.val_loss {
                if !v.is_finite() {
                    return Err(ComputeError::NonFinite(format!(
                        "training stopped: the validation loss is {v} after epoch {epoch} (step {})",
                        self.opt.step
                    )));
                }
            }
            let monitor = rec.val_loss.unwrap_or(train_loss);
            report.epochs.push(rec);
            if monitor < report.best_loss - self.config.min_delta {
                report.best_loss = monitor;
                report.best_epoch = epoch;
                wait = 0;
                if self.config.restore_best {
                    best_weights = Some(self.all_weights()?);
                }
            } else {
                wait += 1;
                if let Some(p) = patience {
                    if wait >= p {
                        report.stopped_early = true;
                        break;
                    }
                }
            }
        }
        if let Some(bw) = best_weights {
            if report.best_epoch != self.epochs_done {
                for (k, v) in bw.iter().enumerate() {
                    self.weights.set(k, v)?;
                }
                report.restored_best = true;
            }
        }
        report.seconds = start.elapsed().as_secs_f64();
        Ok(report)
    }

    fn all_weights(&self) -> Result<Vec<Vec<f32>>> {
        (0..self.weights.len())
            .map(|k| self.weights.get(k))
            .collect()
    }

    fn metric_set(&self) -> Vec<Metric> {
        if !self.config.metrics.is_empty() {
            return self.config.metrics.clone();
        }
        match self.graph.task {
            Some(Task::BinarySegmentation) | Some(Task::MultiClassSegmentation { .. }) => {
                vec![Metric::Iou, Metric::PixelAccuracy]
            }
            Some(Task::Regression) => vec![Metric::Mse, Metric::Psnr],
            None => vec![],
        }
    }

    /// Loss and metrics on a dataset (inference mode: running statistics, no dropout).
    pub fn evaluate(&mut self, data: &Dataset) -> Result<Evaluation> {
        let (n, ty) = self.check_data(data, true)?;
        check_finite("evaluate", "inputs", data.inputs, self.x_len(), None)?;
        if let Some(t) = ty {
            check_finite("evaluate", "targets", t, self.y_len().unwrap_or(1), None)?;
        }
        let idx: Vec<usize> = (0..n).collect();
        self.evaluate_idx(data.inputs, ty, &idx)
    }

    fn evaluate_idx(
        &mut self,
        inputs: &[f32],
        targets: Option<&[f32]>,
        idx: &[usize],
    ) -> Result<Evaluation> {
        let xl = self.x_len();
        let yl = self.y_len().unwrap_or(0);
        let batch = self.config.batch_size.min(idx.len()).max(1);
        let names = self.loss_names();
        let mut term_sums = vec![0f64; names.len()];
        let metrics = self.metric_set();
        let mut acc = MetricAcc::new(self.graph.task, self.config.positive_class);
        let x_name = self.graph.inputs[self.data_input].name.clone();
        let t_name = self
            .target_input
            .map(|k| self.graph.inputs[k].name.clone())
            .unwrap_or_default();
        let (data_input, target_input) = (self.data_input, self.target_input);
        let has_pred = self.graph.output("prediction").is_some();
        let mut xb = Vec::new();
        let mut yb = Vec::new();
        let mut start = 0;
        while start < idx.len() {
            let b = batch.min(idx.len() - start);
            let part = &idx[start..start + b];
            Self::gather(inputs, xl, part, &mut xb);
            if let Some(t) = targets {
                Self::gather(t, yl, part, &mut yb);
            }
            let prog = self.program(Mode::Eval, b, None)?;
            prog.set_input(data_input, &x_name, &xb)?;
            if let Some(tk) = target_input {
                if prog.schedule().input(tk).is_some() {
                    prog.set_input(tk, &t_name, &yb)?;
                }
            }
            prog.run(&RunContext {
                seed: 0,
                step: 0,
                hyper: None,
            })?;
            let terms = prog.losses()?;
            for (s, v) in term_sums.iter_mut().zip(&terms) {
                *s += *v as f64 * b as f64;
            }
            if has_pred && !metrics.is_empty() && targets.is_some() {
                let pred = prog.output("prediction")?;
                if pred.len() != yb.len() {
                    let ps = prog
                        .schedule()
                        .output("prediction")
                        .map(|o| o.shape.clone());
                    return Err(shape_err(
                        "metrics",
                        format!(
                            "the prediction {:?} and the targets ({} values for {b} samples) differ in size",
                            ps.unwrap_or_default(),
                            yb.len()
                        ),
                    ));
                }
                acc.add(&pred, &yb);
            }
            start += b;
        }
        let terms: Vec<(String, f32)> = names
            .into_iter()
            .zip(term_sums)
            .map(|(n, s)| (n, (s / idx.len() as f64) as f32))
            .collect();
        let loss = terms
            .iter()
            .zip(&self.graph.losses)
            .map(|((_, v), (_, w))| v * w)
            .sum();
        Ok(Evaluation {
            loss,
            terms,
            metrics: acc.finish(&metrics),
        })
    }

    /// The model's `prediction` for `inputs` (samples x features), inference mode.
    pub fn predict(&mut self, inputs: &[f32]) -> Result<Vec<f32>> {
        self.predict_output(inputs, "prediction")
    }

    /// The trace embeddings (`embedding` output) of an autoencoder.
    pub fn encode(&mut self, inputs: &[f32]) -> Result<Vec<f32>> {
        self.predict_output(inputs, "embedding")
    }

    /// A named output for `inputs` (samples x features), inference mode.
    pub fn predict_output(&mut self, inputs: &[f32], name: &str) -> Result<Vec<f32>> {
        let (n, _) = self.check_data(&Dataset::inputs(inputs), false)?;
        let xl = self.x_len();
        check_finite("predict", "inputs", inputs, xl, None)?;
        let batch = self.config.batch_size.min(n).max(1);
        let x_name = self.graph.inputs[self.data_input].name.clone();
        let data_input = self.data_input;
        let mut out = Vec::new();
        let mut start = 0;
        while start < n {
            let b = batch.min(n - start);
            let prog = self.program(Mode::Predict, b, Some(name))?;
            prog.set_input(data_input, &x_name, &inputs[start * xl..(start + b) * xl])?;
            prog.run(&RunContext {
                seed: 0,
                step: 0,
                hyper: None,
            })?;
            out.extend(prog.output(name)?);
            start += b;
        }
        Ok(out)
    }

    /// The training loss (weighted sum of the loss terms) of one batch holding all of
    /// `data`, and the gradient of every trainable parameter, in training mode (batch
    /// statistics; dropout masks of step `steps_done() + 1`). Parameters are not updated
    /// (batch-norm running statistics are).
    pub fn loss_and_gradients(&mut self, data: &Dataset) -> Result<(f32, NamedTensors)> {
        let (n, y) = self.check_data(data, true)?;
        let step = self.opt.step + 1;
        let seed = self.config.seed;
        let (data_input, target_input) = (self.data_input, self.target_input);
        let x_name = self.graph.inputs[data_input].name.clone();
        let t_name = target_input
            .map(|k| self.graph.inputs[k].name.clone())
            .unwrap_or_default();
        let names: Vec<String> = self.graph.params.iter().map(|p| p.name.clone()).collect();
        let prog = self.grad_program(n)?;
        prog.set_input(data_input, &x_name, data.inputs)?;
        if let (Some(tk), Some(y)) = (target_input, y) {
            prog.set_input(tk, &t_name, y)?;
        }
        prog.run(&RunContext {
            seed,
            step,
            hyper: None,
        })?;
        let terms = prog.losses()?;
        let mut grads = Vec::new();
        for (k, name) in names.into_iter().enumerate() {
            if let Some(g) = prog.grad(k)? {
                grads.push((name, g));
            }
        }
        Ok((self.weighted(&terms), grads))
    }

    /// The training-mode loss of one batch holding all of `data` (no backward pass).
    pub fn train_loss(&mut self, data: &Dataset) -> Result<f32> {
        let (n, y) = self.check_data(data, true)?;
        let step = self.opt.step + 1;
        let seed = self.config.seed;
        let (data_input, target_input) = (self.data_input, self.target_input);
        let x_name = self.graph.inputs[data_input].name.clone();
        let t_name = target_input
            .map(|k| self.graph.inputs[k].name.clone())
            .unwrap_or_default();
        let prog = self.grad_program(n)?;
        prog.set_input(data_input, &x_name, data.inputs)?;
        if let (Some(tk), Some(y)) = (target_input, y) {
            prog.set_input(tk, &t_name, y)?;
        }
        prog.run_until(
            &RunContext {
                seed,
                step,
                hyper: None,
            },
            Phase::Loss,
        )?;
        let terms = prog.losses()?;
        Ok(self.weighted(&terms))
    }

    /// Every parameter and state tensor: `(name, values)` in graph order.
    pub fn params(&self) -> Result<NamedTensors> {
        (0..self.weights.len())
            .map(|k| Ok((self.graph.params[k].name.clone(), self.weights.get(k)?)))
            .collect()
    }

    /// One parameter or state tensor by name.
    pub fn param(&self, name: &str) -> Result<Vec<f32>> {
        let k = self
            .weights
            .index(name)
            .ok_or_else(|| other(format!("no parameter '{name}'")))?;
        self.weights.get(k)
    }

    /// Sets a parameter or state tensor by name (exactly its number of values).
    pub fn set_param(&mut self, name: &str, data: &[f32]) -> Result<()> {
        let k = self
            .weights
            .index(name)
            .ok_or_else(|| other(format!("no parameter '{name}'")))?;
        self.weights.set(k, data)
    }

    // ---- Checkpoints ------------------------------------------------------------------

    /// Saves weights, state, optimizer state and configuration to a safetensors file.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut entries: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        let states = self.opt.kind.state_names();
        for (k, p) in self.graph.params.iter().enumerate() {
            let v = self.weights.get(k)?;
            let prefix = if p.trainable { "param" } else { "state" };
            entries.push((
                format!("{prefix}/{}", p.name),
                p.shape.clone(),
                to_bytes(&v),
            ));
            if p.trainable {
                for (j, s) in states.iter().enumerate() {
                    let v = self.opt.get(k, j, numel(&p.shape))?;
                    entries.push((
                        format!("optim/{}/{s}", p.name),
                        p.shape.clone(),
                        to_bytes(&v),
                    ));
                }
            }
        }
        let config = serde_json::json!({
            "model": self.graph.spec,
            "train": self.config,
        });
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), "mlp-compute-checkpoint".to_string());
        meta.insert("version".to_string(), "1".to_string());
        meta.insert("config".to_string(), config.to_string());
        meta.insert("optimizer_step".to_string(), self.opt.step.to_string());
        meta.insert("epoch".to_string(), self.epochs_done.to_string());
        let views: Vec<(String, safetensors::tensor::TensorView)> = entries
            .iter()
            .map(|(n, s, b)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| other(format!("checkpoint: {e}")))
            })
            .collect::<Result<_>>()?;
        let bytes = safetensors::serialize(views, Some(meta))
            .map_err(|e| other(format!("checkpoint: {e}")))?;
        write_replacing(path, &bytes)
    }

    /// Rebuilds a trainer from a checkpoint written by [`save_checkpoint`](Self::save_checkpoint)
    /// of a model built by [`crate::model`] (the graph comes from the saved model spec).
    pub fn from_checkpoint(backend: Arc<dyn Backend>, path: impl AsRef<Path>) -> Result<Trainer> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        let meta = read_meta(&bytes, path)?;
        let config: serde_json::Value = serde_json::from_str(
            meta.get("config")
                .ok_or_else(|| other(format!("checkpoint {}: no config", path.display())))?,
        )
        .map_err(|e| other(format!("checkpoint {}: config: {e}", path.display())))?;
        let spec = config
            .get("model")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        if spec.is_null() {
            return Err(other(format!(
                "checkpoint {}: the model was not built from a model spec; build the graph and use Trainer::load_checkpoint",
                path.display()
            )));
        }
        let spec: ModelSpec = serde_json::from_value(spec)
            .map_err(|e| other(format!("checkpoint {}: model spec: {e}", path.display())))?;
        let train: TrainConfig = serde_json::from_value(
            config.get("train").cloned().unwrap_or_default(),
        )
        .map_err(|e| {
            other(format!(
                "checkpoint {}: training config: {e}",
                path.display()
            ))
        })?;
        let mut t = Trainer::new(backend, spec.build()?, train)?;
        t.restore(&bytes, &meta, path)?;
        Ok(t)
    }

    /// Loads a checkpoint's weights, state and optimizer state into this trainer; every
    /// tensor must be present with this graph's shape.
    pub fn load_checkpoint(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        let meta = read_meta(&bytes, path)?;
        self.restore(&bytes, &meta, path)
    }

    fn restore(&mut self, bytes: &[u8], meta: &HashMap<String, String>, path: &Path) -> Result<()> {
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
            other(format!(
                "checkpoint {}: not a readable safetensors file: {e}",
                path.display()
            ))
        })?;
        // Every tensor must be one this model reads: loading a checkpoint of another model
        // that shares some names would silently drop the rest of its weights. (Optimizer
        // state of the other optimizer kind is skipped: it has no meaning here.)
        let known = |name: &str| -> bool {
            let Some((kind, rest)) = name.split_once('/') else {
                return false;
            };
            match kind {
                "param" | "state" => self
                    .graph
                    .params
                    .iter()
                    .any(|p| p.name == rest && (kind == "param") == p.trainable),
                "optim" => rest.rsplit_once('/').is_some_and(|(p, s)| {
                    ["velocity", "m", "v"].contains(&s)
                        && self.graph.params.iter().any(|q| q.name == p && q.trainable)
                }),
                _ => false,
            }
        };
        let mut unknown: Vec<&str> = st.names().into_iter().filter(|n| !known(n)).collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            let more = unknown.len().saturating_sub(5);
            unknown.truncate(5);
            return Err(other(format!(
                "checkpoint {}: tensor{} {}{} not part of this model (a checkpoint of another model?)",
                path.display(),
                if unknown.len() + more > 1 { "s" } else { "" },
                unknown
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if more > 0 {
                    format!(" and {more} more are")
                } else if unknown.len() > 1 {
                    " are".to_string()
                } else {
                    " is".to_string()
                }
            )));
        }
        let step: u32 = meta_number(meta, "optimizer_step", path)?;
        let epoch: usize = meta_number(meta, "epoch", path)?;
        let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let v = st
                .tensor(name)
                .map_err(|_| other(format!("checkpoint {}: no tensor '{name}'", path.display())))?;
            if v.dtype() != safetensors::Dtype::F32 {
                return Err(other(format!(
                    "checkpoint {}: tensor '{name}' is {:?}, expected F32",
                    path.display(),
                    v.dtype()
                )));
            }
            if v.shape() != shape {
                return Err(shape_err(
                    "checkpoint",
                    format!(
                        "tensor '{name}' has shape {:?} in {}, the model expects {shape:?}",
                        v.shape(),
                        path.display()
                    ),
                ));
            }
            Ok(v.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        };
        let states = self.opt.kind.state_names();
        // Read everything first, so a failing checkpoint leaves the trainer unchanged.
        let mut ws = Vec::new();
        let mut os = Vec::new();
        for (k, p) in self.graph.params.iter().enumerate() {
            let prefix = if p.trainable { "param" } else { "state" };
            ws.push(read(&format!("{prefix}/{}", p.name), &p.shape)?);
            if p.trainable {
                for (j, s) in states.iter().enumerate() {
                    let name = format!("optim/{}/{s}", p.name);
                    if st.tensor(&name).is_ok() {
                        os.push((k, j, read(&name, &p.shape)?));
                    } else {
                        os.push((k, j, vec![0f32; numel(&p.shape)]));
                    }
                }
            }
        }
        for (k, v) in ws.iter().enumerate() {
            self.weights.set(k, v)?;
        }
        for (k, j, v) in &os {
            self.opt.set(*k, *j, v)?;
        }
        self.opt.step = step;
        self.epochs_done = epoch;
        Ok(())
    }
}

/// The first NaN or infinity of `v` (`per` values per sample): the sample (through `idx`
/// when `v` holds gathered samples), the value's index in its sample, and the value.
fn non_finite(v: &[f32], per: usize, idx: &[usize]) -> Option<(usize, usize, f32)> {
    let i = v.iter().position(|x| !x.is_finite())?;
    let s = i / per.max(1);
    Some((idx.get(s).copied().unwrap_or(s), i % per.max(1), v[i]))
}

fn finite_name(v: f32) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else {
        "infinity"
    }
}

/// Refuses NaN and infinities in data (`idx`: the samples `v` holds, when gathered).
fn check_finite(
    entry: &str,
    what: &str,
    v: &[f32],
    per: usize,
    idx: Option<&[usize]>,
) -> Result<()> {
    if let Some((sample, k, x)) = non_finite(v, per, idx.unwrap_or(&[])) {
        return Err(other(format!(
            "{entry}: sample {sample} of the {what} holds {} (value {k} of {per})",
            finite_name(x)
        )));
    }
    Ok(())
}

/// The reported class must exist in a class-probability output.
fn check_positive_class(g: &Graph, c: &TrainConfig) -> Result<()> {
    if let Some(Task::MultiClassSegmentation { classes }) = g.task {
        if c.positive_class >= classes {
            return Err(other(format!(
                "training config: positive_class {} does not exist, the model has {classes} classes (0..{classes})",
                c.positive_class
            )));
        }
    }
    Ok(())
}

fn check_config(c: &TrainConfig) -> Result<()> {
    let bad = |what: &str, v: f32, want: &str| {
        Err(other(format!(
            "training config: {what} must be {want}, got {v}"
        )))
    };
    match c.optimizer {
        Optimizer::Sgd {
            momentum,
            weight_decay,
        } => {
            if !(momentum.is_finite() && momentum >= 0.0) {
                return bad("SGD momentum", momentum, "a number >= 0");
            }
            if !(weight_decay.is_finite() && weight_decay >= 0.0) {
                return bad("SGD weight_decay", weight_decay, "a number >= 0");
            }
        }
        Optimizer::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
        }
        | Optimizer::AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            if !(0.0..1.0).contains(&beta1) {
                return bad("Adam beta1", beta1, "in [0, 1)");
            }
            if !(0.0..1.0).contains(&beta2) {
                return bad("Adam beta2", beta2, "in [0, 1)");
            }
            if !(eps.is_finite() && eps >= 0.0) {
                return bad("Adam eps", eps, "a number >= 0");
            }
            if !(weight_decay.is_finite() && weight_decay >= 0.0) {
                return bad("Adam weight_decay", weight_decay, "a number >= 0");
            }
        }
    }
    match c.lr_schedule {
        LrSchedule::Constant => {}
        LrSchedule::Cosine { min_lr } => {
            if !(min_lr.is_finite() && min_lr >= 0.0) {
                return bad("the cosine schedule's min_lr", min_lr, "a number >= 0");
            }
        }
        LrSchedule::Step { every, gamma } => {
            if every == 0 {
                return Err(other(
                    "training config: the step schedule's `every` must be at least 1 epoch",
                ));
            }
            if !(gamma.is_finite() && gamma > 0.0) {
                return bad("the step schedule's gamma", gamma, "a positive number");
            }
        }
    }
    if !(c.min_delta.is_finite() && c.min_delta >= 0.0) {
        return bad("min_delta", c.min_delta, "a number >= 0");
    }
    if c.batch_size == 0 {
        return Err(other("training config: batch_size must be at least 1"));
    }
    if !(c.lr.is_finite() && c.lr > 0.0) {
        return Err(other(format!(
            "training config: lr must be a positive number, got {}",
            c.lr
        )));
    }
    if !(0.0..1.0).contains(&c.validation_split) {
        return Err(other(format!(
            "training config: validation_split must be in [0, 1), got {}",
            c.validation_split
        )));
    }
    Ok(())
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        return Err(other(format!(
            "checkpoint: reading {}: it is a directory, not a checkpoint file",
            path.display()
        )));
    }
    std::fs::read(path).map_err(|e| other(format!("checkpoint: reading {}: {e}", path.display())))
}

fn read_meta(bytes: &[u8], path: &Path) -> Result<HashMap<String, String>> {
    if bytes.is_empty() {
        return Err(other(format!(
            "checkpoint {}: the file is empty",
            path.display()
        )));
    }
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| {
        other(format!(
            "checkpoint {}: not a readable safetensors file: {e}",
            path.display()
        ))
    })?;
    let m = meta.metadata().clone().unwrap_or_default();
    if m.get("format").map(String::as_str) != Some("mlp-compute-checkpoint") {
        return Err(other(format!(
            "checkpoint {}: not an mlp-compute checkpoint (no format metadata)",
            path.display()
        )));
    }
    match m.get("version").map(String::as_str) {
        Some("1") => {}
        v => {
            return Err(other(format!(
                "checkpoint {}: format version {}, this build reads version 1",
                path.display(),
                v.map(|v| format!("'{v}'"))
                    .unwrap_or_else(|| "missing".into())
            )))
        }
    }
    Ok(m.into_iter().collect())
}

/// A numeric metadata entry (0 when absent; an error when present but not a number).
fn meta_number<T: std::str::FromStr + Default>(
    meta: &HashMap<String, String>,
    key: &str,
    path: &Path,
) -> Result<T> {
    match meta.get(key) {
        None => Ok(T::default()),
        Some(v) => v.parse().map_err(|_| {
            other(format!(
                "checkpoint {}: metadata '{key}' is '{v}', not a count",
                path.display()
            ))
        }),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder, synced and then
/// renamed over `path`: a failed or interrupted save leaves any earlier file at `path` whole.
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SERIAL: AtomicUsize = AtomicUsize::new(0);
    let fail = |e: &dyn fmt::Display| other(format!("checkpoint: writing {}: {e}", path.display()));
    if path.is_dir() {
        return Err(fail(&"it is a directory"));
    }
    let name = path
        .file_name()
        .ok_or_else(|| fail(&"the path does not name a file"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(fail(&format!(
            "the folder {} does not exist",
            dir.display()
        )));
    }
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(&e));
    }
    Ok(())
}

/// Metrics of predictions against targets for a task (the computation `fit` and `evaluate`
/// use; `positive` is the class whose IoU is reported for class probabilities).
pub fn compute_metrics(
    task: Option<Task>,
    positive: usize,
    pred: &[f32],
    target: &[f32],
    metrics: &[Metric],
) -> Result<Metrics> {
    if pred.len() != target.len() {
        return Err(shape_err(
            "metrics",
            format!(
                "predictions hold {} values, targets {}",
                pred.len(),
                target.len()
            ),
        ));
    }
    let mut acc = MetricAcc::new(task, positive);
    acc.add(pred, target);
    Ok(acc.finish(metrics))
}

/// Streaming metric sums.
struct MetricAcc {
    task: Option<Task>,
    positive: usize,
    tp: u64,
    fp: u64,
    fn_: u64,
    correct: u64,
    pixels: u64,
    sse: f64,
    count: u64,
    tmin: f32,
    tmax: f32,
}

impl MetricAcc {
    fn new(task: Option<Task>, positive: usize) -> MetricAcc {
        MetricAcc {
            task,
            positive,
            tp: 0,
            fp: 0,
            fn_: 0,
            correct: 0,
            pixels: 0,
            sse: 0.0,
            count: 0,
            tmin: f32::INFINITY,
            tmax: f32::NEG_INFINITY,
        }
    }

    fn add(&mut self, pred: &[f32], target: &[f32]) {
        for (&p, &t) in pred.iter().zip(target) {
            let d = (p - t) as f64;
            self.sse += d * d;
            self.tmin = self.tmin.min(t);
            self.tmax = self.tmax.max(t);
        }
        self.count += pred.len().min(target.len()) as u64;
        match self.task {
            Some(Task::MultiClassSegmentation { classes }) if classes > 0 => {
                for (p, t) in pred.chunks_exact(classes).zip(target.chunks_exact(classes)) {
                    let pc = argmax(p);
                    let tc = argmax(t);
                    self.classify(pc == self.positive, tc == self.positive, pc == tc);
                }
            }
            _ => {
                for (&p, &t) in pred.iter().zip(target) {
                    let (pp, tp) = (p >= 0.5, t >= 0.5);
                    self.classify(pp, tp, pp == tp);
                }
            }
        }
    }

    fn classify(&mut self, p: bool, t: bool, correct: bool) {
        self.pixels += 1;
        self.correct += correct as u64;
        match (p, t) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            _ => {}
        }
    }

    fn finish(&self, metrics: &[Metric]) -> Metrics {
        let mut m = Metrics::default();
        if self.count == 0 {
            return m;
        }
        let mse = self.sse / self.count as f64;
        for k in metrics {
            match k {
                Metric::Iou => {
                    let union = self.tp + self.fp + self.fn_;
                    m.iou = Some(if union == 0 {
                        1.0
                    } else {
                        self.tp as f64 / union as f64
                    });
                }
                Metric::PixelAccuracy => {
                    m.pixel_accuracy = Some(self.correct as f64 / self.pixels.max(1) as f64)
                }
                Metric::Mse => m.mse = Some(mse),
                Metric::Psnr => {
                    let range = (self.tmax - self.tmin) as f64;
                    let range = if range > 0.0 { range } else { 1.0 };
                    m.psnr = Some(10.0 * (range * range / mse.max(1e-30)).log10());
                }
            }
        }
        m
    }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
