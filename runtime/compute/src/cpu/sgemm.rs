//! Packed single-precision GEMM for x86-64 CPUs with AVX2 and FMA, in the GotoBLAS/BLIS
//! layout. [`super::linalg::gemm`] runs it where the CPU has both features (else ndarray's
//! `matrixmultiply` kernels).
//!
//! `c = alpha * a · b + beta * c` is computed in blocks of [`KC`] steps of the inner dimension
//! and at most `B_BUDGET / KC` columns. For each block, `b` is packed once into panels of
//! [`NR`] columns (`kc x NR`, row after row), shared by all threads; the output is cut into
//! tiles of at most [`MC`] rows (whole panels of [`MR`] rows) that run in parallel, and each
//! tile packs its rows of `a` into panels of `MR` rows, which the register kernel sweeps
//! against one `b` panel after the other. Small blocks skip the shared packing phase: each
//! thread takes a range of columns and packs its own part of `b` (and all of `a`).
//!
//! The kernel holds a `6 x 16` block of the output in twelve AVX registers and adds one
//! rank-1 product per step with FMAs. Transposed and other strided operands are handled by
//! packing from their views (row copies for `a` with contiguous rows, which the kernel then
//! reads row by row; 8 x 8 register transposes for `b` with contiguous columns); the kernel
//! only sees packed panels. Edges are zero-padded in the panels and only the valid part of a
//! block is written. Each thread keeps its packing buffers (at most about 4 MiB for `b` and
//! 192 KiB for `a`) for the next call.
//!
//! Products that share one `a` (the weights of a convolution, image after image) can pack it
//! once ([`PackedA`], the same blocks and panels as [`gemm`]) and run [`gemm_packed`] on the
//! calling thread, for any set of `NR`-column panels of `b` that the caller packs itself (the
//! implicit-GEMM convolutions of `super::linalg` pack them straight from the input image) and
//! one output view per panel (the panels need not be one matrix). Where each `b` panel is, step
//! by step, `NR` consecutive floats of some buffer (`NR` pixels of one row of an image window,
//! at an offset per kernel tap), [`gemm_direct`] has the kernel read them there, with no
//! packing (the same blocks, kernel and operations). Callers that pack both
//! operands themselves (the weight gradient of `super::linalg`) run the register kernel on
//! their panels with [`micro_rows`], and can pack `b` panels from rows with [`pack_columns`].
//!
//! The blocking was measured on a 2-core Zen 4 (32 KiB L1d, 1 MiB L2 per core): a deep `KC`
//! (the `b` panel streams from L2) means `c` is written once per 1024 steps instead of read
//! back every 256, which beat the classic `KC = 256, MC = 144` by 3 to 5 % from 1024³ up.
//!
//! Determinism: every output element is the same sequence of operations whatever the tiling
//! or the number of threads: for each block of `KC` steps (fixed by `k` alone), an FMA chain
//! over the steps in order, then `c = alpha * acc + c` (the first block: `alpha * acc`, or
//! `alpha * acc + beta * c` when `beta != 0`). Full blocks are written with vector
//! instructions and edge blocks element by element, with the same IEEE operations (no
//! contraction), so the position of an element in a block does not matter either; and
//! [`gemm_packed`] and [`gemm_direct`] run the same sequence (same blocks, same kernel), so how
//! a product is cut into its calls, and which thread runs each, does not matter. Results
//! differ in the last bits from the fallback's (another summation order); the choice between
//! the two depends on the CPU and the shapes only (`par::set_avx2` does not switch it).

use std::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_mul_ps,
    _mm256_permute2f128_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm256_shuffle_ps, _mm256_storeu_ps,
    _mm256_unpackhi_ps, _mm256_unpacklo_ps, _mm_prefetch, _MM_HINT_T0,
};
use std::cell::Cell;
use std::thread::LocalKey;

