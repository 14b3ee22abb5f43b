//! Model builders: the dense trace autoencoder and the 2-D U-Net, as [`Graph`]s ready to be
//! lowered and trained. Each graph records its [`ModelSpec`] so a checkpoint can rebuild it.

use serde::{Deserialize, Serialize};

use crate::error::{shape_err, ComputeError, Result};
use crate::graph::{Graph, LossKind, NodeId, Task};
use crate::op::{Activation, Padding};

/// Activations selectable in model configurations.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Act {
    Relu,
    LeakyRelu(f32),
    Tanh,
    Gelu,
    Sigmoid,
}

impl Act {
    pub fn activation(self) -> Activation {
        match self {
            Act::Relu => Activation::Relu,
            Act::LeakyRelu(a) => Activation::LeakyRelu(a),
            Act::Tanh => Activation::Tanh,
            Act::Gelu => Activation::Gelu,
            Act::Sigmoid => Activation::Sigmoid,
        }
    }

    /// The Kaiming gain of a layer followed by this activation.
    pub fn gain(self) -> f32 {
        match self {
            Act::Relu | Act::Gelu => std::f32::consts::SQRT_2,
            Act::LeakyRelu(a) => (2.0 / (1.0 + a * a)).sqrt(),
            Act::Tanh => 5.0 / 3.0,
            Act::Sigmoid => 1.0,
        }
    }
}

/// A model the crate can build, saved in checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model")]
pub enum ModelSpec {
    TraceAutoencoder(AutoencoderConfig),
    UNet(UNetConfig),
}

impl ModelSpec {
    /// Builds the model's graph.
    pub fn build(&self) -> Result<Graph> {
        match self {
            ModelSpec::TraceAutoencoder(c) => autoencoder(c),
            ModelSpec::UNet(c) => unet(c),
        }
    }
}

/// A dense autoencoder: `input → hidden[0] → … → hidden[last] (embedding) → … → input`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutoencoderConfig {
    /// Samples per trace.
    pub input: usize,
    /// Encoder widths; the last is the embedding size. The decoder mirrors them.
    pub hidden: Vec<usize>,
    /// Activation of the hidden layers (the embedding and the reconstruction are linear).
    pub activation: Act,
}

/// The trace autoencoder `input → hidden… → embedding → …hidden → input` with ReLU hidden
/// layers, a linear embedding and a linear reconstruction trained with MSE. Inputs `traces`
/// `[input]`, target `target` `[input]` (the traces themselves when training as an
/// autoencoder, clean traces for denoising); outputs `prediction` and `embedding`.
///
/// `trace_autoencoder(462, &[128, 64, 32])` is 462 → 128 → 64 → 32 → 64 → 128 → 462.
pub fn trace_autoencoder(input: usize, hidden: &[usize]) -> Result<Graph> {
    autoencoder(&AutoencoderConfig {
        input,
        hidden: hidden.to_vec(),
        activation: Act::Relu,
    })
}

/// The autoencoder of a configuration.
pub fn autoencoder(c: &AutoencoderConfig) -> Result<Graph> {
    if c.input == 0 || c.hidden.is_empty() || c.hidden.contains(&0) {
        return Err(ComputeError::Other(format!(
            "trace autoencoder: input size {} and hidden sizes {:?} must be positive and non-empty",
            c.input, c.hidden
        )));
    }
    let mut g = Graph::new();
    let x = g.input("traces", &[c.input])?;
    let t = g.target("target", &[c.input])?;
    let a = c.activation;
    let mut h = x;
    let last = c.hidden.len() - 1;
    for (k, &d) in c.hidden.iter().enumerate() {
        if k < last {
            h = g.dense(&format!("encoder.{k}"), h, d, true, a.gain())?;
            h = g.act(&format!("encoder.{k}.act"), h, a.activation())?;
        } else {
            h = g.dense(&format!("encoder.{k}"), h, d, true, 1.0)?;
        }
    }
    let emb = h;
    let mut widths: Vec<usize> = c.hidden[..last].iter().rev().copied().collect();
    widths.push(c.input);
    let dl = widths.len() - 1;
    for (k, &d) in widths.iter().enumerate() {
        if k < dl {
            h = g.dense(&format!("decoder.{k}"), h, d, true, a.gain())?;
            h = g.act(&format!("decoder.{k}.act"), h, a.activation())?;
        } else {
            h = g.dense(&format!("decoder.{k}"), h, d, true, 1.0)?;
        }
    }
    g.loss("mse", LossKind::Mse, h, t, 1.0)?;
    g.set_output("prediction", h)?;
    g.set_output("embedding", emb)?;
    g.task = Some(Task::Regression);
    g.spec = Some(serde_json::to_value(ModelSpec::TraceAutoencoder(c.clone())).map_err(json_err)?);
    Ok(g)
}

