//! The ops every backend implements, forward and backward, with their operand conventions and
//! shape rules. This file is the contract between the graph (autodiff, schedules) and the
//! backends: a CPU twin and a WGSL kernel exist for every variant.
//!
//! Conventions: all tensors are `f32`, row-major (C order). Images are NCHW. `inputs` are
//! read-only; `outputs` are written whole, except for optimizer ops, which update their
//! outputs in place (parameters and optimizer state). An output never aliases an input.

use crate::error::{shape_err, Result};

/// A tensor shape (row-major).
pub type Shape = Vec<usize>;

/// Number of elements of a shape; `usize::MAX` when the count overflows (no buffer holds
/// that many, so such a shape never passes [`crate::backend::check_dispatch`]).
pub fn numel(shape: &[usize]) -> usize {
    checked_numel(shape).unwrap_or(usize::MAX)
}

/// Number of elements of a shape, or `None` when the count overflows `usize`.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Pointwise activations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// x where x >= 0, else 0; NaN stays NaN (as in PyTorch), so a NaN reaches the loss.
    Relu,
    /// x where x > 0, else alpha * x (PyTorch's definition, for any alpha).
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    /// Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), with erf from [`erf`] (the same formula on
    /// every backend).
    Gelu,
}

/// Spatial padding of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// Output size ceil(input / stride); the padding is split with the extra row/column at the
    /// end (as TensorFlow and PyTorch's `padding="same"` for stride 1).
    Same,
    /// No padding.
    Valid,
}

/// Every op. Operands are listed as `inputs -> outputs`.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `a[.., m, k] (or [.., k, m] with trans_a), b[.., k, n] (or [.., n, k]) -> c[.., m, n]`.
    /// Leading (batch) dims must be equal, or one operand has none (broadcast).
    MatMul { trans_a: bool, trans_b: bool },
    /// `a, b -> a + b` (same shapes).
    Add,
    /// `a, b -> a * b` (same shapes).
    Mul,
    /// `a, b -> a + alpha * b` (same shapes).
    AddScaled { alpha: f32 },
    /// `x -> alpha * x`.
    Scale { alpha: f32 },
    /// `x[.., c at axis, ..], bias[c] -> x + bias` broadcast along `axis`.
    BiasAdd { axis: usize },
    /// `dy[.., c at axis, ..] -> db[c]`: the sum over every other axis.
    BiasGrad { axis: usize },
    /// `x -> f(x)`.
    Act(Activation),
    /// `x, dy -> dx = f'(x) * dy`.
    ActBackward(Activation),
    /// `x[n, ci, h, w], w[co, ci, kh, kw] -> y[n, co, oh, ow]`.
    Conv2d { stride: usize, padding: Padding },
    /// `dy[n, co, oh, ow], w[co, ci, kh, kw] -> dx[n, ci, in_h, in_w]`.
    Conv2dBackwardInput {
        stride: usize,
        padding: Padding,
        in_h: usize,
        in_w: usize,
    },
    /// `x[n, ci, h, w], dy[n, co, oh, ow] -> dw[co, ci, kh, kw]`.
    Conv2dBackwardWeight {
        stride: usize,
        padding: Padding,
        kh: usize,
        kw: usize,
    },
    /// `x[n, c, h, w] -> y[n, c, h/2, w/2]` (floor; odd trailing rows/columns dropped).
    MaxPool2,
    /// `x, y, dy -> dx`: the gradient goes to the first maximum of each window (row-major), or
    /// to its last NaN when the window holds NaN (PyTorch's choice).
    MaxPool2Backward,
    /// Nearest-neighbour 2x upsampling: `x[n, c, h, w] -> y[n, c, 2h, 2w]`.
    Upsample2,
    /// `dy[n, c, 2h, 2w] -> dx[n, c, h, w]`: the sum over each 2x2 block.
    Upsample2Backward,
    /// `a[n, ca, h, w], b[n, cb, h, w] -> y[n, ca + cb, h, w]`.
    ConcatChannels,
    /// `dy[n, c, h, w] -> da[n, first, h, w], db[n, c - first, h, w]`.
    SplitChannels { first: usize },
    /// Batch norm over axis 1 with batch statistics (biased variance):
    /// `x[n, c, ..], gamma[c], beta[c] -> y, mean[c], invstd[c]`.
    BatchNormTrain { eps: f32 },
    /// `x[n, c, ..], gamma[c], beta[c], running_mean[c], running_var[c] -> y`.
    BatchNormEval { eps: f32 },
    /// `x, dy, gamma, mean, invstd -> dx, dgamma, dbeta`.
    BatchNormBackward,
    /// Layer norm over the last axis: `x[.., d], gamma[d], beta[d] -> y, mean[rows],
    /// invstd[rows]`.
    LayerNorm { eps: f32 },
    /// `x, dy, gamma, mean, invstd -> dx, dgamma, dbeta`.
    LayerNormBackward,
    /// Softmax over the last axis: `x -> y`.
    Softmax,
    /// `y, dy -> dx`.
    SoftmaxBackward,
    /// Inverted dropout: `x -> y`, element i kept when `dropout_keep(seed, i, p)`, scaled by
    /// 1 / (1 - p).
    Dropout { p: f32, seed: u32 },
    /// `dy -> dx` with the same mask.
    DropoutBackward { p: f32, seed: u32 },
    /// `x -> [sum of all elements]` (shape `[1]`).
    SumAll,
    /// Mean squared error: `pred, target -> loss[1], dpred` (mean over elements).
    MseLoss,
    /// Binary cross-entropy on logits, positives weighted by `pos_weight` (class balancing):
    /// `logits, target -> loss[1], dlogits` (mean over elements).
    BceWithLogits { pos_weight: f32 },
    /// Soft Dice loss `1 - (2 sum(p t) + eps) / (sum p + sum t + eps)`:
    /// `probs, target -> loss[1], dprobs`.
    DiceLoss { eps: f32 },
    /// SGD with momentum and L2 weight decay, in place: `grad -> param, velocity`.
    /// `v = momentum * v + (grad + weight_decay * param); param -= lr * v`.
    Sgd {
        lr: f32,
        momentum: f32,
        weight_decay: f32,
    },
    /// Adam (or AdamW when `decoupled`), in place: `grad -> param, m, v`; `step` counts from 1.
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        decoupled: bool,
        step: u32,
    },
    /// Embedding lookup: `ids[..] (integral f32), table[v, d] -> y[.., d]`. Ids out of range
    /// give zero rows.
    Embedding,
    /// Multi-head scaled dot-product attention:
    /// `q[b, s, h*dh], k[b, t, h*dh], v[b, t, h*dh], mask[b, t] (1 keep, 0 masked)
    ///  -> y[b, s, h*dh]`.
    Attention { heads: usize },
}

