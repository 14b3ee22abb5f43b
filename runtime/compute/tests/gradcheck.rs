//! Gradient checks: every backward op against central finite differences of its forward op,
//! on the CPU kernels (`mlp_compute::cpu::eval`).
//!
//! The scalar checked is `L = sum(r ⊙ y)` for a fixed random `r` (so every output element
//! matters), accumulated in `f64`; its gradient with respect to `y` is `r`, which is fed to the
//! backward op. Losses are checked on their scalar value directly. Central differences use a
//! step of 5e-3 (inputs are kept at least 0.05 away from kinks) and must match each element
//! within `1e-2 * |g| + 1e-3 * max|g|`, and the whole gradient within 1e-2 relative (L2).
//!
//! MatMul gradients, for `C = op(A) op(B)` and upstream `dC`:
//!
//! | trans_a, trans_b | dA                                   | dB                                   |
//! |------------------|--------------------------------------|--------------------------------------|
//! | false, false     | MatMul{false, true}(dC, B)   = dC Bᵀ | MatMul{true, false}(A, dC)   = Aᵀ dC |
//! | true,  false     | MatMul{false, true}(B, dC)   = B dCᵀ | MatMul{false, false}(A, dC)  = A dC  |
//! | false, true      | MatMul{false, false}(dC, B)  = dC B  | MatMul{true, false}(dC, A)   = dCᵀ A |
//! | true,  true      | MatMul{true, true}(B, dC)    = Bᵀ dCᵀ| MatMul{true, true}(dC, A)    = dCᵀ Aᵀ|
//!
//! With a broadcast `B` (no batch axes) and `trans_a == false`, `dB = Aᵀ dC` over the batch
//! folded into rows: MatMul{true, false}(A as [batch m, k], dC as [batch m, n]).

use mlp_compute::cpu::eval;
use mlp_compute::op::{Activation, Op, Padding};

// -----------------------------------------------------------------------------------------
// Harness

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
    fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
    /// Values in `lo..hi` at least `gap` away from 0 (kinks of relu-like functions).
    fn vec_away_from_zero(&mut self, n: usize, lo: f32, hi: f32, gap: f32) -> Vec<f32> {
        (0..n)
            .map(|_| loop {
                let v = self.uniform(lo, hi);
                if v.abs() >= gap {
                    break v;
                }
            })
            .collect()
    }
}

/// An input of an op: data and shape.
#[derive(Clone)]
struct In(Vec<f32>, Vec<usize>);

fn forward(op: &Op, ins: &[In]) -> Vec<Vec<f32>> {
    let refs: Vec<(&[f32], &[usize])> = ins.iter().map(|i| (&i.0[..], &i.1[..])).collect();
    eval(op, &refs)
        .unwrap_or_else(|e| panic!("{}: {e}", op.name()))
        .into_iter()
        .map(|(v, _)| v)
        .collect()
}

/// `sum(r ⊙ y)` in f64.
fn project(r: &[f32], y: &[f32]) -> f64 {
    assert_eq!(r.len(), y.len());
    r.iter().zip(y).map(|(&a, &b)| a as f64 * b as f64).sum()
}

const STEP: f32 = 5e-3;

