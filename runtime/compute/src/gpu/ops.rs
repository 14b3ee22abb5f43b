//! Each op as a sequence of kernel dispatches: parameters, bindings, grids and scratch buffers.
//! Shapes are already checked (`check_dispatch`) and every tensor has fewer than 2^32 elements.

use super::autotune;
use super::device::{GpuTensor, Recorder, CONV_TILES};
use super::kernels;
use crate::error::Result;
use crate::op::{numel, pad_before, Activation, Op};

/// Parameter words of one dispatch (u32 and f32 bit patterns, in the WGSL struct's order).
#[derive(Default)]
struct P(Vec<u32>);

impl P {
    fn u(mut self, v: usize) -> P {
        debug_assert!(v <= u32::MAX as usize, "parameter {v} does not fit u32");
        self.0.push(v as u32);
        self
    }
    fn f(mut self, v: f32) -> P {
        self.0.push(v.to_bits());
        self
    }
}

const WG: u64 = 256;

fn groups(n: usize, per: u64) -> u64 {
    (n as u64).div_ceil(per)
}

/// Records `op`.
pub(crate) fn record(
    rec: &mut Recorder<'_>,
    op: &Op,
    ins: &[GpuTensor<'_>],
    outs: &[GpuTensor<'_>],
) -> Result<()> {
    let b = |k: usize| &ins[k].buf;
    let o = |k: usize| &outs[k].buf;
    let sh = |k: usize| ins[k].shape;
    match *op {
        Op::MatMul { trans_a, trans_b } => {
            let (a, bs) = (sh(0), sh(1));
            let (ar, ac) = (a[a.len() - 2], a[a.len() - 1]);
            let (br, bc) = (bs[bs.len() - 2], bs[bs.len() - 1]);
            let (m, k) = if trans_a { (ac, ar) } else { (ar, ac) };
            let n = if trans_b { br } else { bc };
            let a_batched = a.len() > 2;
            let b_batched = bs.len() > 2;
            let mut batch = numel(&outs[0].shape[..outs[0].shape.len() - 2]);
            let mut m = m;
            if a_batched && !b_batched && !trans_a {
                // [batch, m, k] x [k, n] is one [batch * m, k] x [k, n] product (fuller tiles).
                m *= batch;
                batch = 1;
            }
            let g = Gemm {
                m,
                n,
                k,
                batch,
                bi: 1,
                a: Strides {
                    bo: if a_batched { m * k } else { 0 },
                    bi: 0,
                    rs: if trans_a { 1 } else { k },
                    cs: if trans_a { m } else { 1 },
                },
                b: Strides {
                    bo: if b_batched { k * n } else { 0 },
                    bi: 0,
                    rs: if trans_b { 1 } else { n },
                    cs: if trans_b { k } else { 1 },
                },
                c: Strides {
                    bo: m * n,
                    bi: 0,
                    rs: n,
                    cs: 1,
                },
                alpha: 1.0,
            };
            gemm(rec, &g, b(0), b(1), o(0))
        }
        Op::Add => elementwise(
            rec,
            "add.wgsl",
            P::default(),
            &[b(0), b(1)],
            o(0),
            outs[0].numel(),
        ),
        Op::Mul => elementwise(
            rec,
            "mul.wgsl",
            P::default(),
            &[b(0), b(1)],
            o(0),
            outs[0].numel(),
        ),
        Op::AddScaled { alpha } => elementwise(
            rec,
            "add_scaled.wgsl",
            P::default().f(alpha),
            &[b(0), b(1)],
            o(0),
            outs[0].numel(),
        ),
        Op::Scale { alpha } => elementwise(
            rec,
            "scale.wgsl",
            P::default().f(alpha),
            &[b(0)],
            o(0),
            outs[0].numel(),
        ),
        Op::BiasAdd { axis } => {
            let (_, c, inner) = split_axis(sh(0), axis);
            elementwise(
                rec,
                "bias_add.wgsl",
                P::default().u(c).u(inner),
                &[b(0), b(1)],
                o(0),
                outs[0].numel(),
            )
        }
        Op::BiasGrad { axis } => {
            let (outer, c, inner) = split_axis(sh(0), axis);
            bias_grad(rec, b(0), o(0), outer, c, inner)
        }
        Op::Act(a) => {
            let (kind, alpha) = act_params(a);
            elementwise(
                rec,
                "activation.wgsl",
                P::default().u(kind).f(alpha),
                &[b(0)],
                o(0),
                outs[0].numel(),
            )
        }
        Op::ActBackward(a) => {
            let (kind, alpha) = act_params(a);
            elementwise(
                rec,
                "activation_backward.wgsl",
                P::default().u(kind).f(alpha),
                &[b(0), b(1)],
                o(0),
                outs[0].numel(),
            )
        }
        Op::Conv2d { stride, padding } => {
            let (x, w) = (sh(0), sh(1));
            let y = outs[0].shape;
            let c = Conv {
                nb: x[0],
                ci: x[1],
                h: x[2],
                w: x[3],
                co: w[0],
                oh: y[2],
                ow: y[3],
                kh: w[2],
                kw: w[3],
                stride,
                pad_t: pad_before(x[2], w[2], stride, padding),
                pad_l: pad_before(x[3], w[3], stride, padding),
            };
            if conv_fast_ok(rec, &c) {
                return conv_fast(rec, ConvKind::Forward, &c, [b(0), b(1), o(0)]);
            }
            let (m, n, k) = (c.co, c.nb * c.oh * c.ow, c.ci * c.kh * c.kw);
            conv_gemm(rec, "conv2d.wgsl", &c, m, n, k, &[b(0), b(1), o(0)])
        }
        Op::Conv2dBackwardInput {
            stride,
            padding,
            in_h,
            in_w,
        } => {
            let (dy, w) = (sh(0), sh(1));
            let c = Conv {
                nb: dy[0],
                ci: w[1],
                h: in_h,
                w: in_w,
                co: w[0],
                oh: dy[2],
                ow: dy[3],
                kh: w[2],
                kw: w[3],
                stride,
                pad_t: pad_before(in_h, w[2], stride, padding),
                pad_l: pad_before(in_w, w[3], stride, padding),
            };
            if conv_fast_ok(rec, &c) {
                return conv_fast(rec, ConvKind::BackwardInput, &c, [b(0), b(1), o(0)]);
            }
            let (m, n, k) = (c.ci, c.nb * c.h * c.w, c.co * c.kh * c.kw);
            conv_gemm(
                rec,
                "conv2d_backward_input.wgsl",
                &c,
                m,
                n,
                k,
                &[b(0), b(1), o(0)],
            )
        }
        Op::Conv2dBackwardWeight {
            stride,
            padding,
            kh,
            kw,
        } => {
            let (x, dy) = (sh(0), sh(1));
            let c = Conv {
                nb: x[0],
                ci: x[1],
                h: x[2],
                w: x[3],
                co: dy[1],
                oh: dy[2],
                ow: dy[3],
                kh,
                kw,
                stride,
                pad_t: pad_before(x[2], kh, stride, padding),
                pad_l: pad_before(x[3], kw, stride, padding),
            };
            if conv_fast_ok(rec, &c) {
                return conv_fast(rec, ConvKind::BackwardWeight, &c, [b(0), b(1), o(0)]);
            }
            conv_backward_weight(rec, &c, b(0), b(1), o(0))
        }
        Op::MaxPool2 => {
            let x = sh(0);
            elementwise(
                rec,
                "maxpool2.wgsl",
                P::default().u(x[2]).u(x[3]),
                &[b(0)],
                o(0),
                outs[0].numel(),
            )
        }
        Op::MaxPool2Backward => {
            let x = sh(0);
            elementwise(
                rec,
                "maxpool2_backward.wgsl",
                P::default().u(x[2]).u(x[3]),
                &[b(0), b(1), b(2)],
                o(0),
                outs[0].numel(),
            )
        }
        Op::Upsample2 => {
            let x = sh(0);
            elementwise(
                rec,
                "upsample2.wgsl",
                P::default().u(x[2]).u(x[3]),
                &[b(0)],
                o(0),
                outs[0].numel(),
            )
        }
        Op::Upsample2Backward => {
            let d = outs[0].shape;
            elementwise(
                rec,
                "upsample2_backward.wgsl",
                P::default().u(d[2]).u(d[3]),
                &[b(0)],
                o(0),
                outs[0].numel(),
            )
        }
        Op::ConcatChannels => {
            let (a, bb) = (sh(0), sh(1));
            elementwise(
                rec,
                "concat_channels.wgsl",
                P::default().u(a[1]).u(bb[1]).u(a[2] * a[3]),
                &[b(0), b(1)],
                o(0),
                outs[0].numel(),
            )
        }
        Op::SplitChannels { first } => {
            let d = sh(0);
            let n = ins[0].numel();
            let p = P::default().u(n).u(first).u(d[1]).u(d[2] * d[3]);
            let grid = rec.grid1(groups(n, WG))?;
            if n > 0 {
                rec.run(
                    "split_channels.wgsl",
                    "main",
                    &p.0,
                    &[(1, b(0)), (2, o(0)), (3, o(1))],
                    grid,
                )?;
            }
            Ok(())
        }
        Op::BatchNormTrain { eps } => {
            let x = sh(0);
            let (outer, c, inner) = (x[0], x[1], numel(&x[2..]));
            if c == 0 {
                return Ok(());
            }
            let ch = Chunks::channels(c, outer * inner);
            let part = rec.temp(2 * c * ch.chunks)?;
            let p = P::default()
                .u(c)
                .u(outer)
                .u(inner)
                .u(ch.chunks)
                .u(ch.len)
                .u(ins[0].numel())
                .f(eps);
            let k = "batchnorm_train.wgsl";
            let grid = rec.grid1((c * ch.chunks) as u64)?;
            rec.run(k, "partial", &p.0, &[(1, b(0)), (7, &part)], grid)?;
            let grid = rec.grid1(groups(c, WG))?;
            rec.run(
                k,
                "finish",
                &p.0,
                &[(1, b(0)), (5, o(1)), (6, o(2)), (7, &part)],
                grid,
            )?;
            let n = ins[0].numel();
            if n > 0 {
                let grid = rec.grid1(groups(n, WG))?;
                rec.run(
                    k,
                    "apply",
                    &p.0,
                    &[
                        (1, b(0)),
                        (2, b(1)),
                        (3, b(2)),
                        (4, o(0)),
                        (5, o(1)),
                        (6, o(2)),
                    ],
                    grid,
                )?;
            }
            Ok(())
        }
        Op::BatchNormEval { eps } => {
            let x = sh(0);
            elementwise(
                rec,
                "batchnorm_eval.wgsl",
                P::default().u(x[1]).u(numel(&x[2..])).f(eps),
                &[b(0), b(1), b(2), b(3), b(4)],
                o(0),
                outs[0].numel(),
            )
        }
        Op::BatchNormBackward => {
            let x = sh(0);
            let (outer, c, inner) = (x[0], x[1], numel(&x[2..]));
            if c == 0 {
                return Ok(());
            }
            let ch = Chunks::channels(c, outer * inner);
            let part = rec.temp(2 * c * ch.chunks)?;
            let n = ins[0].numel();
            let p = P::default()
                .u(c)
                .u(outer)
                .u(inner)
                .u(ch.chunks)
                .u(ch.len)
                .u(n);
            let k = "batchnorm_backward.wgsl";
            let grid = rec.grid1((c * ch.chunks) as u64)?;
            rec.run(
                k,
                "partial",
                &p.0,
                &[(1, b(0)), (2, b(1)), (4, b(3)), (9, &part)],
                grid,
            )?;
            let grid = rec.grid1(groups(c, WG))?;
            rec.run(
                k,
                "finish",
                &p.0,
                &[(5, b(4)), (7, o(1)), (8, o(2)), (9, &part)],
                grid,
            )?;
            if n > 0 {
                let grid = rec.grid1(groups(n, WG))?;
                rec.run(
                    k,
                    "apply",
                    &p.0,
                    &[
                        (1, b(0)),
                        (2, b(1)),
                        (3, b(2)),
                        (4, b(3)),
                        (5, b(4)),
                        (6, o(0)),
                        (7, o(1)),
                        (8, o(2)),
                    ],
                    grid,
                )?;
            }
            Ok(())
        }
        Op::LayerNorm { eps } => {
            let d = *sh(0).last().unwrap_or(&1);
            let rows = outs[1].numel();
            if rows == 0 || d == 0 {
                return Ok(());
            }
            let grid = rec.grid1(rows as u64)?;
            rec.run(
                "layernorm.wgsl",
                "main",
                &P::default().u(rows).u(d).f(eps).0,
                &[
                    (1, b(0)),
                    (2, b(1)),
                    (3, b(2)),
                    (4, o(0)),
                    (5, o(1)),
                    (6, o(2)),
                ],
                grid,
            )
        }
        Op::LayerNormBackward => {
            let d = *sh(0).last().unwrap_or(&1);
            let rows = ins[3].numel();
            if d == 0 {
                return Ok(());
            }
            let ch = Chunks::columns(d, rows);
            let part = rec.temp(2 * d * ch.chunks)?;
            let p = P::default()
                .u(rows)
                .u(d)
                .u(ch.chunks)
                .u(ch.len)
                .u(ch.col_blocks);
            let k = "layernorm_backward.wgsl";
            if rows > 0 {
                let grid = rec.grid1(rows as u64)?;
                rec.run(
                    k,
                    "main",
                    &p.0,
                    &[
                        (1, b(0)),
                        (2, b(1)),
                        (3, b(2)),
                        (4, b(3)),
                        (5, b(4)),
                        (6, o(0)),
                    ],
                    grid,
                )?;
            }
            let grid = rec.grid1((ch.col_blocks * ch.chunks) as u64)?;
            rec.run(
                k,
                "cols_partial",
                &p.0,
                &[(1, b(0)), (2, b(1)), (4, b(3)), (5, b(4)), (9, &part)],
                grid,
            )?;
            let grid = rec.grid1(groups(d, WG))?;
            rec.run(
                k,
                "cols_finish",
                &p.0,
                &[(7, o(1)), (8, o(2)), (9, &part)],
                grid,
            )
        }
        Op::Softmax | Op::SoftmaxBackward => {
            let d = *sh(0).last().unwrap_or(&1);
            let n = ins[0].numel();
            if n == 0 || d == 0 {
                return Ok(());
            }
            let rows = n / d;
            let grid = rec.grid1(rows as u64)?;
            let p = P::default().u(rows).u(d);
            if matches!(op, Op::Softmax) {
                rec.run("softmax.wgsl", "main", &p.0, &[(1, b(0)), (2, o(0))], grid)
            } else {
                rec.run(
                    "softmax_backward.wgsl",
                    "main",
                    &p.0,
                    &[(1, b(0)), (2, b(1)), (3, o(0))],
                    grid,
                )
            }
        }
        Op::Dropout { p, seed } | Op::DropoutBackward { p, seed } => elementwise(
            rec,
            "dropout.wgsl",
            P::default().u(seed as usize).f(p).f(1.0 / (1.0 - p)),
            &[b(0)],
            o(0),
            outs[0].numel(),
        ),
        Op::SumAll => {
            let n = ins[0].numel();
            let g = reduce_groups(n);
            let part = rec.temp(g)?;
            if n > 0 {
                rec.run(
                    "sum_all.wgsl",
                    "partial",
                    &P::default().u(n).u(g).f(1.0).0,
                    &[(1, b(0)), (2, &part)],
                    [g as u32, 1, 1],
                )?;
            }
            finish_sum(rec, &part, if n > 0 { g } else { 0 }, 1.0, o(0))
        }
        Op::MseLoss | Op::BceWithLogits { .. } => {
            let n = ins[0].numel();
            let g = reduce_groups(n);
            let part = rec.temp(g)?;
            let inv_n = if n > 0 { (1.0 / n as f64) as f32 } else { 0.0 };
            if n > 0 {
                let (kernel, p) = match *op {
                    Op::MseLoss => (
                        "mse_loss.wgsl",
                        P::default().u(n).u(g).f((2.0 / n as f64) as f32),
                    ),
                    Op::BceWithLogits { pos_weight } => (
                        "bce_with_logits.wgsl",
                        P::default().u(n).u(g).f(pos_weight).f(inv_n),
                    ),
                    _ => unreachable!(),
                };
                rec.run(
                    kernel,
                    "partial",
                    &p.0,
                    &[(1, b(0)), (2, b(1)), (3, o(1)), (4, &part)],
                    [g as u32, 1, 1],
                )?;
            }
            finish_sum(rec, &part, if n > 0 { g } else { 0 }, inv_n, o(0))
        }
        Op::DiceLoss { eps } => {
            let n = ins[0].numel();
            let g = reduce_groups(n);
            let part = rec.temp(3 * g)?;
            let gs = if n > 0 { g } else { 0 };
            let p = P::default().u(n).u(gs).f(eps);
            let k = "dice_loss.wgsl";
            if n > 0 {
                rec.run(
                    k,
                    "partial",
                    &p.0,
                    &[(1, b(0)), (2, b(1)), (4, &part)],
                    [g as u32, 1, 1],
                )?;
            }
            rec.run(k, "finish", &p.0, &[(4, &part), (5, o(0))], [1, 1, 1])?;
            if n > 0 {
                let grid = rec.grid1(groups(n, WG))?;
                rec.run(k, "grad", &p.0, &[(2, b(1)), (3, o(1)), (4, &part)], grid)?;
            }
            Ok(())
        }
        Op::Sgd {
            lr,
            momentum,
            weight_decay,
        } => {
            let n = ins[0].numel();
            if n == 0 {
                return Ok(());
            }
            let grid = rec.grid1(groups(n, WG))?;
            rec.run(
                "sgd.wgsl",
                "main",
                &P::default().u(n).f(lr).f(momentum).f(weight_decay).0,
                &[(1, b(0)), (2, o(0)), (3, o(1))],
                grid,
            )
        }
        Op::Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            decoupled,
            step,
        } => {
            let n = ins[0].numel();
            if n == 0 {
                return Ok(());
            }
            // The step-dependent scalars exactly as the CPU backend computes them (f64).
            let step = step.max(1) as i32;
            let bc1 = 1.0 - (beta1 as f64).powi(step);
            let bc2_sqrt = (1.0 - (beta2 as f64).powi(step)).sqrt() as f32;
            let step_size = (lr as f64 / bc1) as f32;
            let decay = if decoupled {
                (1.0 - lr as f64 * weight_decay as f64) as f32
            } else {
                1.0
            };
            let l2 = if decoupled { 0.0 } else { weight_decay };
            let w1 = (1.0 - beta1 as f64) as f32;
            let grid = rec.grid1(groups(n, WG))?;
            rec.run(
                "adam.wgsl",
                "main",
                &P::default()
                    .u(n)
                    .f(step_size)
                    .f(bc2_sqrt)
                    .f(decay)
                    .f(l2)
                    .f(w1)
                    .f(beta2)
                    .f(eps)
                    .0,
                &[(1, b(0)), (2, o(0)), (3, o(1)), (4, o(2))],
                grid,
            )
        }
        Op::Embedding => {
            let t = sh(1);
            elementwise(
                rec,
                "embedding.wgsl",
                P::default().u(t[0]).u(t[1]),
                &[b(0), b(1)],
                o(0),
                outs[0].numel(),
            )
        }
        Op::Attention { heads } => attention(rec, heads, ins, o(0)),
    }
}

/// `(outer, c, inner)` around `axis`.
fn split_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        numel(&shape[..axis]),
        shape[axis],
        numel(&shape[axis + 1..]),
    )
}

