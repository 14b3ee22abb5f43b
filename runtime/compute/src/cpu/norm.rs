//! Normalisations (batch norm, layer norm) and softmax. Statistics are accumulated in `f64`
//! with a fixed summation order.

use rayon::prelude::*;

use super::math;
use super::par::{rows_mut, seq_sum, simd_fn, PAR_MIN};

/// `(n, c, s)`: batch, channels and the product of the remaining axes of `x[n, c, ..]`.
fn ncs(shape: &[usize]) -> (usize, usize, usize) {
    (shape[0], shape[1], shape[2..].iter().product())
}

/// Per-plane sums (plane = one image, one channel), in parallel, in plane order.
fn plane_sums<const K: usize, F>(planes: usize, f: F) -> Vec<[f64; K]>
where
    F: Fn(usize) -> [f64; K] + Sync,
{
    if planes < 64 {
        (0..planes).map(&f).collect()
    } else {
        (0..planes).into_par_iter().map(&f).collect()
    }
}

/// `Op::BatchNormTrain`: batch statistics over every axis but 1 (biased variance),
/// `y = (x - mean) * invstd * gamma + beta`.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_train(
    x: &[f32],
    shape: &[usize],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    y: &mut [f32],
    mean: &mut [f32],
    invstd: &mut [f32],
) {
    let (n, c, s) = ncs(shape);
    // Sums of (x - shift) and (x - shift)^2 per plane, shifted by the channel's first element
    // so that the one-pass variance does not cancel.
    let shift: Vec<f64> = (0..c)
        .map(|ch| if n * s > 0 { x[ch * s] as f64 } else { 0.0 })
        .collect();
    let sums = plane_sums(n * c, |pl| {
        shifted_sums(&x[pl * s..(pl + 1) * s], shift[pl % c])
    });
    let count = (n * s) as f64;
    for ch in 0..c {
        let (mut s1, mut s2) = (0f64, 0f64);
        for i in 0..n {
            let [a, b] = sums[i * c + ch];
            s1 += a;
            s2 += b;
        }
        let (m, var) = if count > 0.0 {
            let ms = s1 / count;
            (shift[ch] + ms, (s2 / count - ms * ms).max(0.0))
        } else {
            (0.0, 0.0)
        };
        mean[ch] = m as f32;
        invstd[ch] = (1.0 / (var + eps as f64).sqrt()) as f32;
    }
    let (mean, invstd) = (&*mean, &*invstd);
    rows_mut(&mut y[..n * c * s], s, |r0, yb| {
        for (j, yp) in yb.chunks_mut(s).enumerate() {
            let pl = r0 + j;
            let ch = pl % c;
            let xp = &x[pl * s..(pl + 1) * s];
            affine(yp, xp, mean[ch], invstd[ch] * gamma[ch], beta[ch]);
        }
    });
}

simd_fn! {
    /// Sums of `x - shift` and `(x - shift)^2` (four accumulators each).
    fn shifted_sums(xs: &[f32], sh: f64) -> [f64; 2] {
        let mut a = [0f64; 4];
        let mut b = [0f64; 4];
        let mut it = xs.chunks_exact(4);
        for q in &mut it {
            for ((a, b), &v) in a.iter_mut().zip(b.iter_mut()).zip(q) {
                let d = v as f64 - sh;
                *a += d;
                *b += d * d;
            }
        }
        for &v in it.remainder() {
            let d = v as f64 - sh;
            a[0] += d;
            b[0] += d * d;
        }
        [(a[0] + a[1]) + (a[2] + a[3]), (b[0] + b[1]) + (b[2] + b[3])]
    }
}

simd_fn! {
    /// `y = (x - m) k + b`.
    fn affine(y: &mut [f32], x: &[f32], m: f32, k: f32, b: f32) {
        for (o, &v) in y.iter_mut().zip(x) {
            *o = (v - m) * k + b;
        }
    }
}