use ndarray::{s, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

/// Rows of the register block.
pub const MR: usize = 6;
/// Columns of the register block (two AVX vectors).
pub const NR: usize = 16;
/// Steps of the inner dimension per block (per packed panel and per kernel call).
pub const KC: usize = 1024;
/// Rows of an output tile, at most (a multiple of `MR`): its packed `a` (`MC x KC`, 192 KiB)
/// stays in L2.
pub const MC: usize = 48;
/// Floats of packed `b` per block, about (`KC` rows by at most `B_BUDGET / KC` columns).
const B_BUDGET: usize = 1 << 20;
/// Blocks of `b` up to this many floats are split by columns between threads, each packing
/// its own part ([`by_columns`]), when there are at least 4 panels per thread.
const SMALL_B: usize = 1 << 18;
/// Products below this many flops (`2 m n k`) run on the calling thread.
const PAR_FLOPS: usize = 1 << 22;
/// Packing buffers up to this many floats are kept per thread for the next call.
const KEEP: usize = B_BUDGET + KC * NR + 64;

/// Proof that the CPU has AVX2 and FMA: the packed kernel's entry point takes one.
#[derive(Clone, Copy, Debug)]
pub struct Avx2Fma(());

impl Avx2Fma {
    /// `Some` where the CPU has AVX2 and FMA (the standard library caches the check).
    pub fn detect() -> Option<Avx2Fma> {
        (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")).then_some(Avx2Fma(()))
    }
}

thread_local! {
    static PACKED_A: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    static PACKED_B: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

fn with_buffer<R>(
    key: &'static LocalKey<Cell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    super::par::with_scratch(key, len, KEEP, f)
}

/// `c = alpha * a · b + beta * c` with the packed kernel, on the rayon pool for large
/// products when `parallel` (else on the calling thread). When `beta == 0`, `c` is not read
/// (it may hold anything, NaN included). Zero-sized dimensions are fine.
pub fn gemm(
    cpu: Avx2Fma,
    parallel: bool,
    alpha: f32,
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    beta: f32,
    mut c: ArrayViewMut2<f32>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    debug_assert_eq!(b.nrows(), k);
    debug_assert_eq!(c.dim(), (m, n));
    if super::linalg::degenerate(k, beta, &mut c) {
        return;
    }
    let flops = 2usize.saturating_mul(m).saturating_mul(n).saturating_mul(k);
    let threads = if !parallel || flops < PAR_FLOPS {
        1
    } else {
        rayon::current_num_threads().max(1)
    };
    let kb = k.min(KC);
    let nb = n.min((B_BUDGET / kb).max(NR) / NR * NR);
    let mut run = move || {
        for j0 in (0..n).step_by(nb) {
            let nj = nb.min(n - j0);
            for p0 in (0..k).step_by(kb) {
                let pk = kb.min(k - p0);
                let bblk = b.slice(s![p0..p0 + pk, j0..j0 + nj]);
                let ablk = a.slice(s![.., p0..p0 + pk]);
                let cblk = c.slice_mut(s![.., j0..j0 + nj]);
                if threads > 1 && pk * nj <= SMALL_B && nj.div_ceil(NR) >= 4 * threads {
                    by_columns(cpu, alpha, ablk, bblk, beta, p0 == 0, cblk, threads);
                    continue;
                }
                with_buffer(&PACKED_B, pk * nj.next_multiple_of(NR), |bp| {
                    pack_b(cpu, bblk, bp, threads > 1);
                    block(cpu, alpha, ablk, bp, beta, p0 == 0, cblk, threads);
                });
            }
        }
    };
    if threads > 1 && rayon::current_thread_index().is_none() {
        // Called from outside the pool: move onto a worker once, rather than block and wake
        // this thread at every parallel phase.
        rayon::scope(|_| run());
    } else {
        run();
    }
}

/// One block of a small product: `c (+)= alpha * a · b` split into `threads` column ranges in
/// parallel, each packing its own columns of `b` (no packing phase shared by all threads,
/// and each `b` panel stays in the cache of the core that uses it) and all of `a`.
#[allow(clippy::too_many_arguments)]
fn by_columns(
    cpu: Avx2Fma,
    alpha: f32,
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    beta: f32,
    first: bool,
    c: ArrayViewMut2<f32>,
    threads: usize,
) {
    let (m, pk) = a.dim();
    let n = c.ncols();
    let np = n.div_ceil(NR);
    let nt = threads.min(np);
    let mut parts = Vec::with_capacity(nt);
    let mut rest = c;
    for j in 0..nt {
        let (c0, c1) = (j * np / nt * NR, ((j + 1) * np / nt * NR).min(n));
        let (part, right) = rest.split_at(Axis(1), c1 - c0);
        rest = right;
        parts.push((c0, part));
    }
    parts.into_par_iter().for_each(|(c0, mut part)| {
        let nj = part.ncols();
        let bblk = b.slice(s![.., c0..c0 + nj]);
        with_buffer(&PACKED_B, pk * nj.next_multiple_of(NR), |bp| {
            pack_b(cpu, bblk, bp, false);
            let mp = m.div_ceil(MR);
            let mt = mp.div_ceil(MC / MR);
            let mut rest = part.view_mut();
            for i in 0..mt {
                let (r0, r1) = (i * mp / mt * MR, ((i + 1) * mp / mt * MR).min(m));
                let (t, below) = rest.split_at(Axis(0), r1 - r0);
                rest = below;
                tile(cpu, alpha, a.slice(s![r0..r1, ..]), bp, beta, first, t);
            }
        });
    });
}

/// Tile counts (rows, columns) of an output block of `mp x np` register blocks: tiles of at
/// most `MC` rows, a multiple of `threads` of them where there are enough rows (rows first:
/// splitting columns repacks `a`).
fn grid(mp: usize, np: usize, threads: usize) -> (usize, usize) {
    let mut mt = mp.div_ceil(MC / MR);
    if threads > 1 {
        mt = mt.next_multiple_of(threads).min(mp);
    }
    let nt = if mt >= threads {
        1
    } else {
        threads.div_ceil(mt).min(np)
    };
    (mt, nt)
}

/// One block: `c (+)= alpha * a · b` for `a` of `m x pk` and `b` packed (`bp`: panels of
/// `pk x NR`), over tiles of the output in parallel.
#[allow(clippy::too_many_arguments)]
fn block(
    cpu: Avx2Fma,
    alpha: f32,
    a: ArrayView2<f32>,
    bp: &[f32],
    beta: f32,
    first: bool,
    c: ArrayViewMut2<f32>,
    threads: usize,
) {
    let (m, pk) = a.dim();
    let n = c.ncols();
    let (mp, np) = (m.div_ceil(MR), n.div_ceil(NR));
    let (mt, nt) = grid(mp, np, threads);
    let rows = |i: usize| (i * mp / mt * MR, ((i + 1) * mp / mt * MR).min(m));
    if threads == 1 {
        let mut rest = c;
        for i in 0..mt {
            let (r0, r1) = rows(i);
            let (t, below) = rest.split_at(Axis(0), r1 - r0);
            rest = below;
            tile(cpu, alpha, a.slice(s![r0..r1, ..]), bp, beta, first, t);
        }
        return;
    }
    // Tiles of whole register blocks, `i * mp / mt` panels in: as even as the panels allow.
    let mut tiles = Vec::with_capacity(mt * nt);
    let mut rest = c;
    for i in 0..mt {
        let (r0, r1) = rows(i);
        let (mut row, below) = rest.split_at(Axis(0), r1 - r0);
        rest = below;
        for j in 0..nt {
            let (c0, c1) = (j * np / nt * NR, ((j + 1) * np / nt * NR).min(n));
            let (t, right) = row.split_at(Axis(1), c1 - c0);
            row = right;
            tiles.push((r0, c0, t));
        }
    }
    let run = |(r0, c0, t): (usize, usize, ArrayViewMut2<f32>)| {
        let at = a.slice(s![r0..r0 + t.nrows(), ..]);
        tile(cpu, alpha, at, &bp[c0 * pk..], beta, first, t);
    };
    if tiles.len() == 1 {
        tiles.into_iter().for_each(run);
    } else {
        tiles.into_par_iter().for_each(run);
    }
}

/// One output tile: packs its rows of `a` (`rows x kc`) and runs the register kernel over its
/// blocks, one `b` panel against every `a` panel in turn.
fn tile(
    cpu: Avx2Fma,
    alpha: f32,
    a: ArrayView2<f32>,
    bp: &[f32],
    beta: f32,
    first: bool,
    mut c: ArrayViewMut2<f32>,
) {
    let (rows, kc) = a.dim();
    let cols = c.ncols();
    let (mp, np) = (rows.div_ceil(MR), cols.div_ceil(NR));
    // Rows of `a` contiguous: panels row after row (copies) rather than step after step.
    let a_rows = a.strides()[1] == 1;
    with_buffer(&PACKED_A, mp * MR * kc, |ap| {
        for (ip, dst) in ap.chunks_exact_mut(MR * kc).enumerate() {
            let r0 = ip * MR;
            let src = a.slice(s![r0..(r0 + MR).min(rows), ..]);
            if a_rows {
                pack_rows(src, dst);
            } else {
                pack_panel::<MR>(src, dst);
            }
        }
        for (jp, bpanel) in bp.chunks(kc * NR).take(np).enumerate() {
            for (ip, apanel) in ap.chunks_exact(MR * kc).enumerate() {
                let at = (ip * MR, jp * NR);
                micro(
                    cpu, kc, apanel, a_rows, bpanel, &mut c, at, alpha, beta, first,
                );
            }
        }
    });
}

/// Packs `b` (`pk x n`) into panels of `NR` columns, `pk x NR` each, row after row, the last
/// zero-padded; in parallel over panels when `par`.
fn pack_b(cpu: Avx2Fma, b: ArrayView2<f32>, bp: &mut [f32], par: bool) {
    let (pk, n) = b.dim();
    // Columns of `b` contiguous (a transposed operand): transpose 8 x 8 blocks in registers.
    let columns = b.strides()[0] == 1 && pk > 1;
    let panel = |jp: usize, dst: &mut [f32]| {
        let c0 = jp * NR;
        let src = b.slice(s![.., c0..(c0 + NR).min(n)]).reversed_axes();
        if columns {
            let mut rows: [&[f32]; NR] = [&[]; NR];
            let mut len = 0;
            for (d, r) in rows.iter_mut().zip(src.rows()) {
                if let Some(r) = r.to_slice() {
                    *d = r;
                    len += 1;
                }
            }
            if len == src.nrows() {
                let _: Avx2Fma = cpu;
                // SAFETY: `cpu` proves AVX2.
                unsafe { pack_transposed(&rows[..len], pk, dst) };
                return;
            }
        }
        pack_panel::<NR>(src, dst);
    };
    let bp = &mut bp[..n.div_ceil(NR) * NR * pk];
    if par {
        bp.par_chunks_mut(pk * NR)
            .enumerate()
            .for_each(|(jp, dst)| panel(jp, dst));
    } else {
        for (jp, dst) in bp.chunks_mut(pk * NR).enumerate() {
            panel(jp, dst);
        }
    }
}

/// `dst[p * NR + r] = rows[r][p]` for `p < kc` and `r < rows.len() <= NR`, zero for the
/// missing rows: 8 steps of 8 rows at a time transposed in registers.
#[target_feature(enable = "avx2")]
fn pack_transposed(rows: &[&[f32]], kc: usize, dst: &mut [f32]) {
    assert!(rows.len() <= NR && rows.iter().all(|r| r.len() >= kc) && dst.len() == kc * NR);
    let full = kc / 8 * 8;
    for p0 in (0..full).step_by(8) {
        for g in 0..NR / 8 {
            let mut v = [_mm256_setzero_ps(); 8];
            for (i, x) in v.iter_mut().enumerate() {
                if let Some(row) = rows.get(g * 8 + i) {
                    // SAFETY: the slice holds 8 floats.
                    *x = unsafe { _mm256_loadu_ps(row[p0..p0 + 8].as_ptr()) };
                }
            }
            for (p, col) in transpose8(v).into_iter().enumerate() {
                let d = &mut dst[(p0 + p) * NR + g * 8..][..8];
                // SAFETY: the slice holds 8 floats.
                unsafe { _mm256_storeu_ps(d.as_mut_ptr(), col) };
            }
        }
    }
    for p in full..kc {
        for (r, d) in dst[p * NR..(p + 1) * NR].iter_mut().enumerate() {
            *d = rows.get(r).map_or(0.0, |row| row[p]);
        }
    }
}

/// The transpose of 8 x 8 floats: `out[p][i] = v[i][p]`.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose8(v: [__m256; 8]) -> [__m256; 8] {
    let t0 = _mm256_unpacklo_ps(v[0], v[1]);
    let t1 = _mm256_unpackhi_ps(v[0], v[1]);
    let t2 = _mm256_unpacklo_ps(v[2], v[3]);
    let t3 = _mm256_unpackhi_ps(v[2], v[3]);
    let t4 = _mm256_unpacklo_ps(v[4], v[5]);
    let t5 = _mm256_unpackhi_ps(v[4], v[5]);
    let t6 = _mm256_unpacklo_ps(v[6], v[7]);
    let t7 = _mm256_unpackhi_ps(v[6], v[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}

/// `dst[r * kc + p] = src[r, p]` for `src` of `rows x kc` (`rows <= MR`); rows `rows..MR`
/// zero. A copy per row when the rows are contiguous.
fn pack_rows(src: ArrayView2<f32>, dst: &mut [f32]) {
    let (rows, kc) = src.dim();
    assert!(
        rows <= MR && dst.len() == kc * MR,
        "pack_rows: {rows} x {kc} into {}",
        dst.len()
    );
    if kc == 0 {
        return;
    }
    for (r, d) in dst.chunks_exact_mut(kc).enumerate() {
        if r >= rows {
            d.fill(0.0);
            continue;
        }
        let row = src.row(r);
        match row.as_slice() {
            Some(v) => d.copy_from_slice(v),
            None => {
                for (o, &v) in d.iter_mut().zip(&row) {
                    *o = v;
                }
            }
        }
    }
}

/// `dst[p * R + r] = src[r, p]` for `src` of `rows x kc` (`rows <= R`); rows `rows..R` zero.
fn pack_panel<const R: usize>(src: ArrayView2<f32>, dst: &mut [f32]) {
    let (rows, kc) = src.dim();
    assert!(
        rows <= R && dst.len() == kc * R,
        "pack_panel: {rows} x {kc} into {}",
        dst.len()
    );
    if rows < R {
        dst.fill(0.0);
    }
    if rows == 0 || kc == 0 {
        return;
    }
    let (rs, cs) = (src.strides()[0], src.strides()[1]);
    if rs == 1 && kc > 1 {
        // Columns contiguous (a transposed operand): one copy per step. Column views would
        // cost more than the copy, hence the raw reads.
        let base = src.as_ptr();
        for (p, d) in dst.chunks_exact_mut(R).enumerate() {
            // SAFETY: column `p < kc` of the view holds `rows` elements at unit stride from
            // `base + p * cs`, all inside the memory `src` borrows (shared, read-only).
            let col = unsafe { std::slice::from_raw_parts(base.offset(p as isize * cs), rows) };
            if rows == R {
                d.copy_from_slice(col); // fixed size: a few vector moves
            } else {
                d[..rows].copy_from_slice(col);
            }
        }
    } else {
        // Rows contiguous or any other layout: scatter each row.
        for (r, row) in src.rows().into_iter().enumerate() {
            match row.as_slice() {
                Some(v) => {
                    for (d, &x) in dst.chunks_exact_mut(R).zip(v) {
                        d[r] = x;
                    }
                }
                None => {
                    for (d, &x) in dst.chunks_exact_mut(R).zip(&row) {
                        d[r] = x;
                    }
                }
            }
        }
    }
}

/// The register block of `c` at `(i0, j0)` (up to `MR x NR`) from packed panels of `kc` steps
/// (`a` row after row when `a_rows`, else step after step).
#[allow(clippy::too_many_arguments)]
#[inline]
fn micro(
    cpu: Avx2Fma,
    kc: usize,
    a: &[f32],
    a_rows: bool,
    b: &[f32],
    c: &mut ArrayViewMut2<f32>,
    (i0, j0): (usize, usize),
    alpha: f32,
    beta: f32,
    first: bool,
) {
    let _: Avx2Fma = cpu;
    assert!(a.len() >= kc * MR && b.len() >= kc * NR);
    // SAFETY: `cpu` proves AVX2 and FMA; `a` and `b` hold `kc` steps of `MR` and `NR` floats
    // (checked above).
    unsafe {
        kernel_at::<false>(
            a_rows,
            kc,
            a.as_ptr(),
            b.as_ptr(),
            std::ptr::null(),
            c,
            (i0, j0),
            alpha,
            beta,
            first,
        )
    }
}

/// [`kernel`] on the register block of the view `c` at `(i0, j0)` (up to `MR x NR`, clipped
/// to the view), `a` row after row (`a_rows`) or step after step.
///
/// # Safety
/// As [`kernel`] for `kc`, `a`, `b` and `offs`; `c` is checked here. Element `(i0, j0)` is in
/// the view (asserted), and so is every `(i0 + r, j0 + j)` with `r < mr`, `j < nr`, at offset
/// `r * rs + j * cs` from it: the kernel touches only those, through the view's exclusive
/// borrow.
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn kernel_at<const DIRECT: bool>(
    a_rows: bool,
    kc: usize,
    a: *const f32,
    b: *const f32,
    offs: *const usize,
    c: &mut ArrayViewMut2<f32>,
    (i0, j0): (usize, usize),
    alpha: f32,
    beta: f32,
    first: bool,
) {
    let (rows, cols) = c.dim();
    assert!(i0 < rows && j0 < cols);
    let (mr, nr) = (MR.min(rows - i0), NR.min(cols - j0));
    let (rs, cs) = (c.strides()[0], c.strides()[1]);
    // SAFETY: the caller's contract is `kernel`'s for everything but `c`, see above.
    unsafe {
        let c = c.as_mut_ptr().offset(i0 as isize * rs + j0 as isize * cs);
        if a_rows {
            kernel::<true, DIRECT>(kc, a, b, offs, c, rs, cs, mr, nr, alpha, beta, first)
        } else {
            kernel::<false, DIRECT>(kc, a, b, offs, c, rs, cs, mr, nr, alpha, beta, first)
        }
    }
}

/// The `MR x NR` register kernel: `acc = Σ_p a[p] ⊗ b[p]` over `kc` packed steps (`a` row
/// after row when `A_ROWS`, `a[r * kc + p]`, else step after step, `a[p * MR + r]`; `b[p]` the
/// `NR` floats at `b + p * NR`, or at `b + offs[p]` when `DIRECT`), then the `mr x nr` block of
/// `c` at `c` (strides `rs`, `cs`) becomes `alpha * acc + c` (`first`: `alpha * acc`, plus
/// `beta * c` when `beta != 0`).
///
/// # Safety
/// The CPU has AVX2 and FMA; `a` is readable for `kc * MR` floats, and `b` for `kc * NR`
/// floats (when `DIRECT`: `offs` for `kc` offsets, and `b` for `NR` floats from each); `c` is
/// readable and writable at `r * rs + j * cs` for `r < mr <= MR`, `j < nr <= NR`, with no other
/// access to those elements meanwhile.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel<const A_ROWS: bool, const DIRECT: bool>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    offs: *const usize,
    c: *mut f32,
    rs: isize,
    cs: isize,
    mr: usize,
    nr: usize,
    alpha: f32,
    beta: f32,
    first: bool,
) {
    // Start loading the block of `c` now: it is needed only after the loop.
    for r in 0..mr {
        let row = c.wrapping_offset(r as isize * rs);
        _mm_prefetch::<_MM_HINT_T0>(row.cast());
        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_offset((nr - 1) as isize * cs).cast());
    }
    let mut acc = [_mm256_setzero_ps(); 2 * MR];
    for p in 0..kc {
        // SAFETY (all pointer reads here): step `p < kc` reads `b[p * NR..][..NR]` (or
        // `offs[p]` and `b[offs[p]..][..NR]`) and `a[r * kc + p]` or `a[p * MR + r]` for
        // `r < MR`, inside the caller's ranges.
        let bp = unsafe {
            if DIRECT {
                b.add(*offs.add(p))
            } else {
                b.add(p * NR)
            }
        };
        let (b0, b1) = unsafe { (_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8))) };
        for r in 0..MR {
            let at = if A_ROWS { r * kc + p } else { p * MR + r };
            let x = unsafe { _mm256_broadcast_ss(&*a.add(at)) };
            acc[2 * r] = _mm256_fmadd_ps(x, b0, acc[2 * r]);
            acc[2 * r + 1] = _mm256_fmadd_ps(x, b1, acc[2 * r + 1]);
        }
    }
    let va = _mm256_set1_ps(alpha);
    if mr == MR && nr == NR && cs == 1 {
        let vb = _mm256_set1_ps(beta);
        for (r, pair) in acc.chunks_exact(2).enumerate() {
            for (h, &v) in pair.iter().enumerate() {
                // SAFETY: row `r < MR`, columns `8h..8h + 8 <= NR` of the block, contiguous
                // (`cs == 1`): inside the caller's range.
                unsafe {
                    let p = c.offset(r as isize * rs).add(8 * h);
                    let v: __m256 = _mm256_mul_ps(v, va);
                    let out = if !first {
                        _mm256_add_ps(v, _mm256_loadu_ps(p))
                    } else if beta == 0.0 {
                        v
                    } else {
                        _mm256_add_ps(v, _mm256_mul_ps(_mm256_loadu_ps(p), vb))
                    };
                    _mm256_storeu_ps(p, out);
                }
            }
        }
    } else {
        let mut buf = [0f32; MR * NR];
        for (d, &v) in buf.chunks_exact_mut(8).zip(&acc) {
            // SAFETY: `d` is 8 writable floats.
            unsafe { _mm256_storeu_ps(d.as_mut_ptr(), _mm256_mul_ps(v, va)) };
        }
        for r in 0..mr {
            for (j, &v) in buf[r * NR..r * NR + nr].iter().enumerate() {
                // SAFETY: `r < mr`, `j < nr`: inside the caller's range.
                unsafe {
                    let p = c.offset(r as isize * rs + j as isize * cs);
                    *p = if !first {
                        v + *p
                    } else if beta == 0.0 {
                        v
                    } else {
                        v + *p * beta
                    };
                }
            }
        }
    }
}