impl Op {
    /// A short name (kernel and benchmark names).
    pub fn name(&self) -> &'static str {
        match self {
            Op::MatMul { .. } => "matmul",
            Op::Add => "add",
            Op::Mul => "mul",
            Op::AddScaled { .. } => "add_scaled",
            Op::Scale { .. } => "scale",
            Op::BiasAdd { .. } => "bias_add",
            Op::BiasGrad { .. } => "bias_grad",
            Op::Act(_) => "activation",
            Op::ActBackward(_) => "activation_backward",
            Op::Conv2d { .. } => "conv2d",
            Op::Conv2dBackwardInput { .. } => "conv2d_backward_input",
            Op::Conv2dBackwardWeight { .. } => "conv2d_backward_weight",
            Op::MaxPool2 => "maxpool2",
            Op::MaxPool2Backward => "maxpool2_backward",
            Op::Upsample2 => "upsample2",
            Op::Upsample2Backward => "upsample2_backward",
            Op::ConcatChannels => "concat_channels",
            Op::SplitChannels { .. } => "split_channels",
            Op::BatchNormTrain { .. } => "batchnorm_train",
            Op::BatchNormEval { .. } => "batchnorm_eval",
            Op::BatchNormBackward => "batchnorm_backward",
            Op::LayerNorm { .. } => "layernorm",
            Op::LayerNormBackward => "layernorm_backward",
            Op::Softmax => "softmax",
            Op::SoftmaxBackward => "softmax_backward",
            Op::Dropout { .. } => "dropout",
            Op::DropoutBackward { .. } => "dropout_backward",
            Op::SumAll => "sum_all",
            Op::MseLoss => "mse_loss",
            Op::BceWithLogits { .. } => "bce_with_logits",
            Op::DiceLoss { .. } => "dice_loss",
            Op::Sgd { .. } => "sgd",
            Op::Adam { .. } => "adam",
            Op::Embedding => "embedding",
            Op::Attention { .. } => "attention",
        }
    }

    /// Number of inputs the op takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Scale { .. }
            | Op::BiasGrad { .. }
            | Op::Act(_)
            | Op::MaxPool2
            | Op::Upsample2
            | Op::Upsample2Backward
            | Op::SplitChannels { .. }
            | Op::Softmax
            | Op::Dropout { .. }
            | Op::DropoutBackward { .. }
            | Op::SumAll
            | Op::Sgd { .. }
            | Op::Adam { .. } => 1,
            Op::MatMul { .. }
            | Op::Add
            | Op::Mul
            | Op::AddScaled { .. }
            | Op::BiasAdd { .. }
            | Op::ActBackward(_)
            | Op::Conv2d { .. }
            | Op::Conv2dBackwardInput { .. }
            | Op::Conv2dBackwardWeight { .. }
            | Op::ConcatChannels
            | Op::SoftmaxBackward
            | Op::MseLoss
            | Op::BceWithLogits { .. }
            | Op::DiceLoss { .. }
            | Op::Embedding => 2,
            Op::MaxPool2Backward | Op::BatchNormTrain { .. } | Op::LayerNorm { .. } => 3,
            Op::Attention { .. } => 4,
            Op::BatchNormBackward | Op::LayerNormBackward | Op::BatchNormEval { .. } => 5,
        }
    }

    /// Whether the op updates its outputs in place (optimizers) rather than overwriting them.
    pub fn in_place(&self) -> bool {
        matches!(self, Op::Sgd { .. } | Op::Adam { .. })
    }

    /// The output shapes for these input shapes, or an error naming the op and the shapes.
    /// In-place ops (optimizers) have outputs of their gradient's shape.
    pub fn output_shapes(&self, inputs: &[&[usize]]) -> Result<Vec<Shape>> {
        let name = self.name();
        if inputs.len() != self.arity() {
            return Err(shape_err(
                name,
                format!("takes {} inputs, got {}", self.arity(), inputs.len()),
            ));
        }
        let same = |a: &[usize], b: &[usize]| -> Result<()> {
            if a != b {
                return Err(shape_err(name, format!("shapes {a:?} and {b:?} differ")));
            }
            Ok(())
        };
        // A per-channel (or per-row) operand `k` of the op, checked against the input `x`.
        let fits = |k: usize, p: &[usize], want: &[usize], x: &[usize]| -> Result<()> {
            if p != want {
                return Err(shape_err(
                    name,
                    format!("operand {k} has shape {p:?}, expected {want:?} for input {x:?}"),
                ));
            }
            Ok(())
        };
        let rank = |s: &[usize], r: usize, what: &str| -> Result<()> {
            if s.len() != r {
                return Err(shape_err(
                    name,
                    format!("{what} must have rank {r}, got shape {s:?}"),
                ));
            }
            Ok(())
        };
        let i = inputs;
        Ok(match self {
            Op::MatMul { trans_a, trans_b } => {
                let (a, b) = (i[0], i[1]);
                if a.len() < 2 || b.len() < 2 {
                    return Err(shape_err(
                        name,
                        format!("operands need rank >= 2, got {a:?} and {b:?}"),
                    ));
                }
                let (ab, am) = a.split_at(a.len() - 2);
                let (bb, bm) = b.split_at(b.len() - 2);
                let (m, k1) = if *trans_a {
                    (am[1], am[0])
                } else {
                    (am[0], am[1])
                };
                let (k2, n) = if *trans_b {
                    (bm[1], bm[0])
                } else {
                    (bm[0], bm[1])
                };
                if k1 != k2 {
                    return Err(shape_err(
                        name,
                        format!(
                            "inner dimensions differ: {a:?}{} x {b:?}{} ({k1} vs {k2})",
                            if *trans_a { "ᵀ" } else { "" },
                            if *trans_b { "ᵀ" } else { "" }
                        ),
                    ));
                }
                let batch = if ab.is_empty() {
                    bb.to_vec()
                } else if bb.is_empty() || ab == bb {
                    ab.to_vec()
                } else {
                    return Err(shape_err(
                        name,
                        format!("batch dimensions differ: {a:?} and {b:?}"),
                    ));
                };
                let mut s = batch;
                s.extend([m, n]);
                vec![s]
            }
            Op::Add | Op::Mul | Op::AddScaled { .. } => {
                same(i[0], i[1])?;
                vec![i[0].to_vec()]
            }
            Op::Scale { .. } | Op::Act(_) | Op::Softmax | Op::Dropout { .. } => {
                vec![i[0].to_vec()]
            }
            Op::DropoutBackward { .. } => vec![i[0].to_vec()],
            Op::ActBackward(_) | Op::SoftmaxBackward => {
                same(i[0], i[1])?;
                vec![i[0].to_vec()]
            }
            Op::BiasAdd { axis } => {
                let (x, b) = (i[0], i[1]);
                if *axis >= x.len() || b != [x[*axis]] {
                    return Err(shape_err(
                        name,
                        format!("bias {b:?} does not match axis {axis} of {x:?}"),
                    ));
                }
                vec![x.to_vec()]
            }
            Op::BiasGrad { axis } => {
                if *axis >= i[0].len() {
                    return Err(shape_err(
                        name,
                        format!("axis {axis} out of range for {:?}", i[0]),
                    ));
                }
                vec![vec![i[0][*axis]]]
            }
            Op::Conv2d { stride, padding } => {
                let (x, w) = (i[0], i[1]);
                rank(x, 4, "input")?;
                rank(w, 4, "weight")?;
                if x[1] != w[1] {
                    return Err(shape_err(
                        name,
                        format!(
                            "input {x:?} has {} channels, weight {w:?} expects {}",
                            x[1], w[1]
                        ),
                    ));
                }
                check_stride(name, *stride)?;
                let oh = conv_out(x[2], w[2], *stride, *padding).ok_or_else(|| {
                    shape_err(name, format!("kernel {w:?} larger than input {x:?}"))
                })?;
                let ow = conv_out(x[3], w[3], *stride, *padding).ok_or_else(|| {
                    shape_err(name, format!("kernel {w:?} larger than input {x:?}"))
                })?;
                vec![vec![x[0], w[0], oh, ow]]
            }
            Op::Conv2dBackwardInput {
                stride,
                padding,
                in_h,
                in_w,
            } => {
                let (dy, w) = (i[0], i[1]);
                rank(dy, 4, "dy")?;
                rank(w, 4, "weight")?;
                check_stride(name, *stride)?;
                let oh = conv_out(*in_h, w[2], *stride, *padding);
                let ow = conv_out(*in_w, w[3], *stride, *padding);
                if dy[1] != w[0] || oh != Some(dy[2]) || ow != Some(dy[3]) {
                    return Err(shape_err(
                        name,
                        format!("dy {dy:?} does not fit weight {w:?} on a {in_h}x{in_w} input"),
                    ));
                }
                vec![vec![dy[0], w[1], *in_h, *in_w]]
            }
            Op::Conv2dBackwardWeight {
                stride,
                padding,
                kh,
                kw,
            } => {
                let (x, dy) = (i[0], i[1]);
                rank(x, 4, "input")?;
                rank(dy, 4, "dy")?;
                check_stride(name, *stride)?;
                let oh = conv_out(x[2], *kh, *stride, *padding);
                let ow = conv_out(x[3], *kw, *stride, *padding);
                if x[0] != dy[0] || oh != Some(dy[2]) || ow != Some(dy[3]) {
                    return Err(shape_err(
                        name,
                        format!("dy {dy:?} does not fit input {x:?} with a {kh}x{kw} kernel"),
                    ));
                }
                vec![vec![dy[1], x[1], *kh, *kw]]
            }
            Op::MaxPool2 => {
                rank(i[0], 4, "input")?;
                let x = i[0];
                if x[2] < 2 || x[3] < 2 {
                    return Err(shape_err(name, format!("input {x:?} is smaller than 2x2")));
                }
                vec![vec![x[0], x[1], x[2] / 2, x[3] / 2]]
            }
            Op::MaxPool2Backward => {
                let (x, y, dy) = (i[0], i[1], i[2]);
                rank(x, 4, "input")?;
                same(y, dy)?;
                if y != [x[0], x[1], x[2] / 2, x[3] / 2] {
                    return Err(shape_err(
                        name,
                        format!("pooled {y:?} does not come from {x:?}"),
                    ));
                }
                vec![x.to_vec()]
            }
            Op::Upsample2 => {
                rank(i[0], 4, "input")?;
                let x = i[0];
                let (Some(h), Some(w)) = (x[2].checked_mul(2), x[3].checked_mul(2)) else {
                    return Err(shape_err(
                        name,
                        format!("input {x:?} is too large to upsample"),
                    ));
                };
                vec![vec![x[0], x[1], h, w]]
            }
            Op::Upsample2Backward => {
                rank(i[0], 4, "dy")?;
                let d = i[0];
                if !d[2].is_multiple_of(2) || !d[3].is_multiple_of(2) {
                    return Err(shape_err(name, format!("dy {d:?} has odd spatial size")));
                }
                vec![vec![d[0], d[1], d[2] / 2, d[3] / 2]]
            }
            Op::ConcatChannels => {
                let (a, b) = (i[0], i[1]);
                rank(a, 4, "first input")?;
                rank(b, 4, "second input")?;
                if a[0] != b[0] || a[2..] != b[2..] {
                    return Err(shape_err(
                        name,
                        format!("{a:?} and {b:?} differ outside the channel axis"),
                    ));
                }
                let c = a[1].checked_add(b[1]).ok_or_else(|| {
                    shape_err(
                        name,
                        format!("{a:?} and {b:?} have too many channels together"),
                    )
                })?;
                vec![vec![a[0], c, a[2], a[3]]]
            }
            Op::SplitChannels { first } => {
                rank(i[0], 4, "dy")?;
                let d = i[0];
                if *first > d[1] {
                    return Err(shape_err(
                        name,
                        format!("cannot split {first} channels off {d:?}"),
                    ));
                }
                vec![
                    vec![d[0], *first, d[2], d[3]],
                    vec![d[0], d[1] - first, d[2], d[3]],
                ]
            }
            Op::BatchNormTrain { .. } | Op::BatchNormEval { .. } => {
                let x = i[0];
                if x.len() < 2 {
                    return Err(shape_err(name, format!("input {x:?} needs a channel axis")));
                }
                let c = [x[1]];
                for (k, p) in i[1..].iter().enumerate() {
                    if *p != c {
                        return Err(shape_err(
                            name,
                            format!(
                                "parameter {} has shape {p:?}, expected {c:?} for input {x:?}",
                                k + 1
                            ),
                        ));
                    }
                }
                if matches!(self, Op::BatchNormTrain { .. }) {
                    vec![x.to_vec(), c.to_vec(), c.to_vec()]
                } else {
                    vec![x.to_vec()]
                }
            }
            Op::BatchNormBackward => {
                let (x, dy) = (i[0], i[1]);
                same(x, dy)?;
                if x.len() < 2 {
                    return Err(shape_err(name, format!("input {x:?} needs a channel axis")));
                }
                let c = vec![x[1]];
                for (k, p) in i.iter().enumerate().skip(2) {
                    fits(k, p, &c, x)?;
                }
                vec![x.to_vec(), c.clone(), c]
            }
            Op::LayerNorm { .. } => {
                let x = i[0];
                let d = *x
                    .last()
                    .ok_or_else(|| shape_err(name, "input is a scalar"))?;
                fits(1, i[1], &[d], x)?;
                fits(2, i[2], &[d], x)?;
                let rows = numel(x) / d.max(1);
                vec![x.to_vec(), vec![rows], vec![rows]]
            }
            Op::LayerNormBackward => {
                let (x, dy) = (i[0], i[1]);
                same(x, dy)?;
                let d = *x
                    .last()
                    .ok_or_else(|| shape_err(name, "input is a scalar"))?;
                fits(2, i[2], &[d], x)?;
                let rows = numel(x) / d.max(1);
                fits(3, i[3], &[rows], x)?;
                fits(4, i[4], &[rows], x)?;
                vec![x.to_vec(), vec![d], vec![d]]
            }
            Op::SumAll => vec![vec![1]],
            Op::MseLoss | Op::BceWithLogits { .. } | Op::DiceLoss { .. } => {
                same(i[0], i[1])?;
                vec![vec![1], i[0].to_vec()]
            }
            Op::Sgd { .. } => vec![i[0].to_vec(), i[0].to_vec()],
            Op::Adam { .. } => vec![i[0].to_vec(), i[0].to_vec(), i[0].to_vec()],
            Op::Embedding => {
                let (ids, t) = (i[0], i[1]);
                rank(t, 2, "table")?;
                let mut s = ids.to_vec();
                s.push(t[1]);
                vec![s]
            }
            Op::Attention { heads } => {
                let (q, k, v, m) = (i[0], i[1], i[2], i[3]);
                rank(q, 3, "q")?;
                rank(k, 3, "k")?;
                same(k, v)?;
                if *heads == 0 || !q[2].is_multiple_of(*heads) || q[2] != k[2] || q[0] != k[0] {
                    return Err(shape_err(
                        name,
                        format!("q {q:?} and k {k:?} do not split into {heads} heads"),
                    ));
                }
                same(m, &[k[0], k[1]])?;
                vec![q.to_vec()]
            }
        })
    }
}

