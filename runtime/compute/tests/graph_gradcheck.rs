//! Whole-graph gradient checks: the gradients of the lowered backward schedule against
//! central finite differences of the training-mode loss, for a small MLP and small U-Nets
//! (batch norm in training mode), on the CPU backend.

use std::sync::Arc;

use mlp_compute::cpu::CpuBackend;
use mlp_compute::gpu::{GpuBackend, GpuOptions};
use mlp_compute::graph::{Graph, LossKind, Mode, SlotKind};
use mlp_compute::model::{unet, Act, Head, SegLoss, UNetConfig};
use mlp_compute::train::{Dataset, Optimizer, TrainConfig, Trainer};
use mlp_compute::{Activation, Backend};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn backend() -> Arc<dyn Backend> {
    Arc::new(CpuBackend::new())
}

fn config(batch: usize) -> TrainConfig {
    TrainConfig {
        batch_size: batch,
        lr: 1e-2,
        optimizer: Optimizer::adam(),
        seed: 7,
        ..TrainConfig::default()
    }
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n)
        .map(|_| lo + (hi - lo) * rng.random::<f32>())
        .collect()
}

/// Checks up to `per_param` entries of every parameter; returns the worst relative error.
///
/// The error of an entry is `|numeric - analytic| / (max(|numeric|, |analytic|) + floor)`,
/// with `floor` 1% of the largest gradient entry (so entries whose gradient is tiny compared
/// with the rest are checked in absolute terms against f32 rounding of the loss). `eps` must
/// be small where max pooling follows batch norm: a perturbation that flips the maximum of a
/// window makes the central difference straddle a kink.
fn gradcheck(t: &mut Trainer, data: &Dataset, per_param: usize, eps: f32, tol: f32) -> f32 {
    let (loss, grads) = t.loss_and_gradients(data).unwrap();
    assert!(loss.is_finite());
    let scale = grads
        .iter()
        .flat_map(|(_, g)| g.iter())
        .fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "all gradients are zero");
    let floor = 1e-2 * scale;
    let trainable: Vec<String> = t
        .graph()
        .params
        .iter()
        .filter(|p| p.trainable)
        .map(|p| p.name.clone())
        .collect();
    let names: Vec<&String> = grads.iter().map(|(n, _)| n).collect();
    assert_eq!(
        names.len(),
        trainable.len(),
        "every trainable parameter has a gradient: {names:?}"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut worst = 0f32;
    let mut checked = 0;
    for (name, g) in &grads {
        let base = t.param(name).unwrap();
        assert_eq!(base.len(), g.len(), "{name}");
        let mut idx: Vec<usize> = (0..g.len()).collect();
        if idx.len() > per_param {
            // A seeded sample of entries.
            for i in 0..per_param {
                let j = rng.random_range(i..idx.len());
                idx.swap(i, j);
            }
            idx.truncate(per_param);
        }
        for &i in &idx {
            let mut p = base.clone();
            p[i] = base[i] + eps;
            t.set_param(name, &p).unwrap();
            let lp = t.train_loss(data).unwrap() as f64;
            p[i] = base[i] - eps;
            t.set_param(name, &p).unwrap();
            let lm = t.train_loss(data).unwrap() as f64;
            t.set_param(name, &base).unwrap();
            let num = ((lp - lm) / (2.0 * eps as f64)) as f32;
            let ana = g[i];
            let err = (num - ana).abs() / (floor + num.abs().max(ana.abs()));
            assert!(
                err <= tol,
                "{name}[{i}]: analytic {ana:e} vs numeric {num:e} (relative error {err:.3e})"
            );
            worst = worst.max(err);
            checked += 1;
        }
    }
    assert!(checked > 0);
    worst
}

