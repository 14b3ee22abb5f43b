// Op::MatMul (128x128 tiles, 8x8 per thread: large products).
//
// Batched strided GEMM: C[z](m, n) = alpha * sum_k A[z](m, k) * B[z](k, n), where
//   A[z](m, k) = a[(z / bi) * a_bo + (z % bi) * a_bi + m * a_rs + k * a_cs]
// and B, C alike (C's column stride is 1). Transposes, batch broadcast (stride 0) and the
// per-head views of attention are all strides. The uniform flags a_kc / b_kc pick the staging
// pattern that keeps global loads coalesced: 1 when the operand is contiguous along k.
// Grid: x over N tiles, y over M tiles, z over batches; m_off, n_off and z_off place a
// dispatch when a grid dimension exceeds the device limit (65535) and is split.
//
// Register-tiled GEMM core: a workgroup of 16x16 threads computes a 128x128 tile of C,
// each thread 8x8 outputs held in 16 separate vec4 accumulators (no dynamically
// indexed local arrays, so they stay in registers), fma, K stepped in slices of 8 staged in
// workgroup memory as [k][m] and [k][n] vec4 rows. Thread (tx, ty) owns rows
// g*64 + 4*ty + r and columns h*64 + 4*tx + c (g, h < 2; r, c < 4), so its workgroup
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
    bi: u32,
    a_bo: u32,
    a_bi: u32,
    a_rs: u32,
    a_cs: u32,
    b_bo: u32,
    b_bi: u32,
    b_rs: u32,
    b_cs: u32,
    c_bo: u32,
    c_bi: u32,
    c_rs: u32,
    a_kc: u32,
    b_kc: u32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