/// Compares `analytic`, the claimed gradient of `f` at `x`, with central differences.
fn compare(x: &[f32], analytic: &[f32], f: &dyn Fn(&[f32]) -> f64) -> Result<(), String> {
    if x.len() != analytic.len() {
        return Err(format!(
            "gradient has {} elements, input {}",
            analytic.len(),
            x.len()
        ));
    }
    let mut numeric = Vec::with_capacity(x.len());
    let mut xp = x.to_vec();
    for i in 0..x.len() {
        let v = x[i];
        xp[i] = v + STEP;
        let hi = xp[i];
        let fp = f(&xp);
        xp[i] = v - STEP;
        let lo = xp[i];
        let fm = f(&xp);
        xp[i] = v;
        numeric.push((fp - fm) / (hi as f64 - lo as f64));
    }
    let max = analytic
        .iter()
        .map(|v| v.abs() as f64)
        .chain(numeric.iter().map(|v| v.abs()))
        .fold(0f64, f64::max);
    let atol = 1e-3 * max + 1e-6;
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&a, &n)) in analytic.iter().zip(&numeric).enumerate() {
        let err = (a as f64 - n).abs();
        let tol = 1e-2 * (a.abs() as f64).max(n.abs()) + atol;
        if err > tol && worst.is_none_or(|(_, e)| err > e) {
            worst = Some((i, err));
        }
    }
    if let Some((i, err)) = worst {
        return Err(format!(
            "element {i}: analytic {} vs numeric {} (error {err:.3e}, {} elements)",
            analytic[i],
            numeric[i],
            x.len()
        ));
    }
    let diff: f64 = analytic
        .iter()
        .zip(&numeric)
        .map(|(&a, &n)| (a as f64 - n).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = numeric.iter().map(|n| n * n).sum::<f64>().sqrt();
    if diff > 1e-2 * norm + 1e-6 {
        return Err(format!("relative L2 error {:.3e}", diff / norm.max(1e-30)));
    }
    Ok(())
}

/// Checks the gradient of `sum(r ⊙ output[out])` of `op` with respect to input `which`.
#[track_caller]
fn check_input(what: &str, op: &Op, ins: &[In], which: usize, r: &[f32], out: usize, grad: &[f32]) {
    let f = |x: &[f32]| {
        let mut v = ins.to_vec();
        v[which].0 = x.to_vec();
        project(r, &forward(op, &v)[out])
    };
    if let Err(e) = compare(&ins[which].0, grad, &f) {
        panic!("{what}: gradient of input {which} of {}: {e}", op.name());
    }
}

/// Checks the gradient of the scalar output 0 (a loss) of `op` with respect to input 0.
#[track_caller]
fn check_loss(what: &str, op: &Op, ins: &[In], grad: &[f32]) {
    let f = |x: &[f32]| {
        let mut v = ins.to_vec();
        v[0].0 = x.to_vec();
        forward(op, &v)[0][0] as f64
    };
    if let Err(e) = compare(&ins[0].0, grad, &f) {
        panic!("{what}: gradient of {}: {e}", op.name());
    }
}

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

// -----------------------------------------------------------------------------------------
// The harness itself must be able to fail.

#[test]
fn harness_rejects_wrong_gradients() {
    let mut rng = Rng(1);
    let x = rng.vec(20, -2.0, 2.0);
    let f = |x: &[f32]| x.iter().map(|&v| (v as f64).sin()).sum::<f64>();
    let right: Vec<f32> = x.iter().map(|v| v.cos()).collect();
    compare(&x, &right, &f).unwrap();
    // A 3% error in one element, a global 2% scale, a sign flip, a wrong length.
    let mut one = right.clone();
    one[7] *= 1.03;
    one[7] += 0.01;
    assert!(compare(&x, &one, &f).is_err());
    let scaled: Vec<f32> = right.iter().map(|v| v * 1.02).collect();
    assert!(compare(&x, &scaled, &f).is_err());
    let mut flipped = right.clone();
    flipped[3] = -flipped[3] + 0.1;
    assert!(compare(&x, &flipped, &f).is_err());
    assert!(compare(&x, &right[1..], &f).is_err());
    // A wrong backward op: tanh' for a sigmoid.
    let xs = vec![20];
    let r = rng.vec(20, -1.0, 1.0);
    let wrong = forward(
        &Op::ActBackward(Activation::Tanh),
        &[In(x.clone(), xs.clone()), In(r.clone(), xs.clone())],
    );
    let op = Op::Act(Activation::Sigmoid);
    let g = |x: &[f32]| project(&r, &forward(&op, &[In(x.to_vec(), xs.clone())])[0]);
    assert!(compare(&x, &wrong[0], &g).is_err());
}

// -----------------------------------------------------------------------------------------
// MatMul

