//! Parallel helpers shared by the CPU kernels.
//!
//! Elementwise work runs sequentially below [`PAR_MIN`] elements and in fixed chunks of
//! [`CHUNK`] elements on the rayon pool above it. Reductions always split their input into
//! fixed chunks of [`SUM_CHUNK`] elements, sum each chunk in `f64` and add the chunk sums in
//! order, so a result depends on the shapes only, never on the number of threads.
//!
//! Hot loops ([`map1`], [`map2`] and the functions defined with `simd_fn!`) are compiled a
//! second time for AVX2, picked at run time where the CPU has it (the baseline x86-64 target
//! only has SSE2, 4 lanes). Both versions perform the same IEEE operations in the same order
//! (Rust never reassociates or contracts floating-point arithmetic, and no FMA is enabled),
//! so results are bitwise the same either way.

use rayon::prelude::*;
use std::cell::Cell;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::LocalKey;

/// Below this many elements, elementwise kernels run on the calling thread.
pub const PAR_MIN: usize = 1 << 15;
/// Chunk size of parallel elementwise kernels.
pub const CHUNK: usize = 1 << 13;
/// Chunk size of reductions (fixed: results do not depend on the thread count).
pub const SUM_CHUNK: usize = 1 << 12;

static BASELINE_ONLY: AtomicBool = AtomicBool::new(false);

/// Turns the AVX2 versions of the kernels off (`false`) or back on. Results are the same
/// either way (this exists to test that, and to time both).
pub fn set_avx2(enabled: bool) {
    BASELINE_ONLY.store(!enabled, Ordering::Relaxed);
}

/// Whether to run the AVX2 versions: the CPU has AVX2 (cached by the standard library) and
/// [`set_avx2`] did not turn them off.
#[inline(always)]
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && !BASELINE_ONLY.load(Ordering::Relaxed)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines a function whose body is compiled twice, for the baseline target and for AVX2,
/// and runs the AVX2 version when the CPU has it. The body must be a plain loop nest of
/// `#[inline(always)]` helpers for the second compilation to reach it (closures that are
/// not inlined stay baseline code, which is why this is a macro and not a closure wrapper).
macro_rules! simd_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($a: $t),*) $(-> $r)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($a: $t),*) $(-> $r)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($a: $t),*) $(-> $r)? {
                    body($($a),*)
                }
                if $crate::cpu::par::has_avx2() {
                    // SAFETY: the CPU supports AVX2 (checked just above).
                    return unsafe { avx2($($a),*) };
                }
            }
            body($($a),*)
        }
    };
}
pub(crate) use simd_fn;

#[inline(always)]
fn map1_body<F: Fn(f32) -> f32>(y: &mut [f32], x: &[f32], f: &F) {
    for (o, &a) in y.iter_mut().zip(x) {
        *o = f(a);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn map1_avx2<F: Fn(f32) -> f32>(y: &mut [f32], x: &[f32], f: &F) {
    map1_body(y, x, f)
}

#[inline(always)]
fn map1_chunk<F: Fn(f32) -> f32>(y: &mut [f32], x: &[f32], f: &F) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2.
        return unsafe { map1_avx2(y, x, f) };
    }
    map1_body(y, x, f)
}

/// `y[i] = f(x[i])`.
pub fn map1<F>(x: &[f32], y: &mut [f32], f: F)
where
    F: Fn(f32) -> f32 + Sync,
{
    debug_assert_eq!(x.len(), y.len());
    if y.len() < PAR_MIN {
        map1_chunk(y, x, &f);
    } else {
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| map1_chunk(y, x, &f));
    }
}

#[inline(always)]
fn map2_body<F: Fn(f32, f32) -> f32>(y: &mut [f32], a: &[f32], b: &[f32], f: &F) {
    for ((o, &p), &q) in y.iter_mut().zip(a).zip(b) {
        *o = f(p, q);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn map2_avx2<F: Fn(f32, f32) -> f32>(y: &mut [f32], a: &[f32], b: &[f32], f: &F) {
    map2_body(y, a, b, f)
}

#[inline(always)]
fn map2_chunk<F: Fn(f32, f32) -> f32>(y: &mut [f32], a: &[f32], b: &[f32], f: &F) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2.
        return unsafe { map2_avx2(y, a, b, f) };
    }
    map2_body(y, a, b, f)
}

/// `y[i] = f(a[i], b[i])`.
pub fn map2<F>(a: &[f32], b: &[f32], y: &mut [f32], f: F)
where
    F: Fn(f32, f32) -> f32 + Sync,
{
    debug_assert_eq!(a.len(), y.len());
    debug_assert_eq!(b.len(), y.len());
    if y.len() < PAR_MIN {
        map2_chunk(y, a, b, &f);
    } else {
        y.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK))
            .zip(b.par_chunks(CHUNK))
            .for_each(|((y, a), b)| map2_chunk(y, a, b, &f));
    }
}

