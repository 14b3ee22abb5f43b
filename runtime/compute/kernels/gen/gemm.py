# Usage: python3 runtime/compute/kernels/gen/gemm.py runtime/compute/kernels
# Generates the register-tiled GEMM-family kernels (matmul, conv2d fwd/bwd) for mlp-compute.
import sys, os
OUT = sys.argv[1]
COMPS = "xyzw"

def gen(cfg, doc, params, bindings, setup, a_stage, b_stage, store_idx, kbegin="0u", kend="p.K", store_setup=""):
    """a_stage/b_stage: list of (condition or None, pattern, loader dict)."""
    TM = cfg
    G = TM // 4
    BM = BN = 16 * TM
    BK = 16 if TM == 4 else 8
    BM4 = BM // 4
    per = (BK * BM) // 256
    L = []
    w = L.append
    w(doc)
    w("//")
    w(f"// Register-tiled GEMM core: a workgroup of 16x16 threads computes a {BM}x{BN} tile of C,")
    w(f"// each thread {TM}x{TM} outputs held in {G*G*4} separate vec4 accumulators (no dynamically")
    w(f"// indexed local arrays, so they stay in registers), fma, K stepped in slices of {BK} staged in")
    w(f"// workgroup memory as [k][m] and [k][n] vec4 rows. Thread (tx, ty) owns rows")
    w(f"// g*64 + 4*ty + r and columns h*64 + 4*tx + c (g, h < {G}; r, c < 4), so its workgroup")
    w(f"// reads are conflict-free vec4s. Out-of-range elements stage as 0 and are not stored.")
    w("// Generated from one template shared by matmul*.wgsl and conv2d*.wgsl: keep the core")
    w("// identical when editing.")
    w("")
    w("struct Params {")
    for p_ in params:
        w(f"    {p_}: u32,")
    w("    alpha: f32,")
    w("}")
    w("")
    w("@group(0) @binding(0) var<uniform> p: Params;")
    for i, (nm, acc) in enumerate(bindings):
        mode = "read" if acc == "r" else "read_write"
        w(f"@group(0) @binding({i+1}) var<storage, {mode}> {nm}: array<f32>;")
    w("")
    w(f"var<workgroup> As: array<vec4<f32>, {BK * BM4}>;")
    w(f"var<workgroup> Bs: array<vec4<f32>, {BK * BM4}>;")
    w("")
    w("@compute @workgroup_size(16, 16, 1)")
    w("fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {")
    w("    let tx = lid.x;")
    w("    let ty = lid.y;")
    w("    let t = ty * 16u + tx;")
    w(f"    let m0 = wg.y * {BM}u + p.m_off;")
    w(f"    let n0 = wg.x * {BN}u + p.n_off;")
    w("    let z = wg.z + p.z_off;")
    for s in setup.strip("\n").split("\n"):
        if s.strip(): w("    " + s)
    for g in range(G):
        for r in range(4):
            for h in range(G):
                w(f"    var acc{g}{r}{h} = vec4<f32>(0.0);")
    w(f"    let kb = {kbegin};")
    w(f"    let ke = {kend};")
    w(f"    let ntiles = (ke - kb + {BK - 1}u) / {BK}u;")
    w("    for (var kt = 0u; kt < ntiles; kt++) {")
    w(f"        let k0 = kb + kt * {BK}u;")
    for which, stages, X0, arr in (("A", a_stage, "m0", "As"), ("B", b_stage, "n0", "Bs")):
        w(f"        // Stage {which}: {per} elements per thread.")
        for si, (cond, pattern, loader) in enumerate(stages):
            ind = "        "
            if cond is not None:
                w(f"        {'if' if si == 0 else '} else if'} ({cond}) {{" if si < len(stages) - 1 or cond != "else" else "        } else {")
                ind = "            "
            else:
                w("        {")
                ind = "            "
            if pattern == "k":
                w(f"{ind}let kk = t % {BK}u;")
                w(f"{ind}let k = k0 + kk;")
                for s in loader.get("per_k", "").strip("\n").split("\n"):
                    if s.strip(): w(ind + s)
                for i in range(per):
                    w(f"{ind}let x{i} = t / {BK}u + {i * 256 // BK}u;")
                    body = loader["elem"].replace("$X", f"({X0} + x{i})").replace("$K", "k").replace("$I", str(i))
                    w(f"{ind}{arr}[kk * {BM4}u + x{i} / 4u][x{i} % 4u] = {body};")
            else:
                w(f"{ind}let xx = t % {BM}u;")
                w(f"{ind}let x = {X0} + xx;")
                for s in loader.get("per_x", "").strip("\n").split("\n"):
                    if s.strip(): w(ind + s)
                for i in range(per):
                    w(f"{ind}let kk{i} = t / {BM}u + {i * 256 // BM}u;")
                    body = loader["elem"].replace("$X", "x").replace("$K", f"(k0 + kk{i})").replace("$I", str(i))
                    w(f"{ind}{arr}[kk{i} * {BM4}u + xx / 4u][xx % 4u] = {body};")
        w("        }")
    w("        workgroupBarrier();")
    w(f"        for (var kk = 0u; kk < {BK}u; kk++) {{")
    for g in range(G):
        w(f"            let a{g} = As[kk * {BM4}u + {g * 16}u + ty];")
    for h in range(G):
        w(f"            let b{h} = Bs[kk * {BM4}u + {h * 16}u + tx];")
    for g in range(G):
        for r in range(4):
            for h in range(G):
                w(f"            acc{g}{r}{h} = fma(vec4<f32>(a{g}.{COMPS[r]}), b{h}, acc{g}{r}{h});")
    w("        }")
    w("        workgroupBarrier();")
    w("    }")
    for s in store_setup.strip("\n").split("\n"):
        if s.strip(): w("    " + s)
    for h in range(G):
        for c in range(4):
            w(f"    let n{h}{c} = n0 + {h*64 + c}u + 4u * tx;")
    for g in range(G):
        for r in range(4):
            w(f"    {{")
            w(f"        let m = m0 + {g*64 + r}u + 4u * ty;")
            w(f"        if (m < p.M) {{")
            for h in range(G):
                w(f"            let v{h} = acc{g}{r}{h} * p.alpha;")
                for c in range(4):
                    stmt = store_idx.replace('$M', 'm').replace('$N', f'n{h}{c}').replace('$V', f'v{h}.{COMPS[c]}')
                    w(f"            if (n{h}{c} < p.N) {{ {stmt} }}")
            w("        }")
            w("    }")
    w("}")
    return "\n".join(L) + "\n"

