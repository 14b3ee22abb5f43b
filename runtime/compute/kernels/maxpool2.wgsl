// Op::MaxPool2: x[n, c, h, w] -> y[n, c, h/2, w/2] (odd trailing rows/columns dropped). The
// window is scanned row-major; a later element replaces the running max when it is greater
// or NaN (NaN propagates, as on the CPU). One thread per output.

struct Params {
    n: u32,
    h: u32,
    w: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn is_nan(v: f32) -> bool {
    return !(v == v);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    // 1-D index over a 2-D grid (more than 65535 workgroups of 256 fold into rows).
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < p.n) {
        let oh = p.h / 2u;
        let ow = p.w / 2u;
        let plane = i / (oh * ow);
        let r = i % (oh * ow);
        let oy = r / ow;
        let ox = r % ow;
        let top = (plane * p.h + 2u * oy) * p.w + 2u * ox;
        var m = x[top];
        let v1 = x[top + 1u];
        if (v1 > m || is_nan(v1)) { m = v1; }
        let v2 = x[top + p.w];
        if (v2 > m || is_nan(v2)) { m = v2; }
        let v3 = x[top + p.w + 1u];
        if (v3 > m || is_nan(v3)) { m = v3; }
        y[i] = m;
    }
}