fn check_stride(name: &'static str, stride: usize) -> Result<()> {
    if stride == 0 {
        return Err(shape_err(name, "stride must be at least 1"));
    }
    Ok(())
}

/// Output size of a convolution along one axis, `None` when the kernel does not fit.
pub fn conv_out(input: usize, kernel: usize, stride: usize, padding: Padding) -> Option<usize> {
    match padding {
        Padding::Same => Some(input.div_ceil(stride)),
        Padding::Valid => (input >= kernel).then(|| (input - kernel) / stride + 1),
    }
}

/// Padding before the first element along one axis (the rest goes after).
pub fn pad_before(input: usize, kernel: usize, stride: usize, padding: Padding) -> usize {
    match padding {
        Padding::Valid => 0,
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = ((out - 1) * stride + kernel).saturating_sub(input);
            total / 2
        }
    }
}

/// The error function, Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), written the
/// same way in every kernel so backends agree.
pub fn erf(x: f32) -> f32 {
    let s = x.signum();
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let y = 1.0
        - (((((1.061_405_4 * t - 1.453_152_1) * t) + 1.421_413_7) * t - 0.284_496_74) * t
            + 0.254_829_6)
            * t
            * (-a * a).exp();
    s * y
}

/// A 32-bit PCG hash (used for dropout masks on every backend).
pub fn pcg_hash(v: u32) -> u32 {
    let state = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// Whether dropout keeps element `i` for this seed and drop probability.
pub fn dropout_keep(seed: u32, i: u32, p: f32) -> bool {
    let r = pcg_hash(i ^ pcg_hash(seed));
    // Compare in [0, 1) with 24 bits, exactly representable in f32 on every backend.
    ((r >> 8) as f32) * (1.0 / 16_777_216.0) >= p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_shapes() {
        let op = Op::MatMul {
            trans_a: false,
            trans_b: true,
        };
        assert_eq!(
            op.output_shapes(&[&[4, 2, 3], &[5, 3]]).unwrap(),
            vec![vec![4, 2, 5]]
        );
        let err = op
            .output_shapes(&[&[2, 3], &[5, 4]])
            .unwrap_err()
            .to_string();
        assert!(err.contains("[2, 3]") && err.contains("[5, 4]"), "{err}");
    }

    #[test]
    fn conv_shapes() {
        let op = Op::Conv2d {
            stride: 2,
            padding: Padding::Same,
        };
        assert_eq!(
            op.output_shapes(&[&[1, 3, 7, 8], &[16, 3, 3, 3]]).unwrap(),
            vec![vec![1, 16, 4, 4]]
        );
        let op = Op::Conv2d {
            stride: 1,
            padding: Padding::Valid,
        };
        assert_eq!(
            op.output_shapes(&[&[2, 3, 5, 5], &[4, 3, 3, 3]]).unwrap(),
            vec![vec![2, 4, 3, 3]]
        );
        assert!(op.output_shapes(&[&[2, 2, 5, 5], &[4, 3, 3, 3]]).is_err());
        assert_eq!(pad_before(7, 3, 2, Padding::Same), 1);
        assert_eq!(pad_before(8, 3, 2, Padding::Same), 0);
        assert_eq!(pad_before(8, 3, 1, Padding::Same), 1);
    }

    #[test]
    fn erf_is_accurate() {
        // Reference values of erf.
        for (x, e) in [
            (0.0f32, 0.0f32),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
        ] {
            assert!((erf(x) - e).abs() < 3e-7, "erf({x}) = {} vs {e}", erf(x));
        }
    }

    #[test]
    fn dropout_rate_is_close_to_p() {
        let kept = (0..100_000u32).filter(|&i| dropout_keep(7, i, 0.3)).count();
        assert!((kept as f64 / 1e5 - 0.7).abs() < 0.01, "{kept}");
    }
}
