//! `mlp bench kernels`: every op, forward and backward, on representative shapes: time per
//! dispatch, GFLOP/s or GB/s, and the largest difference from the CPU twin.

use crate::backend::{Backend, Tensor};
use crate::error::Result;
use crate::op::{numel, Activation, Op, Padding, Shape};
use serde::Serialize;
use std::time::Instant;

/// One benchmarked dispatch.
#[derive(Clone, Debug)]
pub struct Case {
    pub op: Op,
    pub inputs: Vec<Shape>,
    /// Floating-point operations per dispatch (0 for memory-bound ops).
    pub flops: f64,
}

/// The result of one case.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    pub op: String,
    pub detail: String,
    pub inputs: Vec<Shape>,
    pub outputs: Vec<Shape>,
    /// Median seconds per dispatch.
    pub seconds: f64,
    pub gflops: Option<f64>,
    /// Bytes read and written per second, in GB/s.
    pub gbps: f64,
    /// Largest absolute difference from the reference backend's outputs (None without one).
    pub max_abs_error: Option<f64>,
    /// The same, relative to the largest magnitude of the reference outputs.
    pub max_rel_error: Option<f64>,
}

fn conv(n: usize, ci: usize, co: usize, hw: usize, k: usize, stride: usize) -> Vec<Case> {
    let padding = Padding::Same;
    let oh = hw.div_ceil(stride);
    let flops = 2.0 * (n * co * oh * oh * ci * k * k) as f64;
    vec![
        Case {
            op: Op::Conv2d { stride, padding },
            inputs: vec![vec![n, ci, hw, hw], vec![co, ci, k, k]],
            flops,
        },
        Case {
            op: Op::Conv2dBackwardInput {
                stride,
                padding,
                in_h: hw,
                in_w: hw,
            },
            inputs: vec![vec![n, co, oh, oh], vec![co, ci, k, k]],
            flops,
        },
        Case {
            op: Op::Conv2dBackwardWeight {
                stride,
                padding,
                kh: k,
                kw: k,
            },
            inputs: vec![vec![n, ci, hw, hw], vec![n, co, oh, oh]],
            flops,
        },
    ]
}