fn json_err(e: serde_json::Error) -> ComputeError {
    ComputeError::Other(format!("model spec: {e}"))
}

/// The U-Net output head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Head {
    /// Per-channel probabilities `[N, out, H, W]` (binary segmentation).
    Sigmoid,
    /// Class probabilities, channels last: `[N, H, W, out]` (the contract's softmax runs over
    /// the last axis, so the head is a per-pixel dense layer on the channels-last view).
    Softmax,
    /// Raw values `[N, out, H, W]` (denoising, regression).
    Linear,
}

/// U-Net training loss.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum SegLoss {
    /// BCE on logits (sigmoid head only).
    Bce { pos_weight: f32 },
    /// Soft Dice on probabilities.
    Dice,
    /// `bce + dice_weight * dice` (sigmoid head only).
    BceDice { pos_weight: f32, dice_weight: f32 },
    /// MSE on the output.
    Mse,
}

/// A 2-D U-Net.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UNetConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    /// Number of down/up-sampling levels (0: no pooling).
    pub depth: usize,
    /// Channels of the first level (doubled at every level down).
    pub base_channels: usize,
    pub batch_norm: bool,
    pub head: Head,
    /// Image size; both must be divisible by `2^depth`.
    pub height: usize,
    pub width: usize,
    pub activation: Act,
    /// Dropout before the bottleneck's second convolution (0: none).
    pub dropout: f32,
    pub loss: SegLoss,
}

impl Default for UNetConfig {
    fn default() -> Self {
        UNetConfig {
            in_channels: 1,
            out_channels: 1,
            depth: 2,
            base_channels: 8,
            batch_norm: true,
            head: Head::Sigmoid,
            height: 32,
            width: 32,
            activation: Act::Relu,
            dropout: 0.0,
            loss: SegLoss::BceDice {
                pos_weight: 1.0,
                dice_weight: 1.0,
            },
        }
    }
}

