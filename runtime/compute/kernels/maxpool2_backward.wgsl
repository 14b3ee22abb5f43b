// Op::MaxPool2Backward: x[n, c, h, w], y (pooled), dy -> dx[n, c, h, w]. Each window's
// gradient goes to its first element in row-major order equal to the pooled value, or its
// last NaN when the pooled value is NaN (PyTorch's index); other elements and the odd
// trailing rows/columns get 0. One thread per input element.

struct Params {
    n: u32,
    h: u32,
    w: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

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
        let plane = i / (p.h * p.w);
        let r = i % (p.h * p.w);
        let iy = r / p.w;
        let ix = r % p.w;
        let oy = iy / 2u;
        let ox = ix / 2u;
        var g = 0.0;
        if (oy < oh && ox < ow) {
            let o = (plane * oh + oy) * ow + ox;
            let m = y[o];
            let top = (plane * p.h + 2u * oy) * p.w + 2u * ox;
            // Position (0..4) of the first element of the window equal to m (the last NaN
            // when m is NaN), 4 if none.
            var first = 4u;
            if (is_nan(m)) {
                if (is_nan(x[top])) { first = 0u; }
                if (is_nan(x[top + 1u])) { first = 1u; }
                if (is_nan(x[top + p.w])) { first = 2u; }
                if (is_nan(x[top + p.w + 1u])) { first = 3u; }
            } else {
                if (x[top + p.w + 1u] == m) { first = 3u; }
                if (x[top + p.w] == m) { first = 2u; }
                if (x[top + 1u] == m) { first = 1u; }
                if (x[top] == m) { first = 0u; }
            }
            if (first == (iy % 2u) * 2u + ix % 2u) {
                g = dy[o];
            }
        }
        dx[i] = g;
    }
}
