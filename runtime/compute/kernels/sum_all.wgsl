// Op::SumAll: x -> [sum of all elements], in two passes: `partial` (one workgroup per span of
// x, groups <= 1024, a tree reduction in workgroup memory) writes part[g]; `finish` (one
// workgroup) sums part[0..count] and writes scale * total to out[0]. The loss kernels reuse
// `finish` (with scale = 1 / n) after their own partial pass.

struct Params {
    n: u32,
    groups: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, 256>;

// Sums red[0..256] into red[0] (every invocation of the workgroup must call it).
fn tree_sum(li: u32) {
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] += red[li + s];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256)
fn partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let g = wg.x;
    let span = (p.n + p.groups - 1u) / p.groups;
    let start = g * span;
    let end = min(p.n, start + span);
    var s = 0.0;
    for (var j = start + li; j < end; j += 256u) {
        s += x[j];
    }
    red[li] = s;
    workgroupBarrier();
    tree_sum(li);
    if (li == 0u) {
        part[g] = red[0];
    }
}

// p.n is the number of partial sums here.
@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var j = li; j < p.n; j += 256u) {
        s += part[j];
    }
    red[li] = s;
    workgroupBarrier();
    tree_sum(li);
    if (li == 0u) {
        out[0] = red[0] * p.scale;
    }
}