/// Builds a U-Net: `depth` encoder levels of two 3x3 convolutions (+ batch norm) + activation
/// and a 2x2 max pool, a bottleneck, and `depth` decoder levels of nearest 2x upsampling + a
/// 3x3 convolution (the substitute for a transposed convolution), concatenation with the skip
/// connection and two 3x3 convolutions; a 1x1 convolution head.
///
/// Inputs: `image` `[in, H, W]`, target `mask` with the prediction's per-sample shape;
/// output `prediction` (`[out, H, W]`, or `[H, W, out]` for the softmax head).
pub fn unet(c: &UNetConfig) -> Result<Graph> {
    if c.in_channels == 0 || c.out_channels == 0 || c.base_channels == 0 {
        return Err(ComputeError::Other(format!(
            "unet: channels must be positive (in {}, out {}, base {})",
            c.in_channels, c.out_channels, c.base_channels
        )));
    }
    // 2^depth must divide both sides, so it is at most the smaller one (and cannot overflow).
    let f = 1usize
        .checked_shl(c.depth as u32)
        .filter(|&f| c.depth < usize::BITS as usize && f <= c.height.min(c.width))
        .unwrap_or(0);
    if f == 0 || !c.height.is_multiple_of(f) || !c.width.is_multiple_of(f) {
        let f = if c.depth < usize::BITS as usize {
            format!("{}", 1usize << c.depth)
        } else {
            format!("2^{}", c.depth)
        };
        return Err(shape_err(
            "unet",
            format!(
                "image [{}, {}, {}] must have height and width divisible by 2^depth = {f} (depth {}): each level halves the image",
                c.in_channels, c.height, c.width, c.depth
            ),
        ));
    }
    // The bottleneck has base_channels * 2^depth channels.
    if c.base_channels.checked_mul(f).is_none() {
        return Err(ComputeError::Other(format!(
            "unet: {} base channels doubled at each of {} levels overflow",
            c.base_channels, c.depth
        )));
    }
    if !(0.0..1.0).contains(&c.dropout) {
        return Err(ComputeError::Other(format!(
            "unet: dropout must be in [0, 1), got {}",
            c.dropout
        )));
    }
    check_loss(&c.loss)?;
    let (h, w) = (c.height, c.width);
    let mut g = Graph::new();
    let x = g.input("image", &[c.in_channels, h, w])?;
    let target_shape = match c.head {
        Head::Softmax => vec![h, w, c.out_channels],
        _ => vec![c.out_channels, h, w],
    };
    let t = g.target("mask", &target_shape)?;
    let mut cur = x;
    let mut skips: Vec<NodeId> = Vec::new();
    for l in 0..c.depth {
        cur = block(
            &mut g,
            c,
            &format!("enc{l}"),
            cur,
            c.base_channels << l,
            false,
        )?;
        skips.push(cur);
        cur = g.max_pool2(&format!("enc{l}.pool"), cur)?;
    }
    cur = block(
        &mut g,
        c,
        "bottleneck",
        cur,
        c.base_channels << c.depth,
        c.dropout > 0.0,
    )?;
    for l in (0..c.depth).rev() {
        let ch = c.base_channels << l;
        let up = g.upsample2(&format!("dec{l}.up"), cur)?;
        let up = conv_unit(&mut g, c, &format!("dec{l}.upconv"), up, ch)?;
        let cat = g.concat(&format!("dec{l}.concat"), skips[l], up)?;
        cur = block(&mut g, c, &format!("dec{l}"), cat, ch, false)?;
    }
    let pred = match c.head {
        Head::Sigmoid | Head::Linear => {
            let logits = g.conv2d("head", cur, c.out_channels, 1, 1, Padding::Same, true, 1.0)?;
            if c.head == Head::Linear {
                match c.loss {
                    SegLoss::Mse => g.loss("mse", LossKind::Mse, logits, t, 1.0)?,
                    other => {
                        return Err(ComputeError::Other(format!(
                            "unet: a linear head is trained with SegLoss::Mse, not {other:?}"
                        )))
                    }
                };
                logits
            } else {
                let probs = g.act("head.sigmoid", logits, Activation::Sigmoid)?;
                match c.loss {
                    SegLoss::Bce { pos_weight } => {
                        g.loss(
                            "bce",
                            LossKind::BceWithLogits { pos_weight },
                            logits,
                            t,
                            1.0,
                        )?;
                    }
                    SegLoss::Dice => {
                        g.loss("dice", LossKind::Dice { eps: 1.0 }, probs, t, 1.0)?;
                    }
                    SegLoss::BceDice {
                        pos_weight,
                        dice_weight,
                    } => {
                        g.loss(
                            "bce",
                            LossKind::BceWithLogits { pos_weight },
                            logits,
                            t,
                            1.0,
                        )?;
                        g.loss("dice", LossKind::Dice { eps: 1.0 }, probs, t, dice_weight)?;
                    }
                    SegLoss::Mse => {
                        g.loss("mse", LossKind::Mse, probs, t, 1.0)?;
                    }
                }
                probs
            }
        }
        Head::Softmax => {
            let ch = c.base_channels;
            let flat = g.reshape("head.flatten", cur, &[ch, h * w])?;
            // [N, ch, HW]ᵀ x W[out, ch]ᵀ = [N, HW, out]: a 1x1 convolution, channels last.
            let wt = g.param(
                "head.weight",
                &[c.out_channels, ch],
                crate::graph::Init::KaimingUniform {
                    fan_in: ch,
                    gain: 1.0,
                },
            )?;
            let mm = g.layer(
                "head.matmul",
                crate::graph::Layer::MatMul {
                    trans_a: true,
                    trans_b: true,
                },
                &[flat, wt],
            )?;
            let b = g.param("head.bias", &[c.out_channels], crate::graph::Init::Zeros)?;
            let logits = g.layer("head", crate::graph::Layer::BiasAdd { axis: 2 }, &[mm, b])?;
            let logits = g.reshape("head.unflatten", logits, &[h, w, c.out_channels])?;
            let probs = g.softmax("head.softmax", logits)?;
            match c.loss {
                SegLoss::Dice => g.loss("dice", LossKind::Dice { eps: 1.0 }, probs, t, 1.0)?,
                SegLoss::Mse => g.loss("mse", LossKind::Mse, probs, t, 1.0)?,
                other => {
                    return Err(ComputeError::Other(format!(
                        "unet: the softmax head is trained with SegLoss::Dice or SegLoss::Mse (the op set has no categorical cross-entropy), not {other:?}"
                    )))
                }
            };
            probs
        }
    };
    g.set_output("prediction", pred)?;
    g.task = Some(match c.head {
        Head::Sigmoid => Task::BinarySegmentation,
        Head::Softmax => Task::MultiClassSegmentation {
            classes: c.out_channels,
        },
        Head::Linear => Task::Regression,
    });
    g.spec = Some(serde_json::to_value(ModelSpec::UNet(c.clone())).map_err(json_err)?);
    Ok(g)
}

