// Op::Adam (AdamW when decoupled), in place: grad -> param, m, v. PyTorch's formulation, with
// the step-dependent scalars computed on the host in f64 (as the CPU backend does):
//   g = grad + l2 * param            (l2 = weight_decay unless decoupled, else 0)
//   param *= decay                   (decay = 1 - lr * weight_decay when decoupled, else 1)
//   m = lerp(m, g, w1)               (w1 = 1 - beta1, written as torch.lerp does)
//   v = beta2 * v + (1 - beta2) * g^2
//   param -= step_size * (m / (sqrt(v) / bc2_sqrt + eps))
// with step_size = lr / (1 - beta1^step) and bc2_sqrt = sqrt(1 - beta2^step).

struct Params {
    n: u32,
    step_size: f32,
    bc2_sqrt: f32,
    decay: f32,
    l2: f32,
    w1: f32,
    beta2: f32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    // 1-D index over a 2-D grid (more than 65535 workgroups of 256 fold into rows).
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < p.n) {
        var w = param[i];
        let g = grad[i] + p.l2 * w;
        w = w * p.decay;
        let m0 = m[i];
        var m1: f32;
        if (p.w1 < 0.5) {
            m1 = m0 + p.w1 * (g - m0);
        } else {
            m1 = g - (g - m0) * (1.0 - p.w1);
        }
        let v1 = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
        m[i] = m1;
        v[i] = v1;
        let denom = sqrt(v1) / p.bc2_sqrt + p.eps;
        param[i] = w - p.step_size * (m1 / denom);
    }
}
