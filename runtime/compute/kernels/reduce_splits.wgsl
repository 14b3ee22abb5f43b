// Sums split-K partial products: out[i] = sum over s < splits of src[s * n + i] (used by
// conv2d_backward_weight). One thread per output element.

struct Params {
    n: u32,
    splits: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < p.n) {
        var s = 0.0;
        for (var k = 0u; k < p.splits; k++) {
            s += src[k * p.n + i];
        }
        out[i] = s;
    }
}