fn act_params(a: Activation) -> (usize, f32) {
    match a {
        Activation::Relu => (0, 0.0),
        Activation::LeakyRelu(alpha) => (1, alpha),
        Activation::Sigmoid => (2, 0.0),
        Activation::Tanh => (3, 0.0),
        Activation::Gelu => (4, 0.0),
    }
}

/// A one-thread-per-output-element kernel: parameters `n` then `rest`, bindings `inputs` from
/// 1 and the output after them.
fn elementwise(
    rec: &mut Recorder<'_>,
    kernel: &'static str,
    rest: P,
    inputs: &[&wgpu::Buffer],
    out: &wgpu::Buffer,
    n: usize,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let mut p = P::default().u(n);
    p.0.extend(rest.0);
    let mut bufs: Vec<(u32, &wgpu::Buffer)> = inputs
        .iter()
        .enumerate()
        .map(|(i, b)| (i as u32 + 1, *b))
        .collect();
    bufs.push((inputs.len() as u32 + 1, out));
    let grid = rec.grid1(groups(n, WG))?;
    rec.run(kernel, "main", &p.0, &bufs, grid)
}

/// Workgroups of a two-pass full reduction (each sums a span; at most 1024 partial sums).
fn reduce_groups(n: usize) -> usize {
    n.div_ceil(4096).clamp(1, 1024)
}