#[test]
fn mlp_gradients_match_finite_differences() {
    let mut g = Graph::new();
    let x = g.input("x", &[6]).unwrap();
    let t = g.target("y", &[3]).unwrap();
    let h = g.dense("l1", x, 5, true, 1.0).unwrap();
    let h = g.act("l1.act", h, Activation::Tanh).unwrap();
    let h = g.dense("l2", h, 4, true, 1.0).unwrap();
    let h = g.act("l2.act", h, Activation::Gelu).unwrap();
    // A value feeding two consumers (gradient accumulation) and a residual add.
    let r = g.dense("l3", h, 4, false, 1.0).unwrap();
    let h = g.add("res", h, r).unwrap();
    let y = g.dense("out", h, 3, true, 1.0).unwrap();
    g.loss("mse", LossKind::Mse, y, t, 1.0).unwrap();
    let p = g.act("prob", y, Activation::Sigmoid).unwrap();
    g.loss("dice", LossKind::Dice { eps: 1.0 }, p, t, 0.5)
        .unwrap();
    g.set_output("prediction", y).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let xs = uniform(&mut rng, 5 * 6, -1.0, 1.0);
    let ys = uniform(&mut rng, 5 * 3, 0.0, 1.0);
    let mut tr = Trainer::new(backend(), g, config(5)).unwrap();
    let worst = gradcheck(&mut tr, &Dataset::new(&xs, &ys), 12, 1e-2, 2e-2);
    eprintln!("mlp: worst relative error {worst:.3e}");
}

#[test]
fn softmax_and_broadcast_matmul_gradients() {
    // A per-position dense layer on [N, c, L] (a broadcast MatMul whose weight gradient is
    // summed over the batch), a softmax over the last axis, BCE and dropout-free batch norm.
    let mut g = Graph::new();
    let x = g.input("x", &[3, 4]).unwrap();
    let t = g.target("y", &[4, 2]).unwrap();
    let xb = g.batch_norm("bn", x).unwrap();
    let w = g
        .param(
            "w",
            &[2, 3],
            mlp_compute::graph::Init::KaimingUniform {
                fan_in: 3,
                gain: 1.0,
            },
        )
        .unwrap();
    let mm = g
        .layer(
            "mm",
            mlp_compute::graph::Layer::MatMul {
                trans_a: true,
                trans_b: true,
            },
            &[xb, w],
        )
        .unwrap();
    let b = g.param("b", &[2], mlp_compute::graph::Init::Zeros).unwrap();
    let z = g
        .layer(
            "z",
            mlp_compute::graph::Layer::BiasAdd { axis: 2 },
            &[mm, b],
        )
        .unwrap();
    let s = g.softmax("s", z).unwrap();
    g.loss("mse", LossKind::Mse, s, t, 1.0).unwrap();
    g.loss(
        "bce",
        LossKind::BceWithLogits { pos_weight: 3.0 },
        z,
        t,
        0.7,
    )
    .unwrap();
    // Bias initialised to zeros: give it values.
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let xs = uniform(&mut rng, 4 * 12, -2.0, 2.0);
    let ys: Vec<f32> = (0..4 * 8)
        .map(|_| (rng.random::<f32>() > 0.5) as u8 as f32)
        .collect();
    let mut tr = Trainer::new(backend(), g, config(4)).unwrap();
    tr.set_param("b", &[0.3, -0.2]).unwrap();
    tr.set_param("bn.gamma", &[1.2, 0.8, -0.5]).unwrap();
    tr.set_param("bn.beta", &[0.1, -0.3, 0.2]).unwrap();
    let worst = gradcheck(&mut tr, &Dataset::new(&xs, &ys), 12, 1e-2, 2e-2);
    eprintln!("softmax/broadcast: worst relative error {worst:.3e}");
}

fn tiny_unet(depth: usize, head: Head, loss: SegLoss, out: usize) -> UNetConfig {
    UNetConfig {
        in_channels: 2,
        out_channels: out,
        depth,
        base_channels: 2,
        batch_norm: true,
        head,
        height: 8,
        width: 8,
        activation: Act::Tanh,
        dropout: 0.0,
        loss,
    }
}

