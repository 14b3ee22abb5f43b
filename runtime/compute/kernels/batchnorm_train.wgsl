// Op::BatchNormTrain: x[n, c, ..], gamma[c], beta[c] -> y, mean[c], invstd[c], with batch
// statistics over every axis but 1 (biased variance). As on the CPU, the sums are of
// x - shift and (x - shift)^2 with shift = the channel's first element (x[0, ch, 0..]), so the
// one-pass variance does not cancel. Three passes:
//   `partial`: one workgroup per (channel, chunk of its n * inner elements), both sums into
//              part[2 (ch * chunks + q) ..];
//   `finish`:  one thread per channel: mean = shift + s1 / count,
//              var = max(s2 / count - (s1 / count)^2, 0), invstd = 1 / sqrt(var + eps);
//   `apply`:   one thread per element: y = (x - mean) * (invstd * gamma) + beta.

struct Params {
    c: u32,
    outer: u32,
    inner: u32,
    chunks: u32,
    chunk_len: u32,
    n: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> invstd: array<f32>;
@group(0) @binding(7) var<storage, read_write> part: array<f32>;

var<workgroup> red: array<vec2<f32>, 256>;

@compute @workgroup_size(256)
fn partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let g = wg.y * nwg.x + wg.x;
    let ch = g / p.chunks;
    let q = g % p.chunks;
    var s = vec2<f32>(0.0);
    if (ch < p.c) {
        let shift = x[ch * p.inner];
        let count = p.outer * p.inner;
        let start = q * p.chunk_len;
        let end = min(count, start + p.chunk_len);
        for (var j = start + li; j < end; j += 256u) {
            let o = j / p.inner;
            let r = j % p.inner;
            let d = x[(o * p.c + ch) * p.inner + r] - shift;
            s += vec2<f32>(d, d * d);
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
        var s1 = 0.0;
        var s2 = 0.0;
        for (var q = 0u; q < p.chunks; q++) {
            let k = 2u * (ch * p.chunks + q);
            s1 += part[k];
            s2 += part[k + 1u];
        }
        let count = f32(p.outer * p.inner);
        var m = 0.0;
        var v = 0.0;
        if (count > 0.0) {
            let ms = s1 / count;
            m = x[ch * p.inner] + ms;
            v = max(s2 / count - ms * ms, 0.0);
        }
        mean[ch] = m;
        invstd[ch] = 1.0 / sqrt(v + p.eps);
    }
}

@compute @workgroup_size(256)
fn apply(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < p.n) {
        let ch = (i / p.inner) % p.c;
        y[i] = (x[i] - mean[ch]) * (invstd[ch] * gamma[ch]) + beta[ch];
    }
}