fn mm(ta: bool, tb: bool, a: &In, b: &In) -> In {
    let op = Op::MatMul {
        trans_a: ta,
        trans_b: tb,
    };
    let refs = [(&a.0[..], &a.1[..]), (&b.0[..], &b.1[..])];
    let (v, s) = eval(&op, &refs).unwrap().remove(0);
    In(v, s)
}

/// `[.., r, c]` with the last two axes swapped when `t`.
fn mat_shape(batch: &[usize], r: usize, c: usize, t: bool) -> Vec<usize> {
    let mut s = batch.to_vec();
    if t {
        s.extend([c, r]);
    } else {
        s.extend([r, c]);
    }
    s
}

#[test]
fn matmul_gradients_all_transposes() {
    let mut rng = Rng(2);
    let (m, k, n) = (3, 4, 5);
    for batch in [vec![], vec![2]] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let ash = mat_shape(&batch, m, k, ta);
            let bsh = mat_shape(&batch, k, n, tb);
            let a = In(rng.vec(numel(&ash), -1.0, 1.0), ash);
            let b = In(rng.vec(numel(&bsh), -1.0, 1.0), bsh);
            let op = Op::MatMul {
                trans_a: ta,
                trans_b: tb,
            };
            let c = mm(ta, tb, &a, &b);
            let dc = In(rng.vec(c.0.len(), -1.0, 1.0), c.1.clone());
            let (da, db) = match (ta, tb) {
                (false, false) => (mm(false, true, &dc, &b), mm(true, false, &a, &dc)),
                (true, false) => (mm(false, true, &b, &dc), mm(false, false, &a, &dc)),
                (false, true) => (mm(false, false, &dc, &b), mm(true, false, &dc, &a)),
                (true, true) => (mm(true, true, &b, &dc), mm(true, true, &dc, &a)),
            };
            assert_eq!(da.1, a.1);
            assert_eq!(db.1, b.1);
            let what = format!("batch {batch:?}, trans_a {ta}, trans_b {tb}");
            let ins = [a, b];
            check_input(&what, &op, &ins, 0, &dc.0, 0, &da.0);
            check_input(&what, &op, &ins, 1, &dc.0, 0, &db.0);
        }
    }
}

#[test]
fn matmul_gradient_of_broadcast_operand() {
    let mut rng = Rng(3);
    let (bt, m, k, n) = (3, 2, 4, 3);
    let a = In(rng.vec(bt * m * k, -1.0, 1.0), vec![bt, m, k]);
    let b = In(rng.vec(k * n, -1.0, 1.0), vec![k, n]);
    let c = mm(false, false, &a, &b);
    let dc = rng.vec(c.0.len(), -1.0, 1.0);
    let da = mm(false, true, &In(dc.clone(), c.1.clone()), &b);
    let db = mm(
        true,
        false,
        &In(a.0.clone(), vec![bt * m, k]),
        &In(dc.clone(), vec![bt * m, n]),
    );
    let op = Op::MatMul {
        trans_a: false,
        trans_b: false,
    };
    let ins = [a, b];
    check_input("broadcast b", &op, &ins, 0, &dc, 0, &da.0);
    check_input("broadcast b", &op, &ins, 1, &dc, 0, &db.0);
}

// -----------------------------------------------------------------------------------------
// Pointwise

#[test]
fn bias_add_and_bias_grad() {
    let mut rng = Rng(4);
    let shape = vec![2, 3, 4];
    for axis in 0..3 {
        let x = In(rng.vec(24, -1.0, 1.0), shape.clone());
        let b = In(rng.vec(shape[axis], -1.0, 1.0), vec![shape[axis]]);
        let r = rng.vec(24, -1.0, 1.0);
        let op = Op::BiasAdd { axis };
        let db = forward(&Op::BiasGrad { axis }, &[In(r.clone(), shape.clone())]);
        let ins = [x, b];
        check_input("bias_add", &op, &ins, 0, &r, 0, &r); // dx = dy
        check_input("bias_add", &op, &ins, 1, &r, 0, &db[0]);
    }
}

