// Op::Upsample2Backward: dy[n, c, 2h, 2w] -> dx[n, c, h, w], the sum of each 2x2 block, added
// as (top-left + top-right) + (bottom-left + bottom-right). One thread per output.

struct Params {
    n: u32,
    h: u32,
    w: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    // 1-D index over a 2-D grid (more than 65535 workgroups of 256 fold into rows).
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < p.n) {
        let plane = i / (p.h * p.w);
        let r = i % (p.h * p.w);
        let iy = r / p.w;
        let ix = r % p.w;
        let w2 = 2u * p.w;
        let top = (plane * 2u * p.h + 2u * iy) * w2 + 2u * ix;
        let bot = top + w2;
        dx[i] = (dy[top] + dy[top + 1u]) + (dy[bot] + dy[bot + 1u]);
    }
}
