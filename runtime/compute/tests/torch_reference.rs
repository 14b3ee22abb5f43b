//! Every op of [`Op`] (forward, backward, optimizers) against PyTorch as the reference, on the
//! CPU backend and on the GPU backend (any wgpu adapter, lavapipe included); the convolutions
//! also on a GPU backend with the fast (tiled) convolution kernels off.
//!
//! The reference is `tests/data/torch_reference.safetensors`, written by
//! `tests/data/gen_torch_reference.py` (rerun it after changing the cases): fixed, seeded f32
//! inputs, and expected outputs that torch computed in f64 from those exact inputs (its own
//! functions and autograd; only the Dice loss, which torch lacks, is written out as op.rs
//! states it) and rounded once to f32. Optimizer cases come from `torch.optim` runs
//! (`foreach=False, fused=False`), at step 1 and at a later step: the state before the last
//! step is the op's starting point, the state after it the expected result.
//!
//! Tolerances, `|got - want| <= abs + rel |want|` per element, per op family; `M` is the
//! largest `|want|` of the output, so that an absolute floor scales with it:
//! - data movement and single correctly rounded operations (add, mul, scale, bias add,
//!   concat/split, pooling and its gradient routing, upsampling, embedding): `rel 1e-6`, no
//!   absolute slack; maxpool's tie rule (first maximum in row-major window order) must match
//!   torch's exactly;
//! - elementwise maps with a few roundings (add_scaled, activations and their derivatives,
//!   softmax and its backward, loss gradients, optimizer updates): `rel 1e-5`, `abs 1e-6 M`;
//! - reductions of `k` terms of magnitude at most `T` (matmul, convolutions, bias gradient,
//!   sum, upsampling's backward, the losses' values): `rel 1e-5`, `abs 5e-7 k T + 1e-7 M`, as
//!   conformance.rs (`T` measured from the inputs);
//! - batch and layer norm (statistics, normalised outputs, gradients) and attention:
//!   `rel 1e-5`, `abs 5e-6 M` (plus the reduction term above for the gradients of the affine
//!   parameters, sums over the batch);
//! - softmax backward: the relative part is taken of `y_i (|dy_i| + |sum_j y_j dy_j|)` when
//!   that exceeds `|want|`, as `dx_i` is a difference of those terms (see [`magnitudes`]).
//!
//! Any of these is far below what a semantic difference gives (a variance's bias, where eps
//! goes, a padding split, a tie rule, the GELU form, a decay order): those show at 1e-4 to
//! 1e-1 of the output's size, and the cases are built so they would (eps 0.1 norms, Adam with
//! eps comparable to sqrt(v), weight decay 0.1).
//!
//! Dropout has no torch counterpart here (torch's RNG differs): its scaling rule is checked in
//! Rust ([`dropout_scaling`]), and [`every_op_is_covered`] exempts it by name. Embedding ids
//! out of range give zero rows in our op while torch raises, so that is checked without torch
//! ([`embedding_out_of_range`]).
//!
//! Without a GPU adapter the GPU half prints a skip notice and the CPU half still runs, except
//! under `CI=true`, where a missing adapter (CI installs Mesa's lavapipe) is a failure. Set
//! `TORCH_REF_REPORT=1` to print every output's worst error as a fraction of its tolerance.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde_json::Value;

use mlp_compute::gpu::{GpuBackend, GpuOptions};
mod common;

use common::{cpu, gpu, run_on, Input};
use mlp_compute::op::{numel, Activation, Op, Padding};
use mlp_compute::Backend;

// ------------------------------------------------------------------------------------ harness

/// The backends every case runs on, with a short label: the CPU, and the GPU when there is an
/// adapter.
fn backends() -> Vec<(&'static str, &'static dyn Backend)> {
    let mut v: Vec<(&'static str, &'static dyn Backend)> = vec![("cpu", cpu())];
    if let Some(g) = gpu() {
        v.push(("gpu", g));
    }
    v
}

// -------------------------------------------------------------------------- reference file

const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/torch_reference.safetensors"
);

/// One operand of a case: its name in op.rs's operand order, data and shape.
struct Operand {
    name: String,
    data: Vec<f32>,
    shape: Vec<usize>,
}

/// One reference case: an op, its inputs, the in-place outputs' starting values (optimizers)
/// and the expected outputs.
struct Case {
    name: String,
    op: Op,
    inputs: Vec<Operand>,
    init: Vec<Operand>,
    outputs: Vec<Operand>,
}

/// The cases of the reference file, read once.
fn cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(load)
}

