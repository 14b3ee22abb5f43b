// Op::SplitChannels: dy[n, c, h, w] -> da[n, first, h, w], db[n, c - first, h, w]. One thread
// per element of dy.

struct Params {
    n: u32,
    first: u32,
    c: u32,
    hw: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> da: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    // 1-D index over a 2-D grid (more than 65535 workgroups of 256 fold into rows).
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < p.n) {
        let per = p.c * p.hw;
        let img = i / per;
        let r = i % per;
        let la = p.first * p.hw;
        if (r < la) {
            da[img * la + r] = dy[i];
        } else {
            db[img * (per - la) + r - la] = dy[i];
        }
    }
}
