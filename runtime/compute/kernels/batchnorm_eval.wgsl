// Op::BatchNormEval: x[n, c, ..], gamma, beta, running_mean, running_var -> y =
// (x - running_mean) * k + beta with k = gamma / sqrt(running_var + eps) per channel.

struct Params {
    n: u32,
    c: u32,
    inner: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read> rmean: array<f32>;
@group(0) @binding(5) var<storage, read> rvar: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    // 1-D index over a 2-D grid (more than 65535 workgroups of 256 fold into rows).
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < p.n) {
        let ch = (i / p.inner) % p.c;
        let k = gamma[ch] / sqrt(rvar[ch] + p.eps);
        y[i] = (x[i] - rmean[ch]) * k + beta[ch];
    }
}
