// Op::Embedding: ids[rows] (integral f32), table[v, d] -> y[rows, d]. A row is zero when its
// id is negative, not below v or not finite (NaN fails both compares); non-integral ids are
// truncated toward zero (as the CPU backend does).

struct Params {
    n: u32,
    v: u32,
    d: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    // 1-D index over a 2-D grid (more than 65535 workgroups of 256 fold into rows).
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < p.n) {
        let r = i / p.d;
        let j = i % p.d;
        let id = ids[r];
        var v = 0.0;
        if (id >= 0.0 && id < f32(p.v)) {
            let k = u32(id);
            if (k < p.v) {
                v = table[k * p.d + j];
            }
        }
        y[i] = v;
    }
}