def write(name, text):
    with open(os.path.join(OUT, name), "w") as f:
        f.write(text)

# ---------------------------------------------------------------- matmul
mm_params = ["M", "N", "K", "z_off", "m_off", "n_off", "bi", "a_bo", "a_bi", "a_rs", "a_cs",
             "b_bo", "b_bi", "b_rs", "b_cs", "c_bo", "c_bi", "c_rs", "a_kc", "b_kc"]
mm_doc = """// Op::MatMul{what}.
//
// Batched strided GEMM: C[z](m, n) = alpha * sum_k A[z](m, k) * B[z](k, n), where
//   A[z](m, k) = a[(z / bi) * a_bo + (z % bi) * a_bi + m * a_rs + k * a_cs]
// and B, C alike (C's column stride is 1). Transposes, batch broadcast (stride 0) and the
// per-head views of attention are all strides. The uniform flags a_kc / b_kc pick the staging
// pattern that keeps global loads coalesced: 1 when the operand is contiguous along k.
// Grid: x over N tiles, y over M tiles, z over batches; m_off, n_off and z_off place a
// dispatch when a grid dimension exceeds the device limit (65535) and is split."""
mm_setup = """
let zo = z / p.bi;
let zi = z % p.bi;
let a_base = zo * p.a_bo + zi * p.a_bi;
let b_base = zo * p.b_bo + zi * p.b_bi;
let c_base = zo * p.c_bo + zi * p.c_bi;
"""
la = {"elem": "load_a(a_base, $X, $K, ke)"}
lb = {"elem": "load_b(b_base, $K, $X, ke)"}
for cfg, fname, what in ((4, "matmul.wgsl", " (64x64 tiles, 4x4 per thread: small and medium products)"),
                         (8, "matmul_big.wgsl", " (128x128 tiles, 8x8 per thread: large products)")):
    write(fname, gen(cfg, mm_doc.replace("{what}", what), mm_params,
                     [("a", "r"), ("b", "r"), ("c", "rw")], mm_setup,
                     [("p.a_kc != 0u", "k", la), ("else", "x", la)],
                     [("p.b_kc != 0u", "k", lb), ("else", "x", lb)],
                     "c[c_base + $M * p.c_rs + $N] = $V;") + """
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
""")

# ---------------------------------------------------------------- conv2d forward
# M = co, N = n * oh * ow, K = ci * kh * kw. A = w[co][k] (contiguous in k).
# B(k, col) = x[nb, ci, oy * s + ky - pt, ox * s + kx - pl] (0 outside).
conv_params = ["M", "N", "K", "z_off", "m_off", "n_off", "nb", "ci", "h", "w", "co", "oh", "ow", "kh", "kw",
               "stride", "pad_t", "pad_l"]
conv_doc = """// Op::Conv2d: x[n, ci, h, w], w[co, ci, kh, kw] -> y[n, co, oh, ow].
//
// Implicit GEMM: y[nb, co, pix] = sum_k W(co, k) * X(k, (nb, pix)) with k = (ci, ky, kx) and
// X(k, (nb, oy, ox)) = x[nb, ci, oy * stride + ky - pad_t, ox * stride + kx - pad_l] (0 in the
// padding), gathered while staging (no im2col buffer). M = co, N = n * oh * ow, K = ci * kh * kw."""
conv_a = {"elem": "load_w($X, $K, ke)"}
conv_b = {"per_x": """
let valid_x = x < p.N;
let ohw = p.oh * p.ow;
let xb = x / ohw;
let pix = x % ohw;
let iy0 = i32((pix / p.ow) * p.stride) - i32(p.pad_t);
let ix0 = i32((pix % p.ow) * p.stride) - i32(p.pad_l);
let x_base = xb * p.ci * p.h * p.w;
let khw = p.kh * p.kw;
""", "elem": "load_x(valid_x, $K, ke, x_base, iy0, ix0, khw)"}
conv_store_setup = """
let ohw_s = p.oh * p.ow;
"""
text = gen(4, conv_doc, conv_params, [("xin", "r"), ("wt", "r"), ("y", "rw")], "",
           [(None, "k", conv_a)], [(None, "x", conv_b)],
           "let nb_ = $N / ohw_s; y[(nb_ * p.M + $M) * ohw_s + $N % ohw_s] = $V;",
           store_setup=conv_store_setup)
helper = """
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
"""
write("conv2d.wgsl", text + helper + """
fn load_w(m: u32, k: u32, ke: u32) -> f32 {
    if (m < p.M && k < ke) {
        return wt[m * p.K + k];
    }
    return 0.0;
}
""")

# ---------------------------------------------------------------- conv2d backward input
# M = ci, N = n * h * w, K = co * kh * kw.
# A(ci, k = (co, ky, kx)) = w[co, ci, ky, kx]; B(k, (nb, iy, ix)) = dy[nb, co, oy, ox] where
# oy * s = iy + pt - ky (0 unless divisible and in range).
bi_doc = """// Op::Conv2dBackwardInput: dy[n, co, oh, ow], w[co, ci, kh, kw] -> dx[n, ci, h, w].
//
// Implicit GEMM: dx[nb, ci, pix] = sum_k W(ci, k) * DY(k, (nb, pix)) with k = (co, ky, kx),
// W(ci, k) = w[co, ci, ky, kx] and DY(k, (nb, iy, ix)) = dy[nb, co, oy, ox] where
// oy * stride = iy + pad_t - ky and ox * stride = ix + pad_l - kx (0 when not divisible or out
// of range). M = ci, N = n * h * w, K = co * kh * kw."""
bi_a = {"per_k": """
let khw = p.kh * p.kw;
let kco = k / khw;
let kr = k % khw;
let w_base = kco * p.M * khw + kr;
let k_ok = k < ke;
""", "elem": "load_w(w_base, $X, khw, k_ok)"}
bi_b = {"per_x": """
let valid_x = x < p.N;
let hw = p.h * p.w;
let xb = x / hw;
let pix = x % hw;
let ty0 = i32(pix / p.w) + i32(p.pad_t);
let tx0 = i32(pix % p.w) + i32(p.pad_l);
let dy_base = xb * p.co * p.oh * p.ow;
let khw2 = p.kh * p.kw;
""", "elem": "load_dy(valid_x, $K, ke, dy_base, ty0, tx0, khw2)"}
text = gen(4, bi_doc, conv_params, [("dy", "r"), ("wt", "r"), ("dx", "rw")], "",
           [(None, "k", bi_a)], [(None, "x", bi_b)],
           "let nb_ = $N / hw_s; dx[(nb_ * p.M + $M) * hw_s + $N % hw_s] = $V;",
           store_setup="let hw_s = p.h * p.w;")
