// Op::Attention, the masked softmax step. The host runs three passes:
//   scores[b, h, s, t] = (q_bh[s] . k_bh[t]) / sqrt(dh)   (matmul.wgsl, strided head views)
//   `main` below: softmax over t of each scores row, in place, over the unmasked keys
//          (mask[b, t] != 0); masked keys get 0 and a row with every key masked is all 0
//   y[b, s, h*dh + e] = sum_t scores[b, h, s, t] v[b, t, h*dh + e]   (matmul.wgsl)
// One workgroup of 128 per scores row; p.d = t, p.rows_per_batch = heads * s.

struct Params {
    rows: u32,
    d: u32,
    rows_per_batch: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> scores: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;

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
    let mbase = (row / p.rows_per_batch) * p.d;
    var mx = bitcast<f32>(0xff7fffffu);
    var kept = 0.0;
    if (live) {
        for (var j = li; j < p.d; j += 128u) {
            if (mask[mbase + j] != 0.0) {
                mx = max(mx, scores[base + j]);
                kept += 1.0;
            }
        }
    }
    mx = reduce(li, mx, 1u);
    kept = reduce(li, kept, 0u);
    var s = 0.0;
    if (live) {
        for (var j = li; j < p.d; j += 128u) {
            if (mask[mbase + j] != 0.0) {
                s += exp(scores[base + j] - mx);
            }
        }
    }
    s = reduce(li, s, 0u);
    let inv = 1.0 / s;
    if (live) {
        for (var j = li; j < p.d; j += 128u) {
            var v = 0.0;
            if (kept > 0.0 && mask[mbase + j] != 0.0) {
                v = exp(scores[base + j] - mx) * inv;
            }
            scores[base + j] = v;
        }
    }
}
