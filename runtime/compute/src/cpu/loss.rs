//! Losses (value and gradient in one pass) and optimizers (in place).
//!
//! Loss sums are accumulated in `f64` with the fixed chunking of [`super::par`]. An empty
//! input gives a zero loss (PyTorch gives NaN for the mean of nothing).

use rayon::prelude::*;

use super::math;
use super::par::{
    chunked_sums, chunked_sums_out, map2, seq_sum, simd_fn, CHUNK, PAR_MIN, SUM_CHUNK,
};

/// `Op::MseLoss`: `loss = mean((p - t)^2)`, `dp = 2 (p - t) / N`.
pub fn mse_loss(pred: &[f32], target: &[f32], loss: &mut f32, dpred: &mut [f32]) {
    let n = pred.len();
    let [s] = chunked_sums(n, |r| {
        let mut acc = 0f64;
        for (&p, &t) in pred[r.clone()].iter().zip(&target[r]) {
            let d = (p - t) as f64;
            acc += d * d;
        }
        [acc]
    });
    *loss = if n > 0 { (s / n as f64) as f32 } else { 0.0 };
    let k = if n > 0 { (2.0 / n as f64) as f32 } else { 0.0 };
    map2(pred, target, dpred, |p, t| (p - t) * k);
}

/// `Op::BceWithLogits`, PyTorch's `BCEWithLogitsLoss(pos_weight=w)` with mean reduction:
/// `l = w t softplus(-x) + (1 - t) softplus(x)` (that is
/// `-(w t log σ(x) + (1 - t) log(1 - σ(x)))`), `dx = (σ(x) (w t + 1 - t) - w t) / N`.
pub fn bce_with_logits(
    logits: &[f32],
    target: &[f32],
    pos_weight: f32,
    loss: &mut f32,
    dlogits: &mut [f32],
) {
    let n = logits.len();
    let w = pos_weight;
    let k = if n > 0 { (1.0 / n as f64) as f32 } else { 0.0 };
    // One pass: per-element loss terms into a scratch chunk (so the loop vectorises), then
    // their f64 sum. softplus(±x) = max(±x, 0) + log1p(e) and σ(x) share e = exp(-|x|).
    let [s] = chunked_sums_out(dlogits, |off, d| {
        let mut terms = [0f32; SUM_CHUNK];
        let terms = &mut terms[..d.len()];
        let r = off..off + d.len();
        bce_chunk(&logits[r.clone()], &target[r], w, k, d, terms);
        [seq_sum(terms)]
    });
    *loss = if n > 0 { (s / n as f64) as f32 } else { 0.0 };
}

simd_fn! {
    /// BCE loss terms and gradients of one chunk.
    fn bce_chunk(xs: &[f32], ts: &[f32], w: f32, k: f32, d: &mut [f32], terms: &mut [f32]) {
        for (((o, l), &x), &t) in d.iter_mut().zip(terms.iter_mut()).zip(xs).zip(ts) {
            let e = math::exp(-x.abs());
            let lp = math::log1p_unit(e);
            let sp_pos = x.max(0.0) + lp; // softplus(x) = -log(1 - σ(x))
            let sp_neg = (-x).max(0.0) + lp; // softplus(-x) = -log σ(x)
            let wt = w * t;
            *l = wt * sp_neg + (1.0 - t) * sp_pos;
            let inv = 1.0 / (1.0 + e);
            let sig = if x >= 0.0 { inv } else { e * inv };
            *o = (sig * (wt + 1.0 - t) - wt) * k;
        }
    }
}

/// `Op::DiceLoss`: `L = 1 - (2 Σ p t + eps) / (Σ p + Σ t + eps)` over all elements;
/// with `A = 2 Σ p t + eps` and `B = Σ p + Σ t + eps`, `dL/dp_i = (A - 2 t_i B) / B^2`.
pub fn dice_loss(probs: &[f32], target: &[f32], eps: f32, loss: &mut f32, dprobs: &mut [f32]) {
    let n = probs.len();
    let [spt, sp, st] = chunked_sums(n, |r| {
        let mut acc = [0f64; 3];
        for (&p, &t) in probs[r.clone()].iter().zip(&target[r]) {
            acc[0] += p as f64 * t as f64;
            acc[1] += p as f64;
            acc[2] += t as f64;
        }
        acc
    });
    let a = 2.0 * spt + eps as f64;
    let b = sp + st + eps as f64;
    *loss = (1.0 - a / b) as f32;
    let (k0, k1) = ((a / (b * b)) as f32, (2.0 / b) as f32);
    map2(probs, target, dprobs, |_, t| k0 - k1 * t);
}