/// The cases of `mlp bench kernels`; `scale` shrinks them (1 = full size, larger = smaller)
/// for slow devices and tests.
pub fn cases(scale: usize) -> Vec<Case> {
    let s = scale.max(1);
    let d = |x: usize| (x / s).max(1);
    let mm = d(1024);
    let img = d(64);
    let big = d(1 << 22);
    let (rows, width) = (d(4096), 384);
    let mut v = vec![
        Case {
            op: Op::MatMul {
                trans_a: false,
                trans_b: false,
            },
            inputs: vec![vec![mm, mm], vec![mm, mm]],
            flops: 2.0 * (mm * mm * mm) as f64,
        },
        Case {
            op: Op::MatMul {
                trans_a: true,
                trans_b: false,
            },
            inputs: vec![vec![mm, mm], vec![mm, mm]],
            flops: 2.0 * (mm * mm * mm) as f64,
        },
        Case {
            op: Op::MatMul {
                trans_a: false,
                trans_b: true,
            },
            inputs: vec![vec![8, d(256), 64], vec![8, d(256), 64]],
            flops: 2.0 * (8 * d(256) * d(256) * 64) as f64,
        },
    ];
    v.extend(conv(8, 32, 32, img, 3, 1));
    v.extend(conv(8, 32, 64, img, 3, 2));
    v.extend(conv(8, 64, 32, img, 1, 1));
    // The 3x3 convolutions of the wide U-Net (32 base channels, batch 32), level by level.
    for (level, ch) in [32usize, 64, 128, 256].into_iter().enumerate() {
        v.extend(conv(32, ch, ch, (img >> level).max(1), 3, 1));
    }
    let x4 = vec![8, 32, img, img];
    let flat = vec![big];
    for op in [Op::Add, Op::Mul, Op::AddScaled { alpha: 0.5 }] {
        v.push(Case {
            op,
            inputs: vec![flat.clone(), flat.clone()],
            flops: 0.0,
        });
    }
    v.push(Case {
        op: Op::Scale { alpha: 2.0 },
        inputs: vec![flat.clone()],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::BiasAdd { axis: 1 },
        inputs: vec![x4.clone(), vec![32]],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::BiasGrad { axis: 1 },
        inputs: vec![x4.clone()],
        flops: 0.0,
    });
    for act in [
        Activation::Relu,
        Activation::LeakyRelu(0.01),
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Gelu,
    ] {
        v.push(Case {
            op: Op::Act(act),
            inputs: vec![flat.clone()],
            flops: 0.0,
        });
        v.push(Case {
            op: Op::ActBackward(act),
            inputs: vec![flat.clone(), flat.clone()],
            flops: 0.0,
        });
    }
    let pooled = vec![8, 32, img / 2, img / 2];
    v.push(Case {
        op: Op::MaxPool2,
        inputs: vec![x4.clone()],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::MaxPool2Backward,
        inputs: vec![x4.clone(), pooled.clone(), pooled.clone()],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::Upsample2,
        inputs: vec![pooled.clone()],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::Upsample2Backward,
        inputs: vec![x4.clone()],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::ConcatChannels,
        inputs: vec![x4.clone(), x4.clone()],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::SplitChannels { first: 16 },
        inputs: vec![x4.clone()],
        flops: 0.0,
    });
    let c = vec![32];
    v.push(Case {
        op: Op::BatchNormTrain { eps: 1e-5 },
        inputs: vec![x4.clone(), c.clone(), c.clone()],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::BatchNormEval { eps: 1e-5 },
        inputs: vec![x4.clone(), c.clone(), c.clone(), c.clone(), c.clone()],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::BatchNormBackward,
        inputs: vec![x4.clone(), x4.clone(), c.clone(), c.clone(), c.clone()],
        flops: 0.0,
    });
    let ln = vec![rows, width];
    v.push(Case {
        op: Op::LayerNorm { eps: 1e-12 },
        inputs: vec![ln.clone(), vec![width], vec![width]],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::LayerNormBackward,
        inputs: vec![ln.clone(), ln.clone(), vec![width], vec![rows], vec![rows]],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::Softmax,
        inputs: vec![ln.clone()],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::SoftmaxBackward,
        inputs: vec![ln.clone(), ln.clone()],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::Dropout { p: 0.1, seed: 7 },
        inputs: vec![flat.clone()],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::DropoutBackward { p: 0.1, seed: 7 },
        inputs: vec![flat.clone()],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::SumAll,
        inputs: vec![flat.clone()],
        flops: 0.0,
    });
    for op in [
        Op::MseLoss,
        Op::BceWithLogits { pos_weight: 5.0 },
        Op::DiceLoss { eps: 1.0 },
    ] {
        v.push(Case {
            op,
            inputs: vec![flat.clone(), flat.clone()],
            flops: 0.0,
        });
    }
    v.push(Case {
        op: Op::Sgd {
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 1e-4,
        },
        inputs: vec![flat.clone()],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            decoupled: true,
            step: 3,
        },
        inputs: vec![flat.clone()],
        flops: 0.0,
    });
    let (b, sq) = (d(32).max(2), 128);
    v.push(Case {
        op: Op::Embedding,
        inputs: vec![vec![b, sq], vec![30522, width]],
        flops: 0.0,
    });
    v.push(Case {
        op: Op::Attention { heads: 12 },
        inputs: vec![
            vec![b, sq, width],
            vec![b, sq, width],
            vec![b, sq, width],
            vec![b, sq],
        ],
        flops: 4.0 * (b * sq * sq * width) as f64,
    });
    v
}

/// Square `n x n x n` products (no transposes), for the GEMM comparisons against BLAS.
pub fn square_matmuls(sizes: &[usize]) -> Vec<Case> {
    sizes
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| Case {
            op: Op::MatMul {
                trans_a: false,
                trans_b: false,
            },
            inputs: vec![vec![n, n], vec![n, n]],
            flops: 2.0 * (n as f64).powi(3),
        })
        .collect()
}