/// `Op::BatchNormEval`: `y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta`.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_eval(
    x: &[f32],
    shape: &[usize],
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
    eps: f32,
    y: &mut [f32],
) {
    let (n, c, s) = ncs(shape);
    let k: Vec<f32> = (0..c)
        .map(|ch| (gamma[ch] as f64 / (running_var[ch] as f64 + eps as f64).sqrt()) as f32)
        .collect();
    rows_mut(&mut y[..n * c * s], s, |r0, yb| {
        for (j, yp) in yb.chunks_mut(s).enumerate() {
            let pl = r0 + j;
            let ch = pl % c;
            let xp = &x[pl * s..(pl + 1) * s];
            affine(yp, xp, running_mean[ch], k[ch], beta[ch]);
        }
    });
}

/// `Op::BatchNormBackward`: `x, dy, gamma, mean, invstd -> dx, dgamma, dbeta` with
/// `dbeta = sum dy`, `dgamma = sum dy * xhat`,
/// `dx = gamma * invstd / M * (M dy - dbeta - xhat dgamma)` (M = elements per channel).
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward(
    x: &[f32],
    shape: &[usize],
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    invstd: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let (n, c, s) = ncs(shape);
    let sums = plane_sums(n * c, |pl| {
        let r = pl * s..(pl + 1) * s;
        dy_sums(&x[r.clone()], &dy[r], mean[pl % c] as f64)
    });
    let count = (n * s) as f64;
    // dx = k1 dy - k2 - k3 (x - mean).
    let mut coef = vec![[0f32; 3]; c];
    for ch in 0..c {
        let (mut sd, mut sdx) = (0f64, 0f64);
        for i in 0..n {
            let [a, b] = sums[i * c + ch];
            sd += a;
            sdx += b;
        }
        let is = invstd[ch] as f64;
        let g = gamma[ch] as f64;
        dbeta[ch] = sd as f32;
        let dg = sdx * is;
        dgamma[ch] = dg as f32;
        if count > 0.0 {
            let k1 = g * is;
            coef[ch] = [
                k1 as f32,
                (k1 * sd / count) as f32,
                (k1 * is * dg / count) as f32,
            ];
        }
    }
    rows_mut(&mut dx[..n * c * s], s, |r0, db| {
        for (j, dp) in db.chunks_mut(s).enumerate() {
            let pl = r0 + j;
            let ch = pl % c;
            let xs = &x[pl * s..(pl + 1) * s];
            let ds = &dy[pl * s..(pl + 1) * s];
            bn_dx(dp, xs, ds, coef[ch], mean[ch]);
        }
    });
}

simd_fn! {
    /// Sums of `dy` and `dy (x - m)`.
    fn dy_sums(xs: &[f32], ds: &[f32], m: f64) -> [f64; 2] {
        let mut a = [0f64; 4];
        let mut b = [0f64; 4];
        let mut xi = xs.chunks_exact(4);
        let mut di = ds.chunks_exact(4);
        for (xq, dq) in (&mut xi).zip(&mut di) {
            for k in 0..4 {
                let d = dq[k] as f64;
                a[k] += d;
                b[k] += d * (xq[k] as f64 - m);
            }
        }
        for (&xv, &dv) in xi.remainder().iter().zip(di.remainder()) {
            a[0] += dv as f64;
            b[0] += dv as f64 * (xv as f64 - m);
        }
        [(a[0] + a[1]) + (a[2] + a[3]), (b[0] + b[1]) + (b[2] + b[3])]
    }
}

simd_fn! {
    /// `dx = k1 dy - k2 - k3 (x - m)`.
    fn bn_dx(dx: &mut [f32], xs: &[f32], ds: &[f32], k: [f32; 3], m: f32) {
        let [k1, k2, k3] = k;
        for ((o, &xv), &dv) in dx.iter_mut().zip(xs).zip(ds) {
            *o = k1 * dv - k2 - k3 * (xv - m);
        }
    }
}

/// Row mean and (biased) variance, two passes in `f64`.
#[inline(always)]
fn row_stats(x: &[f32]) -> (f64, f64) {
    let d = x.len() as f64;
    let mean = seq_sum(x) / d;
    let mut acc = [0f64; 4];
    let mut it = x.chunks_exact(4);
    for q in &mut it {
        for (a, &v) in acc.iter_mut().zip(q) {
            let t = v as f64 - mean;
            *a += t * t;
        }
    }
    for &v in it.remainder() {
        let t = v as f64 - mean;
        acc[0] += t * t;
    }
    (mean, ((acc[0] + acc[1]) + (acc[2] + acc[3])) / d)
}