helper = """
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
"""
write("conv2d_backward_input.wgsl", text + helper + """
fn load_w(w_base: u32, m: u32, khw: u32, k_ok: bool) -> f32 {
    if (m < p.M && k_ok) {
        return wt[w_base + m * khw];
    }
    return 0.0;
}
""")

# ---------------------------------------------------------------- conv2d backward weight
# M = co, N = ci * kh * kw, K = n * oh * ow, split along K over wg.z.
bw_params = conv_params + ["kchunk"]
bw_doc = """// Op::Conv2dBackwardWeight: x[n, ci, h, w], dy[n, co, oh, ow] -> dw[co, ci, kh, kw].
//
// Implicit GEMM: dw[co, j] = sum_k DY(co, k) * X(k, j) with k = (nb, oy, ox), j = (ci, ky, kx),
// DY(co, k) = dy[nb, co, oy, ox] and X(k, j) = x[nb, ci, oy * stride + ky - pad_t,
// ox * stride + kx - pad_l]. M = co, N = ci * kh * kw, K = n * oh * ow. K is long and M, N
// short, so K is split over wg.z in chunks of `kchunk` (a multiple of 16): split z writes
// out[z * M * N + ..]; `reduce` then sums the splits (skipped when there is one)."""
bw_a = {"per_k": """
let ohw = p.oh * p.ow;
let k_ok = k < ke;
let knb = k / ohw;
let kpix = k % ohw;
let dy_base = knb * p.M * ohw + kpix;
""", "elem": "load_dy(dy_base, $X, ohw, k_ok)"}
bw_b = {"per_k": """
let ohw2 = p.oh * p.ow;
let k_ok2 = k < ke;
let bnb = k / ohw2;
let bpix = k % ohw2;
let iy0 = i32((bpix / p.ow) * p.stride) - i32(p.pad_t);
let ix0 = i32((bpix % p.ow) * p.stride) - i32(p.pad_l);
let x_base = bnb * p.ci * p.h * p.w;
let khw = p.kh * p.kw;
""", "elem": "load_x(k_ok2 && $X < p.N, $X, x_base, iy0, ix0, khw)"}
text = gen(4, bw_doc, bw_params, [("xin", "r"), ("dy", "r"), ("out", "rw")], "",
           [(None, "k", bw_a)], [(None, "k", bw_b)],
           "out[z * p.M * p.N + $M * p.N + $N] = $V;",
           kbegin="z * p.kchunk", kend="min(p.K, z * p.kchunk + p.kchunk)")
helper = """
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
"""
write("conv2d_backward_weight.wgsl", text + helper + """
fn load_dy(dy_base: u32, m: u32, ohw: u32, k_ok: bool) -> f32 {
    if (m < p.M && k_ok) {
        return dy[dy_base + m * ohw];
    }
    return 0.0;
}
""")

