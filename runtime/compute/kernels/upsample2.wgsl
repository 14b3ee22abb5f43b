// Op::Upsample2: x[n, c, h, w] -> y[n, c, 2h, 2w], nearest neighbour. One thread per output.

struct Params {
    n: u32,
    h: u32,
    w: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    // 1-D index over a 2-D grid (more than 65535 workgroups of 256 fold into rows).
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < p.n) {
        let w2 = 2u * p.w;
        let plane = i / (4u * p.h * p.w);
        let r = i % (4u * p.h * p.w);
        let oy = r / w2;
        let ox = r % w2;
        y[i] = x[(plane * p.h + oy / 2u) * p.w + ox / 2u];
    }
}