/// Deterministic pseudo-random inputs that are valid for the op (ids in range, positive
/// inverse deviations, targets in [0, 1], a pooled tensor that matches its input).
pub fn inputs_for(case: &Case, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32) / ((1u64 << 24) as f32) * 2.0 - 1.0
    };
    let mut v: Vec<Vec<f32>> = case
        .inputs
        .iter()
        .map(|s| (0..numel(s)).map(|_| next()).collect())
        .collect();
    match &case.op {
        Op::Embedding => {
            let vocab = case.inputs[1][0] as f32;
            for x in v[0].iter_mut() {
                *x = ((*x + 1.0) * 0.5 * (vocab - 1.0)).floor();
            }
        }
        Op::Attention { .. } => {
            for x in v[3].iter_mut() {
                *x = if *x > -0.8 { 1.0 } else { 0.0 };
            }
        }
        Op::MaxPool2Backward => {
            // y must be the pooling of x.
            let s = &case.inputs[0];
            let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
            let (oh, ow) = (h / 2, w / 2);
            for p in 0..n * c {
                for i in 0..oh {
                    for j in 0..ow {
                        let at = |di: usize, dj: usize| v[0][(p * h + 2 * i + di) * w + 2 * j + dj];
                        let m = at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1));
                        v[1][(p * oh + i) * ow + j] = m;
                    }
                }
            }
        }
        Op::BatchNormBackward | Op::LayerNormBackward => {
            for x in v[4].iter_mut() {
                *x = 1.0 + x.abs();
            }
        }
        Op::BatchNormEval { .. } => {
            for x in v[4].iter_mut() {
                *x = 0.5 + x.abs();
            }
        }
        Op::BceWithLogits { .. } | Op::DiceLoss { .. } => {
            for x in v[1].iter_mut() {
                *x = if *x > 0.6 { 1.0 } else { 0.0 };
            }
            if matches!(case.op, Op::DiceLoss { .. }) {
                for x in v[0].iter_mut() {
                    *x = (*x + 1.0) * 0.5;
                }
            }
        }
        _ => {}
    }
    v
}

fn detail(op: &Op) -> String {
    match op {
        Op::MatMul { trans_a, trans_b } => format!("trans_a={trans_a} trans_b={trans_b}"),
        Op::Conv2d { stride, padding } => format!("stride {stride} {padding:?}"),
        Op::Conv2dBackwardInput {
            stride, padding, ..
        } => format!("stride {stride} {padding:?}"),
        Op::Conv2dBackwardWeight {
            stride,
            padding,
            kh,
            kw,
        } => {
            format!("{kh}x{kw} stride {stride} {padding:?}")
        }
        Op::Act(a) | Op::ActBackward(a) => format!("{a:?}"),
        _ => String::new(),
    }
}

struct Placed {
    inputs: Vec<Tensor>,
    outputs: Vec<Tensor>,
}

fn place(backend: &dyn Backend, case: &Case, data: &[Vec<f32>], outs: &[Shape]) -> Result<Placed> {
    let mut inputs = Vec::new();
    for (s, d) in case.inputs.iter().zip(data) {
        let b = backend.alloc(numel(s))?;
        backend.upload(b, d)?;
        inputs.push(Tensor::new(b, s.clone()));
    }
    let mut outputs = Vec::new();
    for s in outs {
        let b = backend.alloc(numel(s))?;
        outputs.push(Tensor::new(b, s.clone()));
    }
    Ok(Placed { inputs, outputs })
}

fn free(backend: &dyn Backend, p: &Placed) {
    for t in p.inputs.iter().chain(&p.outputs) {
        backend.free(t.buf);
    }
}

/// How long each case runs back to back before it is timed (at most [`WARMUP_MAX_RUNS`] runs).
pub const WARMUP: std::time::Duration = std::time::Duration::from_millis(150);
pub const WARMUP_MAX_RUNS: usize = 1000;