/// sum_all.wgsl's `finish`: out[0] = scale * sum(part[0..count]).
fn finish_sum(
    rec: &mut Recorder<'_>,
    part: &wgpu::Buffer,
    count: usize,
    scale: f32,
    out: &wgpu::Buffer,
) -> Result<()> {
    rec.run(
        "sum_all.wgsl",
        "finish",
        &P::default().u(count).u(count).f(scale).0,
        &[(2, part), (3, out)],
        [1, 1, 1],
    )
}

/// How a per-channel (or per-column) reduction is chunked.
struct Chunks {
    chunks: usize,
    /// Elements (or rows) per chunk.
    len: usize,
    col_blocks: usize,
}

impl Chunks {
    /// `c` channels of `count` elements each, one workgroup per (channel, chunk): about 1024
    /// workgroups in all, chunks of at least 4096 elements.
    fn channels(c: usize, count: usize) -> Chunks {
        let want = 1024usize.div_ceil(c.max(1));
        let chunks = want.min(count.div_ceil(4096)).max(1);
        let len = count.div_ceil(chunks).max(1);
        Chunks {
            chunks: count.div_ceil(len).max(1),
            len,
            col_blocks: 1,
        }
    }

    /// `d` columns of `rows` rows, one thread per (column, chunk of rows): about 512
    /// workgroups of 256 columns, chunks of at least 64 rows.
    fn columns(d: usize, rows: usize) -> Chunks {
        let col_blocks = d.div_ceil(256).max(1);
        let want = 512usize.div_ceil(col_blocks);
        let chunks = want.min(rows.div_ceil(64)).max(1);
        let len = rows.div_ceil(chunks).max(1);
        Chunks {
            chunks: rows.div_ceil(len).max(1),
            len,
            col_blocks,
        }
    }
}