/// Loss weights must be finite, `pos_weight` positive.
fn check_loss(l: &SegLoss) -> Result<()> {
    let (pos, dice) = match *l {
        SegLoss::Bce { pos_weight } => (Some(pos_weight), None),
        SegLoss::BceDice {
            pos_weight,
            dice_weight,
        } => (Some(pos_weight), Some(dice_weight)),
        SegLoss::Dice | SegLoss::Mse => (None, None),
    };
    if let Some(p) = pos.filter(|p| !(p.is_finite() && *p > 0.0)) {
        return Err(ComputeError::Other(format!(
            "unet: pos_weight must be a positive number, got {p} in {l:?}"
        )));
    }
    if let Some(d) = dice.filter(|d| !(d.is_finite() && *d >= 0.0)) {
        return Err(ComputeError::Other(format!(
            "unet: dice_weight must be a number >= 0, got {d} in {l:?}"
        )));
    }
    Ok(())
}

/// 3x3 convolution (+ batch norm) + activation.
fn conv_unit(g: &mut Graph, c: &UNetConfig, name: &str, x: NodeId, ch: usize) -> Result<NodeId> {
    let a = c.activation;
    let y = g.conv2d(name, x, ch, 3, 1, Padding::Same, !c.batch_norm, a.gain())?;
    let y = if c.batch_norm {
        g.batch_norm(&format!("{name}.bn"), y)?
    } else {
        y
    };
    g.act(&format!("{name}.act"), y, a.activation())
}

/// Two conv units, with optional dropout between them.
fn block(
    g: &mut Graph,
    c: &UNetConfig,
    name: &str,
    x: NodeId,
    ch: usize,
    dropout: bool,
) -> Result<NodeId> {
    let y = conv_unit(g, c, &format!("{name}.conv1"), x, ch)?;
    let y = if dropout {
        g.dropout(&format!("{name}.dropout"), y, c.dropout)?
    } else {
        y
    };
    conv_unit(g, c, &format!("{name}.conv2"), y, ch)
}