#[test]
fn activations() {
    let mut rng = Rng(5);
    let shape = vec![4, 10];
    for a in [
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::LeakyRelu(1.5),
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Gelu,
    ] {
        let x = In(rng.vec_away_from_zero(40, -4.0, 4.0, 0.05), shape.clone());
        let r = rng.vec(40, -1.0, 1.0);
        let dx = forward(
            &Op::ActBackward(a),
            &[x.clone(), In(r.clone(), shape.clone())],
        );
        check_input(&format!("{a:?}"), &Op::Act(a), &[x], 0, &r, 0, &dx[0]);
    }
}

#[test]
fn elementwise_binary_ops() {
    let mut rng = Rng(6);
    let s = vec![7];
    let a = In(rng.vec(7, -1.0, 1.0), s.clone());
    let b = In(rng.vec(7, -1.0, 1.0), s.clone());
    let r = rng.vec(7, -1.0, 1.0);
    let ins = [a.clone(), b.clone()];
    // Mul: da = dy * b, db = dy * a.
    let da = forward(&Op::Mul, &[In(r.clone(), s.clone()), b.clone()]);
    let db = forward(&Op::Mul, &[In(r.clone(), s.clone()), a.clone()]);
    check_input("mul", &Op::Mul, &ins, 0, &r, 0, &da[0]);
    check_input("mul", &Op::Mul, &ins, 1, &r, 0, &db[0]);
    // AddScaled: da = dy, db = alpha dy.
    let op = Op::AddScaled { alpha: -0.7 };
    let db = forward(&Op::Scale { alpha: -0.7 }, &[In(r.clone(), s.clone())]);
    check_input("add_scaled", &op, &ins, 0, &r, 0, &r);
    check_input("add_scaled", &op, &ins, 1, &r, 0, &db[0]);
    check_input("add", &Op::Add, &ins, 1, &r, 0, &r);
    // SumAll: the gradient of the sum is one everywhere.
    let ones = vec![1f32; 7];
    check_input("sum_all", &Op::SumAll, &[a], 0, &[1.0], 0, &ones);
}

// -----------------------------------------------------------------------------------------
// Convolution

#[test]
fn conv2d_input_and_weight_gradients() {
    let mut rng = Rng(7);
    // (n, ci, h, w, co, kh, kw, stride, padding)
    let cases = [
        (2, 3, 5, 6, 4, 3, 3, 1, Padding::Same),
        (2, 2, 7, 5, 3, 3, 3, 2, Padding::Same),
        (1, 2, 6, 7, 2, 3, 3, 2, Padding::Valid),
        (1, 3, 5, 5, 2, 3, 3, 1, Padding::Valid),
        (2, 3, 5, 5, 4, 1, 1, 1, Padding::Valid),
        (1, 2, 5, 4, 3, 1, 1, 2, Padding::Same),
        (1, 2, 6, 6, 2, 2, 2, 2, Padding::Same),
        (1, 1, 5, 7, 2, 3, 2, 1, Padding::Same),
    ];
    for (n, ci, h, w, co, kh, kw, stride, padding) in cases {
        let what = format!("{n}x{ci}x{h}x{w} * {co}x{ci}x{kh}x{kw}, stride {stride}, {padding:?}");
        let x = In(rng.vec(n * ci * h * w, -1.0, 1.0), vec![n, ci, h, w]);
        let wt = In(rng.vec(co * ci * kh * kw, -1.0, 1.0), vec![co, ci, kh, kw]);
        let op = Op::Conv2d { stride, padding };
        let ins = [x.clone(), wt.clone()];
        let y = eval(&op, &[(&x.0, &x.1), (&wt.0, &wt.1)])
            .unwrap()
            .remove(0);
        let r = In(rng.vec(y.0.len(), -1.0, 1.0), y.1);
        let dx = forward(
            &Op::Conv2dBackwardInput {
                stride,
                padding,
                in_h: h,
                in_w: w,
            },
            &[r.clone(), wt.clone()],
        );
        let dw = forward(
            &Op::Conv2dBackwardWeight {
                stride,
                padding,
                kh,
                kw,
            },
            &[x.clone(), r.clone()],
        );
        check_input(&what, &op, &ins, 0, &r.0, 0, &dx[0]);
        check_input(&what, &op, &ins, 1, &r.0, 0, &dw[0]);
    }
}