# ---------------------------------------------------------------- matmul_fast
# The aligned fast path: M and N multiples of 128, K a multiple of BK, every operand contiguous
# along one of its two axes with the other stride, the batch strides and the bases multiples of
# 4 (checked on the host), so every global access is an in-range vec4 with no guard. Workgroup
# tiles are double-buffered: tile kt + 1 is fetched into registers while tile kt is multiplied
# out of workgroup memory, so one barrier per K step. Created without wgpu's runtime bounds
# checks (the host-side preconditions prove every index in range).
def gen_fast(BK):
    V = BK // 8          # vec4s of A (and of B) each thread fetches per K step
    HALF = BK * 32       # vec4s in one buffer
    L = []
    w = L.append
    w(f"""// Op::MatMul, aligned fast path (128x128 tiles, 8x8 per thread, K steps of {BK},
// double-buffered).
//
// Batched strided GEMM as in matmul.wgsl: C[z](m, n) = alpha * sum_k A[z](m, k) * B[z](k, n)
// with A[z](m, k) = a[(z / bi) * a_bo + (z % bi) * a_bi + m * a_rs + k * a_cs], B and C alike.
// Preconditions (checked by the host, gpu/ops.rs `fast_gemm_ok`): M % 128 == 0, N % 128 == 0,
// K % {BK} == 0 and K > 0; A contiguous along k (a_cs == 1, a_kc = 1) or along m (a_rs == 1);
// B contiguous along n (b_cs == 1, b_kc = 0) or along k (b_rs == 1); C's column stride 1;
// every other stride and offset a multiple of 4, buffers a multiple of 16 bytes. Then every
// global access below is an aligned vec4 inside its operand, so the module is created without
// runtime bounds checks.
//
// A workgroup of 16x16 threads computes a 128x128 tile of C; thread (tx, ty) owns rows
// g*64 + 4*ty + r and columns h*64 + 4*tx + c (g, h < 2; r, c < 4) in 16 vec4 accumulators.
// K advances {BK} at a time through two workgroup buffers: each thread fetches {V} vec4 of A and
// {V} of B for the next step into registers, multiplies the current step out of workgroup
// memory, then stores its fetch into the other buffer; one barrier per step.
// Generated by gen/gemm.py.

struct Params {{""")
    for p_ in mm_params:
        w(f"    {p_}: u32,")
    w(f"""    alpha: f32,
}}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;

// Two buffers of {BK} k-rows x 32 vec4 (128 values along m or n).
var<workgroup> As: array<vec4<f32>, {2 * HALF}>;
var<workgroup> Bs: array<vec4<f32>, {2 * HALF}>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {{
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
    // What this thread fetches per K step: vec4 indices at k0 = 0, moved on by a step per k0.
    // Contiguous along k: row t / 2, k offsets (t % 2) * 4 + 8 j (two threads share each
    // 32-byte sector). Contiguous along m or n: k rows t / 32 + 8 j, columns (t % 32) * 4.
    let a_k = p.a_kc != 0u;
    let b_k = p.b_kc != 0u;
    let half = t / 2u;
    let kq = (t % 2u) * 4u;
    let kr = t / 32u;
    let xq = (t % 32u) * 4u;
    var a_at: u32;
    var a_j: u32;
    var a_step: u32;
    if (a_k) {{
        a_at = (a_base + (m0 + half) * p.a_rs + kq) / 4u;
        a_j = 2u;
        a_step = {BK // 4}u;
    }} else {{
        a_at = (a_base + m0 + xq + kr * p.a_cs) / 4u;
        a_j = 2u * p.a_cs;
        a_step = {BK // 4}u * p.a_cs;
    }}
    var b_at: u32;
    var b_j: u32;
    var b_step: u32;
    if (b_k) {{
        b_at = (b_base + (n0 + half) * p.b_cs + kq) / 4u;
        b_j = 2u;
        b_step = {BK // 4}u;
    }} else {{
        b_at = (b_base + n0 + xq + kr * p.b_rs) / 4u;
        b_j = 2u * p.b_rs;
        b_step = {BK // 4}u * p.b_rs;
    }}""")
    for g in range(2):
        for r in range(4):
            for h in range(2):
                w(f"    var acc{g}{r}{h} = vec4<f32>(0.0);")
    w(f"    let ntiles = p.K / {BK}u;")
    for j in range(V):
        w(f"    var va{j} = a[a_at + {j}u * a_j];")
        w(f"    var vb{j} = b[b_at + {j}u * b_j];")
    args = ", ".join([f"va{j}" for j in range(V)] + [f"vb{j}" for j in range(V)])
    w(f"""    stage(0u, a_k, b_k, half, kq, kr, t, {args});
    workgroupBarrier();
    for (var kt = 0u; kt < ntiles; kt++) {{
        let cur = (kt % 2u) * {HALF}u;
        let more = kt + 1u < ntiles;
        if (more) {{
            a_at += a_step;
            b_at += b_step;""")
    for j in range(V):
        w(f"            va{j} = a[a_at + {j}u * a_j];")
        w(f"            vb{j} = b[b_at + {j}u * b_j];")
    w(f"""        }}
        for (var kk = 0u; kk < {BK}u; kk++) {{
            let a0 = As[cur + kk * 32u + ty];
            let a1 = As[cur + kk * 32u + 16u + ty];
            let b0 = Bs[cur + kk * 32u + tx];
            let b1 = Bs[cur + kk * 32u + 16u + tx];""")
    for g in range(2):
        for r in range(4):
            for h in range(2):
                w(f"            acc{g}{r}{h} = fma(vec4<f32>(a{g}.{COMPS[r]}), b{h}, acc{g}{r}{h});")
    w(f"""        }}
        if (more) {{
            stage({HALF}u - cur, a_k, b_k, half, kq, kr, t, {args});
        }}
        workgroupBarrier();
    }}""")
    for g in range(2):
        for r in range(4):
            w(f"    {{")
            w(f"        let row = c_base + (m0 + {g*64 + r}u + 4u * ty) * p.c_rs;")
            for h in range(2):
                w(f"        c[(row + n0 + {h*64}u + 4u * tx) / 4u] = acc{g}{r}{h} * p.alpha;")
            w(f"    }}")
    params = ", ".join([f"va{j}: vec4<f32>" for j in range(V)] + [f"vb{j}: vec4<f32>" for j in range(V)])
    w(f"""}}

// Stores one K step's fetch into workgroup buffer `s` (0 or {HALF}), as [k][m] and [k][n].
fn stage(s: u32, a_k: bool, b_k: bool, half: u32, kq: u32, kr: u32, t: u32, {params}) {{
    let col = s + half / 4u;
    let lane = half % 4u;""")
    for op_, X in (("a", "As"), ("b", "Bs")):
        w(f"    if ({op_}_k) {{")
        for j in range(V):
            for i in range(4):
                w(f"        {X}[col + (kq + {8 * j + i}u) * 32u][lane] = v{op_}{j}.{COMPS[i]};")
        w("    } else {")
        for j in range(V):
            w(f"        {X}[s + (kr + {8 * j}u) * 32u + t % 32u] = v{op_}{j};")
        w("    }")
    w("}")
    return "\n".join(L) + "\n"

write("matmul_fast.wgsl", gen_fast(8))
# A K step of 16 (32 KiB of workgroup memory) measured 18% slower on an H200: 8 it is.

# ---------------------------------------------------------------- conv2d fast paths
# Double-buffered implicit GEMMs for the three convolution ops, one file per tile shape
# (BM rows of M x BN = 128 columns). The im2col gather takes its per-k geometry from a table the
# host builds once per convolution shape (`tab`, vec4<i32> per k: no integer division per
# element), and every load is guarded by explicit range checks, so the modules are created
# without wgpu's runtime bounds checks (gpu/ops.rs `conv_fast_ok` checks the preconditions).
CONV_TILES = {  # BM: (WX, WY, GM, GN)  -> BM = 4*GM*WY, BN = 4*GN*WX
    32: (16, 8, 1, 2),
    64: (16, 16, 1, 2),
    128: (16, 16, 2, 2),
}
CBK = 8

