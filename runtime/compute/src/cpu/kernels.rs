//! The CPU kernels: pure functions on `f32` slices (row-major, NCHW), one per [`Op`] variant
//! (or a few variants sharing one), and [`execute`], which dispatches an op to them.
//!
//! Matrix products, convolutions and attention live in [`super::linalg`], normalisations and
//! softmax in [`super::norm`], losses and optimizers in [`super::loss`]; the rest is here.

use rayon::prelude::*;

use super::linalg;
use super::loss::{self, AdamParams};
use super::math::{self, erf, sigmoid};
use super::norm;
use super::par::{self, map1, map1_indexed, map2, rows_mut, PAR_MIN, SUM_CHUNK};
use crate::op::{dropout_keep, numel, Activation, Op};

/// Runs `op` on inputs `(data, shape)`, writing `outputs`. Shapes must already be checked
/// ([`Op::output_shapes`]); every slice must hold exactly the elements of its shape (outputs
/// of in-place ops hold their current values). Use [`super::run`] for a checked entry point.
pub fn execute(op: &Op, inputs: &[(&[f32], &[usize])], outputs: &mut [&mut [f32]]) {
    let x = |k: usize| inputs[k].0;
    let sh = |k: usize| inputs[k].1;
    match *op {
        Op::MatMul { trans_a, trans_b } => {
            linalg::matmul(x(0), sh(0), x(1), sh(1), trans_a, trans_b, outputs[0])
        }
        Op::Add => map2(x(0), x(1), outputs[0], |a, b| a + b),
        Op::Mul => map2(x(0), x(1), outputs[0], |a, b| a * b),
        Op::AddScaled { alpha } => map2(x(0), x(1), outputs[0], |a, b| a + alpha * b),
        Op::Scale { alpha } => map1(x(0), outputs[0], |a| alpha * a),
        Op::BiasAdd { axis } => bias_add(x(0), sh(0), axis, x(1), outputs[0]),
        Op::BiasGrad { axis } => bias_grad(x(0), sh(0), axis, outputs[0]),
        Op::Act(a) => act(a, x(0), outputs[0]),
        Op::ActBackward(a) => act_backward(a, x(0), x(1), outputs[0]),
        Op::Conv2d { stride, padding } => {
            linalg::conv2d(x(0), sh(0), x(1), sh(1), stride, padding, outputs[0])
        }
        Op::Conv2dBackwardInput {
            stride,
            padding,
            in_h,
            in_w,
        } => linalg::conv2d_backward_input(
            x(0),
            sh(0),
            x(1),
            sh(1),
            stride,
            padding,
            in_h,
            in_w,
            outputs[0],
        ),
        Op::Conv2dBackwardWeight {
            stride,
            padding,
            kh,
            kw,
        } => linalg::conv2d_backward_weight(
            x(0),
            sh(0),
            x(1),
            sh(1),
            stride,
            padding,
            kh,
            kw,
            outputs[0],
        ),
        Op::MaxPool2 => maxpool2(x(0), sh(0), outputs[0]),
        Op::MaxPool2Backward => maxpool2_backward(x(0), sh(0), x(1), x(2), outputs[0]),
        Op::Upsample2 => upsample2(x(0), sh(0), outputs[0]),
        Op::Upsample2Backward => upsample2_backward(x(0), sh(0), outputs[0]),
        Op::ConcatChannels => concat_channels(x(0), sh(0), x(1), sh(1), outputs[0]),
        Op::SplitChannels { first } => {
            let (a, b) = two(outputs);
            split_channels(x(0), sh(0), first, a, b)
        }
        Op::BatchNormTrain { eps } => {
            let (y, m, s) = three(outputs);
            norm::batchnorm_train(x(0), sh(0), x(1), x(2), eps, y, m, s)
        }
        Op::BatchNormEval { eps } => {
            norm::batchnorm_eval(x(0), sh(0), x(1), x(2), x(3), x(4), eps, outputs[0])
        }
        Op::BatchNormBackward => {
            let (dx, dg, db) = three(outputs);
            norm::batchnorm_backward(x(0), sh(0), x(1), x(2), x(3), x(4), dx, dg, db)
        }
        Op::LayerNorm { eps } => {
            let d = last(sh(0));
            let (y, m, s) = three(outputs);
            norm::layernorm(x(0), d, x(1), x(2), eps, y, m, s)
        }
        Op::LayerNormBackward => {
            let d = last(sh(0));
            let (dx, dg, db) = three(outputs);
            norm::layernorm_backward(x(0), d, x(1), x(2), x(3), x(4), dx, dg, db)
        }
        Op::Softmax => norm::softmax(x(0), last(sh(0)), outputs[0]),
        Op::SoftmaxBackward => norm::softmax_backward(x(0), x(1), last(sh(0)), outputs[0]),
        Op::Dropout { p, seed } | Op::DropoutBackward { p, seed } => {
            dropout(x(0), p, seed, outputs[0])
        }
        Op::SumAll => outputs[0][0] = par::sum(x(0)) as f32,
        Op::MseLoss => {
            let (l, d) = two(outputs);
            loss::mse_loss(x(0), x(1), &mut l[0], d)
        }
        Op::BceWithLogits { pos_weight } => {
            let (l, d) = two(outputs);
            loss::bce_with_logits(x(0), x(1), pos_weight, &mut l[0], d)
        }
        Op::DiceLoss { eps } => {
            let (l, d) = two(outputs);
            loss::dice_loss(x(0), x(1), eps, &mut l[0], d)
        }
        Op::Sgd {
            lr,
            momentum,
            weight_decay,
        } => {
            let (p, v) = two(outputs);
            loss::sgd(x(0), lr, momentum, weight_decay, p, v)
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
            let (p, m, v) = three(outputs);
            let h = AdamParams {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled,
                step,
            };
            loss::adam(x(0), h, p, m, v)
        }
        Op::Embedding => embedding(x(0), x(1), sh(1), outputs[0]),
        Op::Attention { heads } => {
            linalg::attention(x(0), sh(0), x(1), sh(1), x(2), x(3), heads, outputs[0])
        }
    }
}

