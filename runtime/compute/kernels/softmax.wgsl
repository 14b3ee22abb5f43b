// Op::Softmax over the last axis: x[rows, d] -> y. One workgroup of 128 per row: the row max,
// then the sum of exp(x - max), then y = exp(x - max) * (1 / sum).

struct Params {
    rows: u32,
    d: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

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
    var mx = bitcast<f32>(0xff7fffffu);
    if (live) {
        for (var j = li; j < p.d; j += 128u) {
            let v = x[base + j];
            mx = max(mx, v);
        }
    }
    mx = reduce(li, mx, 1u);
    var s = 0.0;
    if (live) {
        for (var j = li; j < p.d; j += 128u) {
            s += exp(x[base + j] - mx);
        }
    }
    s = reduce(li, s, 0u);
    let inv = 1.0 / s;
    if (live) {
        for (var j = li; j < p.d; j += 128u) {
            y[base + j] = exp(x[base + j] - mx) * inv;
        }
    }
}