def gen_db(doc, tile, params, bindings, setup, A, B, store_cols, store_elem, kbegin, kend):
    """A double-buffered register-tiled GEMM. A and B: dicts with
    pattern 'k' (consecutive threads take consecutive k; `step` runs once per fetch with k
    known, `elem` uses $X for the row/column) or 'x' (consecutive threads take consecutive
    rows/columns; `col` runs once per kernel with x known, `elem` uses $K)."""
    WX, WY, GM, GN = CONV_TILES[tile]
    T = WX * WY
    BM, BN, BK = 4 * GM * WY, 4 * GN * WX, CBK
    L = []
    w = L.append
    dims = {}
    for nm, op, X in (("A", A, BM), ("B", B, BN)):
        pe = BK * X // T
        assert pe * T == BK * X
        if op["pattern"] == "k":
            assert T % BK == 0
            stride4 = X // 4 + 1  # one vec4 of padding per k row: conflict-free scalar stores
        else:
            assert T % X == 0
            stride4 = X // 4
        dims[nm] = (pe, stride4, X)
    (pa, ra, _), (pb, rb, _) = dims["A"], dims["B"]
    half_a, half_b = BK * ra, BK * rb
    smem = 2 * (half_a + half_b) * 16
    w(doc)
    w("//")
    w(f"// Tile: {BM}x{BN} outputs per workgroup of {WX}x{WY} threads, {4*GM}x{4*GN} per thread in")
    w(f"// {GM*4*GN} vec4 accumulators; K in steps of {BK}, double-buffered: each thread fetches its")
    w(f"// {pa} A and {pb} B elements of step kt + 1 into registers while step kt is multiplied out of")
    w(f"// workgroup memory ({smem} bytes), one barrier per step. Thread (tx, ty) owns rows")
    w(f"// g*{4*WY} + 4*ty + r and columns h*{4*WX} + 4*tx + c. Generated by gen/gemm.py.")
    w("")
    w("struct Params {")
    for p_ in params:
        w(f"    {p_}: u32,")
    w("}")
    w("")
    w("@group(0) @binding(0) var<uniform> p: Params;")
    for i, (nm, acc, ty_) in enumerate(bindings):
        mode = "read" if acc == "r" else "read_write"
        w(f"@group(0) @binding({i+1}) var<storage, {mode}> {nm}: array<{ty_}>;")
    w("")
    w(f"var<workgroup> As: array<vec4<f32>, {2 * half_a}>;")
    w(f"var<workgroup> Bs: array<vec4<f32>, {2 * half_b}>;")
    w("")
    w(f"@compute @workgroup_size({WX}, {WY}, 1)")
    w("fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {")
    w("    let tx = lid.x;")
    w("    let ty = lid.y;")
    w(f"    let t = ty * {WX}u + tx;")
    w(f"    let m0 = wg.y * {BM}u + p.m_off;")
    w(f"    let n0 = wg.x * {BN}u + p.n_off;")
    w("    let z = wg.z + p.z_off;")
    def emit(code, ind="    "):
        for s in code.strip("\n").split("\n"):
            if s.strip():
                w(ind + s)
    emit(setup)
    for nm, op, X0 in (("A", A, "m0"), ("B", B, "n0")):
        pe, _, X = dims[nm]
        if op["pattern"] == "k":
            w(f"    let {nm.lower()}_kk = t % {BK}u;")
        else:
            w(f"    let {nm.lower()}_xx = t % {X}u;")
            emit(op["col"].replace("$X", f"({X0} + {nm.lower()}_xx)"))
        for i in range(pe):
            w(f"    var r{nm.lower()}{i}: f32;")
    for g in range(GM):
        for r in range(4):
            for h in range(GN):
                w(f"    var acc{g}{r}{h} = vec4<f32>(0.0);")
    w(f"    let kb = {kbegin};")
    w(f"    let ke = {kend};")
    w(f"    let ntiles = (ke - kb + {BK - 1}u) / {BK}u;")

    def fetch(k0, ind):
        # Operands staged along k share one block (and one k) so that the second one's step
        # code can use what the first one's computed.
        both_k = A["pattern"] == "k" and B["pattern"] == "k"
        if both_k:
            w(f"{ind}{{")
            w(f"{ind}    let k = {k0} + a_kk;")
        for nm, op, X0 in (("A", A, "m0"), ("B", B, "n0")):
            pe, _, X = dims[nm]
            l = nm.lower()
            if op["pattern"] == "k":
                if not both_k:
                    w(f"{ind}{{")
                    w(f"{ind}    let k = {k0} + {l}_kk;")
                emit(op.get("step", ""), ind + "    ")
                for i in range(pe):
                    e = op["elem"].replace("$X", f"({X0} + t / {BK}u + {i * T // BK}u)")
                    w(f"{ind}    r{l}{i} = {e};")
                if not both_k:
                    w(f"{ind}}}")
            else:
                for i in range(pe):
                    e = op["elem"].replace("$K", f"({k0} + t / {X}u + {i * T // X}u)")
                    w(f"{ind}r{l}{i} = {e};")
        if both_k:
            w(f"{ind}}}")

    def stage(s, ind):
        for nm, op, arr in (("A", A, "As"), ("B", B, "Bs")):
            pe, stride4, X = dims[nm]
            l = nm.lower()
            for i in range(pe):
                if op["pattern"] == "k":
                    x = f"(t / {BK}u + {i * T // BK}u)"
                    w(f"{ind}{arr}[{s} + {l}_kk * {stride4}u + {x} / 4u][{x} % 4u] = r{l}{i};")
                else:
                    kk = f"(t / {X}u + {i * T // X}u)"
                    w(f"{ind}{arr}[{s} + {kk} * {stride4}u + {l}_xx / 4u][{l}_xx % 4u] = r{l}{i};")

    w("    if (ntiles > 0u) {")
    fetch("kb", "        ")
    stage("0u", "        ")
    w("    }")
    w("    workgroupBarrier();")
    w("    for (var kt = 0u; kt < ntiles; kt++) {")
    w(f"        let ca = (kt % 2u) * {half_a}u;")
    w(f"        let cb = (kt % 2u) * {half_b}u;")
    w("        let more = kt + 1u < ntiles;")
    w("        if (more) {")
    fetch(f"(kb + (kt + 1u) * {BK}u)", "            ")
    w("        }")
    w(f"        for (var kk = 0u; kk < {BK}u; kk++) {{")
    for g in range(GM):
        w(f"            let a{g} = As[ca + kk * {ra}u + {g * WY}u + ty];")
    for h in range(GN):
        w(f"            let b{h} = Bs[cb + kk * {rb}u + {h * WX}u + tx];")
    for g in range(GM):
        for r in range(4):
            for h in range(GN):
                w(f"            acc{g}{r}{h} = fma(vec4<f32>(a{g}.{COMPS[r]}), b{h}, acc{g}{r}{h});")
    w("        }")
    w("        if (more) {")
    # Stage into the other half of each buffer.
    saved = len(L)
    stage("SWAP", "            ")
    for j in range(saved, len(L)):
        L[j] = L[j].replace("As[SWAP", f"As[{half_a}u - ca").replace("Bs[SWAP", f"Bs[{half_b}u - cb")
    w("        }")
    w("        workgroupBarrier();")
    w("    }")
    for h in range(GN):
        for c in range(4):
            w(f"    let n{h}{c} = n0 + {h * 4 * WX + c}u + 4u * tx;")
            emit(store_cols.replace("$N", f"n{h}{c}").replace("$S", f"{h}{c}"))
    for g in range(GM):
        for r in range(4):
            w("    {")
            w(f"        let m = m0 + {g * 4 * WY + r}u + 4u * ty;")
            w("        if (m < p.M) {")
            for h in range(GN):
                for c in range(4):
                    stmt = store_elem.replace("$M", "m").replace("$S", f"{h}{c}").replace(
                        "$N", f"n{h}{c}").replace("$V", f"acc{g}{r}{h}.{COMPS[c]}")
                    w(f"            {stmt}")
            w("        }")
            w("    }")
    w("}")
    return "\n".join(L) + "\n", smem

cf_params = conv_params + ["kchunk", "kpad"]
conv_fast_smem = {}