simd_fn! {
    /// Layer norm of consecutive rows of length `gamma.len()`.
    fn layernorm_rows(
        y: &mut [f32],
        x: &[f32],
        mean: &mut [f32],
        invstd: &mut [f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
    ) {
        let d = gamma.len();
        for (((yr, xr), m), is) in y
            .chunks_mut(d)
            .zip(x.chunks(d))
            .zip(mean.iter_mut())
            .zip(invstd.iter_mut())
        {
            let (mu, var) = row_stats(xr);
            let inv = 1.0 / (var + eps as f64).sqrt();
            *m = mu as f32;
            *is = inv as f32;
            let (mu, inv) = (mu as f32, inv as f32);
            for (((o, &v), &g), &b) in yr.iter_mut().zip(xr).zip(gamma).zip(beta) {
                *o = (v - mu) * inv * g + b;
            }
        }
    }
}

/// `Op::LayerNorm` over the last axis of length `d`.
#[allow(clippy::too_many_arguments)]
pub fn layernorm(
    x: &[f32],
    d: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    y: &mut [f32],
    mean: &mut [f32],
    invstd: &mut [f32],
) {
    if d == 0 {
        return;
    }
    let rows = mean.len();
    let (gamma, beta) = (&gamma[..d], &beta[..d]);
    let body = |y: &mut [f32], x: &[f32], mean: &mut [f32], invstd: &mut [f32]| {
        layernorm_rows(y, x, mean, invstd, gamma, beta, eps)
    };
    let (y, x) = (&mut y[..rows * d], &x[..rows * d]);
    if rows * d < PAR_MIN || rows == 1 {
        body(y, x, mean, invstd);
    } else {
        let block = super::par::CHUNK.div_ceil(d);
        y.par_chunks_mut(block * d)
            .zip(x.par_chunks(block * d))
            .zip(mean.par_chunks_mut(block))
            .zip(invstd.par_chunks_mut(block))
            .for_each(|(((y, x), m), is)| body(y, x, m, is));
    }
}

/// `Op::LayerNormBackward`: with `g = dy * gamma` and `xhat = (x - mean) invstd` per row,
/// `dx = invstd (g - mean(g) - xhat mean(g xhat))`; `dgamma = sum_rows dy xhat`,
/// `dbeta = sum_rows dy`.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    x: &[f32],
    d: usize,
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    invstd: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    if d == 0 {
        return;
    }
    let rows = mean.len();
    // Rows per block: a function of d only (fixed summation order for dgamma and dbeta).
    let block = (1usize << 14).div_ceil(d).max(1);
    let gamma = &gamma[..d];
    let body = |r0: usize, dxb: &mut [f32]| -> Vec<f64> {
        let rows = r0..r0 + dxb.len() / d;
        let mut part = vec![0f64; 2 * d];
        layernorm_backward_rows(
            dxb,
            &x[rows.start * d..rows.end * d],
            &dy[rows.start * d..rows.end * d],
            gamma,
            &mean[rows.clone()],
            &invstd[rows],
            &mut part,
        );
        part
    };
    let dx = &mut dx[..rows * d];
    let parts: Vec<Vec<f64>> = if rows * d < PAR_MIN {
        dx.chunks_mut(block * d)
            .enumerate()
            .map(|(b, c)| body(b * block, c))
            .collect()
    } else {
        dx.par_chunks_mut(block * d)
            .enumerate()
            .map(|(b, c)| body(b * block, c))
            .collect()
    };
    let mut tot = vec![0f64; 2 * d];
    for p in parts {
        for (t, v) in tot.iter_mut().zip(p) {
            *t += v;
        }
    }
    for k in 0..d {
        dgamma[k] = tot[k] as f32;
        dbeta[k] = tot[d + k] as f32;
    }
}