/// Runs every case on `backend` (median of `repeats` timed dispatches after a warm-up of
/// [`WARMUP`]) and, with a `reference` backend, compares one dispatch's outputs with it.
pub fn run(
    backend: &dyn Backend,
    reference: Option<&dyn Backend>,
    cases: &[Case],
    repeats: usize,
) -> Result<Vec<Measurement>> {
    let mut out = Vec::new();
    for case in cases {
        let shapes: Vec<&[usize]> = case.inputs.iter().map(|s| s.as_slice()).collect();
        let outs = case.op.output_shapes(&shapes)?;
        // Host memory: the input data, plus inputs and outputs on a CPU backend and on the
        // CPU reference, plus the downloaded outputs compared. Checked before anything is
        // allocated: an allocation the system cannot serve aborts the process.
        let total = |v: &[Shape]| v.iter().fold(0usize, |a, s| a.saturating_add(numel(s)));
        let (ins_n, outs_n) = (total(&case.inputs), total(&outs));
        let both = ins_n.saturating_add(outs_n);
        let mut host = ins_n;
        if backend.kind() == crate::backend::DeviceKind::Cpu {
            host = host.saturating_add(both);
        }
        if reference.is_some() {
            host = host
                .saturating_add(both)
                .saturating_add(outs_n.saturating_mul(2));
        }
        crate::backend::check_host_memory(
            host,
            &format!("{} on {:?}", case.op.name(), case.inputs),
        )?;
        let data = inputs_for(case, 42);
        let p = place(backend, case, &data, &outs)?;
        let ins: Vec<&Tensor> = p.inputs.iter().collect();
        let os: Vec<&Tensor> = p.outputs.iter().collect();
        // One checked dispatch for the comparison (fresh outputs, so in-place ops agree).
        backend.dispatch(&case.op, &ins, &os)?;
        backend.sync()?;
        let (mut max_abs, mut max_rel) = (None, None);
        if let Some(r) = reference {
            let rp = place(r, case, &data, &outs)?;
            let rins: Vec<&Tensor> = rp.inputs.iter().collect();
            let ros: Vec<&Tensor> = rp.outputs.iter().collect();
            r.dispatch(&case.op, &rins, &ros)?;
            let (mut a, mut scale) = (0f64, 0f64);
            for (x, y) in p.outputs.iter().zip(&rp.outputs) {
                let xs = backend.download(x.buf)?;
                let ys = r.download(y.buf)?;
                for (u, v) in xs.iter().zip(&ys) {
                    a = a.max((*u as f64 - *v as f64).abs());
                    scale = scale.max((*v as f64).abs());
                }
            }
            free(r, &rp);
            max_abs = Some(a);
            max_rel = Some(if scale > 0.0 { a / scale } else { a });
        }
        // Warm-up: back-to-back runs for a while, so that a GPU idle during the reference
        // check is back at full clocks (one run is not enough for a short kernel), and the
        // first run's pipeline compilation and autotuning are behind us.
        let t0 = Instant::now();
        for _ in 0..WARMUP_MAX_RUNS {
            backend.dispatch(&case.op, &ins, &os)?;
            backend.sync()?;
            if t0.elapsed() >= WARMUP {
                break;
            }
        }
        let mut times = Vec::with_capacity(repeats);
        for _ in 0..repeats.max(1) {
            let t = Instant::now();
            backend.dispatch(&case.op, &ins, &os)?;
            backend.sync()?;
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let secs = times[times.len() / 2];
        // Bytes a kernel must move: its inputs and outputs, except that an embedding lookup
        // reads only the rows it gathers, not the whole table.
        let read: usize = match case.op {
            Op::Embedding => numel(&case.inputs[0]) + numel(&outs[0]),
            _ => case.inputs.iter().map(|s| numel(s)).sum(),
        };
        let bytes = 4.0 * (read + outs.iter().map(|s| numel(s)).sum::<usize>()) as f64;
        free(backend, &p);
        out.push(Measurement {
            op: case.op.name().to_string(),
            detail: detail(&case.op),
            inputs: case.inputs.clone(),
            outputs: outs,
            seconds: secs,
            gflops: (case.flops > 0.0).then(|| case.flops / secs / 1e9),
            gbps: bytes / secs / 1e9,
            max_abs_error: max_abs,
            max_rel_error: max_rel,
        });
    }
    Ok(out)
}

/// A text table of measurements.
pub fn table(ms: &[Measurement]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<24} {:<22} {:>34} {:>11} {:>10} {:>9} {:>10}",
        "op", "detail", "inputs", "time", "GFLOP/s", "GB/s", "max err"
    );
    for m in ms {
        let shapes: Vec<String> = m.inputs.iter().map(|s| format!("{s:?}")).collect();
        let mut shapes = shapes.join(" ");
        if shapes.len() > 34 {
            shapes.truncate(31);
            shapes.push_str("...");
        }
        let _ = writeln!(
            s,
            "{:<24} {:<22} {:>34} {:>9.3}ms {:>10} {:>9.1} {:>10}",
            m.op,
            m.detail,
            shapes,
            m.seconds * 1e3,
            m.gflops
                .map(|g| format!("{g:.1}"))
                .unwrap_or_else(|| "-".into()),
            m.gbps,
            m.max_rel_error
                .map(|e| format!("{e:.1e}"))
                .unwrap_or_else(|| "-".into()),
        );
    }
    s
}

