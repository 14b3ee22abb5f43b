// Op::Conv2dBackwardWeight: x[n, ci, h, w], dy[n, co, oh, ow] -> dw[co, ci, kh, kw].
//
// Implicit GEMM: dw[co, j] = sum_k DY(co, k) * X(k, j) with k = (nb, oy, ox), j = (ci, ky, kx),
// DY(co, k) = dy[nb, co, oy, ox] and X(k, j) = x[nb, ci, oy * stride + ky - pad_t,
// ox * stride + kx - pad_l]. M = co, N = ci * kh * kw, K = n * oh * ow. K is long and M, N
// short, so K is split over wg.z in chunks of `kchunk` (a multiple of 16): split z writes
// out[z * M * N + ..]; `reduce` then sums the splits (skipped when there is one).
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
    kchunk: u32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xin: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

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
    let kb = z * p.kchunk;
    let ke = min(p.K, z * p.kchunk + p.kchunk);
    let ntiles = (ke - kb + 15u) / 16u;
    for (var kt = 0u; kt < ntiles; kt++) {
        let k0 = kb + kt * 16u;
        // Stage A: 4 elements per thread.
        {
            let kk = t % 16u;
            let k = k0 + kk;
            let ohw = p.oh * p.ow;
            let k_ok = k < ke;
            let knb = k / ohw;
            let kpix = k % ohw;
            let dy_base = knb * p.M * ohw + kpix;
            let x0 = t / 16u + 0u;
            As[kk * 16u + x0 / 4u][x0 % 4u] = load_dy(dy_base, (m0 + x0), ohw, k_ok);
            let x1 = t / 16u + 16u;
            As[kk * 16u + x1 / 4u][x1 % 4u] = load_dy(dy_base, (m0 + x1), ohw, k_ok);
            let x2 = t / 16u + 32u;
            As[kk * 16u + x2 / 4u][x2 % 4u] = load_dy(dy_base, (m0 + x2), ohw, k_ok);
            let x3 = t / 16u + 48u;
            As[kk * 16u + x3 / 4u][x3 % 4u] = load_dy(dy_base, (m0 + x3), ohw, k_ok);
        }
        // Stage B: 4 elements per thread.
        {
            let kk = t % 16u;
            let k = k0 + kk;
            let ohw2 = p.oh * p.ow;
            let k_ok2 = k < ke;
            let bnb = k / ohw2;
            let bpix = k % ohw2;
            let iy0 = i32((bpix / p.ow) * p.stride) - i32(p.pad_t);
            let ix0 = i32((bpix % p.ow) * p.stride) - i32(p.pad_l);
            let x_base = bnb * p.ci * p.h * p.w;
            let khw = p.kh * p.kw;
            let x0 = t / 16u + 0u;
            Bs[kk * 16u + x0 / 4u][x0 % 4u] = load_x(k_ok2 && (n0 + x0) < p.N, (n0 + x0), x_base, iy0, ix0, khw);
            let x1 = t / 16u + 16u;
            Bs[kk * 16u + x1 / 4u][x1 % 4u] = load_x(k_ok2 && (n0 + x1) < p.N, (n0 + x1), x_base, iy0, ix0, khw);
            let x2 = t / 16u + 32u;
            Bs[kk * 16u + x2 / 4u][x2 % 4u] = load_x(k_ok2 && (n0 + x2) < p.N, (n0 + x2), x_base, iy0, ix0, khw);
            let x3 = t / 16u + 48u;
            Bs[kk * 16u + x3 / 4u][x3 % 4u] = load_x(k_ok2 && (n0 + x3) < p.N, (n0 + x3), x_base, iy0, ix0, khw);
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
    let n00 = n0 + 0u + 4u * tx;
    let n01 = n0 + 1u + 4u * tx;
    let n02 = n0 + 2u + 4u * tx;
    let n03 = n0 + 3u + 4u * tx;
    {
        let m = m0 + 0u + 4u * ty;
        if (m < p.M) {
            let v0 = acc000 * p.alpha;
            if (n00 < p.N) { out[z * p.M * p.N + m * p.N + n00] = v0.x; }
            if (n01 < p.N) { out[z * p.M * p.N + m * p.N + n01] = v0.y; }
            if (n02 < p.N) { out[z * p.M * p.N + m * p.N + n02] = v0.z; }
            if (n03 < p.N) { out[z * p.M * p.N + m * p.N + n03] = v0.w; }
        }
    }
    {
        let m = m0 + 1u + 4u * ty;
        if (m < p.M) {
            let v0 = acc010 * p.alpha;
            if (n00 < p.N) { out[z * p.M * p.N + m * p.N + n00] = v0.x; }
            if (n01 < p.N) { out[z * p.M * p.N + m * p.N + n01] = v0.y; }
            if (n02 < p.N) { out[z * p.M * p.N + m * p.N + n02] = v0.z; }
            if (n03 < p.N) { out[z * p.M * p.N + m * p.N + n03] = v0.w; }
        }
    }
    {
        let m = m0 + 2u + 4u * ty;
        if (m < p.M) {
            let v0 = acc020 * p.alpha;
            if (n00 < p.N) { out[z * p.M * p.N + m * p.N + n00] = v0.x; }
            if (n01 < p.N) { out[z * p.M * p.N + m * p.N + n01] = v0.y; }
            if (n02 < p.N) { out[z * p.M * p.N + m * p.N + n02] = v0.z; }
            if (n03 < p.N) { out[z * p.M * p.N + m * p.N + n03] = v0.w; }
        }
    }
    {
        let m = m0 + 3u + 4u * ty;
        if (m < p.M) {
            let v0 = acc030 * p.alpha;
            if (n00 < p.N) { out[z * p.M * p.N + m * p.N + n00] = v0.x; }
            if (n01 < p.N) { out[z * p.M * p.N + m * p.N + n01] = v0.y; }
            if (n02 < p.N) { out[z * p.M * p.N + m * p.N + n02] = v0.z; }
            if (n03 < p.N) { out[z * p.M * p.N + m * p.N + n03] = v0.w; }
        }
    }
}

fn load_x(valid: bool, j: u32, x_base: u32, iy0: i32, ix0: i32, khw: u32) -> f32 {
    if (!valid) {
        return 0.0;
    }
    let c = j / khw;
    let r = j % khw;
    let iy = iy0 + i32(r / p.kw);
    let ix = ix0 + i32(r % p.kw);
    if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) {
        return 0.0;
    }
    return xin[x_base + (c * p.h + u32(iy)) * p.w + u32(ix)];
}

fn load_dy(dy_base: u32, m: u32, ohw: u32, k_ok: bool) -> f32 {
    if (m < p.M && k_ok) {
        return dy[dy_base + m * ohw];
    }
    return 0.0;
}