/// `Op::Sgd`, in place: `v = momentum v + (g + wd p)`, `p -= lr v`.
///
/// PyTorch initialises its momentum buffer to the first gradient; with `v` starting at zero
/// (as buffers from `alloc` do) the formula above gives the same first step, so this follows
/// the contract. With `momentum == 0`, `v` is just the last decayed gradient.
pub fn sgd(
    grad: &[f32],
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    param: &mut [f32],
    vel: &mut [f32],
) {
    let h = [lr, momentum, weight_decay];
    if grad.len() < PAR_MIN {
        sgd_chunk(grad, param, vel, h);
    } else {
        grad.par_chunks(CHUNK)
            .zip(param.par_chunks_mut(CHUNK))
            .zip(vel.par_chunks_mut(CHUNK))
            .for_each(|((g, p), v)| sgd_chunk(g, p, v, h));
    }
}

simd_fn! {
    fn sgd_chunk(g: &[f32], p: &mut [f32], v: &mut [f32], h: [f32; 3]) {
        let [lr, momentum, weight_decay] = h;
        for ((&g, p), v) in g.iter().zip(p.iter_mut()).zip(v.iter_mut()) {
            let d = g + weight_decay * *p;
            *v = momentum * *v + d;
            *p -= lr * *v;
        }
    }
}

/// Adam hyper-parameters.
#[derive(Clone, Copy, Debug)]
pub struct AdamParams {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub decoupled: bool,
    pub step: u32,
}

/// `Op::Adam`, in place, PyTorch semantics (`torch.optim.Adam` / `AdamW`, non-amsgrad,
/// non-fused):
/// ```text
/// if decoupled: p *= 1 - lr wd        else: g += wd p
/// m = lerp(m, g, 1 - b1);  v = b2 v + (1 - b2) g^2
/// p -= lr / (1 - b1^step) * (m / (sqrt(v) / sqrt(1 - b2^step) + eps))
/// ```
/// The bias corrections are computed in `f64`, like PyTorch's Python scalars. `step == 0`
/// (outside the contract, which counts from 1) is treated as step 1.
pub fn adam(grad: &[f32], h: AdamParams, param: &mut [f32], m: &mut [f32], v: &mut [f32]) {
    let step = h.step.max(1) as i32;
    let bc1 = 1.0 - (h.beta1 as f64).powi(step);
    let bc2_sqrt = (1.0 - (h.beta2 as f64).powi(step)).sqrt();
    let step_size = (h.lr as f64 / bc1) as f32;
    let bc2_sqrt = bc2_sqrt as f32;
    let decay = if h.decoupled {
        (1.0 - h.lr as f64 * h.weight_decay as f64) as f32
    } else {
        1.0
    };
    let l2 = if h.decoupled { 0.0 } else { h.weight_decay };
    let w1 = (1.0 - h.beta1 as f64) as f32;
    let k = [l2, decay, w1, h.beta2, bc2_sqrt, h.eps, step_size];
    if grad.len() < PAR_MIN {
        adam_chunk(grad, param, m, v, k);
    } else {
        grad.par_chunks(CHUNK)
            .zip(param.par_chunks_mut(CHUNK))
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .for_each(|(((g, p), m), v)| adam_chunk(g, p, m, v, k));
    }
}

simd_fn! {
    fn adam_chunk(g: &[f32], p: &mut [f32], m: &mut [f32], v: &mut [f32], k: [f32; 7]) {
        let [l2, decay, w1, b2, bc2_sqrt, eps, step_size] = k;
        for (((&g, p), m), v) in g
            .iter()
            .zip(p.iter_mut())
            .zip(m.iter_mut())
            .zip(v.iter_mut())
        {
            let g = g + l2 * *p;
            *p *= decay;
            // torch.lerp(m, g, 1 - b1), as PyTorch writes it.
            *m = if w1 < 0.5 {
                *m + w1 * (g - *m)
            } else {
                g - (g - *m) * (1.0 - w1)
            };
            *v = b2 * *v + (1.0 - b2) * g * g;
            let denom = v.sqrt() / bc2_sqrt + eps;
            *p -= step_size * (*m / denom);
        }
    }
}