fn load() -> Vec<Case> {
    let bytes = std::fs::read(REFERENCE).unwrap_or_else(|e| {
        panic!("{REFERENCE}: {e} (generate it with tests/data/gen_torch_reference.py)")
    });
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("a safetensors file");
    let meta = meta.metadata().clone().unwrap_or_default();
    let reference: Value =
        serde_json::from_str(meta.get("reference").expect("metadata key 'reference'"))
            .expect("reference metadata is JSON");
    assert_eq!(
        reference["format"], "mlp-compute-torch-reference",
        "{REFERENCE}: unexpected format"
    );
    assert_eq!(reference["version"], 1, "{REFERENCE}: unexpected version");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("a safetensors file");
    let operands = |case: &str, list: &Value| -> Vec<Operand> {
        list.as_array()
            .unwrap_or_else(|| panic!("case {case}: operand list"))
            .iter()
            .map(|o| {
                let key = o["tensor"].as_str().expect("tensor key");
                let view = st
                    .tensor(key)
                    .unwrap_or_else(|e| panic!("case {case}: tensor {key}: {e}"));
                assert_eq!(
                    view.dtype(),
                    safetensors::Dtype::F32,
                    "case {case}: {key} is not F32"
                );
                let shape: Vec<usize> = o["shape"]
                    .as_array()
                    .expect("shape")
                    .iter()
                    .map(|d| d.as_u64().expect("dimension") as usize)
                    .collect();
                assert_eq!(view.shape(), shape, "case {case}: shape of {key}");
                let data = view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                Operand {
                    name: o["name"].as_str().expect("operand name").to_string(),
                    data,
                    shape,
                }
            })
            .collect()
    };
    reference["cases"]
        .as_array()
        .expect("a list of cases")
        .iter()
        .map(|c| {
            let name = c["name"].as_str().expect("case name").to_string();
            let op_name = c["op"].as_str().expect("op name");
            let op = op_from(&name, op_name, &c["params"]);
            assert_eq!(op.name(), op_name, "case {name}");
            Case {
                op,
                inputs: operands(&name, &c["inputs"]),
                init: operands(&name, &c["init"]),
                outputs: operands(&name, &c["outputs"]),
                name,
            }
        })
        .collect()
}

/// The op of a case from its name and parameters (f32 parameters are stored as the exact
/// f32 values torch used).
fn op_from(case: &str, name: &str, p: &Value) -> Op {
    let f = |k: &str| -> f32 {
        let v = p[k]
            .as_f64()
            .unwrap_or_else(|| panic!("case {case}: parameter {k}"));
        // Up to serde_json's float parsing (not correctly rounded in the last f64 bit).
        assert!(
            (v as f32 as f64 - v).abs() <= 1e-15 * v.abs(),
            "case {case}: parameter {k} = {v} is not an f32 value (torch must see our value)"
        );
        v as f32
    };
    let u = |k: &str| -> usize {
        p[k].as_u64()
            .unwrap_or_else(|| panic!("case {case}: parameter {k}")) as usize
    };
    let b = |k: &str| -> bool {
        p[k].as_bool()
            .unwrap_or_else(|| panic!("case {case}: parameter {k}"))
    };
    let padding = || match p["padding"].as_str() {
        Some("same") => Padding::Same,
        Some("valid") => Padding::Valid,
        other => panic!("case {case}: padding {other:?}"),
    };
    let act = || match p["act"].as_str() {
        Some("relu") => Activation::Relu,
        Some("leaky_relu") => Activation::LeakyRelu(f("alpha")),
        Some("sigmoid") => Activation::Sigmoid,
        Some("tanh") => Activation::Tanh,
        Some("gelu") => Activation::Gelu,
        other => panic!("case {case}: activation {other:?}"),
    };
    match name {
        "matmul" => Op::MatMul {
            trans_a: b("trans_a"),
            trans_b: b("trans_b"),
        },
        "add" => Op::Add,
        "mul" => Op::Mul,
        "add_scaled" => Op::AddScaled { alpha: f("alpha") },
        "scale" => Op::Scale { alpha: f("alpha") },
        "bias_add" => Op::BiasAdd { axis: u("axis") },
        "bias_grad" => Op::BiasGrad { axis: u("axis") },
        "activation" => Op::Act(act()),
        "activation_backward" => Op::ActBackward(act()),
        "conv2d" => Op::Conv2d {
            stride: u("stride"),
            padding: padding(),
        },
        "conv2d_backward_input" => Op::Conv2dBackwardInput {
            stride: u("stride"),
            padding: padding(),
            in_h: u("in_h"),
            in_w: u("in_w"),
        },
        "conv2d_backward_weight" => Op::Conv2dBackwardWeight {
            stride: u("stride"),
            padding: padding(),
            kh: u("kh"),
            kw: u("kw"),
        },
        "maxpool2" => Op::MaxPool2,
        "maxpool2_backward" => Op::MaxPool2Backward,
        "upsample2" => Op::Upsample2,
        "upsample2_backward" => Op::Upsample2Backward,
        "concat_channels" => Op::ConcatChannels,
        "split_channels" => Op::SplitChannels { first: u("first") },
        "batchnorm_train" => Op::BatchNormTrain { eps: f("eps") },
        "batchnorm_eval" => Op::BatchNormEval { eps: f("eps") },
        "batchnorm_backward" => Op::BatchNormBackward,
        "layernorm" => Op::LayerNorm { eps: f("eps") },
        "layernorm_backward" => Op::LayerNormBackward,
        "softmax" => Op::Softmax,
        "softmax_backward" => Op::SoftmaxBackward,
        "sum_all" => Op::SumAll,
        "mse_loss" => Op::MseLoss,
        "bce_with_logits" => Op::BceWithLogits {
            pos_weight: f("pos_weight"),
        },
        "dice_loss" => Op::DiceLoss { eps: f("eps") },
        "sgd" => Op::Sgd {
            lr: f("lr"),
            momentum: f("momentum"),
            weight_decay: f("weight_decay"),
        },
        "adam" => Op::Adam {
            lr: f("lr"),
            beta1: f("beta1"),
            beta2: f("beta2"),
            eps: f("eps"),
            weight_decay: f("weight_decay"),
            decoupled: b("decoupled"),
            step: u("step") as u32,
        },
        "embedding" => Op::Embedding,
        "attention" => Op::Attention { heads: u("heads") },
        other => panic!("case {case}: unknown op '{other}'"),
    }
}