fn bias_grad(
    rec: &mut Recorder<'_>,
    dy: &wgpu::Buffer,
    db: &wgpu::Buffer,
    outer: usize,
    c: usize,
    inner: usize,
) -> Result<()> {
    if c == 0 {
        return Ok(());
    }
    let k = "bias_grad.wgsl";
    let ch = if inner == 1 {
        Chunks::columns(c, outer)
    } else {
        Chunks::channels(c, outer * inner)
    };
    let part = rec.temp(c * ch.chunks)?;
    let p = P::default()
        .u(c)
        .u(outer)
        .u(inner)
        .u(ch.chunks)
        .u(ch.len)
        .u(ch.col_blocks);
    if inner == 1 {
        let grid = rec.grid1((ch.col_blocks * ch.chunks) as u64)?;
        rec.run(k, "partial_rows", &p.0, &[(1, dy), (2, &part)], grid)?;
    } else {
        let grid = rec.grid1((c * ch.chunks) as u64)?;
        rec.run(k, "partial", &p.0, &[(1, dy), (2, &part)], grid)?;
    }
    let grid = rec.grid1(groups(c, WG))?;
    rec.run(k, "finish", &p.0, &[(2, &part), (3, db)], grid)
}

/// Strides of a GEMM operand: element (z, r, c) at
/// `(z / bi) * bo + (z % bi) * bi_stride + r * rs + c * cs`.
#[derive(Clone, Copy)]
struct Strides {
    bo: usize,
    bi: usize,
    rs: usize,
    cs: usize,
}

/// A batched strided product `C[z] = alpha A[z] B[z]` (see matmul.wgsl).
struct Gemm {
    m: usize,
    n: usize,
    k: usize,
    batch: usize,
    /// Inner batch count of the two-level batch index.
    bi: usize,
    a: Strides,
    b: Strides,
    c: Strides,
    alpha: f32,
}