var<workgroup> As: array<vec4<f32>, 256>;
var<workgroup> Bs: array<vec4<f32>, 256>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tx = lid.x;
    let ty = lid.y;
    let t = ty * 16u + tx;
    let m0 = wg.y * 128u + p.m_off;
    let n0 = wg.x * 128u + p.n_off;
    let z = wg.z + p.z_off;
    let zo = z / p.bi;
    let zi = z % p.bi;
    let a_base = zo * p.a_bo + zi * p.a_bi;
    let b_base = zo * p.b_bo + zi * p.b_bi;
    let c_base = zo * p.c_bo + zi * p.c_bi;
    var acc000 = vec4<f32>(0.0);
    var acc001 = vec4<f32>(0.0);
    var acc010 = vec4<f32>(0.0);
    var acc011 = vec4<f32>(0.0);
    var acc020 = vec4<f32>(0.0);
    var acc021 = vec4<f32>(0.0);
    var acc030 = vec4<f32>(0.0);
    var acc031 = vec4<f32>(0.0);
    var acc100 = vec4<f32>(0.0);
    var acc101 = vec4<f32>(0.0);
    var acc110 = vec4<f32>(0.0);
    var acc111 = vec4<f32>(0.0);
    var acc120 = vec4<f32>(0.0);
    var acc121 = vec4<f32>(0.0);
    var acc130 = vec4<f32>(0.0);
    var acc131 = vec4<f32>(0.0);
    let kb = 0u;
    let ke = p.K;
    let ntiles = (ke - kb + 7u) / 8u;
    for (var kt = 0u; kt < ntiles; kt++) {
        let k0 = kb + kt * 8u;
        // Stage A: 4 elements per thread.
        if (p.a_kc != 0u) {
            let kk = t % 8u;
            let k = k0 + kk;
            let x0 = t / 8u + 0u;
            As[kk * 32u + x0 / 4u][x0 % 4u] = load_a(a_base, (m0 + x0), k, ke);
            let x1 = t / 8u + 32u;
            As[kk * 32u + x1 / 4u][x1 % 4u] = load_a(a_base, (m0 + x1), k, ke);
            let x2 = t / 8u + 64u;
            As[kk * 32u + x2 / 4u][x2 % 4u] = load_a(a_base, (m0 + x2), k, ke);
            let x3 = t / 8u + 96u;
            As[kk * 32u + x3 / 4u][x3 % 4u] = load_a(a_base, (m0 + x3), k, ke);
        } else {
            let xx = t % 128u;
            let x = m0 + xx;
            let kk0 = t / 128u + 0u;
            As[kk0 * 32u + xx / 4u][xx % 4u] = load_a(a_base, x, (k0 + kk0), ke);
            let kk1 = t / 128u + 2u;
            As[kk1 * 32u + xx / 4u][xx % 4u] = load_a(a_base, x, (k0 + kk1), ke);
            let kk2 = t / 128u + 4u;
            As[kk2 * 32u + xx / 4u][xx % 4u] = load_a(a_base, x, (k0 + kk2), ke);
            let kk3 = t / 128u + 6u;
            As[kk3 * 32u + xx / 4u][xx % 4u] = load_a(a_base, x, (k0 + kk3), ke);
        }
        // Stage B: 4 elements per thread.
        if (p.b_kc != 0u) {
            let kk = t % 8u;
            let k = k0 + kk;
            let x0 = t / 8u + 0u;
            Bs[kk * 32u + x0 / 4u][x0 % 4u] = load_b(b_base, k, (n0 + x0), ke);
            let x1 = t / 8u + 32u;
            Bs[kk * 32u + x1 / 4u][x1 % 4u] = load_b(b_base, k, (n0 + x1), ke);
            let x2 = t / 8u + 64u;
            Bs[kk * 32u + x2 / 4u][x2 % 4u] = load_b(b_base, k, (n0 + x2), ke);
            let x3 = t / 8u + 96u;
            Bs[kk * 32u + x3 / 4u][x3 % 4u] = load_b(b_base, k, (n0 + x3), ke);
        } else {
            let xx = t % 128u;
            let x = n0 + xx;
            let kk0 = t / 128u + 0u;
            Bs[kk0 * 32u + xx / 4u][xx % 4u] = load_b(b_base, (k0 + kk0), x, ke);
            let kk1 = t / 128u + 2u;
            Bs[kk1 * 32u + xx / 4u][xx % 4u] = load_b(b_base, (k0 + kk1), x, ke);
            let kk2 = t / 128u + 4u;
            Bs[kk2 * 32u + xx / 4u][xx % 4u] = load_b(b_base, (k0 + kk2), x, ke);
            let kk3 = t / 128u + 6u;
            Bs[kk3 * 32u + xx / 4u][xx % 4u] = load_b(b_base, (k0 + kk3), x, ke);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 8u; kk++) {
            let a0 = As[kk * 32u + 0u + ty];
            let a1 = As[kk * 32u + 16u + ty];
            let b0 = Bs[kk * 32u + 0u + tx];
            let b1 = Bs[kk * 32u + 16u + tx];
            acc000 = fma(vec4<f32>(a0.x), b0, acc000);
            acc001 = fma(vec4<f32>(a0.x), b1, acc001);
            acc010 = fma(vec4<f32>(a0.y), b0, acc010);
            acc011 = fma(vec4<f32>(a0.y), b1, acc011);
            acc020 = fma(vec4<f32>(a0.z), b0, acc020);
            acc021 = fma(vec4<f32>(a0.z), b1, acc021);
            acc030 = fma(vec4<f32>(a0.w), b0, acc030);
            acc031 = fma(vec4<f32>(a0.w), b1, acc031);
            acc100 = fma(vec4<f32>(a1.x), b0, acc100);
            acc101 = fma(vec4<f32>(a1.x), b1, acc101);
            acc110 = fma(vec4<f32>(a1.y), b0, acc110);
            acc111 = fma(vec4<f32>(a1.y), b1, acc111);
            acc120 = fma(vec4<f32>(a1.z), b0, acc120);
            acc121 = fma(vec4<f32>(a1.z), b1, acc121);
            acc130 = fma(vec4<f32>(a1.w), b0, acc130);
            acc131 = fma(vec4<f32>(a1.w), b1, acc131);
        }
        workgroupBarrier();
    }
    let n00 = n0 + 0u + 4u * tx;
    let n01 = n0 + 1u + 4u * tx;
    let n02 = n0 + 2u + 4u * tx;
    let n03 = n0 + 3u + 4u * tx;
    let n10 = n0 + 64u + 4u * tx;
    let n11 = n0 + 65u + 4u * tx;
    let n12 = n0 + 66u + 4u * tx;
    let n13 = n0 + 67u + 4u * tx;
    {
        let m = m0 + 0u + 4u * ty;
        if (m < p.M) {
            let v0 = acc000 * p.alpha;
            if (n00 < p.N) { c[c_base + m * p.c_rs + n00] = v0.x; }
            if (n01 < p.N) { c[c_base + m * p.c_rs + n01] = v0.y; }
            if (n02 < p.N) { c[c_base + m * p.c_rs + n02] = v0.z; }
            if (n03 < p.N) { c[c_base + m * p.c_rs + n03] = v0.w; }
            let v1 = acc001 * p.alpha;
            if (n10 < p.N) { c[c_base + m * p.c_rs + n10] = v1.x; }
            if (n11 < p.N) { c[c_base + m * p.c_rs + n11] = v1.y; }
            if (n12 < p.N) { c[c_base + m * p.c_rs + n12] = v1.z; }
            if (n13 < p.N) { c[c_base + m * p.c_rs + n13] = v1.w; }
        }
    }
    {
        let m = m0 + 1u + 4u * ty;
        if (m < p.M) {
            let v0 = acc010 * p.alpha;
            if (n00 < p.N) { c[c_base + m * p.c_rs + n00] = v0.x; }
            if (n01 < p.N) { c[c_base + m * p.c_rs + n01] = v0.y; }
            if (n02 < p.N) { c[c_base + m * p.c_rs + n02] = v0.z; }
            if (n03 < p.N) { c[c_base + m * p.c_rs + n03] = v0.w; }
            let v1 = acc011 * p.alpha;
            if (n10 < p.N) { c[c_base + m * p.c_rs + n10] = v1.x; }
            if (n11 < p.N) { c[c_base + m * p.c_rs + n11] = v1.y; }
            if (n12 < p.N) { c[c_base + m * p.c_rs + n12] = v1.z; }
            if (n13 < p.N) { c[c_base + m * p.c_rs + n13] = v1.w; }
        }
    }
    {
        let m = m0 + 2u + 4u * ty;
        if (m < p.M) {
            let v0 = acc020 * p.alpha;
            if (n00 < p.N) { c[c_base + m * p.c_rs + n00] = v0.x; }
            if (n01 < p.N) { c[c_base + m * p.c_rs + n01] = v0.y; }
            if (n02 < p.N) { c[c_base + m * p.c_rs + n02] = v0.z; }
            if (n03 < p.N) { c[c_base + m * p.c_rs + n03] = v0.w; }
            let v1 = acc021 * p.alpha;
            if (n10 < p.N) { c[c_base + m * p.c_rs + n10] = v1.x; }
            if (n11 < p.N) { c[c_base + m * p.c_rs + n11] = v1.y; }
            if (n12 < p.N) { c[c_base + m * p.c_rs + n12] = v1.z; }
            if (n13 < p.N) { c[c_base + m * p.c_rs + n13] = v1.w; }
        }
    }
    {
        let m = m0 + 3u + 4u * ty;
        if (m < p.M) {
            let v0 = acc030 * p.alpha;
            if (n00 < p.N) { c[c_base + m * p.c_rs + n00] = v0.x; }
            if (n01 < p.N) { c[c_base + m * p.c_rs + n01] = v0.y; }
            if (n02 < p.N) { c[c_base + m * p.c_rs + n02] = v0.z; }
            if (n03 < p.N) { c[c_base + m * p.c_rs + n03] = v0.w; }
            let v1 = acc031 * p.alpha;
            if (n10 < p.N) { c[c_base + m * p.c_rs + n10] = v1.x; }
            if (n11 < p.N) { c[c_base + m * p.c_rs + n11] = v1.y; }
            if (n12 < p.N) { c[c_base + m * p.c_rs + n12] = v1.z; }
            if (n13 < p.N) { c[c_base + m * p.c_rs + n13] = v1.w; }
        }
    }
    {
        let m = m0 + 64u + 4u * ty;
        if (m < p.M) {
            let v0 = acc100 * p.alpha;
            if (n00 < p.N) { c[c_base + m * p.c_rs + n00] = v0.x; }
            if (n01 < p.N) { c[c_base + m * p.c_rs + n01] = v0.y; }
            if (n02 < p.N) { c[c_base + m * p.c_rs + n02] = v0.z; }
            if (n03 < p.N) { c[c_base + m * p.c_rs + n03] = v0.w; }
            let v1 = acc101 * p.alpha;
            if (n10 < p.N) { c[c_base + m * p.c_rs + n10] = v1.x; }
            if (n11 < p.N) { c[c_base + m * p.c_rs + n11] = v1.y; }
            if (n12 < p.N) { c[c_base + m * p.c_rs + n12] = v1.z; }
            if (n13 < p.N) { c[c_base + m * p.c_rs + n13] = v1.w; }
        }
    }
    {
        let m = m0 + 65u + 4u * ty;
        if (m < p.M) {
            let v0 = acc110 * p.alpha;
            if (n00 < p.N) { c[c_base + m * p.c_rs + n00] = v0.x; }
            if (n01 < p.N) { c[c_base + m * p.c_rs + n01] = v0.y; }
            if (n02 < p.N) { c[c_base + m * p.c_rs + n02] = v0.z; }
            if (n03 < p.N) { c[c_base + m * p.c_rs + n03] = v0.w; }
            let v1 = acc111 * p.alpha;
            if (n10 < p.N) { c[c_base + m * p.c_rs + n10] = v1.x; }
            if (n11 < p.N) { c[c_base + m * p.c_rs + n11] = v1.y; }
            if (n12 < p.N) { c[c_base + m * p.c_rs + n12] = v1.z; }
            if (n13 < p.N) { c[c_base + m * p.c_rs + n13] = v1.w; }
        }
    }
    {
        let m = m0 + 66u + 4u * ty;
        if (m < p.M) {
            let v0 = acc120 * p.alpha;
            if (n00 < p.N) { c[c_base + m * p.c_rs + n00] = v0.x; }
            if (n01 < p.N) { c[c_base + m * p.c_rs + n01] = v0.y; }
            if (n02 < p.N) { c[c_base + m * p.c_rs + n02] = v0.z; }
            if (n03 < p.N) { c[c_base + m * p.c_rs + n03] = v0.w; }
            let v1 = acc121 * p.alpha;
            if (n10 < p.N) { c[c_base + m * p.c_rs + n10] = v1.x; }
            if (n11 < p.N) { c[c_base + m * p.c_rs + n11] = v1.y; }
            if (n12 < p.N) { c[c_base + m * p.c_rs + n12] = v1.z; }
            if (n13 < p.N) { c[c_base + m * p.c_rs + n13] = v1.w; }
        }
    }
    {
        let m = m0 + 67u + 4u * ty;
        if (m < p.M) {
            let v0 = acc130 * p.alpha;
            if (n00 < p.N) { c[c_base + m * p.c_rs + n00] = v0.x; }
            if (n01 < p.N) { c[c_base + m * p.c_rs + n01] = v0.y; }
            if (n02 < p.N) { c[c_base + m * p.c_rs + n02] = v0.z; }
            if (n03 < p.N) { c[c_base + m * p.c_rs + n03] = v0.w; }
            let v1 = acc131 * p.alpha;
            if (n10 < p.N) { c[c_base + m * p.c_rs + n10] = v1.x; }
            if (n11 < p.N) { c[c_base + m * p.c_rs + n11] = v1.y; }
            if (n12 < p.N) { c[c_base + m * p.c_rs + n12] = v1.z; }
            if (n13 < p.N) { c[c_base + m * p.c_rs + n13] = v1.w; }
        }
    }
}

fn load_a(base: u32, m: u32, k: u32, ke: u32) -> f32 {
    if (m < p.M && k < ke) {
        return a[base + m * p.a_rs + k * p.a_cs];
    }
    return 0.0;
}

fn load_b(base: u32, k: u32, n: u32, ke: u32) -> f32 {
    if (n < p.N && k < ke) {
        return b[base + k * p.b_rs + n * p.b_cs];
    }
    return 0.0;
}
