// Op::Add: a, b -> y = a + b (same shapes). One thread per element.

struct Params {
    n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    // 1-D index over a 2-D grid (more than 65535 workgroups of 256 fold into rows).
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < p.n) {
        y[i] = a[i] + b[i];
    }
}