// ------------------------------------------------------------------------------ tolerances

/// `|got - want| <= abs + rel |want|` per element.
#[derive(Clone, Copy, Debug)]
struct Tol {
    rel: f32,
    abs: f32,
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0f32, |m, x| m.max(x.abs()))
}

/// Data movement and single correctly rounded operations.
const EXACT: Tol = Tol {
    rel: 1e-6,
    abs: 0.0,
};

/// Elementwise maps of a few roundings, for an output of magnitude `m`.
fn elem(m: f32) -> Tol {
    Tol {
        rel: 1e-5,
        abs: 1e-6 * m,
    }
}

/// Sums of `k` terms of magnitude at most `t`, for an output of magnitude `m`.
fn sum_tol(k: usize, t: f32, m: f32) -> Tol {
    Tol {
        rel: 1e-5,
        abs: 5e-7 * k.max(1) as f32 * t + 1e-7 * m,
    }
}

/// Normalisations and attention, for an output of magnitude `m`.
fn norm_tol(m: f32) -> Tol {
    Tol {
        rel: 1e-5,
        abs: 5e-6 * m,
    }
}

/// The tolerance of output `k` of a case (`m`: the largest `|want|` of that output).
fn tolerance(case: &Case, k: usize, m: f32) -> Tol {
    let x = |i: usize| max_abs(&case.inputs[i].data);
    let sh = |i: usize| &case.inputs[i].shape;
    match case.op {
        Op::Add
        | Op::Mul
        | Op::Scale { .. }
        | Op::BiasAdd { .. }
        | Op::MaxPool2
        | Op::MaxPool2Backward
        | Op::Upsample2
        | Op::ConcatChannels
        | Op::SplitChannels { .. }
        | Op::Embedding => EXACT,
        Op::AddScaled { .. }
        | Op::Act(_)
        | Op::ActBackward(_)
        | Op::Softmax
        | Op::SoftmaxBackward
        | Op::Sgd { .. }
        | Op::Adam { .. } => elem(m),
        Op::MatMul { trans_a, .. } => {
            let a = sh(0);
            let inner = if trans_a {
                a[a.len() - 2]
            } else {
                a[a.len() - 1]
            };
            sum_tol(inner, x(0) * x(1), m)
        }
        Op::BiasGrad { axis } => sum_tol(numel(sh(0)) / sh(0)[axis].max(1), x(0), m),
        Op::Conv2d { .. } => {
            let w = sh(1);
            sum_tol(w[1] * w[2] * w[3], x(0) * x(1), m)
        }
        Op::Conv2dBackwardInput { .. } => {
            let w = sh(1);
            sum_tol(w[0] * w[2] * w[3], x(0) * x(1), m)
        }
        Op::Conv2dBackwardWeight { .. } => {
            let dy = sh(1);
            sum_tol(dy[0] * dy[2] * dy[3], x(0) * x(1), m)
        }
        Op::Upsample2Backward => sum_tol(4, x(0), m),
        Op::SumAll => sum_tol(numel(sh(0)), x(0), m),
        Op::MseLoss | Op::BceWithLogits { .. } | Op::DiceLoss { .. } if k == 1 => elem(m),
        Op::MseLoss => {
            let n = numel(sh(0));
            let d = x(0) + x(1);
            sum_tol(n, d * d / n as f32, m)
        }
        Op::BceWithLogits { pos_weight } => {
            // Terms up to (1 + pos_weight) (|logit| + 1), averaged.
            let n = numel(sh(0));
            sum_tol(n, (1.0 + pos_weight) * (x(0) + 1.0) / n as f32, m)
        }
        // 1 - A / B with A, B sums of n terms: relative errors of the sums, scaled by A / B.
        Op::DiceLoss { .. } => sum_tol(numel(sh(0)), 2.0 / numel(sh(0)) as f32, m),
        Op::BatchNormTrain { .. }
        | Op::BatchNormEval { .. }
        | Op::LayerNorm { .. }
        | Op::Attention { .. } => norm_tol(m),
        Op::BatchNormBackward | Op::LayerNormBackward => {
            if k == 0 {
                norm_tol(m)
            } else {
                // dgamma, dbeta: sums over the other axis of dy (times xhat, a few units).
                let count = numel(sh(0)) / case.outputs[k].data.len().max(1);
                let t = x(1) * if k == 1 { 4.0 } else { 1.0 };
                let s = sum_tol(count, t, m);
                Tol {
                    rel: s.rel.max(norm_tol(m).rel),
                    abs: s.abs + norm_tol(m).abs,
                }
            }
        }
        Op::Dropout { .. } | Op::DropoutBackward { .. } => {
            panic!("case {}: dropout has no torch reference", case.name)
        }
    }
}