fn last(shape: &[usize]) -> usize {
    shape.last().copied().unwrap_or(1)
}

fn two<'a>(o: &'a mut [&mut [f32]]) -> (&'a mut [f32], &'a mut [f32]) {
    match o {
        [a, b] => (a, b),
        _ => panic!("expected 2 outputs, got {}", o.len()),
    }
}

fn three<'a>(o: &'a mut [&mut [f32]]) -> (&'a mut [f32], &'a mut [f32], &'a mut [f32]) {
    match o {
        [a, b, c] => (a, b, c),
        _ => panic!("expected 3 outputs, got {}", o.len()),
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

/// `Op::BiasAdd`: `y = x + bias` broadcast along `axis`.
pub fn bias_add(x: &[f32], shape: &[usize], axis: usize, bias: &[f32], y: &mut [f32]) {
    let (outer, c, inner) = split_axis(shape, axis);
    let y = &mut y[..outer * c * inner];
    if inner == 1 {
        // Rows of c: add the bias vector.
        rows_mut(y, c, |r0, yb| {
            for (j, yr) in yb.chunks_mut(c).enumerate() {
                let xr = &x[(r0 + j) * c..(r0 + j + 1) * c];
                for ((o, &v), &b) in yr.iter_mut().zip(xr).zip(bias) {
                    *o = v + b;
                }
            }
        });
    } else {
        rows_mut(y, inner, |r0, yb| {
            for (j, yr) in yb.chunks_mut(inner).enumerate() {
                let r = r0 + j;
                let b = bias[r % c];
                for (o, &v) in yr.iter_mut().zip(&x[r * inner..(r + 1) * inner]) {
                    *o = v + b;
                }
            }
        });
    }
}

/// `Op::BiasGrad`: `db[c] = sum of dy over every axis but `axis`` (in `f64`, fixed order).
pub fn bias_grad(dy: &[f32], shape: &[usize], axis: usize, db: &mut [f32]) {
    let (outer, c, inner) = split_axis(shape, axis);
    let total = outer * c * inner;
    if inner >= 64 {
        // Per channel: rows of `inner` in order.
        let one = |ch: usize| -> f32 {
            (0..outer)
                .map(|o| par::seq_sum(&dy[(o * c + ch) * inner..(o * c + ch + 1) * inner]))
                .sum::<f64>() as f32
        };
        if total < PAR_MIN {
            for (ch, o) in db.iter_mut().enumerate() {
                *o = one(ch);
            }
        } else {
            db.par_iter_mut()
                .enumerate()
                .for_each(|(ch, o)| *o = one(ch));
        }
    } else {
        // Blocks of outer rows (a function of the shape), each a partial vector, added in order.
        let row = c * inner;
        let block = SUM_CHUNK.div_ceil(row.max(1)).max(1);
        let nblocks = outer.div_ceil(block);
        let part = |bi: usize| -> Vec<f64> {
            let mut acc = vec![0f64; c];
            for o in bi * block..((bi + 1) * block).min(outer) {
                let r = &dy[o * row..(o + 1) * row];
                if inner == 1 {
                    for (a, &v) in acc.iter_mut().zip(r) {
                        *a += v as f64;
                    }
                } else if inner > 0 {
                    for (a, q) in acc.iter_mut().zip(r.chunks(inner)) {
                        *a += par::seq_sum(q);
                    }
                }
            }
            acc
        };
        let parts: Vec<Vec<f64>> = if total < PAR_MIN {
            (0..nblocks).map(part).collect()
        } else {
            (0..nblocks).into_par_iter().map(part).collect()
        };
        let mut acc = vec![0f64; c];
        for p in parts {
            for (a, v) in acc.iter_mut().zip(p) {
                *a += v;
            }
        }
        for (o, a) in db.iter_mut().zip(acc) {
            *o = a as f32;
        }
    }
}

/// ReLU that keeps NaN (`f32::max` would turn it into 0 and hide it from the loss).
#[inline(always)]
fn relu(x: f32) -> f32 {
    if x < 0.0 {
        0.0
    } else {
        x
    }
}

/// Forward activation of one value.
#[inline]
pub fn act_value(a: Activation, x: f32) -> f32 {
    match a {
        Activation::Relu => relu(x),
        Activation::LeakyRelu(alpha) => leaky(alpha, x),
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => math::tanh(x),
        Activation::Gelu => gelu(x),
    }
}

/// Derivative of an activation at `x`, PyTorch's rules: relu'(x) = 0 for x <= 0 and 1
/// otherwise (NaN included, so the gradient passes a NaN on: `threshold_backward`); leaky
/// relu takes the slope of the negative side at 0 and at NaN. GELU's derivative is the exact
/// `Φ(x) + x φ(x)` (with `Φ` through [`erf`]).
///
/// The transcendental functions are the vectorisable ones of [`super::math`] (GELU's erf is
/// the contract's formula with that `exp`).
#[inline]
pub fn act_grad(a: Activation, x: f32) -> f32 {
    match a {
        Activation::Relu => {
            if x <= 0.0 {
                0.0
            } else {
                1.0
            }
        }
        Activation::LeakyRelu(alpha) => {
            if x > 0.0 {
                1.0
            } else {
                alpha
            }
        }
        Activation::Sigmoid => sigmoid_grad(x),
        Activation::Tanh => tanh_grad(x),
        Activation::Gelu => gelu_grad(x),
    }
}

/// Leaky ReLU as PyTorch: `x` where `x > 0`, else `alpha x` (for any `alpha`, also above 1;
/// NaN stays NaN).
#[inline(always)]
fn leaky(alpha: f32, x: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        alpha * x
    }
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[inline(always)]
fn gelu_grad(x: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    cdf + x * INV_SQRT_2PI * math::exp(-0.5 * x * x)
}

#[inline(always)]
fn sigmoid_grad(x: f32) -> f32 {
    let s = sigmoid(x);
    s * (1.0 - s)
}

#[inline(always)]
fn tanh_grad(x: f32) -> f32 {
    let t = math::tanh(x);
    1.0 - t * t
}

/// `Op::Act`.
pub fn act(a: Activation, x: &[f32], y: &mut [f32]) {
    // One loop per activation, with the whole body inlined, so each vectorises (a `match`
    // per element would not).
    match a {
        Activation::Relu => map1(x, y, relu),
        Activation::LeakyRelu(alpha) => map1(x, y, |v| leaky(alpha, v)),
        Activation::Sigmoid => map1(x, y, sigmoid),
        Activation::Tanh => map1(x, y, math::tanh),
        Activation::Gelu => map1(x, y, gelu),
    }
}

/// `Op::ActBackward`: `dx = f'(x) dy`.
pub fn act_backward(a: Activation, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    match a {
        Activation::Relu => map2(x, dy, dx, |v, g| if v <= 0.0 { 0.0 } else { g }),
        Activation::LeakyRelu(alpha) => {
            map2(x, dy, dx, move |v, g| if v > 0.0 { g } else { alpha * g })
        }
        Activation::Sigmoid => map2(x, dy, dx, |v, g| sigmoid_grad(v) * g),
        Activation::Tanh => map2(x, dy, dx, |v, g| tanh_grad(v) * g),
        Activation::Gelu => map2(x, dy, dx, |v, g| gelu_grad(v) * g),
    }
}

/// `Op::MaxPool2`: 2x2 windows, stride 2; odd trailing rows/columns dropped. NaN propagates.
pub fn maxpool2(x: &[f32], shape: &[usize], y: &mut [f32]) {
    let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
    let (oh, ow) = (h / 2, w / 2);
    rows_mut(&mut y[..n * c * oh * ow], oh * ow, |p0, yb| {
        for (j, yp) in yb.chunks_mut(oh * ow).enumerate() {
            let xp = &x[(p0 + j) * h * w..(p0 + j + 1) * h * w];
            for i in 0..oh {
                let (r0, r1) = (&xp[2 * i * w..], &xp[(2 * i + 1) * w..]);
                for (jj, o) in yp[i * ow..(i + 1) * ow].iter_mut().enumerate() {
                    let mut m = r0[2 * jj];
                    for v in [r0[2 * jj + 1], r1[2 * jj], r1[2 * jj + 1]] {
                        if v > m || v.is_nan() {
                            m = v;
                        }
                    }
                    *o = m;
                }
            }
        }
    });
}

/// `Op::MaxPool2Backward`: each window's gradient goes to its first element (row-major) equal
/// to the pooled value, or its last NaN when the pooled value is NaN (PyTorch's index: its
/// scan takes `v > max || isnan(v)`); the other elements, and odd trailing rows/columns, get
/// zero.
pub fn maxpool2_backward(x: &[f32], shape: &[usize], y: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
    let (oh, ow) = (h / 2, w / 2);
    rows_mut(&mut dx[..n * c * h * w], h * w, |p0, db| {
        for (j, dp) in db.chunks_mut(h * w).enumerate() {
            let p = p0 + j;
            let xp = &x[p * h * w..(p + 1) * h * w];
            let yp = &y[p * oh * ow..(p + 1) * oh * ow];
            let gp = &dy[p * oh * ow..(p + 1) * oh * ow];
            dp.fill(0.0);
            for i in 0..oh {
                for jj in 0..ow {
                    let m = yp[i * ow + jj];
                    let idx = [
                        2 * i * w + 2 * jj,
                        2 * i * w + 2 * jj + 1,
                        (2 * i + 1) * w + 2 * jj,
                        (2 * i + 1) * w + 2 * jj + 1,
                    ];
                    let hit = if m.is_nan() {
                        idx.iter().rfind(|&&k| xp[k].is_nan())
                    } else {
                        idx.iter().find(|&&k| xp[k] == m)
                    };
                    if let Some(&k) = hit {
                        dp[k] = gp[i * ow + jj];
                    }
                }
            }
        }
    });
}

/// `Op::Upsample2`: nearest-neighbour, `y[2i + a, 2j + b] = x[i, j]`.
pub fn upsample2(x: &[f32], shape: &[usize], y: &mut [f32]) {
    let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
    let plane = 4 * h * w;
    rows_mut(&mut y[..n * c * plane], plane, |p0, yb| {
        for (j, yp) in yb.chunks_mut(plane).enumerate() {
            let xp = &x[(p0 + j) * h * w..(p0 + j + 1) * h * w];
            for (i, xr) in xp.chunks(w).enumerate() {
                let (top, bottom) = yp[4 * i * w..4 * (i + 1) * w].split_at_mut(2 * w);
                for (o, &v) in top.chunks_mut(2).zip(xr) {
                    o[0] = v;
                    o[1] = v;
                }
                bottom.copy_from_slice(top);
            }
        }
    });
}

/// `Op::Upsample2Backward`: `dx[i, j] = sum of dy over the 2x2 block at (2i, 2j)`.
pub fn upsample2_backward(dy: &[f32], shape: &[usize], dx: &mut [f32]) {
    let (n, c, h2, w2) = (shape[0], shape[1], shape[2], shape[3]);
    let (h, w) = (h2 / 2, w2 / 2);
    rows_mut(&mut dx[..n * c * h * w], h * w, |p0, db| {
        for (j, dp) in db.chunks_mut(h * w).enumerate() {
            let gp = &dy[(p0 + j) * h2 * w2..(p0 + j + 1) * h2 * w2];
            for i in 0..h {
                let (r0, r1) = (&gp[2 * i * w2..], &gp[(2 * i + 1) * w2..]);
                for (jj, o) in dp[i * w..(i + 1) * w].iter_mut().enumerate() {
                    *o = (r0[2 * jj] + r0[2 * jj + 1]) + (r1[2 * jj] + r1[2 * jj + 1]);
                }
            }
        }
    });
}

/// `Op::ConcatChannels`.
pub fn concat_channels(a: &[f32], a_shape: &[usize], b: &[f32], b_shape: &[usize], y: &mut [f32]) {
    let n = a_shape[0];
    let hw = a_shape[2] * a_shape[3];
    let (la, lb) = (a_shape[1] * hw, b_shape[1] * hw);
    let per = la + lb;
    let one = |i: usize, yi: &mut [f32]| {
        yi[..la].copy_from_slice(&a[i * la..(i + 1) * la]);
        yi[la..].copy_from_slice(&b[i * lb..(i + 1) * lb]);
    };
    if per == 0 {
        return;
    }
    let y = &mut y[..n * per];
    if y.len() < PAR_MIN {
        y.chunks_mut(per).enumerate().for_each(|(i, yi)| one(i, yi));
    } else {
        y.par_chunks_mut(per)
            .enumerate()
            .for_each(|(i, yi)| one(i, yi));
    }
}

/// `Op::SplitChannels`: the first `first` channels to `da`, the rest to `db`.
pub fn split_channels(dy: &[f32], shape: &[usize], first: usize, da: &mut [f32], db: &mut [f32]) {
    let (n, c) = (shape[0], shape[1]);
    let hw = shape[2] * shape[3];
    let (la, lb) = (first * hw, (c - first) * hw);
    let per = la + lb;
    for i in 0..n {
        let src = &dy[i * per..(i + 1) * per];
        da[i * la..(i + 1) * la].copy_from_slice(&src[..la]);
        db[i * lb..(i + 1) * lb].copy_from_slice(&src[la..]);
    }
}

/// `Op::Dropout` and `Op::DropoutBackward` (the same map): `y[i] = x[i] / (1 - p)` when
/// `dropout_keep(seed, i, p)`, else 0. The element index is taken modulo 2^32.
pub fn dropout(x: &[f32], p: f32, seed: u32, y: &mut [f32]) {
    let scale = 1.0 / (1.0 - p);
    map1_indexed(x, y, |i, v| {
        if dropout_keep(seed, i as u32, p) {
            v * scale
        } else {
            0.0
        }
    });
}

/// `Op::Embedding`: row `ids[r]` of `table[v, d]`, or zeros when the id is negative, not
/// below `v` or not finite. Non-integral ids are truncated toward zero (ids are meant to be
/// integral).
pub fn embedding(ids: &[f32], table: &[f32], table_shape: &[usize], y: &mut [f32]) {
    let (v, d) = (table_shape[0], table_shape[1]);
    if d == 0 {
        return;
    }
    rows_mut(&mut y[..ids.len() * d], d, |r0, yb| {
        for (j, yr) in yb.chunks_mut(d).enumerate() {
            let id = ids[r0 + j];
            if id >= 0.0 && id < v as f32 && (id as usize) < v {
                let k = id as usize;
                yr.copy_from_slice(&table[k * d..(k + 1) * d]);
            } else {
                yr.fill(0.0);
            }
        }
    });
}
