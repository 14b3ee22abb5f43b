// Op::MseLoss: pred, target -> loss[1] = mean((pred - target)^2), dpred = (pred - target) * k
// with k = 2 / n. `partial` writes dpred and per-workgroup sums of squares to part;
// sum_all.wgsl's `finish` (scale 1 / n) then writes the loss.

struct Params {
    n: u32,
    groups: u32,
    k: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> tgt: array<f32>;
@group(0) @binding(3) var<storage, read_write> dpred: array<f32>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;

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
        let d = pred[j] - tgt[j];
        s += d * d;
        dpred[j] = d * p.k;
    }
    red[li] = s;
    workgroupBarrier();
    tree_sum(li);
    if (li == 0u) {
        part[g] = red[0];
    }
}