/// Per-element magnitudes of the terms an output element is the difference of, where that
/// cancels (softmax backward: `dx_i = y_i (dy_i - sum_j y_j dy_j)`, so f32 rounding is relative
/// to `y_i (|dy_i| + |sum_j y_j dy_j|)`, not to `|dx_i|`); the relative tolerance applies to the
/// larger of this and `|want|`.
fn magnitudes(case: &Case, k: usize) -> Option<Vec<f32>> {
    match case.op {
        Op::SoftmaxBackward if k == 0 => {
            let (y, dy) = (&case.inputs[0], &case.inputs[1]);
            let d = *y.shape.last().expect("rank >= 1");
            let mut m = Vec::with_capacity(y.data.len());
            for (yr, gr) in y.data.chunks(d).zip(dy.data.chunks(d)) {
                let dot: f64 = yr.iter().zip(gr).map(|(&a, &b)| a as f64 * b as f64).sum();
                m.extend(
                    yr.iter()
                        .zip(gr)
                        .map(|(&a, &b)| a * (b.abs() + dot.abs() as f32)),
                );
            }
            Some(m)
        }
        _ => None,
    }
}

// ------------------------------------------------------------------------------ comparison

fn report() -> bool {
    std::env::var_os("TORCH_REF_REPORT").is_some()
}

/// Runs a case on `be` and compares every output with the reference; returns the failures.
fn check_case(label: &str, be: &dyn Backend, case: &Case) -> Vec<String> {
    let inputs: Vec<Input> = case
        .inputs
        .iter()
        .map(|o| (o.data.clone(), o.shape.clone()))
        .collect();
    let shapes: Vec<&[usize]> = inputs.iter().map(|(_, s)| s.as_slice()).collect();
    let out_shapes = case.op.output_shapes(&shapes).expect("valid shapes");
    assert_eq!(
        out_shapes.len(),
        case.outputs.len(),
        "case {}: output count",
        case.name
    );
    let init: Vec<Vec<f32>> = case.init.iter().map(|o| o.data.clone()).collect();
    let got = run_on(
        be,
        &case.op,
        &inputs,
        (!init.is_empty()).then_some(init.as_slice()),
    );
    let mut failures = Vec::new();
    for (k, (want, g)) in case.outputs.iter().zip(&got).enumerate() {
        assert_eq!(
            out_shapes[k], want.shape,
            "case {}: output {k} '{}' shape",
            case.name, want.name
        );
        let w = &want.data;
        let tol = tolerance(case, k, max_abs(w));
        let mag = magnitudes(case, k);
        let err = |i: usize| (g[i] - w[i]).abs();
        let bound = |i: usize| {
            let m = mag.as_ref().map_or(0.0, |m| m[i]);
            tol.abs + tol.rel * w[i].abs().max(m)
        };
        // NaN in `got` fails too (the reference has none).
        let within = |i: usize| err(i) <= bound(i);
        let bad: Vec<usize> = (0..w.len()).filter(|&i| !within(i)).collect();
        if report() {
            let worst = (0..w.len())
                .map(|i| err(i) / bound(i).max(f32::MIN_POSITIVE))
                .fold(0f32, f32::max);
            eprintln!(
                "{:>10} {:<44} {:<8} worst {:.3} of tolerance {tol:?}",
                label, case.name, want.name, worst
            );
        }
        if let Some(&first) = bad.iter().max_by(|&&a, &&b| {
            let ra = err(a) / bound(a).max(f32::MIN_POSITIVE);
            let rb = err(b) / bound(b).max(f32::MIN_POSITIVE);
            ra.total_cmp(&rb)
        }) {
            failures.push(format!(
                "case {} ({:?}) on {}: output {k} '{}' {:?}: at index {first} got {} want {} \
                 ({} of {} elements out of tolerance {tol:?})",
                case.name,
                case.op,
                be.describe(),
                want.name,
                want.shape,
                g[first],
                w[first],
                bad.len(),
                w.len(),
            ));
        }
    }
    failures
}

