// Op::LayerNormBackward over the last axis: x, dy, gamma, mean, invstd -> dx, dgamma, dbeta.
// With g = dy * gamma and xhat = (x - mean) * invstd per row:
//   dx = invstd * (g - mean(g) - xhat * mean(g xhat))       (`main`: one workgroup per row)
//   dgamma = sum over rows of dy xhat, dbeta = sum over rows of dy
//     (`cols_partial`: one thread per column and row chunk into part[2 (j chunks + q) ..],
//      `cols_finish`: one thread per column adds the chunks in order).

struct Params {
    rows: u32,
    d: u32,
    chunks: u32,
    chunk_len: u32,
    col_blocks: u32,
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

var<workgroup> red: array<f32, 128>;

// Reduces red[0..128] into red[0] with op (0 sum, 1 max) and returns it to every invocation;
// leaves red free for reuse. Every invocation of the workgroup must call it.
fn reduce(li: u32, v: f32, op: u32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var s = 64u; s > 0u; s >>= 1u) {
        if (li < s) {
            if (op == 0u) {
                red[li] += red[li + s];
            } else {
                red[li] = max(red[li], red[li + s]);
            }
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    // One workgroup per row (rows beyond 65535 fold into a 2-D grid; spare workgroups idle).
    let row = wg.y * nwg.x + wg.x;
    let live = row < p.rows;
    let base = row * p.d;
    var mu = 0.0;
    var is = 0.0;
    if (live) {
        mu = mean[row];
        is = invstd[row];
    }
    var sg = 0.0;
    var sgx = 0.0;
    if (live) {
        for (var j = li; j < p.d; j += 128u) {
            let xh = (x[base + j] - mu) * is;
            let g = dy[base + j] * gamma[j];
            sg += g;
            sgx += g * xh;
        }
    }
    let fd = f32(p.d);
    let mg = reduce(li, sg, 0u) / fd;
    let mgx = reduce(li, sgx, 0u) / fd;
    if (live) {
        for (var j = li; j < p.d; j += 128u) {
            let xh = (x[base + j] - mu) * is;
            dx[base + j] = is * (dy[base + j] * gamma[j] - mg - xh * mgx);
        }
    }
}

@compute @workgroup_size(256)
fn cols_partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let g = wg.y * nwg.x + wg.x;
    let col = (g % p.col_blocks) * 256u + li;
    let q = g / p.col_blocks;
    if (col < p.d && q < p.chunks) {
        let start = q * p.chunk_len;
        let end = min(p.rows, start + p.chunk_len);
        var sg = 0.0;
        var sb = 0.0;
        for (var r = start; r < end; r++) {
            let k = r * p.d + col;
            let d = dy[k];
            sg += d * ((x[k] - mean[r]) * invstd[r]);
            sb += d;
        }
        let o = 2u * (col * p.chunks + q);
        part[o] = sg;
        part[o + 1u] = sb;
    }
}

@compute @workgroup_size(256)
fn cols_finish(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let col = (wg.y * nwg.x + wg.x) * 256u + li;
    if (col < p.d) {
        var sg = 0.0;
        var sb = 0.0;
        for (var q = 0u; q < p.chunks; q++) {
            let o = 2u * (col * p.chunks + q);
            sg += part[o];
            sb += part[o + 1u];
        }
        dgamma[col] = sg;
        dbeta[col] = sb;
    }
}