fn unet_check(c: UNetConfig, batch: usize, per_param: usize) -> f32 {
    let g = unet(&c).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let xs = uniform(&mut rng, batch * 2 * 64, -1.0, 1.0);
    let tl = batch * c.out_channels * 64;
    let ys: Vec<f32> = if c.head == Head::Softmax {
        // One-hot per pixel, channels last.
        let mut v = vec![0f32; tl];
        for px in v.chunks_exact_mut(c.out_channels) {
            px[rng.random_range(0..c.out_channels)] = 1.0;
        }
        v
    } else {
        (0..tl)
            .map(|_| (rng.random::<f32>() > 0.7) as u8 as f32)
            .collect()
    };
    let mut tr = Trainer::new(backend(), g, config(batch)).unwrap();
    // Non-trivial batch-norm affine parameters and biases.
    let names: Vec<(String, usize)> = tr
        .graph()
        .params
        .iter()
        .filter(|p| p.trainable)
        .map(|p| (p.name.clone(), p.shape.iter().product()))
        .collect();
    for (n, len) in names {
        if n.ends_with(".gamma") || n.ends_with(".beta") || n.ends_with(".bias") {
            let base = if n.ends_with(".gamma") { 1.0 } else { 0.0 };
            let v = uniform(&mut rng, len, base - 0.3, base + 0.3);
            tr.set_param(&n, &v).unwrap();
        }
    }
    gradcheck(&mut tr, &Dataset::new(&xs, &ys), per_param, 2e-3, 3e-2)
}

#[test]
fn unet_depth2_gradients_match_finite_differences() {
    let worst = unet_check(
        tiny_unet(
            2,
            Head::Sigmoid,
            SegLoss::BceDice {
                pos_weight: 2.0,
                dice_weight: 0.5,
            },
            1,
        ),
        3,
        6,
    );
    eprintln!("unet depth 2: worst relative error {worst:.3e}");
}

#[test]
fn unet_softmax_head_gradients_match_finite_differences() {
    let worst = unet_check(tiny_unet(1, Head::Softmax, SegLoss::Dice, 3), 2, 5);
    eprintln!("unet softmax: worst relative error {worst:.3e}");
}

#[test]
fn schedule_plans_buffers_and_prints() {
    let g = unet(&tiny_unet(
        2,
        Head::Sigmoid,
        SegLoss::Bce { pos_weight: 1.0 },
        1,
    ))
    .unwrap();
    let s = g
        .lower_train(4, Some(mlp_compute::graph::OptimizerKind::Adam))
        .unwrap();
    let text = s.to_string();
    assert!(
        text.contains("-- forward")
            && text.contains("-- backward")
            && text.contains("-- optimizer"),
        "{text}"
    );
    assert!(text.contains("conv2d_backward_weight"), "{text}");
    assert!(text.contains("p:enc0.conv1.weight[2,2,3,3]"), "{text}");
    // One optimizer dispatch per trainable parameter.
    let trainable = g.params.iter().filter(|p| p.trainable).count();
    assert_eq!(s.count(mlp_compute::graph::Phase::Optimizer), trainable);
    // Liveness planning reuses temporaries.
    assert!(
        s.temp_elements_planned < s.temp_elements_unplanned,
        "{} vs {}",
        s.temp_elements_planned,
        s.temp_elements_unplanned
    );
    // No dispatch writes a buffer it reads, and temporaries are big enough.
    for d in &s.dispatches {
        for o in &d.outputs {
            assert!(d.inputs.iter().all(|i| i.slot != o.slot), "{d:?}");
        }
        for o in d.inputs.iter().chain(&d.outputs) {
            assert!(s.slots[o.slot].len >= o.shape.iter().product::<usize>());
        }
    }
    // Gradients are kept for every trainable parameter.
    assert_eq!(s.grads.len(), trainable);
    assert!(s
        .slots
        .iter()
        .any(|sl| matches!(sl.kind, SlotKind::Grad(_))));
    // Inference schedules have no backward pass and use running statistics.
    let e = g.lower_eval(4).unwrap();
    assert_eq!(e.mode, Mode::Eval);
    assert_eq!(e.count(mlp_compute::graph::Phase::Backward), 0);
    assert!(e.dispatches.iter().any(|d| d.op.name() == "batchnorm_eval"));
    assert!(e
        .dispatches
        .iter()
        .all(|d| d.op.name() != "batchnorm_train"));
    let p = g.lower_predict(4, &["prediction"]).unwrap();
    assert!(p.losses.is_empty());
    assert!(p.inputs.len() == 1, "prediction needs no target");
}

