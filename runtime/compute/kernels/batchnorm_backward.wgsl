// Op::BatchNormBackward: x, dy, gamma, mean, invstd -> dx, dgamma, dbeta (per channel of
// x[n, c, ..]), as on the CPU:
//   dbeta = sum dy,  dgamma = invstd * sum dy (x - mean),
//   dx = k1 dy - k2 - k3 (x - mean) with k1 = gamma invstd, k2 = k1 dbeta / M,
//   k3 = k1 invstd dgamma / M (M = elements per channel).
// Passes: `partial` (one workgroup per (channel, chunk): both sums into part[2 (ch chunks + q)
// ..]), `finish` (one thread per channel), `apply` (one thread per element).

struct Params {
    c: u32,
    outer: u32,
    inner: u32,
    chunks: u32,
    chunk_len: u32,
    n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> invstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(8) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(9) var<storage, read_write> part: array<f32>;

var<workgroup> red: array<vec2<f32>, 256>;

@compute @workgroup_size(256)
fn partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let g = wg.y * nwg.x + wg.x;
    let ch = g / p.chunks;
    let q = g % p.chunks;
    var s = vec2<f32>(0.0);
    if (ch < p.c) {
        let m = mean[ch];
        let count = p.outer * p.inner;
        let start = q * p.chunk_len;
        let end = min(count, start + p.chunk_len);
        for (var j = start + li; j < end; j += 256u) {
            let o = j / p.inner;
            let r = j % p.inner;
            let k = (o * p.c + ch) * p.inner + r;
            let d = dy[k];
            s += vec2<f32>(d, d * (x[k] - m));
        }
    }
    red[li] = s;
    workgroupBarrier();
    for (var st = 128u; st > 0u; st >>= 1u) {
        if (li < st) {
            red[li] += red[li + st];
        }
        workgroupBarrier();
    }
    if (li == 0u && ch < p.c) {
        let k = 2u * (ch * p.chunks + q);
        part[k] = red[0].x;
        part[k + 1u] = red[0].y;
    }
}

@compute @workgroup_size(256)
fn finish(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let ch = (wg.y * nwg.x + wg.x) * 256u + li;
    if (ch < p.c) {
        var sd = 0.0;
        var sdx = 0.0;
        for (var q = 0u; q < p.chunks; q++) {
            let k = 2u * (ch * p.chunks + q);
            sd += part[k];
            sdx += part[k + 1u];
        }
        dbeta[ch] = sd;
        dgamma[ch] = sdx * invstd[ch];
    }
}

@compute @workgroup_size(256)
fn apply(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < p.n) {
        let ch = (i / p.inner) % p.c;
        let count = f32(p.outer * p.inner);
        let is = invstd[ch];
        let k1 = gamma[ch] * is;
        let k2 = k1 * dbeta[ch] / count;
        let k3 = k1 * is * dgamma[ch] / count;
        dx[i] = k1 * dy[i] - k2 - k3 * (x[i] - mean[ch]);
    }
}