# Forward. M = co, N = n * oh * ow, K = ci * kh * kw.
# tab[k] = (c*h*w + ky*w + kx, ky, kx, 0); k >= K: (0, 1 << 20, 0, 0), never in range.
cf_doc = """// Op::Conv2d fast path: x[n, ci, h, w], w[co, ci, kh, kw] -> y[n, co, oh, ow].
//
// Implicit GEMM y[nb, co, pix] = sum_k W(co, k) X(k, (nb, pix)), k = (ci, ky, kx), M = co,
// N = n * oh * ow, K = ci * kh * kw. The host's table gives, per k (padded to a multiple of
// 128), tab[k] = (ci * h * w + ky * w + kx, ky, kx, 0); padding rows carry ky = 2^20 so their
// gather is out of range and stages 0. Each thread gathers along one output column, whose
// offset and top-left input corner it computes once. Preconditions (gpu/ops.rs
// `conv_fast_ok`): every tensor below 2^31 elements, h and w below 2^19. All loads are guarded
// by explicit range checks, so the module runs without wgpu's runtime bounds checks."""
cf_A = {"pattern": "k", "step": "let a_ok = k < p.K;",
        "elem": "load_w($X, k, a_ok)"}
cf_B = {"pattern": "x", "col": """
let b_col = $X;
let b_ohw = p.oh * p.ow;
let b_nb = b_col / b_ohw;
let b_pix = b_col % b_ohw;
let b_iy = i32((b_pix / p.ow) * p.stride) - i32(p.pad_t);
let b_ix0 = i32((b_pix % p.ow) * p.stride) - i32(p.pad_l);
let b_pos = i32(b_nb * p.ci * p.h * p.w) + b_iy * i32(p.w) + b_ix0;
// A column past N gathers nothing: its row origin is far out of range.
let b_iy0 = select(b_iy, -(1 << 24), b_col >= p.N);
""", "elem": "gather_x(b_pos, b_iy0, b_ix0, $K)"}
cf_store_cols = """
let cv$S = $N < p.N;
let cb$S = ($N / (p.oh * p.ow)) * p.M * p.oh * p.ow + $N % (p.oh * p.ow);
"""
cf_store = "if (cv$S) { y[cb$S + $M * p.oh * p.ow] = $V; }"
# The input gather of the forward and weight-gradient kernels: table row k (or j) applied to a
# column's (or a k's) input position and corner.
gather_x_fn = """
fn gather_x(pos: i32, iy0: i32, ix0: i32, k: u32) -> f32 {
    let e = tab[k];
    if (u32(iy0 + e.y) < p.h && u32(ix0 + e.z) < p.w) {
        return xin[u32(pos + e.x)];
    }
    return 0.0;
}
"""
cf_helpers = """
fn load_w(m: u32, k: u32, ok: bool) -> f32 {
    if (ok && m < p.M) {
        return wt[m * p.K + k];
    }
    return 0.0;
}
""" + gather_x_fn
for tile in CONV_TILES:
    text, smem = gen_db(cf_doc, tile, cf_params,
                        [("xin", "r", "f32"), ("wt", "r", "f32"), ("y", "rw", "f32"), ("tab", "r", "vec4<i32>")],
                        "", cf_A, cf_B, cf_store_cols, cf_store, "0u", "p.K")
    write(f"conv2d_fast_{tile}.wgsl", text + cf_helpers)
    conv_fast_smem[f"conv2d_fast_{tile}.wgsl"] = smem

# Backward input. M = ci, N = n * h * w, K = co * kh * kw.
# tab[k] (k < kpad) = (c*oh*ow - (ky/s)*ow - kx/s, ky/s, kx/s, (ky%s) | (kx%s) << 16), padding
# (0, 0, 0, -1); tab[kpad + k] = (c*ci*kh*kw + ky*kw + kx, 1, 0, 0), padding all 0.
ci_doc = """// Op::Conv2dBackwardInput fast path: dy[n, co, oh, ow], w[co, ci, kh, kw] -> dx[n, ci, h, w].
//
// Implicit GEMM dx[nb, ci, pix] = sum_k W(ci, k) DY(k, (nb, pix)), k = (co, ky, kx), M = ci,
// N = n * h * w, K = co * kh * kw, where DY(k, (nb, iy, ix)) = dy[nb, co, oy, ox] when
// oy * s = iy + pad_t - ky and ox * s = ix + pad_l - kx have integral in-range solutions.
// Writing iy + pad_t = qy * s + ry and ky = qk * s + rk, that is ry == rk and oy = qy - qk: the
// host's table gives, per k (padded to a multiple of 128, `kpad` rows),
// tab[k] = (co * oh * ow - qky * ow - qkx, qky, qkx, rky | rkx << 16) (padding: w = -1, which
// matches no column) and tab[kpad + k] = (co * ci * kh * kw + ky * kw + kx, 1, 0, 0) for the
// weights (padding: y = 0). No division per element. Preconditions as conv2d_fast."""
ci_A = {"pattern": "k", "step": "let a_e = tab[p.kpad + k];",
        "elem": "load_w(a_e, $X)"}
ci_B = {"pattern": "x", "col": """
let b_col = $X;
let b_hw = p.h * p.w;
let b_nb = b_col / b_hw;
let b_pix = b_col % b_hw;
let b_ty = b_pix / p.w + p.pad_t;
let b_tx = b_pix % p.w + p.pad_l;
let b_qy = i32(b_ty / p.stride);
let b_qx = i32(b_tx / p.stride);
// A column past N matches no table row (their w is a remainder pair or -1).
let b_r = select(i32((b_ty % p.stride) | ((b_tx % p.stride) << 16u)), -2, b_col >= p.N);
let b_pos = i32(b_nb * p.co * p.oh * p.ow) + b_qy * i32(p.ow) + b_qx;
""", "elem": "gather_dy(b_pos, b_qy, b_qx, b_r, $K)"}
ci_store_cols = """
let cv$S = $N < p.N;
let cb$S = ($N / (p.h * p.w)) * p.M * p.h * p.w + $N % (p.h * p.w);
"""
ci_store = "if (cv$S) { dx[cb$S + $M * p.h * p.w] = $V; }"
ci_helpers = """
fn load_w(e: vec4<i32>, m: u32) -> f32 {
    if (e.y != 0 && m < p.M) {
        return wt[u32(e.x) + m * p.kh * p.kw];
    }
    return 0.0;
}

fn gather_dy(pos: i32, qy: i32, qx: i32, r: i32, k: u32) -> f32 {
    let e = tab[k];
    if (e.w == r && u32(qy - e.y) < p.oh && u32(qx - e.z) < p.ow) {
        return dy[u32(pos + e.x)];
    }
    return 0.0;
}
"""
for tile in CONV_TILES:
    text, smem = gen_db(ci_doc, tile, cf_params,
                        [("dy", "r", "f32"), ("wt", "r", "f32"), ("dx", "rw", "f32"), ("tab", "r", "vec4<i32>")],
                        "", ci_A, ci_B, ci_store_cols, ci_store, "0u", "p.K")
    write(f"conv2d_backward_input_fast_{tile}.wgsl", text + ci_helpers)
    conv_fast_smem[f"conv2d_backward_input_fast_{tile}.wgsl"] = smem