#[test]
fn bad_shapes_are_build_errors_naming_both_shapes() {
    let mut g = Graph::new();
    let x = g.input("x", &[3, 8, 8]).unwrap();
    let w = g
        .param("w", &[4, 5, 3, 3], mlp_compute::graph::Init::Zeros)
        .unwrap();
    let err = g
        .layer(
            "conv",
            mlp_compute::graph::Layer::Conv2d {
                stride: 1,
                padding: mlp_compute::Padding::Same,
            },
            &[x, w],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("conv") && err.contains("[1, 3, 8, 8]") && err.contains("[4, 5, 3, 3]"),
        "{err}"
    );
    let t = g.target("t", &[2, 8, 8]).unwrap();
    let err = g
        .loss("l", LossKind::Mse, x, t, 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[1, 3, 8, 8]") && err.contains("[1, 2, 8, 8]"),
        "{err}"
    );
    let a = g.input("a", &[2, 4, 4]).unwrap();
    let err = g.concat("cat", x, a).unwrap_err().to_string();
    assert!(
        err.contains("[1, 3, 8, 8]") && err.contains("[1, 2, 4, 4]"),
        "{err}"
    );
    // U-Net sizes not divisible by 2^depth.
    let err = unet(&UNetConfig {
        height: 20,
        depth: 3,
        ..UNetConfig::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("20") && err.contains("8"), "{err}");
}

/// The GPU backend (a GPU, or Mesa's lavapipe); skipped without an adapter unless
/// `CI=true`.
fn gpu_backend() -> Option<Arc<dyn Backend>> {
    match GpuBackend::new(GpuOptions::allow_cpu()) {
        Ok(g) => {
            eprintln!("GPU backend: {}", g.describe());
            Some(Arc::new(g))
        }
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("no GPU adapter under CI=true: {e}");
            }
            eprintln!("SKIPPED: no wgpu adapter for the GPU backend: {e}");
            None
        }
    }
}

/// The same lowered schedules on the GPU backend give the CPU backend's loss and gradients.
#[test]
fn gpu_loss_and_gradients_match_cpu() {
    let Some(gpu) = gpu_backend() else { return };
    for c in [
        tiny_unet(
            2,
            Head::Sigmoid,
            SegLoss::BceDice {
                pos_weight: 2.0,
                dice_weight: 0.5,
            },
            1,
        ),
        tiny_unet(1, Head::Softmax, SegLoss::Dice, 3),
    ] {
        let batch = 3;
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let xs = uniform(&mut rng, batch * 2 * 64, -1.0, 1.0);
        let ys: Vec<f32> = (0..batch * c.out_channels * 64)
            .map(|_| (rng.random::<f32>() > 0.7) as u8 as f32)
            .collect();
        let data = Dataset::new(&xs, &ys);
        let mut a = Trainer::new(backend(), unet(&c).unwrap(), config(batch)).unwrap();
        let mut b = Trainer::new(gpu.clone(), unet(&c).unwrap(), config(batch)).unwrap();
        same_loss_and_gradients(&mut a, &mut b, &data, &format!("{:?}", c.head));
    }
}

// ---- Transposed convolution -------------------------------------------------------------

/// `(filters, kernel, stride)` cases on a `[3, 4, 5]` input.
const CT_CASES: [(usize, usize, usize); 3] = [(2, 2, 2), (2, 3, 2), (2, 3, 1)];