/// An `m x k` matrix packed once for several products ([`gemm_packed`]), in the blocks of `KC`
/// steps that [`gemm`] uses: block `p0` (`pk = min(KC, k - p0)` steps) starts at
/// `p0 * m.next_multiple_of(MR)` and holds `m.div_ceil(MR)` panels of `MR x pk`, the last
/// zero-padded (row after row when the source rows are contiguous, else step after step).
pub struct PackedA<'s> {
    data: &'s [f32],
    m: usize,
    k: usize,
    rows: bool,
}

impl<'s> PackedA<'s> {
    /// Floats of the packed form of an `m x k` matrix.
    pub fn len(m: usize, k: usize) -> usize {
        m.next_multiple_of(MR) * k
    }

    /// Packs `a` into `buf` (at least [`PackedA::len`] floats), in parallel over panels when
    /// `par`.
    pub fn new(a: ArrayView2<f32>, buf: &'s mut [f32], par: bool) -> PackedA<'s> {
        let (m, k) = a.dim();
        let mp = m.div_ceil(MR);
        let rows = a.strides()[1] == 1;
        let buf = &mut buf[..Self::len(m, k)];
        let mut panels = Vec::with_capacity(mp * k.div_ceil(KC));
        let mut rest = &mut *buf;
        for p0 in (0..k).step_by(KC) {
            let pk = KC.min(k - p0);
            for ip in 0..mp {
                let (dst, tail) = rest.split_at_mut(MR * pk);
                rest = tail;
                panels.push((p0, ip, dst));
            }
        }
        let pack = |(p0, ip, dst): (usize, usize, &mut [f32])| {
            let pk = dst.len() / MR;
            let src = a.slice(s![ip * MR..(ip * MR + MR).min(m), p0..p0 + pk]);
            if rows {
                pack_rows(src, dst);
            } else {
                pack_panel::<MR>(src, dst);
            }
        };
        if par {
            panels.into_par_iter().for_each(pack);
        } else {
            panels.into_iter().for_each(pack);
        }
        PackedA {
            data: buf,
            m,
            k,
            rows,
        }
    }

    /// Panels of `MR` rows.
    pub fn panels(&self) -> usize {
        self.m.div_ceil(MR)
    }

    /// Panel `ip` of the block of steps starting at `p0` (`pk` steps).
    fn panel(&self, p0: usize, pk: usize, ip: usize) -> &[f32] {
        let at = p0 * self.m.next_multiple_of(MR) + ip * MR * pk;
        &self.data[at..at + MR * pk]
    }
}

/// `c = alpha * a · b + beta * c` on the calling thread for the rows of the panels `panels` of
/// a packed `a` and a `b` of `k` rows that `pack_b` packs block by block: `pack_b(p0, pk, dst)`
/// writes steps `p0..p0 + pk` of its `c.len()` panels of `NR` columns into `dst` (`pk x NR`
/// per panel, row after row, panel after panel, zero past the last column). `c[q]` is the
/// output of panel `q`: the selected rows by at most `NR` columns (any strides). Each element
/// is computed as in [`gemm`] (the same blocks of `KC` steps, the same kernel), so the result
/// does not depend on how a product is cut into calls.
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed(
    cpu: Avx2Fma,
    alpha: f32,
    a: &PackedA,
    panels: std::ops::Range<usize>,
    mut pack_b: impl FnMut(usize, usize, &mut [f32]),
    beta: f32,
    c: &mut [ArrayViewMut2<f32>],
) {
    let k = a.k;
    let rows = (panels.end * MR).min(a.m).saturating_sub(panels.start * MR);
    assert!(panels.end <= a.panels() && c.iter().all(|v| v.nrows() == rows && v.ncols() <= NR));
    if c.iter_mut().all(|v| super::linalg::degenerate(k, beta, v)) {
        return;
    }
    let np = c.len();
    for p0 in (0..k).step_by(KC) {
        let pk = KC.min(k - p0);
        with_buffer(&PACKED_B, pk * NR * np, |bp| {
            pack_b(p0, pk, bp);
            let tiles: Vec<usize> = panels.clone().step_by(MC / MR).collect();
            for t0 in tiles {
                let t1 = (t0 + MC / MR).min(panels.end);
                for (cq, bpanel) in c.iter_mut().zip(bp.chunks_exact(pk * NR)) {
                    if cq.ncols() == 0 {
                        continue;
                    }
                    for ip in t0..t1 {
                        let at = ((ip - panels.start) * MR, 0);
                        let ap = a.panel(p0, pk, ip);
                        micro(cpu, pk, ap, a.rows, bpanel, cq, at, alpha, beta, p0 == 0);
                    }
                }
            }
        });
    }
}

/// `c = a · b`, or `c = a · b + c` unless `first`, for the register block of `c` at `at`
/// (up to `MR x NR`, any strides): `a` one panel of `MR` rows packed row after row
/// (`a[r * kc + p]`, `kc * MR` floats), `b` one panel of `NR` columns (`b[p * NR + j]`,
/// `kc * NR` floats). The same kernel and operations as [`gemm`]'s, for callers that pack
/// both operands themselves.
pub fn micro_rows(
    cpu: Avx2Fma,
    kc: usize,
    a: &[f32],
    b: &[f32],
    c: &mut ArrayViewMut2<f32>,
    at: (usize, usize),
    first: bool,
) {
    micro(cpu, kc, a, true, b, c, at, 1.0, 0.0, first);
}

/// Packs `rows.len() <= NR` rows of at least `kc` floats as one `kc x NR` panel of `b`:
/// `dst[p * NR + r] = rows[r][p]`, zero for the missing rows (8 x 8 register transposes).
pub fn pack_columns(cpu: Avx2Fma, rows: &[&[f32]], kc: usize, dst: &mut [f32]) {
    let _: Avx2Fma = cpu;
    // SAFETY: `cpu` proves AVX2.
    unsafe { pack_transposed(rows, kc, dst) }
}

/// [`micro`] with the `b` panel read in place: step `p` is the `NR` floats at
/// `src[base + offs[p]..]` (`offs_max` the largest of `offs`).
#[allow(clippy::too_many_arguments)]
#[inline]
fn micro_direct(
    cpu: Avx2Fma,
    a: &[f32],
    a_rows: bool,
    src: &[f32],
    base: usize,
    offs: &[usize],
    offs_max: usize,
    c: &mut ArrayViewMut2<f32>,
    (i0, j0): (usize, usize),
    alpha: f32,
    beta: f32,
    first: bool,
) {
    let kc = offs.len();
    let _: Avx2Fma = cpu;
    assert!(a.len() >= kc * MR && base + offs_max + NR <= src.len());
    // SAFETY: as in `micro`; step `p` reads `src[base + offs[p]..][..NR]`, inside `src`
    // (`offs[p] <= offs_max`, checked above).
    unsafe {
        kernel_at::<true>(
            a_rows,
            kc,
            a.as_ptr(),
            src.as_ptr().add(base),
            offs.as_ptr(),
            c,
            (i0, j0),
            alpha,
            beta,
            first,
        )
    }
}

/// [`gemm_packed`] with the `b` panels read in place rather than packed: step `p` of panel
/// `q` is the `NR` floats at `src[bases[q] + offs[p]..]` (for example `NR` pixels of a row of
/// an image window, `offs` the kernel taps; all `NR` are read even where `c[q]` has fewer
/// columns, and must lie in `src`). The same blocks, kernel and operations as packing those
/// floats for [`gemm_packed`], so bitwise the same results.
#[allow(clippy::too_many_arguments)]
pub fn gemm_direct(
    cpu: Avx2Fma,
    alpha: f32,
    a: &PackedA,
    panels: std::ops::Range<usize>,
    src: &[f32],
    bases: &[usize],
    offs: &[usize],
    beta: f32,
    c: &mut [ArrayViewMut2<f32>],
) {
    let k = a.k;
    let rows = (panels.end * MR).min(a.m).saturating_sub(panels.start * MR);
    assert!(
        panels.end <= a.panels()
            && offs.len() == k
            && bases.len() == c.len()
            && c.iter().all(|v| v.nrows() == rows && v.ncols() <= NR)
    );
    if c.iter_mut().all(|v| super::linalg::degenerate(k, beta, v)) {
        return;
    }
    for p0 in (0..k).step_by(KC) {
        let pk = KC.min(k - p0);
        let offs = &offs[p0..p0 + pk];
        let offs_max = offs.iter().copied().max().unwrap_or(0);
        let tiles: Vec<usize> = panels.clone().step_by(MC / MR).collect();
        for t0 in tiles {
            let t1 = (t0 + MC / MR).min(panels.end);
            for (cq, &base) in c.iter_mut().zip(bases) {
                if cq.ncols() == 0 {
                    continue;
                }
                for ip in t0..t1 {
                    let at = ((ip - panels.start) * MR, 0);
                    let ap = a.panel(p0, pk, ip);
                    micro_direct(
                        cpu,
                        ap,
                        a.rows,
                        src,
                        base,
                        offs,
                        offs_max,
                        cq,
                        at,
                        alpha,
                        beta,
                        p0 == 0,
                    );
                }
            }
        }
    }
}