/// Runs every case of the given ops on every backend; fails listing every mismatch.
fn check_family(ops: &[&str]) {
    check_family_on(ops, &backends());
}

/// [`check_family`] on the given backends.
fn check_family_on(ops: &[&str], backends: &[(&str, &dyn Backend)]) {
    let selected: Vec<&Case> = cases()
        .iter()
        .filter(|c| ops.contains(&c.op.name()))
        .collect();
    for op in ops {
        assert!(
            selected.iter().any(|c| c.op.name() == *op),
            "no reference case for {op} in {REFERENCE}"
        );
    }
    let mut failures = Vec::new();
    for &(label, be) in backends {
        for case in &selected {
            failures.extend(check_case(label, be, case));
        }
    }
    if report() {
        if let Some(g) = gpu() {
            eprintln!("GPU kernels compiled so far: {:?}", g.compiled_kernels());
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches with the torch reference:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// --------------------------------------------------------------------------- op families

const MATMUL: &[&str] = &["matmul"];
const ELEMENTWISE: &[&str] = &["add", "mul", "add_scaled", "scale", "bias_add", "bias_grad"];
const ACTIVATIONS: &[&str] = &["activation", "activation_backward"];
const CONV: &[&str] = &["conv2d", "conv2d_backward_input", "conv2d_backward_weight"];
const POOLING: &[&str] = &[
    "maxpool2",
    "maxpool2_backward",
    "upsample2",
    "upsample2_backward",
    "concat_channels",
    "split_channels",
];
const BATCHNORM: &[&str] = &["batchnorm_train", "batchnorm_eval", "batchnorm_backward"];
const LAYERNORM: &[&str] = &["layernorm", "layernorm_backward"];
const SOFTMAX: &[&str] = &["softmax", "softmax_backward"];
const LOSSES: &[&str] = &["sum_all", "mse_loss", "bce_with_logits", "dice_loss"];
const OPTIMIZERS: &[&str] = &["sgd", "adam"];
const EMBEDDING: &[&str] = &["embedding"];
const ATTENTION: &[&str] = &["attention"];

const FAMILIES: &[&[&str]] = &[
    MATMUL,
    ELEMENTWISE,
    ACTIVATIONS,
    CONV,
    POOLING,
    BATCHNORM,
    LAYERNORM,
    SOFTMAX,
    LOSSES,
    OPTIMIZERS,
    EMBEDDING,
    ATTENTION,
];

/// Ops with no torch reference, checked in Rust only.
const EXEMPT: &[&str] = &["dropout", "dropout_backward"];

#[test]
fn matmul() {
    check_family(MATMUL);
}

#[test]
fn elementwise_and_bias() {
    check_family(ELEMENTWISE);
}

#[test]
fn activations() {
    check_family(ACTIVATIONS);
}

/// On the default backends (the GPU picks its fast, tiled convolutions for these shapes), then
/// on a GPU backend with the fast convolutions off (the guarded generic kernels).
#[test]
fn conv2d() {
    check_family(CONV);
    if gpu().is_none() {
        return;
    }
    let mut g = GpuBackend::new(GpuOptions::allow_cpu()).expect("a second GPU backend");
    g.set_fast_conv(false);
    check_family_on(CONV, &[("gpu-generic-conv", &g)]);
    let conv: Vec<&str> = g
        .compiled_kernels()
        .into_iter()
        .filter(|k| k.starts_with("conv2d"))
        .collect();
    assert_eq!(
        conv,
        [
            "conv2d.wgsl",
            "conv2d_backward_input.wgsl",
            "conv2d_backward_weight.wgsl"
        ],
        "the generic convolution kernels ran"
    );
}

#[test]
fn pooling_resampling_channels() {
    check_family(POOLING);
}

#[test]
fn batchnorm() {
    check_family(BATCHNORM);
}

#[test]
fn layernorm() {
    check_family(LAYERNORM);
}

#[test]
fn softmax() {
    check_family(SOFTMAX);
}

#[test]
fn sums_and_losses() {
    check_family(LOSSES);
}

#[test]
fn optimizers() {
    check_family(OPTIMIZERS);
}

#[test]
fn embedding() {
    check_family(EMBEDDING);
}

#[test]
fn attention() {
    check_family(ATTENTION);
}

// ------------------------------------------------------------------------ without torch

/// Ids outside `[0, v)` (and non-finite ones) give zero rows; torch's `F.embedding` raises on
/// them, so this is checked here.
#[test]
fn embedding_out_of_range() {
    let (v, d) = (5usize, 3usize);
    let table: Vec<f32> = (0..v * d).map(|i| i as f32 + 1.0).collect();
    let ids = vec![-1.0, 0.0, 5.0, 4.0, 7.0, f32::NAN, f32::INFINITY, 2.0];
    let mut want = Vec::new();
    for &id in &ids {
        if id >= 0.0 && id < v as f32 {
            let r = id as usize;
            want.extend_from_slice(&table[r * d..(r + 1) * d]);
        } else {
            want.extend(std::iter::repeat_n(0.0, d));
        }
    }
    for (_, be) in backends() {
        let got = run_on(
            be,
            &Op::Embedding,
            &[(ids.clone(), vec![ids.len()]), (table.clone(), vec![v, d])],
            None,
        );
        assert_eq!(got[0], want, "embedding on {}", be.describe());
    }
}

/// Inverted dropout's scaling rule (torch's masks come from another RNG, so only the rule is
/// compared): every element is 0 or `x / (1 - p)`, the kept fraction is near `1 - p`, and the
/// backward applies the same mask and scale.
#[test]
fn dropout_scaling() {
    let n = 20_000;
    let x: Vec<f32> = (0..n).map(|i| 0.5 + (i % 17) as f32 * 0.25).collect();
    for (_, be) in backends() {
        for (p, seed) in [(0.25f32, 3u32), (0.5, 11)] {
            let y = run_on(be, &Op::Dropout { p, seed }, &[(x.clone(), vec![n])], None).remove(0);
            let dy = run_on(
                be,
                &Op::DropoutBackward { p, seed },
                &[(x.clone(), vec![n])],
                None,
            )
            .remove(0);
            let scale = 1.0 / (1.0 - p);
            let mut kept = 0;
            for i in 0..n {
                if y[i] != 0.0 {
                    kept += 1;
                    let want = x[i] * scale;
                    assert!(
                        (y[i] - want).abs() <= 1e-6 * want,
                        "dropout p={p} on {}: element {i} is {} (x {}, want 0 or {want})",
                        be.describe(),
                        y[i],
                        x[i]
                    );
                }
                assert_eq!(y[i], dy[i], "dropout backward mask on {}", be.describe());
            }
            let frac = kept as f64 / n as f64;
            assert!(
                (frac - (1.0 - p as f64)).abs() < 0.02,
                "dropout p={p} on {}: kept {frac}",
                be.describe()
            );
        }
    }
}

/// NaN through relu and leaky relu as PyTorch (checked with torch 2.15): the forward keeps
/// NaN, relu's backward passes `dy` on at NaN (`threshold_backward`: 0 only where x <= 0), and
/// leaky relu's backward takes the negative side's slope there.
#[test]
fn relu_family_nan_as_pytorch() {
    let n = 1000;
    let mut x: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
    for i in (0..n).step_by(13) {
        x[i] = f32::NAN;
    }
    let dy: Vec<f32> = (0..n).map(|i| 0.5 + (i % 5) as f32).collect();
    let s = vec![n];
    for (_, be) in backends() {
        for a in [
            Activation::Relu,
            Activation::LeakyRelu(0.1),
            Activation::LeakyRelu(1.5),
        ] {
            let y = run_on(be, &Op::Act(a), &[(x.clone(), s.clone())], None).remove(0);
            let dx = run_on(
                be,
                &Op::ActBackward(a),
                &[(x.clone(), s.clone()), (dy.clone(), s.clone())],
                None,
            )
            .remove(0);
            let slope = match a {
                Activation::LeakyRelu(alpha) => alpha,
                _ => 0.0,
            };
            for i in 0..n {
                let (want_y, want_dx) = if x[i].is_nan() {
                    // relu passes dy on at NaN; leaky relu scales it by alpha.
                    (f32::NAN, if slope == 0.0 { dy[i] } else { slope * dy[i] })
                } else if x[i] > 0.0 {
                    (x[i], dy[i])
                } else {
                    (slope * x[i], slope * dy[i])
                };
                let same = |g: f32, w: f32| (g.is_nan() && w.is_nan()) || g == w;
                assert!(
                    same(y[i], want_y) && same(dx[i], want_dx),
                    "{a:?} on {} at x = {}: y {} dx {} (want {want_y}, {want_dx})",
                    be.describe(),
                    x[i],
                    y[i],
                    dx[i]
                );
            }
        }
    }
}

/// Max-pool windows holding NaN, as PyTorch 2.15 routes them (its scan keeps `v > max ||
/// isnan(v)`, so the last NaN of a window is its argmax): `[[1, NaN], [NaN, 0]]` sends the
/// gradient to the NaN at (1, 0), `[[NaN, 5], [2, NaN]]` to (1, 1); a window with one NaN to
/// that NaN; without NaN, to the first maximum.
#[test]
fn maxpool_nan_windows_as_pytorch() {
    let nan = f32::NAN;
    // One [1, 1, 2, 8] image: four 2x2 windows side by side.
    let windows = [
        ([1.0, nan, nan, 0.0], 2),
        ([nan, 5.0, 2.0, nan], 3),
        ([3.0, 3.0, nan, 3.0], 2),
        ([4.0, 7.0, 7.0, 1.0], 1),
    ];
    let (h, w) = (2, 8);
    let mut x = vec![0f32; h * w];
    for (q, (v, _)) in windows.iter().enumerate() {
        x[2 * q] = v[0];
        x[2 * q + 1] = v[1];
        x[w + 2 * q] = v[2];
        x[w + 2 * q + 1] = v[3];
    }
    let shape = vec![1, 1, h, w];
    let dy = vec![10.0, 20.0, 30.0, 40.0];
    for (_, be) in backends() {
        let y = run_on(be, &Op::MaxPool2, &[(x.clone(), shape.clone())], None).remove(0);
        let dx = run_on(
            be,
            &Op::MaxPool2Backward,
            &[
                (x.clone(), shape.clone()),
                (y.clone(), vec![1, 1, 1, 4]),
                (dy.clone(), vec![1, 1, 1, 4]),
            ],
            None,
        )
        .remove(0);
        for (q, &(_, at)) in windows.iter().enumerate() {
            let pos = [2 * q, 2 * q + 1, w + 2 * q, w + 2 * q + 1];
            let got: Vec<f32> = pos.iter().map(|&k| dx[k]).collect();
            let mut want = [0f32; 4];
            want[at] = dy[q];
            assert_eq!(
                got,
                want,
                "maxpool2_backward on {}: window {q} {:?} (pooled {})",
                be.describe(),
                windows[q].0,
                y[q]
            );
        }
    }
}

// ---------------------------------------------------------------------------- coverage

/// Number of `Op` variants; [`variant`] has no wildcard arm, so a new variant stops this file
/// compiling until it gets an index here, an entry in [`every_op`], and reference cases (or an
/// exemption).
const VARIANTS: usize = 35;

fn variant(op: &Op) -> usize {
    match op {
        Op::MatMul { .. } => 0,
        Op::Add => 1,
        Op::Mul => 2,
        Op::AddScaled { .. } => 3,
        Op::Scale { .. } => 4,
        Op::BiasAdd { .. } => 5,
        Op::BiasGrad { .. } => 6,
        Op::Act(_) => 7,
        Op::ActBackward(_) => 8,
        Op::Conv2d { .. } => 9,
        Op::Conv2dBackwardInput { .. } => 10,
        Op::Conv2dBackwardWeight { .. } => 11,
        Op::MaxPool2 => 12,
        Op::MaxPool2Backward => 13,
        Op::Upsample2 => 14,
        Op::Upsample2Backward => 15,
        Op::ConcatChannels => 16,
        Op::SplitChannels { .. } => 17,
        Op::BatchNormTrain { .. } => 18,
        Op::BatchNormEval { .. } => 19,
        Op::BatchNormBackward => 20,
        Op::LayerNorm { .. } => 21,
        Op::LayerNormBackward => 22,
        Op::Softmax => 23,
        Op::SoftmaxBackward => 24,
        Op::Dropout { .. } => 25,
        Op::DropoutBackward { .. } => 26,
        Op::SumAll => 27,
        Op::MseLoss => 28,
        Op::BceWithLogits { .. } => 29,
        Op::DiceLoss { .. } => 30,
        Op::Sgd { .. } => 31,
        Op::Adam { .. } => 32,
        Op::Embedding => 33,
        Op::Attention { .. } => 34,
    }
}

/// One op of every variant.
fn every_op() -> Vec<Op> {
    let (stride, padding) = (1, Padding::Same);
    vec![
        Op::MatMul {
            trans_a: false,
            trans_b: false,
        },
        Op::Add,
        Op::Mul,
        Op::AddScaled { alpha: 1.0 },
        Op::Scale { alpha: 1.0 },
        Op::BiasAdd { axis: 0 },
        Op::BiasGrad { axis: 0 },
        Op::Act(Activation::Relu),
        Op::ActBackward(Activation::Relu),
        Op::Conv2d { stride, padding },
        Op::Conv2dBackwardInput {
            stride,
            padding,
            in_h: 1,
            in_w: 1,
        },
        Op::Conv2dBackwardWeight {
            stride,
            padding,
            kh: 1,
            kw: 1,
        },
        Op::MaxPool2,
        Op::MaxPool2Backward,
        Op::Upsample2,
        Op::Upsample2Backward,
        Op::ConcatChannels,
        Op::SplitChannels { first: 0 },
        Op::BatchNormTrain { eps: 1e-5 },
        Op::BatchNormEval { eps: 1e-5 },
        Op::BatchNormBackward,
        Op::LayerNorm { eps: 1e-5 },
        Op::LayerNormBackward,
        Op::Softmax,
        Op::SoftmaxBackward,
        Op::Dropout { p: 0.5, seed: 0 },
        Op::DropoutBackward { p: 0.5, seed: 0 },
        Op::SumAll,
        Op::MseLoss,
        Op::BceWithLogits { pos_weight: 1.0 },
        Op::DiceLoss { eps: 1.0 },
        Op::Sgd {
            lr: 0.1,
            momentum: 0.0,
            weight_decay: 0.0,
        },
        Op::Adam {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            step: 1,
        },
        Op::Embedding,
        Op::Attention { heads: 1 },
    ]
}

/// Every activation, by the name the reference file gives it; no wildcard arm, as [`variant`].
fn activation_name(a: Activation) -> &'static str {
    match a {
        Activation::Relu => "relu",
        Activation::LeakyRelu(_) => "leaky_relu",
        Activation::Sigmoid => "sigmoid",
        Activation::Tanh => "tanh",
        Activation::Gelu => "gelu",
    }
}

const ACTIVATION_KINDS: [Activation; 5] = [
    Activation::Relu,
    Activation::LeakyRelu(0.1),
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Gelu,
];

/// Every `Op` variant (but the exempt dropout) has reference cases and a family test that runs
/// them; every activation has forward and backward cases; every case belongs to a family.
#[test]
fn every_op_is_covered() {
    let all = every_op();
    let indices: BTreeSet<usize> = all.iter().map(variant).collect();
    assert_eq!(
        indices,
        (0..VARIANTS).collect::<BTreeSet<_>>(),
        "every_op() must list each Op variant once"
    );
    assert_eq!(all.len(), VARIANTS);
    let mut per_op: BTreeMap<&str, usize> = BTreeMap::new();
    for c in cases() {
        *per_op.entry(c.op.name()).or_default() += 1;
    }
    let in_family: BTreeSet<&str> = FAMILIES.iter().flat_map(|f| f.iter().copied()).collect();
    let mut missing = Vec::new();
    for op in &all {
        let name = op.name();
        if EXEMPT.contains(&name) {
            assert!(
                !per_op.contains_key(name),
                "{name} is exempt but has reference cases"
            );
            continue;
        }
        if !per_op.contains_key(name) {
            missing.push(format!("{name}: no case in {REFERENCE}"));
        }
        if !in_family.contains(name) {
            missing.push(format!("{name}: no family test runs it"));
        }
    }
    for name in per_op.keys() {
        if !in_family.contains(name) {
            missing.push(format!("{name}: cases that no family test runs"));
        }
    }
    let seen: BTreeSet<(&str, &str)> = cases()
        .iter()
        .filter_map(|c| match c.op {
            Op::Act(a) => Some(("activation", activation_name(a))),
            Op::ActBackward(a) => Some(("activation_backward", activation_name(a))),
            _ => None,
        })
        .collect();
    for a in ACTIVATION_KINDS {
        for op in ["activation", "activation_backward"] {
            if !seen.contains(&(op, activation_name(a))) {
                missing.push(format!("{op} {}: no case", activation_name(a)));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ops without a torch reference:\n{}",
        missing.join("\n")
    );
    eprintln!(
        "torch reference: {} cases over {} ops: {per_op:?}",
        cases().len(),
        per_op.len()
    );
}