simd_fn! {
    /// Layer-norm backward of consecutive rows; adds `dy xhat` and `dy` into `part[..d]` and
    /// `part[d..]`.
    fn layernorm_backward_rows(
        dx: &mut [f32],
        x: &[f32],
        dy: &[f32],
        gamma: &[f32],
        mean: &[f32],
        invstd: &[f32],
        part: &mut [f64],
    ) {
        let d = gamma.len();
        let (pg, pb) = part.split_at_mut(d);
        for (r, dxr) in dx.chunks_mut(d).enumerate() {
            let xr = &x[r * d..(r + 1) * d];
            let dr = &dy[r * d..(r + 1) * d];
            let (mu, is) = (mean[r], invstd[r]);
            let (mut sg, mut sgx) = (0f64, 0f64);
            for k in 0..d {
                let xh = (xr[k] - mu) * is;
                let g = dr[k] * gamma[k];
                sg += g as f64;
                sgx += (g * xh) as f64;
                pg[k] += (dr[k] * xh) as f64;
                pb[k] += dr[k] as f64;
            }
            let mg = (sg / d as f64) as f32;
            let mgx = (sgx / d as f64) as f32;
            for k in 0..d {
                let xh = (xr[k] - mu) * is;
                dxr[k] = is * (dr[k] * gamma[k] - mg - xh * mgx);
            }
        }
    }
}

/// `Op::Softmax` over the last axis of length `d` (max subtracted).
pub fn softmax(x: &[f32], d: usize, y: &mut [f32]) {
    if d == 0 {
        return;
    }
    let n = y.len() / d * d;
    rows_mut(&mut y[..n], d, |r0, yb| {
        softmax_rows(&x[r0 * d..r0 * d + yb.len()], d, yb)
    });
}

/// Maximum of a slice (eight lanes; NaNs are skipped, -inf for an empty slice).
#[inline(always)]
pub(crate) fn max_of(x: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; 8];
    let mut it = x.chunks_exact(8);
    for q in &mut it {
        for (m, &v) in m.iter_mut().zip(q) {
            *m = if v > *m { v } else { *m };
        }
    }
    let mut r = f32::NEG_INFINITY;
    for &v in m.iter().chain(it.remainder()) {
        r = if v > r { v } else { r };
    }
    r
}

simd_fn! {
    /// Softmax of consecutive rows of length `d`.
    fn softmax_rows(x: &[f32], d: usize, y: &mut [f32]) {
        for (yr, xr) in y.chunks_mut(d).zip(x.chunks(d)) {
            let mx = max_of(xr);
            for (o, &v) in yr.iter_mut().zip(xr) {
                *o = math::exp(v - mx);
            }
            let inv = (1.0 / seq_sum(yr)) as f32;
            for o in yr.iter_mut() {
                *o *= inv;
            }
        }
    }
}

/// `Op::SoftmaxBackward`: `dx = y (dy - sum(dy y))` per row.
pub fn softmax_backward(y: &[f32], dy: &[f32], d: usize, dx: &mut [f32]) {
    if d == 0 {
        return;
    }
    let n = dx.len() / d * d;
    rows_mut(&mut dx[..n], d, |r0, db| {
        let r = r0 * d..r0 * d + db.len();
        softmax_backward_rows(&y[r.clone()], &dy[r], d, db)
    });
}

simd_fn! {
    /// Softmax backward of consecutive rows of length `d`.
    fn softmax_backward_rows(y: &[f32], dy: &[f32], d: usize, dx: &mut [f32]) {
        for ((dr, yr), gr) in dx.chunks_mut(d).zip(y.chunks(d)).zip(dy.chunks(d)) {
            let mut acc = [0f64; 4];
            let mut yi = yr.chunks_exact(4);
            let mut gi = gr.chunks_exact(4);
            for (yq, gq) in (&mut yi).zip(&mut gi) {
                for k in 0..4 {
                    acc[k] += (yq[k] * gq[k]) as f64;
                }
            }
            for (&a, &b) in yi.remainder().iter().zip(gi.remainder()) {
                acc[0] += (a * b) as f64;
            }
            let dot = ((acc[0] + acc[1]) + (acc[2] + acc[3])) as f32;
            for ((o, &a), &b) in dr.iter_mut().zip(yr).zip(gr) {
                *o = a * (b - dot);
            }
        }
    }
}
