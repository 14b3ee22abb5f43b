// Op::Dropout and Op::DropoutBackward (the same map): y[i] = x[i] * scale when
// dropout_keep(seed, i, p), else 0, with scale = 1 / (1 - p) computed on the host.
// pcg_hash and the keep rule are bit-exact copies of op.rs: u32 arithmetic wraps in WGSL as
// wrapping_mul/wrapping_add do, and (r >> 8) * 2^-24 is exact in f32.

struct Params {
    n: u32,
    seed: u32,
    p: f32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn pcg_hash(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn dropout_keep(seed: u32, i: u32, prob: f32) -> bool {
    let r = pcg_hash(i ^ pcg_hash(seed));
    return f32(r >> 8u) * (1.0 / 16777216.0) >= prob;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    // 1-D index over a 2-D grid (more than 65535 workgroups of 256 fold into rows).
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < p.n) {
        if (dropout_keep(p.seed, i, p.p)) {
            y[i] = x[i] * p.scale;
        } else {
            y[i] = 0.0;
        }
    }
}