/// `x[3, 4, 5] -> [1x1 conv ->] conv_transpose2d -> prediction`, with an MSE loss. The 1x1
/// convolution in front (when `pre`) makes the transposed convolution's input gradient part
/// of a parameter gradient.
fn ct_graph(f: usize, k: usize, s: usize, pre: bool) -> Graph {
    let (oh, ow) = (3 * s + k, 4 * s + k);
    let mut g = Graph::new();
    let x = g.input("x", &[3, 4, 5]).unwrap();
    let t = g.target("y", &[f, oh, ow]).unwrap();
    let mut h = x;
    if pre {
        h = g
            .conv2d("pre", h, 3, 1, 1, mlp_compute::Padding::Valid, true, 1.0)
            .unwrap();
        h = g.act("pre.act", h, Activation::Tanh).unwrap();
    }
    let y = g.conv_transpose2d("up", h, f, k, s, true, 1.0).unwrap();
    assert_eq!(g.node(y).shape, vec![1, f, oh, ow]);
    g.loss("mse", LossKind::Mse, y, t, 1.0).unwrap();
    g.set_output("prediction", y).unwrap();
    g
}

/// Random inputs and targets for [`ct_graph`] at batch `batch`.
fn ct_data(f: usize, k: usize, s: usize, batch: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let xs = uniform(&mut rng, batch * 3 * 4 * 5, -1.0, 1.0);
    let ys = uniform(&mut rng, batch * f * (3 * s + k) * (4 * s + k), -1.0, 1.0);
    (xs, ys)
}

/// A trainer for [`ct_graph`] with non-zero biases.
fn ct_trainer(be: Arc<dyn Backend>, f: usize, k: usize, s: usize, batch: usize) -> Trainer {
    let mut tr = Trainer::new(be, ct_graph(f, k, s, true), config(batch)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    tr.set_param("pre.bias", &uniform(&mut rng, 3, -0.3, 0.3))
        .unwrap();
    tr.set_param("up.bias", &uniform(&mut rng, f, -0.3, 0.3))
        .unwrap();
    tr
}

#[test]
fn conv_transpose2d_forward_matches_naive_loop() {
    let (c, h, w, n) = (3, 4, 5, 2);
    for (f, k, s) in CT_CASES {
        let mut tr = Trainer::new(backend(), ct_graph(f, k, s, false), config(n)).unwrap();
        assert_eq!(tr.graph().params[0].shape, vec![c, f, k, k]);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let wt = uniform(&mut rng, c * f * k * k, -1.0, 1.0);
        let bias = uniform(&mut rng, f, -0.5, 0.5);
        tr.set_param("up.weight", &wt).unwrap();
        tr.set_param("up.bias", &bias).unwrap();
        let (xs, _) = ct_data(f, k, s, n, 12);
        let got = tr.predict(&xs).unwrap();
        let (oh, ow) = ((h - 1) * s + k, (w - 1) * s + k);
        assert_eq!(got.len(), n * f * oh * ow);
        // y[n, f, iy s + i, ix s + j] += x[n, c, iy, ix] w[c, f, i, j], plus bias[f].
        let mut want = vec![0f64; got.len()];
        for b in 0..n {
            for fo in 0..f {
                for v in &mut want[(b * f + fo) * oh * ow..][..oh * ow] {
                    *v = bias[fo] as f64;
                }
                for ci in 0..c {
                    for iy in 0..h {
                        for ix in 0..w {
                            let xv = xs[((b * c + ci) * h + iy) * w + ix] as f64;
                            for i in 0..k {
                                for j in 0..k {
                                    let wv = wt[((ci * f + fo) * k + i) * k + j] as f64;
                                    let o = ((b * f + fo) * oh + iy * s + i) * ow + ix * s + j;
                                    want[o] += xv * wv;
                                }
                            }
                        }
                    }
                }
            }
        }
        for (o, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "f {f} k {k} s {s}: y[{o}] = {g} vs {w}"
            );
        }
    }
}

#[test]
fn conv_transpose2d_gradients_match_finite_differences() {
    for (f, k, s) in CT_CASES {
        let batch = 2;
        let (xs, ys) = ct_data(f, k, s, batch, 13);
        let mut tr = ct_trainer(backend(), f, k, s, batch);
        // pre.weight and pre.bias check the input gradient, up.weight the weight gradient.
        let worst = gradcheck(&mut tr, &Dataset::new(&xs, &ys), 16, 1e-2, 2e-2);
        eprintln!("conv_transpose2d f {f} k {k} s {s}: worst relative error {worst:.3e}");
    }
}