# Backward weight. M = co, N = ci * kh * kw, K = n * oh * ow split over wg.z in chunks of
# `kchunk` (a multiple of 8); tab as conv2d_fast's, indexed by the column j (padded to 128).
cw_doc = """// Op::Conv2dBackwardWeight fast path: x[n, ci, h, w], dy[n, co, oh, ow] -> dw[co, ci, kh, kw].
//
// Implicit GEMM dw[co, j] = sum_k DY(co, k) X(k, j), k = (nb, oy, ox), j = (ci, ky, kx),
// M = co, N = ci * kh * kw, K = n * oh * ow, split over wg.z in chunks of `kchunk` (a multiple
// of 8): split z writes out[z * M * N + ..] and reduce_splits.wgsl sums the splits (skipped
// when there is one). The host's table is conv2d_fast's, indexed by j (padded to a multiple
// of 128). Each thread takes one k per step for both operands and decomposes it once.
// Preconditions as conv2d_fast."""
cw_setup = ""
cw_A = {"pattern": "k", "step": """
let ohw = p.oh * p.ow;
let kin = k < ke;
let knb = k / ohw;
let kpix = k % ohw;
let a_base = knb * p.M * ohw + kpix;
let iy = i32((kpix / p.ow) * p.stride) - i32(p.pad_t);
let ix0 = i32((kpix % p.ow) * p.stride) - i32(p.pad_l);
let b_pos = i32(knb * p.ci * p.h * p.w) + iy * i32(p.w) + ix0;
// A k past the chunk gathers nothing: its row origin is far out of range.
let iy0 = select(iy, -(1 << 24), !kin);
""", "elem": "load_dy(a_base, $X, ohw, kin)"}
cw_B = {"pattern": "k", "step": "", "elem": "gather_x(b_pos, iy0, ix0, $X)"}
cw_store_cols = "let cv$S = $N < p.N;"
cw_store = "if (cv$S) { out[z * p.M * p.N + $M * p.N + $N] = $V; }"
cw_helpers = """
fn load_dy(base: u32, m: u32, ohw: u32, ok: bool) -> f32 {
    if (ok && m < p.M) {
        return dy[base + m * ohw];
    }
    return 0.0;
}
""" + gather_x_fn
for tile in CONV_TILES:
    text, smem = gen_db(cw_doc, tile, cf_params,
                        [("xin", "r", "f32"), ("dy", "r", "f32"), ("out", "rw", "f32"), ("tab", "r", "vec4<i32>")],
                        cw_setup, cw_A, cw_B, cw_store_cols, cw_store,
                        "z * p.kchunk", "min(p.K, z * p.kchunk + p.kchunk)")
    write(f"conv2d_backward_weight_fast_{tile}.wgsl", text + cw_helpers)
    conv_fast_smem[f"conv2d_backward_weight_fast_{tile}.wgsl"] = smem

for k_, v_ in sorted(conv_fast_smem.items()):
    print(f"{k_}: {v_} bytes of workgroup memory")

