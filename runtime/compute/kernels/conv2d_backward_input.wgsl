// Op::Conv2dBackwardInput: dy[n, co, oh, ow], w[co, ci, kh, kw] -> dx[n, ci, h, w].
//
// Implicit GEMM: dx[nb, ci, pix] = sum_k W(ci, k) * DY(k, (nb, pix)) with k = (co, ky, kx),
// W(ci, k) = w[co, ci, ky, kx] and DY(k, (nb, iy, ix)) = dy[nb, co, oy, ox] where
// oy * stride = iy + pad_t - ky and ox * stride = ix + pad_l - kx (0 when not divisible or out
// of range). M = ci, N = n * h * w, K = co * kh * kw.
//
// Register-tiled GEMM core: a workgroup of 16x16 threads computes a 64x64 tile of C,
// each thread 4x4 outputs held in 4 separate vec4 accumulators (no dynamically
// indexed local arrays, so they stay in registers), fma, K stepped in slices of 16 staged in
// workgroup memory as [k][m] and [k][n] vec4 rows. Thread (tx, ty) owns rows
// g*64 + 4*ty + r and columns h*64 + 4*tx + c (g, h < 1; r, c < 4), so its workgroup
// reads are conflict-free vec4s. Out-of-range elements stage as 0 and are not stored.
// Generated from one template shared by matmul*.wgsl and conv2d*.wgsl: keep the core
// identical when editing.

