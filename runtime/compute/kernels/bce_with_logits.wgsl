// Op::BceWithLogits (PyTorch's BCEWithLogitsLoss with pos_weight w, mean reduction):
//   l = w t softplus(-x) + (1 - t) softplus(x),  dx = (sigmoid(x) (w t + 1 - t) - w t) * k
// with k = 1 / n. `partial` writes dx and per-workgroup sums of l to part; sum_all.wgsl's
// `finish` (scale 1 / n) then writes the loss.

struct Params {
    n: u32,
    groups: u32,
    w: f32,
    k: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> tgt: array<f32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
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

// log(1 + u) accurate for small u (Goldberg's trick; WGSL has no log1p).
fn log1p_(u: f32) -> f32 {
    let w = 1.0 + u;
    if (w == 1.0) {
        return u;
    }
    return log(w) * (u / (w - 1.0));
}

// log(1 + exp(z)) without overflow.
fn softplus(z: f32) -> f32 {
    return max(z, 0.0) + log1p_(exp(-abs(z)));
}

fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

@compute @workgroup_size(256)
fn partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let g = wg.x;
    let span = (p.n + p.groups - 1u) / p.groups;
    let start = g * span;
    let end = min(p.n, start + span);
    var s = 0.0;
    for (var j = start + li; j < end; j += 256u) {
        let x = logits[j];
        let t = tgt[j];
        let wt = p.w * t;
        s += wt * softplus(-x) + (1.0 - t) * softplus(x);
        dlogits[j] = (sigmoid(x) * (wt + 1.0 - t) - wt) * p.k;
    }
    red[li] = s;
    workgroupBarrier();
    tree_sum(li);
    if (li == 0u) {
        part[g] = red[0];
    }
}