/// One kernel's line of a GPU profile (`--profile`), as printed and in JSON.
#[derive(Clone, Debug, Serialize)]
pub struct ProfileRow {
    /// Kernel file (with `:entry` for entry points other than `main`).
    pub kernel: String,
    pub calls: u64,
    pub total_ms: f64,
    /// Mean GPU time per dispatch, in microseconds.
    pub mean_us: f64,
    /// Share of all timed GPU time, in percent.
    pub percent: f64,
}

/// The rows of a profile ([`crate::gpu::GpuBackend::profile`]), the most time first.
pub fn profile_rows(p: &[crate::gpu::KernelTime]) -> Vec<ProfileRow> {
    let total: u64 = p.iter().map(|k| k.total_ns).sum();
    let mut rows: Vec<ProfileRow> = p
        .iter()
        .map(|k| ProfileRow {
            kernel: k.kernel.clone(),
            calls: k.calls,
            total_ms: k.total_ns as f64 / 1e6,
            mean_us: k.total_ns as f64 / 1e3 / k.calls.max(1) as f64,
            percent: if total > 0 {
                100.0 * k.total_ns as f64 / total as f64
            } else {
                0.0
            },
        })
        .collect();
    rows.sort_by(|a, b| {
        b.total_ms
            .total_cmp(&a.total_ms)
            .then_with(|| a.kernel.cmp(&b.kernel))
    });
    rows
}

/// A text table of a profile: kernel, dispatches, total and mean GPU time, share, and a total
/// line.
pub fn profile_table(p: &[crate::gpu::KernelTime]) -> String {
    use std::fmt::Write;
    let rows = profile_rows(p);
    let width = rows
        .iter()
        .map(|r| r.kernel.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<width$} {:>9} {:>12} {:>11} {:>7}",
        "kernel", "calls", "total ms", "mean us", "%"
    );
    for r in &rows {
        let _ = writeln!(
            s,
            "{:<width$} {:>9} {:>12.3} {:>11.2} {:>6.1}%",
            r.kernel, r.calls, r.total_ms, r.mean_us, r.percent
        );
    }
    let calls: u64 = rows.iter().map(|r| r.calls).sum();
    let ms: f64 = rows.iter().map(|r| r.total_ms).sum();
    let _ = writeln!(
        s,
        "{:<width$} {:>9} {:>12.3} {:>11.2} {:>6.1}%",
        "total",
        calls,
        ms,
        if calls > 0 {
            ms * 1e3 / calls as f64
        } else {
            0.0
        },
        if calls > 0 { 100.0 } else { 0.0 }
    );
    s
}

/// Autotuning's choices as a text table: per tuned op, the kernel kept, the size rule's kernel
/// and each candidate's time per run (`*` marks the one kept).
pub fn autotune_table(t: &[crate::gpu::TunedKernel]) -> String {
    use std::fmt::Write;
    let short = |k: &str| k.trim_end_matches(".wgsl").to_string();
    let width = t.iter().map(|r| r.op.len()).max().unwrap_or(0).max(2);
    let mut s = String::new();
    let _ = writeln!(s, "{:<width$}  candidates (us per run; * kept)", "op");
    for r in t {
        let cands: Vec<String> = r
            .candidates
            .iter()
            .map(|(k, us)| {
                let mark = if *k == r.chosen { "*" } else { "" };
                format!("{}{mark} {us:.1}", short(k))
            })
            .collect();
        let _ = writeln!(s, "{:<width$}  {}", r.op, cands.join(", "));
    }
    let changed = t.iter().filter(|r| r.chosen != r.default).count();
    let _ = writeln!(
        s,
        "{} ops tuned, {changed} of them away from the size rule's kernel (the first listed)",
        t.len()
    );
    s
}
