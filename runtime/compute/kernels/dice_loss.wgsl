// Op::DiceLoss: probs, target -> loss[1] = 1 - A / B, dprobs[i] = A / B^2 - (2 / B) t[i], with
// A = 2 sum(p t) + eps and B = sum p + sum t + eps. Three passes: `partial` (per-workgroup sums
// of p t, p and t into part[3 g ..]), `finish` (one workgroup: the totals, the loss, and A, B
// left in part[0], part[1]), `grad` (one thread per element).

struct Params {
    n: u32,
    groups: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read> tgt: array<f32>;
@group(0) @binding(3) var<storage, read_write> dprobs: array<f32>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;

var<workgroup> red: array<vec3<f32>, 256>;

fn tree_sum3(li: u32) {
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
    var s = vec3<f32>(0.0);
    for (var j = start + li; j < end; j += 256u) {
        let a = probs[j];
        let t = tgt[j];
        s += vec3<f32>(a * t, a, t);
    }
    red[li] = s;
    workgroupBarrier();
    tree_sum3(li);
    if (li == 0u) {
        part[3u * g] = red[0].x;
        part[3u * g + 1u] = red[0].y;
        part[3u * g + 2u] = red[0].z;
    }
}

// p.groups partial triples in part.
@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_index) li: u32) {
    var s = vec3<f32>(0.0);
    for (var j = li; j < p.groups; j += 256u) {
        s += vec3<f32>(part[3u * j], part[3u * j + 1u], part[3u * j + 2u]);
    }
    red[li] = s;
    workgroupBarrier();
    tree_sum3(li);
    if (li == 0u) {
        let tot = red[0];
        let a = 2.0 * tot.x + p.eps;
        let b = tot.y + tot.z + p.eps;
        loss[0] = 1.0 - a / b;
        // Every read of part above happened before the first barrier.
        part[0] = a;
        part[1] = b;
    }
}

@compute @workgroup_size(256)
fn grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < p.n) {
        let a = part[0];
        let b = part[1];
        dprobs[i] = a / (b * b) - (2.0 / b) * tgt[i];
    }
}