# ---------------------------------------------------------------- matmul_fast tile variants
# The aligned fast path generalised over the tile: BM x BN outputs per workgroup of WX x WY
# threads, K steps of BK, workgroup rows padded by one vec4 (`pad`: conflict-free transposed
# staging). Same preconditions as matmul_fast.wgsl with 128 replaced by BM (rows) and BN
# (columns).
def gen_fast_tile(BM, BN, WX=16, WY=16, BK=8, pad=True):
    T = WX * WY
    GM, GN = BM // (4 * WY), BN // (4 * WX)
    assert GM * 4 * WY == BM and GN * 4 * WX == BN
    VA, VB = BM * BK // (4 * T), BN * BK // (4 * T)
    assert VA >= 1 and VB >= 1 and VA * 4 * T == BM * BK and VB * 4 * T == BN * BK
    assert T % (BK // 4) == 0 and T % (BM // 4) == 0 and T % (BN // 4) == 0
    RA, RB = BM // 4 + (1 if pad else 0), BN // 4 + (1 if pad else 0)
    HA, HB = BK * RA, BK * RB
    smem = 2 * (HA + HB) * 16
    L = []
    w = L.append
    w(f"""// Op::MatMul, aligned fast path: {BM}x{BN} tiles, {4*GM}x{4*GN} per thread, K steps of {BK},
// double-buffered{', padded workgroup rows' if pad else ''} ({smem} bytes of workgroup memory).
//
// Batched strided GEMM as in matmul.wgsl: C[z](m, n) = alpha * sum_k A[z](m, k) * B[z](k, n)
// with A[z](m, k) = a[(z / bi) * a_bo + (z % bi) * a_bi + m * a_rs + k * a_cs], B and C alike.
// Preconditions (checked by the host, gpu/ops.rs `fast_gemm_ok`): M % {BM} == 0, N % {BN} == 0,
// K % {BK} == 0 and K > 0; A contiguous along k (a_cs == 1, a_kc = 1) or along m (a_rs == 1);
// B contiguous along n (b_cs == 1, b_kc = 0) or along k (b_rs == 1); C's column stride 1;
// every other stride and offset a multiple of 4, buffers a multiple of 16 bytes. Then every
// global access below is an aligned vec4 inside its operand, so the module is created without
// runtime bounds checks.
//
// A workgroup of {WX}x{WY} threads computes a {BM}x{BN} tile of C; thread (tx, ty) owns rows
// g*{4*WY} + 4*ty + r and columns h*{4*WX} + 4*tx + c (g < {GM}, h < {GN}; r, c < 4). Per K step each
// thread fetches {VA} vec4 of A and {VB} of B for the next step into registers, multiplies the
// current step out of workgroup memory, then stores its fetch into the other buffer.
// Generated by gen/gemm.py (gen_fast_tile).

struct Params {{""")
    for p_ in mm_params:
        w(f"    {p_}: u32,")
    w(f"""    alpha: f32,
}}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;

var<workgroup> As: array<vec4<f32>, {2 * HA}>;
var<workgroup> Bs: array<vec4<f32>, {2 * HB}>;

@compute @workgroup_size({WX}, {WY}, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {{
    let tx = lid.x;
    let ty = lid.y;
    let t = ty * {WX}u + tx;
    let m0 = wg.y * {BM}u + p.m_off;
    let n0 = wg.x * {BN}u + p.n_off;
    let z = wg.z + p.z_off;
    let zo = z / p.bi;
    let zi = z % p.bi;
    let a_base = zo * p.a_bo + zi * p.a_bi;
    let b_base = zo * p.b_bo + zi * p.b_bi;
    let c_base = zo * p.c_bo + zi * p.c_bi;
    let a_k = p.a_kc != 0u;
    let b_k = p.b_kc != 0u;
    // Contiguous along k: vec4 e = t + j * {T} is row e / {BK // 4}, k offset (e % {BK // 4}) * 4.
    // Contiguous along m (n): k row e / {BM // 4} ({BN // 4}), column (e % {BM // 4}) * 4 ((e % {BN // 4}) * 4).
    let a_row = t / {BK // 4}u;
    let a_kq = (t % {BK // 4}u) * 4u;
    let a_kr = t / {BM // 4}u;
    let a_xq = (t % {BM // 4}u) * 4u;
    let b_row = t / {BK // 4}u;
    let b_kq = (t % {BK // 4}u) * 4u;
    let b_kr = t / {BN // 4}u;
    let b_xq = (t % {BN // 4}u) * 4u;
    var a_at: u32;
    var a_j: u32;
    var a_step: u32;
    if (a_k) {{
        a_at = (a_base + (m0 + a_row) * p.a_rs + a_kq) / 4u;
        a_j = {T * 4 // BK}u * (p.a_rs / 4u);
        a_step = {BK // 4}u;
    }} else {{
        a_at = (a_base + m0 + a_xq + a_kr * p.a_cs) / 4u;
        a_j = {T // (BM // 4)}u * (p.a_cs / 4u);
        a_step = {BK // 4}u * p.a_cs;
    }}
    var b_at: u32;
    var b_j: u32;
    var b_step: u32;
    if (b_k) {{
        b_at = (b_base + (n0 + b_row) * p.b_cs + b_kq) / 4u;
        b_j = {T * 4 // BK}u * (p.b_cs / 4u);
        b_step = {BK // 4}u;
    }} else {{
        b_at = (b_base + n0 + b_xq + b_kr * p.b_rs) / 4u;
        b_j = {T // (BN // 4)}u * (p.b_rs / 4u);
        b_step = {BK // 4}u * p.b_rs;
    }}""")
    for g in range(GM):
        for r in range(4):
            for h in range(GN):
                w(f"    var acc{g}{r}{h} = vec4<f32>(0.0);")
    w(f"    let ntiles = p.K / {BK}u;")
    for j in range(VA):
        w(f"    var va{j} = a[a_at + {j}u * a_j];")
    for j in range(VB):
        w(f"    var vb{j} = b[b_at + {j}u * b_j];")
    args = ", ".join([f"va{j}" for j in range(VA)] + [f"vb{j}" for j in range(VB)])
    w(f"""    stage(0u, 0u, a_k, b_k, t, {args});
    workgroupBarrier();
    for (var kt = 0u; kt < ntiles; kt++) {{
        let ca = (kt % 2u) * {HA}u;
        let cb = (kt % 2u) * {HB}u;
        let more = kt + 1u < ntiles;
        if (more) {{
            a_at += a_step;
            b_at += b_step;""")
    for j in range(VA):
        w(f"            va{j} = a[a_at + {j}u * a_j];")
    for j in range(VB):
        w(f"            vb{j} = b[b_at + {j}u * b_j];")
    w(f"""        }}
        for (var kk = 0u; kk < {BK}u; kk++) {{""")
    for g in range(GM):
        w(f"            let a{g} = As[ca + kk * {RA}u + {g * WY}u + ty];")
    for h in range(GN):
        w(f"            let b{h} = Bs[cb + kk * {RB}u + {h * WX}u + tx];")
    for g in range(GM):
        for r in range(4):
            for h in range(GN):
                w(f"            acc{g}{r}{h} = fma(vec4<f32>(a{g}.{COMPS[r]}), b{h}, acc{g}{r}{h});")
    w(f"""        }}
        if (more) {{
            stage({HA}u - ca, {HB}u - cb, a_k, b_k, t, {args});
        }}
        workgroupBarrier();
    }}""")
    for g in range(GM):
        for r in range(4):
            w("    {")
            w(f"        let row = c_base + (m0 + {g * 4 * WY + r}u + 4u * ty) * p.c_rs;")
            for h in range(GN):
                w(f"        c[(row + n0 + {h * 4 * WX}u + 4u * tx) / 4u] = acc{g}{r}{h} * p.alpha;")
            w("    }")
    params = ", ".join([f"va{j}: vec4<f32>" for j in range(VA)] + [f"vb{j}: vec4<f32>" for j in range(VB)])
    w(f"""}}

// Stores one K step's fetch into the workgroup buffers at `sa` and `sb`, as [k][m] and [k][n].
fn stage(sa: u32, sb: u32, a_k: bool, b_k: bool, t: u32, {params}) {{""")
    for op_, X, S, R, BX, V in (("a", "As", "sa", RA, BM, VA), ("b", "Bs", "sb", RB, BN, VB)):
        w(f"    if ({op_}_k) {{")
        for j in range(V):
            row = f"(t / {BK // 4}u + {j * T * 4 // BK}u)"
            for i in range(4):
                w(f"        {X}[{S} + ((t % {BK // 4}u) * 4u + {i}u) * {R}u + {row} / 4u][{row} % 4u] = v{op_}{j}.{COMPS[i]};")
        w("    } else {")
        for j in range(V):
            kr = f"(t / {BX // 4}u + {j * T // (BX // 4)}u)"
            w(f"        {X}[{S} + {kr} * {R}u + t % {BX // 4}u] = v{op_}{j};")
        w("    }")
    w("}")
    return "\n".join(L) + "\n", smem

gemm_tiles = {}
for (bm, bn, wx, wy) in ((64, 64, 8, 8), (128, 128, 16, 16), (128, 256, 16, 16), (256, 128, 16, 16)):
    text, smem = gen_fast_tile(bm, bn, wx, wy)
    name = f"matmul_fast_{bm}x{bn}.wgsl"
    write(name, text)
    gemm_tiles[name] = smem
for k_, v_ in sorted(gemm_tiles.items()):
    print(f"{k_}: {v_} bytes of workgroup memory")
