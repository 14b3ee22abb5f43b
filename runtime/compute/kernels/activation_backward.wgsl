// Op::ActBackward: x, dy -> dx = f'(x) * dy, PyTorch's rules: relu' is 0 for x <= 0 and 1
// otherwise (a NaN passes dy on); leaky relu takes the slope of the negative side (alpha) at 0
// and at NaN. GELU's derivative is the exact Phi(x) + x phi(x) with Phi through erf.

// kind: 0 relu, 1 leaky relu (alpha), 2 sigmoid, 3 tanh, 4 gelu.
struct Params {
    n: u32,
    kind: u32,
    alpha: f32,
}

// erf by Abramowitz & Stegun 7.1.26, written exactly as op::erf (same constants and order).
fn erf(x: f32) -> f32 {
    var s = 1.0;
    if (x < 0.0) {
        s = -1.0;
    }
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let y = 1.0
        - (((((1.0614054 * t - 1.4531521) * t) + 1.4214137) * t - 0.28449674) * t
            + 0.2548296)
            * t
            * exp(-a * a);
    return s * y;
}

// The logistic function without overflow (the CPU formula).
fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

// tanh saturates to +-1 in f32 beyond |x| = 10; clamping keeps drivers that compute it
// through exp from returning inf / inf.
fn tanh_(x: f32) -> f32 {
    return tanh(clamp(x, -10.0, 10.0));
}

const FRAC_1_SQRT_2: f32 = 0.70710677;
const INV_SQRT_2PI: f32 = 0.3989423;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

fn grad(v: f32) -> f32 {
    switch p.kind {
        case 0u: {
            // 0 for v <= 0, else 1: a NaN passes the gradient on, as in PyTorch.
            return select(1.0, 0.0, v <= 0.0);
        }
        case 1u: {
            return select(p.alpha, 1.0, v > 0.0);
        }
        case 2u: {
            let s = sigmoid(v);
            return s * (1.0 - s);
        }
        case 3u: {
            let t = tanh_(v);
            return 1.0 - t * t;
        }
        default: {
            let cdf = 0.5 * (1.0 + erf(v * FRAC_1_SQRT_2));
            return cdf + v * INV_SQRT_2PI * exp(-0.5 * v * v);
        }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    // 1-D index over a 2-D grid (more than 65535 workgroups of 256 fold into rows).
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < p.n) {
        if (p.kind == 0u) {
            // As the CPU: relu passes dy through untouched (no multiply by 1), NaN included.
            dx[i] = select(dy[i], 0.0, x[i] <= 0.0);
        } else {
            dx[i] = grad(x[i]) * dy[i];
        }
    }
}
