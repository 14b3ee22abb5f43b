// Op::Conv2d: x[n, ci, h, w], w[co, ci, kh, kw] -> y[n, co, oh, ow].
//
// Implicit GEMM: y[nb, co, pix] = sum_k W(co, k) * X(k, (nb, pix)) with k = (ci, ky, kx) and
// X(k, (nb, oy, ox)) = x[nb, ci, oy * stride + ky - pad_t, ox * stride + kx - pad_l] (0 in the
// padding), gathered while staging (no im2col buffer). M = co, N = n * oh * ow, K = ci * kh * kw.
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
@group(0) @binding(1) var<storage, read> xin: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

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
            let x0 = t / 16u + 0u;
            As[kk * 16u + x0 / 4u][x0 % 4u] = load_w((m0 + x0), k, ke);
            let x1 = t / 16u + 16u;
            As[kk * 16u + x1 / 4u][x1 % 4u] = load_w((m0 + x1), k, ke);
            let x2 = t / 16u + 32u;
            As[kk * 16u + x2 / 4u][x2 % 4u] = load_w((m0 + x2), k, ke);
            let x3 = t / 16u + 48u;
            As[kk * 16u + x3 / 4u][x3 % 4u] = load_w((m0 + x3), k, ke);
        }
        // Stage B: 4 elements per thread.
        {
            let xx = t % 64u;
            let x = n0 + xx;
            let valid_x = x < p.N;
            let ohw = p.oh * p.ow;
            let xb = x / ohw;
            let pix = x % ohw;
            let iy0 = i32((pix / p.ow) * p.stride) - i32(p.pad_t);
            let ix0 = i32((pix % p.ow) * p.stride) - i32(p.pad_l);
            let x_base = xb * p.ci * p.h * p.w;
            let khw = p.kh * p.kw;
            let kk0 = t / 64u + 0u;
            Bs[kk0 * 16u + xx / 4u][xx % 4u] = load_x(valid_x, (k0 + kk0), ke, x_base, iy0, ix0, khw);
            let kk1 = t / 64u + 4u;
            Bs[kk1 * 16u + xx / 4u][xx % 4u] = load_x(valid_x, (k0 + kk1), ke, x_base, iy0, ix0, khw);
            let kk2 = t / 64u + 8u;
            Bs[kk2 * 16u + xx / 4u][xx % 4u] = load_x(valid_x, (k0 + kk2), ke, x_base, iy0, ix0, khw);
            let kk3 = t / 64u + 12u;
            Bs[kk3 * 16u + xx / 4u][xx % 4u] = load_x(valid_x, (k0 + kk3), ke, x_base, iy0, ix0, khw);
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
    let ohw_s = p.oh * p.ow;
    let n00 = n0 + 0u + 4u * tx;
    let n01 = n0 + 1u + 4u * tx;
    let n02 = n0 + 2u + 4u * tx;
    let n03 = n0 + 3u + 4u * tx;
    {
        let m = m0 + 0u + 4u * ty;
        if (m < p.M) {
            let v0 = acc000 * p.alpha;
            if (n00 < p.N) { let nb_ = n00 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n00 % ohw_s] = v0.x; }
            if (n01 < p.N) { let nb_ = n01 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n01 % ohw_s] = v0.y; }
            if (n02 < p.N) { let nb_ = n02 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n02 % ohw_s] = v0.z; }
            if (n03 < p.N) { let nb_ = n03 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n03 % ohw_s] = v0.w; }
        }
    }
    {
        let m = m0 + 1u + 4u * ty;
        if (m < p.M) {
            let v0 = acc010 * p.alpha;
            if (n00 < p.N) { let nb_ = n00 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n00 % ohw_s] = v0.x; }
            if (n01 < p.N) { let nb_ = n01 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n01 % ohw_s] = v0.y; }
            if (n02 < p.N) { let nb_ = n02 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n02 % ohw_s] = v0.z; }
            if (n03 < p.N) { let nb_ = n03 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n03 % ohw_s] = v0.w; }
        }
    }
    {
        let m = m0 + 2u + 4u * ty;
        if (m < p.M) {
            let v0 = acc020 * p.alpha;
            if (n00 < p.N) { let nb_ = n00 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n00 % ohw_s] = v0.x; }
            if (n01 < p.N) { let nb_ = n01 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n01 % ohw_s] = v0.y; }
            if (n02 < p.N) { let nb_ = n02 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n02 % ohw_s] = v0.z; }
            if (n03 < p.N) { let nb_ = n03 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n03 % ohw_s] = v0.w; }
        }
    }
    {
        let m = m0 + 3u + 4u * ty;
        if (m < p.M) {
            let v0 = acc030 * p.alpha;
            if (n00 < p.N) { let nb_ = n00 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n00 % ohw_s] = v0.x; }
            if (n01 < p.N) { let nb_ = n01 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n01 % ohw_s] = v0.y; }
            if (n02 < p.N) { let nb_ = n02 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n02 % ohw_s] = v0.z; }
            if (n03 < p.N) { let nb_ = n03 / ohw_s; y[(nb_ * p.M + m) * ohw_s + n03 % ohw_s] = v0.w; }
        }
    }
}

fn load_x(valid: bool, k: u32, ke: u32, x_base: u32, iy0: i32, ix0: i32, khw: u32) -> f32 {
    if (!valid || k >= ke) {
        return 0.0;
    }
    let c = k / khw;
    let r = k % khw;
    let iy = iy0 + i32(r / p.kw);
    let ix = ix0 + i32(r % p.kw);
    if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) {
        return 0.0;
    }
    return xin[x_base + (c * p.h + u32(iy)) * p.w + u32(ix)];
}

fn load_w(m: u32, k: u32, ke: u32) -> f32 {
    if (m < p.M && k < ke) {
        return wt[m * p.K + k];
    }
    return 0.0;
}