// -----------------------------------------------------------------------------------------
// Pooling, upsampling, channels

#[test]
fn maxpool2_gradient() {
    let mut rng = Rng(8);
    for shape in [vec![2, 2, 4, 6], vec![1, 3, 5, 7]] {
        let len = numel(&shape);
        // Distinct values 0.1 apart (shuffled), so a step of 5e-3 never changes a maximum.
        let mut vals: Vec<f32> = (0..len).map(|i| i as f32 * 0.1 - 3.0).collect();
        for i in (1..len).rev() {
            vals.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        let x = In(vals, shape.clone());
        let y = forward(&Op::MaxPool2, std::slice::from_ref(&x)).remove(0);
        let ys = vec![shape[0], shape[1], shape[2] / 2, shape[3] / 2];
        let r = rng.vec(y.len(), -1.0, 1.0);
        let dx = forward(
            &Op::MaxPool2Backward,
            &[x.clone(), In(y, ys.clone()), In(r.clone(), ys)],
        );
        check_input("maxpool2", &Op::MaxPool2, &[x], 0, &r, 0, &dx[0]);
    }
}

#[test]
fn upsample2_gradient() {
    let mut rng = Rng(9);
    let x = In(rng.vec(2 * 3 * 3 * 4, -1.0, 1.0), vec![2, 3, 3, 4]);
    let r = rng.vec(2 * 3 * 6 * 8, -1.0, 1.0);
    let dx = forward(&Op::Upsample2Backward, &[In(r.clone(), vec![2, 3, 6, 8])]);
    check_input("upsample2", &Op::Upsample2, &[x], 0, &r, 0, &dx[0]);
}

#[test]
fn concat_channels_gradient() {
    let mut rng = Rng(10);
    let a = In(rng.vec(2 * 2 * 3 * 3, -1.0, 1.0), vec![2, 2, 3, 3]);
    let b = In(rng.vec(2 * 3 * 3 * 3, -1.0, 1.0), vec![2, 3, 3, 3]);
    let r = rng.vec(2 * 5 * 3 * 3, -1.0, 1.0);
    let parts = forward(
        &Op::SplitChannels { first: 2 },
        &[In(r.clone(), vec![2, 5, 3, 3])],
    );
    let ins = [a, b];
    check_input("concat", &Op::ConcatChannels, &ins, 0, &r, 0, &parts[0]);
    check_input("concat", &Op::ConcatChannels, &ins, 1, &r, 0, &parts[1]);
}

// -----------------------------------------------------------------------------------------
// Normalisation, softmax, dropout

#[test]
fn batchnorm_gradients() {
    let mut rng = Rng(11);
    for shape in [vec![4, 3, 2, 3], vec![6, 4], vec![3, 2, 5]] {
        let c = shape[1];
        let len = numel(&shape);
        let x = In(rng.vec(len, -2.0, 3.0), shape.clone());
        let gamma = In(rng.vec(c, 0.5, 2.0), vec![c]);
        let beta = In(rng.vec(c, -1.0, 1.0), vec![c]);
        let op = Op::BatchNormTrain { eps: 1e-3 };
        let ins = [x.clone(), gamma.clone(), beta];
        let out = forward(&op, &ins);
        let r = rng.vec(len, -1.0, 1.0);
        let g = forward(
            &Op::BatchNormBackward,
            &[
                x,
                In(r.clone(), shape.clone()),
                gamma,
                In(out[1].clone(), vec![c]),
                In(out[2].clone(), vec![c]),
            ],
        );
        let what = format!("batchnorm {shape:?}");
        for (k, grad) in g.iter().enumerate() {
            check_input(&what, &op, &ins, k, &r, 0, grad);
        }
    }
}

#[test]
fn layernorm_gradients() {
    let mut rng = Rng(12);
    for shape in [vec![3, 2, 5], vec![4, 7]] {
        let d = *shape.last().unwrap();
        let len = numel(&shape);
        let rows = len / d;
        let x = In(rng.vec(len, -2.0, 3.0), shape.clone());
        let gamma = In(rng.vec(d, 0.5, 2.0), vec![d]);
        let beta = In(rng.vec(d, -1.0, 1.0), vec![d]);
        let op = Op::LayerNorm { eps: 1e-3 };
        let ins = [x.clone(), gamma.clone(), beta];
        let out = forward(&op, &ins);
        let r = rng.vec(len, -1.0, 1.0);
        let g = forward(
            &Op::LayerNormBackward,
            &[
                x,
                In(r.clone(), shape.clone()),
                gamma,
                In(out[1].clone(), vec![rows]),
                In(out[2].clone(), vec![rows]),
            ],
        );
        let what = format!("layernorm {shape:?}");
        for (k, grad) in g.iter().enumerate() {
            check_input(&what, &op, &ins, k, &r, 0, grad);
        }
    }
}

#[test]
fn softmax_gradient() {
    let mut rng = Rng(13);
    let shape = vec![2, 3, 6];
    let x = In(rng.vec(36, -3.0, 3.0), shape.clone());
    let y = forward(&Op::Softmax, std::slice::from_ref(&x)).remove(0);
    let r = rng.vec(36, -1.0, 1.0);
    let dx = forward(
        &Op::SoftmaxBackward,
        &[In(y, shape.clone()), In(r.clone(), shape)],
    );
    check_input("softmax", &Op::Softmax, &[x], 0, &r, 0, &dx[0]);
}

#[test]
fn dropout_gradient() {
    let mut rng = Rng(14);
    let (p, seed) = (0.4, 1234);
    let x = In(rng.vec(60, -1.0, 1.0), vec![60]);
    let r = rng.vec(60, -1.0, 1.0);
    let dx = forward(&Op::DropoutBackward { p, seed }, &[In(r.clone(), vec![60])]);
    // Some elements are dropped and some kept: the check is not trivial.
    assert!(dx[0].contains(&0.0) && dx[0].iter().any(|&v| v != 0.0));
    check_input("dropout", &Op::Dropout { p, seed }, &[x], 0, &r, 0, &dx[0]);
}

// -----------------------------------------------------------------------------------------
// Losses (the op's second output is the gradient of its first)

#[test]
fn mse_loss_gradient() {
    let mut rng = Rng(15);
    let s = vec![3, 5];
    let p = In(rng.vec(15, -2.0, 2.0), s.clone());
    let t = In(rng.vec(15, -2.0, 2.0), s.clone());
    let ins = [p, t];
    let out = forward(&Op::MseLoss, &ins);
    check_loss("mse", &Op::MseLoss, &ins, &out[1]);
}

#[test]
fn bce_with_logits_gradient() {
    let mut rng = Rng(16);
    let s = vec![4, 6];
    for pos_weight in [1.0, 2.5, 0.3] {
        let x = In(rng.vec(24, -4.0, 4.0), s.clone());
        // Hard and soft targets.
        let t: Vec<f32> = (0..24)
            .map(|i| match i % 3 {
                0 => 0.0,
                1 => 1.0,
                _ => rng.uniform(0.0, 1.0),
            })
            .collect();
        let op = Op::BceWithLogits { pos_weight };
        let ins = [x, In(t, s.clone())];
        let out = forward(&op, &ins);
        check_loss(&format!("bce pos_weight {pos_weight}"), &op, &ins, &out[1]);
    }
}

#[test]
fn dice_loss_gradient() {
    let mut rng = Rng(17);
    let s = vec![2, 1, 3, 4];
    for eps in [1.0, 1e-3] {
        let p = In(rng.vec(24, 0.05, 0.95), s.clone());
        let t: Vec<f32> = (0..24).map(|_| (rng.next() % 2) as f32).collect();
        let op = Op::DiceLoss { eps };
        let ins = [p, In(t, s.clone())];
        let out = forward(&op, &ins);
        check_loss(&format!("dice eps {eps}"), &op, &ins, &out[1]);
    }
}
