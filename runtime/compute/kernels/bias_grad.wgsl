// Op::BiasGrad: dy[outer, c, inner] -> db[c], the sum over every axis but the channel axis.
// Two passes: a partial pass writes part[ch * chunks + q] (chunk q of channel ch's elements),
// then `finish` adds the chunks of each channel in order.
//   `partial`      (inner > 1): one workgroup per (channel, chunk), a tree reduction;
//   `partial_rows` (inner == 1, rows of c as after a dense layer): one thread per channel
//                  and row chunk, so that neighbouring threads read neighbouring columns.

struct Params {
    c: u32,
    outer: u32,
    inner: u32,
    chunks: u32,
    chunk_len: u32,
    col_blocks: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let g = wg.y * nwg.x + wg.x;
    let ch = g / p.chunks;
    let q = g % p.chunks;
    var s = 0.0;
    if (ch < p.c) {
        let count = p.outer * p.inner;
        let start = q * p.chunk_len;
        let end = min(count, start + p.chunk_len);
        for (var j = start + li; j < end; j += 256u) {
            let o = j / p.inner;
            let r = j % p.inner;
            s += dy[(o * p.c + ch) * p.inner + r];
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
        part[ch * p.chunks + q] = red[0];
    }
}

@compute @workgroup_size(256)
fn partial_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let g = wg.y * nwg.x + wg.x;
    let col = (g % p.col_blocks) * 256u + li;
    let q = g / p.col_blocks;
    if (col < p.c && q < p.chunks) {
        let start = q * p.chunk_len;
        let end = min(p.outer, start + p.chunk_len);
        var s = 0.0;
        for (var o = start; o < end; o++) {
            s += dy[o * p.c + col];
        }
        part[col * p.chunks + q] = s;
    }
}

@compute @workgroup_size(256)
fn finish(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let ch = (wg.y * nwg.x + wg.x) * 256u + li;
    if (ch < p.c) {
        var s = 0.0;
        for (var q = 0u; q < p.chunks; q++) {
            s += part[ch * p.chunks + q];
        }
        db[ch] = s;
    }
}