struct Params {
    M: u32,
    N: u32,
    K: u32,
    z_off: u32,
    m_off: u32,
    n_off: u32,
    nb: u32,
    ci: u32,
    h: u32,
    w: u32,
    co: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad_t: u32,
    pad_l: u32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

var<workgroup> As: array<vec4<f32>, 256>;
var<workgroup> Bs: array<vec4<f32>, 256>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tx = lid.x;
    let ty = lid.y;
    let t = ty * 16u + tx;
    let m0 = wg.y * 64u + p.m_off;
    let n0 = wg.x * 64u + p.n_off;
    let z = wg.z + p.z_off;
    var acc000 = vec4<f32>(0.0);
    var acc010 = vec4<f32>(0.0);
    var acc020 = vec4<f32>(0.0);
    var acc030 = vec4<f32>(0.0);
    let kb = 0u;
    let ke = p.K;
    let ntiles = (ke - kb + 15u) / 16u;
    for (var kt = 0u; kt < ntiles; kt++) {
        let k0 = kb + kt * 16u;
        // Stage A: 4 elements per thread.
        {
            let kk = t % 16u;
            let k = k0 + kk;
            let khw = p.kh * p.kw;
            let kco = k / khw;
            let kr = k % khw;
            let w_base = kco * p.M * khw + kr;
            let k_ok = k < ke;
            let x0 = t / 16u + 0u;
            As[kk * 16u + x0 / 4u][x0 % 4u] = load_w(w_base, (m0 + x0), khw, k_ok);
            let x1 = t / 16u + 16u;
            As[kk * 16u + x1 / 4u][x1 % 4u] = load_w(w_base, (m0 + x1), khw, k_ok);
            let x2 = t / 16u + 32u;
            As[kk * 16u + x2 / 4u][x2 % 4u] = load_w(w_base, (m0 + x2), khw, k_ok);
            let x3 = t / 16u + 48u;
            As[kk * 16u + x3 / 4u][x3 % 4u] = load_w(w_base, (m0 + x3), khw, k_ok);
        }
        // Stage B: 4 elements per thread.
        {
            let xx = t % 64u;
            let x = n0 + xx;
            let valid_x = x < p.N;
            let hw = p.h * p.w;
            let xb = x / hw;
            let pix = x % hw;
            let ty0 = i32(pix / p.w) + i32(p.pad_t);
            let tx0 = i32(pix % p.w) + i32(p.pad_l);
            let dy_base = xb * p.co * p.oh * p.ow;
            let khw2 = p.kh * p.kw;
            let kk0 = t / 64u + 0u;
            Bs[kk0 * 16u + xx / 4u][xx % 4u] = load_dy(valid_x, (k0 + kk0), ke, dy_base, ty0, tx0, khw2);
            let kk1 = t / 64u + 4u;
            Bs[kk1 * 16u + xx / 4u][xx % 4u] = load_dy(valid_x, (k0 + kk1), ke, dy_base, ty0, tx0, khw2);
            let kk2 = t / 64u + 8u;
            Bs[kk2 * 16u + xx / 4u][xx % 4u] = load_dy(valid_x, (k0 + kk2), ke, dy_base, ty0, tx0, khw2);
            let kk3 = t / 64u + 12u;
            Bs[kk3 * 16u + xx / 4u][xx % 4u] = load_dy(valid_x, (k0 + kk3), ke, dy_base, ty0, tx0, khw2);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            let a0 = As[kk * 16u + 0u + ty];
            let b0 = Bs[kk * 16u + 0u + tx];
            acc000 = fma(vec4<f32>(a0.x), b0, acc000);
            acc010 = fma(vec4<f32>(a0.y), b0, acc010);
            acc020 = fma(vec4<f32>(a0.z), b0, acc020);
            acc030 = fma(vec4<f32>(a0.w), b0, acc030);
        }
        workgroupBarrier();
    }
    let hw_s = p.h * p.w;
    let n00 = n0 + 0u + 4u * tx;
    let n01 = n0 + 1u + 4u * tx;
    let n02 = n0 + 2u + 4u * tx;
    let n03 = n0 + 3u + 4u * tx;
    {
        let m = m0 + 0u + 4u * ty;
        if (m < p.M) {
            let v0 = acc000 * p.alpha;
            if (n00 < p.N) { let nb_ = n00 / hw_s; dx[(nb_ * p.M + m) * hw_s + n00 % hw_s] = v0.x; }
            if (n01 < p.N) { let nb_ = n01 / hw_s; dx[(nb_ * p.M + m) * hw_s + n01 % hw_s] = v0.y; }
            if (n02 < p.N) { let nb_ = n02 / hw_s; dx[(nb_ * p.M + m) * hw_s + n02 % hw_s] = v0.z; }
            if (n03 < p.N) { let nb_ = n03 / hw_s; dx[(nb_ * p.M + m) * hw_s + n03 % hw_s] = v0.w; }
        }
    }
    {
        let m = m0 + 1u + 4u * ty;
        if (m < p.M) {
            let v0 = acc010 * p.alpha;
            if (n00 < p.N) { let nb_ = n00 / hw_s; dx[(nb_ * p.M + m) * hw_s + n00 % hw_s] = v0.x; }
            if (n01 < p.N) { let nb_ = n01 / hw_s; dx[(nb_ * p.M + m) * hw_s + n01 % hw_s] = v0.y; }
            if (n02 < p.N) { let nb_ = n02 / hw_s; dx[(nb_ * p.M + m) * hw_s + n02 % hw_s] = v0.z; }
            if (n03 < p.N) { let nb_ = n03 / hw_s; dx[(nb_ * p.M + m) * hw_s + n03 % hw_s] = v0.w; }
        }
    }
    {
        let m = m0 + 2u + 4u * ty;
        if (m < p.M) {
            let v0 = acc020 * p.alpha;
            if (n00 < p.N) { let nb_ = n00 / hw_s; dx[(nb_ * p.M + m) * hw_s + n00 % hw_s] = v0.x; }
            if (n01 < p.N) { let nb_ = n01 / hw_s; dx[(nb_ * p.M + m) * hw_s + n01 % hw_s] = v0.y; }
            if (n02 < p.N) { let nb_ = n02 / hw_s; dx[(nb_ * p.M + m) * hw_s + n02 % hw_s] = v0.z; }
            if (n03 < p.N) { let nb_ = n03 / hw_s; dx[(nb_ * p.M + m) * hw_s + n03 % hw_s] = v0.w; }
        }
    }
    {
        let m = m0 + 3u + 4u * ty;
        if (m < p.M) {
            let v0 = acc030 * p.alpha;
            if (n00 < p.N) { let nb_ = n00 / hw_s; dx[(nb_ * p.M + m) * hw_s + n00 % hw_s] = v0.x; }
            if (n01 < p.N) { let nb_ = n01 / hw_s; dx[(nb_ * p.M + m) * hw_s + n01 % hw_s] = v0.y; }
            if (n02 < p.N) { let nb_ = n02 / hw_s; dx[(nb_ * p.M + m) * hw_s + n02 % hw_s] = v0.z; }
            if (n03 < p.N) { let nb_ = n03 / hw_s; dx[(nb_ * p.M + m) * hw_s + n03 % hw_s] = v0.w; }
        }
    }
}

fn load_dy(valid: bool, k: u32, ke: u32, dy_base: u32, ty0: i32, tx0: i32, khw: u32) -> f32 {
    if (!valid || k >= ke) {
        return 0.0;
    }
    let c = k / khw;
    let r = k % khw;
    let ty = ty0 - i32(r / p.kw);
    let tx = tx0 - i32(r % p.kw);
    if (ty < 0 || tx < 0) {
        return 0.0;
    }
    let s = p.stride;
    let oy = u32(ty) / s;
    let ox = u32(tx) / s;
    if (oy * s != u32(ty) || ox * s != u32(tx) || oy >= p.oh || ox >= p.ow) {
        return 0.0;
    }
    return dy[dy_base + (c * p.oh + oy) * p.ow + ox];
}

fn load_w(w_base: u32, m: u32, khw: u32, k_ok: bool) -> f32 {
    if (m < p.M && k_ok) {
        return wt[w_base + m * khw];
    }
    return 0.0;
}