#[test]
fn conv_transpose2d_schedule_and_bad_inputs() {
    let g = ct_graph(2, 3, 2, true);
    let s = g.lower_train(2, None).unwrap();
    let text = s.to_string();
    assert!(
        text.contains("conv2d_backward_input") && text.contains("conv2d_backward_weight"),
        "{text}"
    );
    // Fan-in as PyTorch's ConvTranspose2d: weight.size(1) * k * k.
    let info = &g.params[g.param_index("up.weight").unwrap()];
    assert_eq!(info.shape, vec![3, 2, 3, 3]);
    assert!(
        matches!(
            info.init,
            mlp_compute::graph::Init::KaimingUniform { fan_in: 18, .. }
        ),
        "{:?}",
        info.init
    );
    let mut g = Graph::new();
    let x = g.input("x", &[3, 4, 5]).unwrap();
    let v = g.input("v", &[4, 5]).unwrap();
    for (input, k, s) in [(v, 2, 2), (x, 0, 2), (x, 2, 0)] {
        let err = g
            .conv_transpose2d(&format!("ct_{k}_{s}"), input, 2, k, s, true, 1.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("ct_{k}_{s}")), "{err}");
    }
    // The raw layer: a weight whose input channels differ, a 3-D weight, stride 0.
    let layer = |stride| mlp_compute::graph::Layer::ConvTranspose2d { stride };
    let w = g
        .param("w", &[4, 2, 3, 3], mlp_compute::graph::Init::Zeros)
        .unwrap();
    let w3 = g
        .param("w3", &[3, 2, 3], mlp_compute::graph::Init::Zeros)
        .unwrap();
    let ok = g
        .param("ok", &[3, 2, 3, 3], mlp_compute::graph::Init::Zeros)
        .unwrap();
    for (name, s, ins) in [
        ("bad_c", 1, [x, w]),
        ("bad_w", 1, [x, w3]),
        ("bad_s", 0, [x, ok]),
        ("bad_x", 1, [v, ok]),
    ] {
        let err = g.layer(name, layer(s), &ins).unwrap_err().to_string();
        assert!(err.contains(name), "{err}");
    }
}

/// `a` (CPU) and `b` (GPU) give the same loss (rel 1e-4) and gradients (within 2e-3 of the
/// largest gradient) on `data`.
fn same_loss_and_gradients(a: &mut Trainer, b: &mut Trainer, data: &Dataset, what: &str) {
    let (la, ga) = a.loss_and_gradients(data).unwrap();
    let (lb, gb) = b.loss_and_gradients(data).unwrap();
    assert!(
        (la - lb).abs() <= 1e-4 * la.abs().max(1.0),
        "{what}: loss {la} vs {lb}"
    );
    let scale = ga
        .iter()
        .flat_map(|(_, g)| g.iter())
        .fold(0f32, |m, v| m.max(v.abs()));
    for ((n, x), (_, y)) in ga.iter().zip(&gb) {
        for (i, (p, q)) in x.iter().zip(y).enumerate() {
            assert!(
                (p - q).abs() <= 2e-3 * scale,
                "{what} {n}[{i}]: CPU {p} vs GPU {q}"
            );
        }
    }
}

/// The transposed convolution on the GPU backend gives the CPU backend's loss and gradients.
#[test]
fn gpu_conv_transpose2d_matches_cpu() {
    let Some(gpu) = gpu_backend() else { return };
    for (f, k, s) in CT_CASES {
        let batch = 2;
        let (xs, ys) = ct_data(f, k, s, batch, 14);
        let data = Dataset::new(&xs, &ys);
        let mut a = ct_trainer(backend(), f, k, s, batch);
        let mut b = ct_trainer(gpu.clone(), f, k, s, batch);
        same_loss_and_gradients(&mut a, &mut b, &data, &format!("f {f} k {k} s {s}"));
        let pa = a.predict(&xs).unwrap();
        let pb = b.predict(&xs).unwrap();
        for (i, (p, q)) in pa.iter().zip(&pb).enumerate() {
            assert!(
                (p - q).abs() <= 1e-4 * (1.0 + p.abs()),
                "y[{i}]: {p} vs {q}"
            );
        }
    }
}