/// Splits a grid of `gx x gy x gz` workgroups into dispatches within the device limit and
/// calls `f(x0, y0, z0, [gx, gy, gz])` for each (offsets in workgroups).
fn split_grid(
    rec: &mut Recorder<'_>,
    g: [usize; 3],
    mut f: impl FnMut(&mut Recorder<'_>, [usize; 3], [u32; 3]) -> Result<()>,
) -> Result<()> {
    let max = rec.gpu.limits.max_compute_workgroups_per_dimension as usize;
    for z0 in (0..g[2]).step_by(max) {
        for y0 in (0..g[1]).step_by(max) {
            for x0 in (0..g[0]).step_by(max) {
                let grid = rec.check_grid([
                    (g[0] - x0).min(max) as u64,
                    (g[1] - y0).min(max) as u64,
                    (g[2] - z0).min(max) as u64,
                ])?;
                f(rec, [x0, y0, z0], grid)?;
            }
        }
    }
    Ok(())
}

/// The aligned fast GEMM kernels: file, tile rows, tile columns. `matmul_fast.wgsl` is the
/// one measured on an H200 (bench/GPU_RESULTS.md); the `_RxC` tile variants are for products
/// too small to fill a GPU with 128x128 tiles (64x64) and for tuning runs (`MLP_GEMM_TILE`).
const FAST_GEMMS: [(&str, usize, usize); 5] = [
    ("matmul_fast.wgsl", 128, 128),
    ("matmul_fast_64x64.wgsl", 64, 64),
    ("matmul_fast_128x128.wgsl", 128, 128),
    ("matmul_fast_128x256.wgsl", 128, 256),
    ("matmul_fast_256x128.wgsl", 256, 128),
];

/// The preconditions of the matmul_fast kernels with `bm x bn` tiles, under which all their
/// accesses are aligned vec4s in range: tile-multiple sizes, each operand contiguous along one
/// axis, everything else (strides, batch strides) a multiple of 4 floats, buffers a multiple
/// of 16 bytes, and the last element of every operand inside its buffer.
fn fast_gemm_ok(g: &Gemm, bm: usize, bn: usize, bufs: [&wgpu::Buffer; 3]) -> bool {
    let four = |xs: &[usize]| xs.iter().all(|x| x % 4 == 0);
    let sizes =
        g.m.is_multiple_of(bm) && g.n.is_multiple_of(bn) && g.k.is_multiple_of(8) && g.k > 0;
    let a = (g.a.cs == 1 && four(&[g.a.rs])) || (g.a.rs == 1 && four(&[g.a.cs]));
    let b = (g.b.cs == 1 && four(&[g.b.rs])) || (g.b.rs == 1 && four(&[g.b.cs]));
    let c = g.c.cs == 1 && four(&[g.c.rs]);
    let batch = four(&[g.a.bo, g.a.bi, g.b.bo, g.b.bi, g.c.bo, g.c.bi]) && g.bi > 0;
    if !(sizes && a && b && c && batch) {
        return false;
    }
    // An upper bound on the largest element index each operand reaches over all batches.
    let (zo, zi) = ((g.batch - 1) / g.bi, g.bi.min(g.batch) - 1);
    let last = |s: &Strides, rows: usize, cols: usize| {
        zo * s.bo + zi * s.bi + (rows - 1) * s.rs + (cols - 1) * s.cs
    };
    let fits = |buf: &wgpu::Buffer, end: usize| {
        buf.size().is_multiple_of(16) && (end as u64 + 1) * 4 <= buf.size()
    };
    fits(bufs[0], last(&g.a, g.m, g.k))
        && fits(bufs[1], last(&g.b, g.k, g.n))
        && fits(bufs[2], last(&g.c, g.m, g.n))
}

/// A GEMM kernel: file, tile rows, tile columns.
type GemmKernel = (&'static str, usize, usize);

/// The kernel for a product.
/// - A forced tile (`MLP_GEMM_TILE`) where its preconditions hold.
/// - Autotuning on: the fastest of the size rule's kernel and every aligned tile that
///   qualifies (`autotune.rs`), for products of at least `autotune::MIN_FLOPS`.
/// - The size rule: products of at least `big_tiles_min` 128x128 tiles take
///   `matmul_fast.wgsl` when aligned, else the guarded `matmul_big.wgsl`; smaller ones
///   `matmul_fast_64x64.wgsl` when aligned, else the guarded `matmul.wgsl`.
fn pick_gemm(rec: &mut Recorder<'_>, g: &Gemm, bufs: [&wgpu::Buffer; 3]) -> Result<GemmKernel> {
    let gpu = rec.gpu;
    let fast = |name: &str| -> Option<GemmKernel> {
        let &(file, bm, bn) = FAST_GEMMS.iter().find(|f| f.0 == name)?;
        (gpu.tuning.fast_gemm
            && gpu.limits.max_compute_workgroup_storage_size >= kernels::workgroup_bytes(file)
            && fast_gemm_ok(g, bm, bn, bufs))
        .then_some((file, bm, bn))
    };
    if let Some(forced) = gpu.tuning.gemm_tile.and_then(fast) {
        return Ok(forced);
    }
    let tiles128 = (g.m.div_ceil(128) * g.n.div_ceil(128) * g.batch) as u64;
    let threshold = *gpu.big_tiles_min.lock().unwrap_or_else(|e| e.into_inner());
    let rule = if tiles128 >= threshold {
        fast("matmul_fast.wgsl").unwrap_or(("matmul_big.wgsl", 128, 128))
    } else {
        fast("matmul_fast_64x64.wgsl").unwrap_or(("matmul.wgsl", 64, 64))
    };
    let flops = 2.0 * (g.m * g.n * g.batch) as f64 * g.k as f64;
    if !gpu.autotuning() || flops < autotune::MIN_FLOPS {
        return Ok(rule);
    }
    let mut cands = vec![rule];
    for f in FAST_GEMMS.iter().filter_map(|f| fast(f.0)) {
        if !cands.iter().any(|c| c.0 == f.0) {
            cands.push(f);
        }
    }
    if cands.len() < 2 {
        return Ok(rule);
    }
    let key = vec![
        0,
        autotune::class(g.m),
        autotune::class(g.n),
        autotune::class(g.k),
        autotune::class(g.batch),
        u32::from(g.a.cs == 1),
        u32::from(g.b.rs == 1),
    ];
    let labels: Vec<String> = cands.iter().map(|c| c.0.to_string()).collect();
    let what = || {
        let batch = if g.batch > 1 {
            format!(" batch {}", g.batch)
        } else {
            String::new()
        };
        let ta = if g.a.cs == 1 { "" } else { " trans_a" };
        let tb = if g.b.rs == 1 { " trans_b" } else { "" };
        format!("matmul {}x{}x{}{batch}{ta}{tb}", g.m, g.n, g.k)
    };
    let [a, b, c] = bufs;
    let i = rec.autotune(key, what, &labels, |rec, i| {
        gemm_with(rec, g, a, b, c, cands[i])
    })?;
    Ok(cands[i])
}

fn gemm(
    rec: &mut Recorder<'_>,
    g: &Gemm,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    c: &wgpu::Buffer,
) -> Result<()> {
    if g.m == 0 || g.n == 0 || g.batch == 0 {
        return Ok(());
    }
    let kernel = pick_gemm(rec, g, [a, b, c])?;
    gemm_with(rec, g, a, b, c, kernel)
}

fn gemm_with(
    rec: &mut Recorder<'_>,
    g: &Gemm,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    c: &wgpu::Buffer,
    (kernel, bm, bn): GemmKernel,
) -> Result<()> {
    let grid = [g.n.div_ceil(bn), g.m.div_ceil(bm), g.batch];
    split_grid(rec, grid, |rec, [x0, y0, z0], groups| {
        let p = P::default()
            .u(g.m)
            .u(g.n)
            .u(g.k)
            .u(z0)
            .u(y0 * bm)
            .u(x0 * bn)
            .u(g.bi)
            .u(g.a.bo)
            .u(g.a.bi)
            .u(g.a.rs)
            .u(g.a.cs)
            .u(g.b.bo)
            .u(g.b.bi)
            .u(g.b.rs)
            .u(g.b.cs)
            .u(g.c.bo)
            .u(g.c.bi)
            .u(g.c.rs)
            .u(usize::from(g.a.cs == 1))
            .u(usize::from(g.b.rs == 1))
            .f(g.alpha);
        rec.run(kernel, "main", &p.0, &[(1, a), (2, b), (3, c)], groups)
    })
}

/// Convolution geometry (input `h x w`, output `oh x ow`).
struct Conv {
    nb: usize,
    ci: usize,
    h: usize,
    w: usize,
    co: usize,
    oh: usize,
    ow: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad_t: usize,
    pad_l: usize,
}

impl Conv {
    fn params(&self, m: usize, n: usize, k: usize, off: [usize; 3]) -> P {
        P::default()
            .u(m)
            .u(n)
            .u(k)
            .u(off[2])
            .u(off[1])
            .u(off[0])
            .u(self.nb)
            .u(self.ci)
            .u(self.h)
            .u(self.w)
            .u(self.co)
            .u(self.oh)
            .u(self.ow)
            .u(self.kh)
            .u(self.kw)
            .u(self.stride)
            .u(self.pad_t)
            .u(self.pad_l)
    }
}

/// conv2d.wgsl or conv2d_backward_input.wgsl over an `m x n` output (64x64 tiles).
fn conv_gemm(
    rec: &mut Recorder<'_>,
    kernel: &'static str,
    c: &Conv,
    m: usize,
    n: usize,
    k: usize,
    bufs: &[&wgpu::Buffer; 3],
) -> Result<()> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    split_grid(
        rec,
        [n.div_ceil(64), m.div_ceil(64), 1],
        |rec, [x0, y0, _], groups| {
            let p = c.params(m, n, k, [x0 * 64, y0 * 64, 0]).f(1.0);
            rec.run(
                kernel,
                "main",
                &p.0,
                &[(1, bufs[0]), (2, bufs[1]), (3, bufs[2])],
                groups,
            )
        },
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ConvKind {
    Forward,
    BackwardInput,
    BackwardWeight,
}

/// The preconditions of the `conv2d*_fast_*.wgsl` kernels, under which their explicitly
/// guarded indices cannot overflow (every tensor below 2^31 elements, spatial sizes below
/// 2^19 so that table padding rows and past-the-end columns land out of range) and their
/// workgroup memory fits the device.
fn conv_fast_ok(rec: &Recorder<'_>, c: &Conv) -> bool {
    let below = |dims: &[usize], lim: usize| {
        dims.iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .is_some_and(|n| n < lim)
    };
    let small = |d: usize| d < 1 << 15;
    rec.gpu.tuning.fast_conv
        && rec.gpu.limits.max_compute_workgroup_storage_size >= conv_fast_smem()
        && below(&[c.nb, c.ci, c.h, c.w], 1 << 31)
        && below(&[c.nb, c.co, c.oh, c.ow], 1 << 31)
        && below(&[c.co, c.ci, c.kh, c.kw], 1 << 31)
        && [c.h, c.w, c.oh, c.ow].iter().all(|&d| d < 1 << 19)
        && c.stride >= 1
        && [c.stride, c.kh, c.kw, c.pad_t, c.pad_l]
            .into_iter()
            .all(small)
}

/// The most workgroup memory a fast convolution kernel declares.
fn conv_fast_smem() -> u32 {
    kernels::LARGE_WORKGROUP_MEMORY
        .iter()
        .filter(|(k, _)| k.starts_with("conv2d"))
        .map(|&(_, b)| b)
        .max()
        .unwrap_or(16384)
}

/// The smallest fast convolution tile height that covers M rows.
fn covering_tile(m: usize) -> usize {
    match m {
        0..=32 => 32,
        33..=64 => 64,
        _ => 128,
    }
}

/// Tile height (rows of M per workgroup; the width is 128 columns of N) of a fast
/// convolution by the size rule: the covering one, halved while the grid has fewer than 256
/// workgroups (a large GPU has over 100 multiprocessors to fill) unless K is split (`split`),
/// which fills the grid by itself.
fn conv_tile(m: usize, n: usize, split: bool) -> usize {
    let mut bm = covering_tile(m);
    while !split && bm > 32 && n.div_ceil(128) * m.div_ceil(bm) < 256 {
        bm /= 2;
    }
    bm
}

fn conv_fast_kernel(kind: ConvKind, bm: usize) -> &'static str {
    match (kind, bm) {
        (ConvKind::Forward, 32) => "conv2d_fast_32.wgsl",
        (ConvKind::Forward, 64) => "conv2d_fast_64.wgsl",
        (ConvKind::Forward, _) => "conv2d_fast_128.wgsl",
        (ConvKind::BackwardInput, 32) => "conv2d_backward_input_fast_32.wgsl",
        (ConvKind::BackwardInput, 64) => "conv2d_backward_input_fast_64.wgsl",
        (ConvKind::BackwardInput, _) => "conv2d_backward_input_fast_128.wgsl",
        (ConvKind::BackwardWeight, 32) => "conv2d_backward_weight_fast_32.wgsl",
        (ConvKind::BackwardWeight, 64) => "conv2d_backward_weight_fast_64.wgsl",
        (ConvKind::BackwardWeight, _) => "conv2d_backward_weight_fast_128.wgsl",
    }
}

/// Rows of a convolution table: a multiple of 128 (every tile width and K step).
fn table_rows(len: usize) -> usize {
    len.div_ceil(128).max(1) * 128
}

/// The input-gather table of conv2d_fast and conv2d_backward_weight_fast: per k = (ci, ky, kx)
/// the row `(ci * h * w + ky * w + kx, ky, kx, 0)`; padding rows `(0, 2^20, 0, 0)`.
fn gather_table(c: &Conv) -> Vec<i32> {
    let (khw, k) = (c.kh * c.kw, c.ci * c.kh * c.kw);
    let mut t = Vec::with_capacity(table_rows(k) * 4);
    for i in 0..table_rows(k) {
        if i < k {
            let (ch, r) = (i / khw, i % khw);
            let (ky, kx) = (r / c.kw, r % c.kw);
            t.extend([
                (ch * c.h * c.w + ky * c.w + kx) as i32,
                ky as i32,
                kx as i32,
                0,
            ]);
        } else {
            t.extend([0, 1 << 20, 0, 0]);
        }
    }
    t
}

/// conv2d_backward_input_fast's table: `kpad` rows for the output-gradient gather, per
/// k = (co, ky, kx) with ky = qky * s + rky, `(co * oh * ow - qky * ow - qkx, qky, qkx,
/// rky | rkx << 16)` (padding `(0, 0, 0, -1)`), then `kpad` rows for the weights,
/// `(co * ci * kh * kw + ky * kw + kx, 1, 0, 0)` (padding all 0).
fn scatter_table(c: &Conv) -> Vec<i32> {
    let (khw, k) = (c.kh * c.kw, c.co * c.kh * c.kw);
    let (kpad, s) = (table_rows(k), c.stride);
    let mut t = Vec::with_capacity(kpad * 8);
    for i in 0..kpad {
        if i < k {
            let (ch, r) = (i / khw, i % khw);
            let (ky, kx) = (r / c.kw, r % c.kw);
            let off = (ch * c.oh * c.ow) as i64 - ((ky / s) * c.ow + kx / s) as i64;
            t.extend([
                off as i32,
                (ky / s) as i32,
                (kx / s) as i32,
                ((ky % s) | ((kx % s) << 16)) as i32,
            ]);
        } else {
            t.extend([0, 0, 0, -1]);
        }
    }
    for i in 0..kpad {
        if i < k {
            let (ch, r) = (i / khw, i % khw);
            t.extend([(ch * c.ci * khw + r) as i32, 1, 0, 0]);
        } else {
            t.extend([0, 0, 0, 0]);
        }
    }
    t
}

/// One convolution op on the fast kernels (`conv_fast_ok` holds).
fn conv_fast(
    rec: &mut Recorder<'_>,
    kind: ConvKind,
    c: &Conv,
    bufs: [&wgpu::Buffer; 3],
) -> Result<()> {
    let (m, n, k) = match kind {
        ConvKind::Forward => (c.co, c.nb * c.oh * c.ow, c.ci * c.kh * c.kw),
        ConvKind::BackwardInput => (c.ci, c.nb * c.h * c.w, c.co * c.kh * c.kw),
        ConvKind::BackwardWeight => (c.co, c.ci * c.kh * c.kw, c.nb * c.oh * c.ow),
    };
    if m == 0 || n == 0 {
        return Ok(());
    }
    let u = |v: usize| v as u32;
    let (tab, kpad) = match kind {
        ConvKind::Forward | ConvKind::BackwardWeight => {
            let key = [0, u(c.ci), u(c.h), u(c.w), u(c.kh), u(c.kw)];
            (
                rec.table(&key, || gather_table(c))?,
                table_rows(c.ci * c.kh * c.kw),
            )
        }
        ConvKind::BackwardInput => {
            let key = [
                1,
                u(c.ci),
                u(c.co),
                u(c.oh),
                u(c.ow),
                u(c.kh),
                u(c.kw),
                u(c.stride),
            ];
            (rec.table(&key, || scatter_table(c))?, table_rows(k))
        }
    };
    let split = kind == ConvKind::BackwardWeight;
    let gx = n.div_ceil(128);
    // The weight gradient's K (every output pixel of the batch) is long and its M x N short:
    // split K over wg.z so that about 512 workgroups of the covering tile run, in chunks of
    // whole K steps. The split does not depend on the tile height, so every tile gives the
    // same sums in the same order (autotuning relies on it).
    let (splits, kchunk) = if split {
        k_splits(rec, gx * m.div_ceil(covering_tile(m)), k, 8)
    } else {
        (1, k)
    };
    let geom = FastConv {
        kind,
        m,
        n,
        k,
        kpad,
        splits,
        kchunk,
    };
    let rule = conv_tile(m, n, split);
    let flops = 2.0 * (m * n) as f64 * k as f64;
    let bm = match rec.gpu.tuning.conv_tile {
        Some(t) => t,
        None if rec.gpu.autotuning() && flops >= autotune::MIN_FLOPS && m > 32 => {
            // Tiles taller than M only multiply padding rows: never faster.
            let mut tiles = vec![rule];
            tiles.extend(
                CONV_TILES
                    .into_iter()
                    .filter(|&t| t != rule && t <= covering_tile(m)),
            );
            let labels: Vec<String> = tiles
                .iter()
                .map(|&t| conv_fast_kernel(kind, t).to_string())
                .collect();
            let u = |v: usize| v as u32;
            let key = vec![
                1 + kind as u32,
                autotune::class(c.nb),
                u(c.ci),
                u(c.h),
                u(c.w),
                u(c.co),
                u(c.kh),
                u(c.kw),
                u(c.stride),
                u(c.pad_t),
                u(c.pad_l),
            ];
            let what = || {
                format!(
                    "{} [{},{},{},{}] -> {} {}x{} stride {}",
                    conv_op_name(kind),
                    c.nb,
                    c.ci,
                    c.h,
                    c.w,
                    c.co,
                    c.kh,
                    c.kw,
                    c.stride
                )
            };
            let i = rec.autotune(key, what, &labels, |rec, i| {
                conv_fast_with(rec, c, &geom, tiles[i], bufs, &tab)
            })?;
            tiles[i]
        }
        None => rule,
    };
    conv_fast_with(rec, c, &geom, bm, bufs, &tab)
}

fn conv_op_name(kind: ConvKind) -> &'static str {
    match kind {
        ConvKind::Forward => "conv2d",
        ConvKind::BackwardInput => "conv2d_backward_input",
        ConvKind::BackwardWeight => "conv2d_backward_weight",
    }
}

/// A fast convolution as a GEMM: sizes, padded table rows and the K split.
struct FastConv {
    kind: ConvKind,
    m: usize,
    n: usize,
    k: usize,
    kpad: usize,
    splits: usize,
    kchunk: usize,
}

/// Records a fast convolution with tile height `bm`.
fn conv_fast_with(
    rec: &mut Recorder<'_>,
    c: &Conv,
    f: &FastConv,
    bm: usize,
    bufs: [&wgpu::Buffer; 3],
    tab: &wgpu::Buffer,
) -> Result<()> {
    let FastConv {
        kind,
        m,
        n,
        k,
        kpad,
        splits,
        kchunk,
    } = *f;
    let kernel = conv_fast_kernel(kind, bm);
    let (gx, gy) = (n.div_ceil(128), m.div_ceil(bm));
    let scratch;
    let out = if splits == 1 {
        bufs[2]
    } else {
        scratch = rec.temp(splits * m * n)?;
        &scratch
    };
    split_grid(rec, [gx, gy, splits], |rec, [x0, y0, z0], groups| {
        let p = c.params(m, n, k, [x0 * 128, y0 * bm, z0]).u(kchunk).u(kpad);
        rec.run(
            kernel,
            "main",
            &p.0,
            &[(1, bufs[0]), (2, bufs[1]), (3, out), (4, tab)],
            groups,
        )
    })?;
    sum_splits(rec, splits, m * n, out, bufs[2])
}

/// How to split a long K over wg.z when an `m x n` output has only `tiles` workgroups: about
/// 512 workgroups in all, at least 256 terms per split, chunks a multiple of `step`. Returns
/// (splits, chunk).
fn k_splits(rec: &Recorder<'_>, tiles: usize, k: usize, step: usize) -> (usize, usize) {
    let max = rec.gpu.limits.max_compute_workgroups_per_dimension as usize;
    let want = 512usize.div_ceil(tiles.max(1));
    let splits = want.min(k.div_ceil(256)).clamp(1, max);
    let kchunk = k.div_ceil(splits).div_ceil(step).max(1) * step;
    (k.div_ceil(kchunk).max(1), kchunk)
}

/// Adds the `splits` partial results of `total` values each in `parts` into `dst`
/// (reduce_splits.wgsl); with one split the kernel already wrote `dst`.
fn sum_splits(
    rec: &mut Recorder<'_>,
    splits: usize,
    total: usize,
    parts: &wgpu::Buffer,
    dst: &wgpu::Buffer,
) -> Result<()> {
    if splits <= 1 {
        return Ok(());
    }
    let grid = rec.grid1(groups(total, WG))?;
    rec.run(
        "reduce_splits.wgsl",
        "main",
        &P::default().u(total).u(splits).0,
        &[(1, parts), (2, dst)],
        grid,
    )
}

/// conv2d_backward_weight.wgsl: dw[co, (ci, ky, kx)] with K = n * oh * ow split over wg.z so
/// that about 512 workgroups run, then reduce_splits.wgsl adds the splits.
fn conv_backward_weight(
    rec: &mut Recorder<'_>,
    c: &Conv,
    x: &wgpu::Buffer,
    dy: &wgpu::Buffer,
    dw: &wgpu::Buffer,
) -> Result<()> {
    let (m, n, k) = (c.co, c.ci * c.kh * c.kw, c.nb * c.oh * c.ow);
    if m == 0 || n == 0 {
        return Ok(());
    }
    let (gx, gy) = (n.div_ceil(64), m.div_ceil(64));
    let (splits, kchunk) = k_splits(rec, gx * gy, k, 16);
    let scratch;
    let out = if splits == 1 {
        dw
    } else {
        scratch = rec.temp(splits * m * n)?;
        &scratch
    };
    split_grid(rec, [gx, gy, splits], |rec, [x0, y0, z0], groups| {
        let p = c.params(m, n, k, [x0 * 64, y0 * 64, z0]).u(kchunk).f(1.0);
        rec.run(
            "conv2d_backward_weight.wgsl",
            "main",
            &p.0,
            &[(1, x), (2, dy), (3, out)],
            groups,
        )
    })?;
    sum_splits(rec, splits, m * n, out, dw)
}

/// Attention: scores = q kᵀ / sqrt(dh) per (batch, head) into scratch, masked softmax in
/// place, y = scores v; both products are strided views of matmul.wgsl.
fn attention(
    rec: &mut Recorder<'_>,
    heads: usize,
    ins: &[GpuTensor<'_>],
    y: &wgpu::Buffer,
) -> Result<()> {
    let (q, kk) = (ins[0].shape, ins[1].shape);
    let (b, s, e) = (q[0], q[1], q[2]);
    let t = kk[1];
    let dh = e / heads;
    if b * s * e == 0 {
        return Ok(());
    }
    let scores = rec.temp(b * heads * s * t)?;
    let scores_gemm = Gemm {
        m: s,
        n: t,
        k: dh,
        batch: b * heads,
        bi: heads,
        a: Strides {
            bo: s * e,
            bi: dh,
            rs: e,
            cs: 1,
        },
        b: Strides {
            bo: t * e,
            bi: dh,
            rs: 1,
            cs: e,
        },
        c: Strides {
            bo: heads * s * t,
            bi: s * t,
            rs: t,
            cs: 1,
        },
        alpha: 1.0 / (dh as f32).sqrt(),
    };
    gemm(rec, &scores_gemm, &ins[0].buf, &ins[1].buf, &scores)?;
    let rows = b * heads * s;
    if t > 0 {
        let grid = rec.grid1(rows as u64)?;
        rec.run(
            "attention.wgsl",
            "main",
            &P::default().u(rows).u(t).u(heads * s).0,
            &[(1, &scores), (2, &ins[3].buf)],
            grid,
        )?;
    }
    let out_gemm = Gemm {
        m: s,
        n: dh,
        k: t,
        batch: b * heads,
        bi: heads,
        a: Strides {
            bo: heads * s * t,
            bi: s * t,
            rs: t,
            cs: 1,
        },
        b: Strides {
            bo: t * e,
            bi: dh,
            rs: e,
            cs: 1,
        },
        c: Strides {
            bo: s * e,
            bi: dh,
            rs: e,
            cs: 1,
        },
        alpha: 1.0,
    };
    gemm(rec, &out_gemm, &scores, &ins[2].buf, y)
}