/// `y[i] = f(i, x[i])` (the global element index, for dropout masks).
pub fn map1_indexed<F>(x: &[f32], y: &mut [f32], f: F)
where
    F: Fn(usize, f32) -> f32 + Sync,
{
    debug_assert_eq!(x.len(), y.len());
    let body = |base: usize, y: &mut [f32], x: &[f32]| {
        for (j, (o, &a)) in y.iter_mut().zip(x).enumerate() {
            *o = f(base + j, a);
        }
    };
    if y.len() < PAR_MIN {
        body(0, y, x);
    } else {
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .enumerate()
            .for_each(|(c, (y, x))| body(c * CHUNK, y, x));
    }
}

/// Runs `f` on consecutive row blocks of `rows` rows of `row_len` elements of `y`, in
/// parallel when the whole is large. `f` gets the index of the first row of its block.
pub fn rows_mut<F>(y: &mut [f32], row_len: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    if y.is_empty() || row_len == 0 {
        return;
    }
    let rows = y.len() / row_len;
    if y.len() < PAR_MIN || rows == 1 {
        f(0, y);
        return;
    }
    // Blocks of about CHUNK elements (at least one row).
    let block = CHUNK.div_ceil(row_len).max(1);
    y.par_chunks_mut(block * row_len)
        .enumerate()
        .for_each(|(b, y)| f(b * block, y));
}

simd_fn! {
    /// Sum of a slice in `f64` (four accumulators: vectorises, deterministic).
    pub fn seq_sum(x: &[f32]) -> f64 {
        let mut acc = [0f64; 4];
        let mut it = x.chunks_exact(4);
        for c in &mut it {
            for (a, &v) in acc.iter_mut().zip(c) {
                *a += v as f64;
            }
        }
        let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        for &v in it.remainder() {
            s += v as f64;
        }
        s
    }
}

/// Deterministic chunked reduction of `K` sums over `0..len`: `f` sums one range (at most
/// [`SUM_CHUNK`] long, sequentially), and the chunk results are added in order.
pub fn chunked_sums<const K: usize, F>(len: usize, f: F) -> [f64; K]
where
    F: Fn(Range<usize>) -> [f64; K] + Sync,
{
    let chunks = len.div_ceil(SUM_CHUNK);
    let part = |c: usize| f(c * SUM_CHUNK..((c + 1) * SUM_CHUNK).min(len));
    let parts: Vec<[f64; K]> = if len < PAR_MIN {
        (0..chunks).map(part).collect()
    } else {
        (0..chunks).into_par_iter().map(part).collect()
    };
    let mut total = [0f64; K];
    for p in parts {
        for k in 0..K {
            total[k] += p[k];
        }
    }
    total
}

/// Deterministic sum of a slice (chunked, `f64`).
pub fn sum(x: &[f32]) -> f64 {
    chunked_sums(x.len(), |r| [seq_sum(&x[r])])[0]
}

/// Like [`chunked_sums`], with an output written alongside: `f(offset, out chunk)` fills its
/// chunk of `out` (at most [`SUM_CHUNK`] long) and returns the chunk's sums.
pub fn chunked_sums_out<const K: usize, F>(out: &mut [f32], f: F) -> [f64; K]
where
    F: Fn(usize, &mut [f32]) -> [f64; K] + Sync,
{
    let parts: Vec<[f64; K]> = if out.len() < PAR_MIN {
        out.chunks_mut(SUM_CHUNK)
            .enumerate()
            .map(|(c, o)| f(c * SUM_CHUNK, o))
            .collect()
    } else {
        out.par_chunks_mut(SUM_CHUNK)
            .enumerate()
            .map(|(c, o)| f(c * SUM_CHUNK, o))
            .collect()
    };
    let mut total = [0f64; K];
    for p in parts {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

/// Runs `f` on a scratch slice of `len` floats (contents unspecified) that starts on a 64-byte
/// boundary, reusing this thread's buffer `key` from call to call (no fresh zeroed pages each
/// call) while it holds at most `keep` floats. A nested call on the same thread (a rayon task
/// stolen while this one waits) finds the buffer taken and allocates its own.
pub(crate) fn with_scratch<R>(
    key: &'static LocalKey<Cell<Vec<f32>>>,
    len: usize,
    keep: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    const PAD: usize = 16;
    let mut v = key.take();
    if v.len() < len + PAD {
        v = vec![0f32; len + PAD];
    }
    let off = v.as_ptr().align_offset(64).min(PAD);
    let r = f(&mut v[off..off + len]);
    if v.len() <= keep {
        key.set(v);
    }
    r
}
