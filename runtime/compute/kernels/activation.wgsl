// Op::Act: x -> y = f(x). One thread per element.

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
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn act(v: f32) -> f32 {
    switch p.kind {
        case 0u: {
            // Not max(v, 0.0): that may turn NaN into 0 and hide it from the loss.
            return select(v, 0.0, v < 0.0);
        }
        case 1u: {
            // PyTorch's leaky relu: v for v > 0, else alpha v (any alpha; NaN stays NaN).
            return select(p.alpha * v, v, v > 0.0);
        }
        case 2u: {
            return sigmoid(v);
        }
        case 3u: {
            return tanh_(v);
        }
        default: {
            return 0.5 * v * (1.0 + erf(v * FRAC_1_SQRT_2));
        }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    // 1-D index over a 2-D grid (more than 65535 workgroups of 256 fold into rows).
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < p.n) {
        y[i] = act(x[i]);
    }
}
