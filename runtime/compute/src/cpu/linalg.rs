//! Matrix products: batched matmul, convolution (im2col + GEMM, col2im for the input
//! gradient) and multi-head attention.
//!
//! Where the packed kernel runs (x86-64 with AVX2 and FMA), the forward convolution and the
//! input gradient of stride-1 convolutions (the forward convolution of `dy` with the flipped,
//! transposed kernel, `Conv::transposed`) are implicit GEMMs (`implicit`): the weights are
//! packed once per call and shared by every image, and the `b` panels are packed straight from
//! a zero-padded window of the input rows, with no im2col matrix and no col2im; where each
//! panel of 16 output pixels lies on one output row (the output width a multiple of 16), the
//! kernel reads the panels in place from the window instead (`sgemm::gemm_direct`: no packing
//! at all). The windows of strided convolutions store each input row as `stride` phase rows
//! (even and odd columns for stride 2, de-interleaved once per row), so that the pixels of an
//! output row read consecutive floats for every kernel tap rather than a strided gather. The
//! input gradient of strided convolutions is `stride²` stride-1 implicit GEMMs, one per
//! phase of the input positions (`implicit::backward_input_phases`: each phase takes its own
//! taps of the kernel, all read one window of `dy`), whose results are interleaved into `dx`
//! (no col2im either). The weight gradient (with at least [`DW_IMPLICIT_MIN_CO`] output
//! channels) is computed transposed, `dwᵀ[k, co] = im2col(x)[k, n p] · dyᵀ[n p, co]` over the
//! pixels of all images at once (`implicit::backward_weight`): the `a` panels (`MR` im2col
//! rows over a block of pixels) are copied straight from such windows (a run of pixels on one
//! output row is a run of a window phase row), the `b` panels are 8 x 8 transposes of the `dy`
//! rows, and the rows of `dwᵀ` are split between threads (plus two groups of pixel blocks, as
//! partial sums added in order, where there are more pixels than rows), so no im2col matrix,
//! no transposed packing of it and no per-image partial sums; `dwᵀ` is transposed into `dw` at
//! the end. Narrower weight gradients keep im2col around [`gemm`] (their im2col also copies
//! from such a window: the same values, fewer branches); CPUs without AVX2 and FMA (and
//! [`set_generic_convs`]) run im2col, [`gemm`] and col2im for all three.
//!
//! The other products go through [`gemm`]. Where the CPU has AVX2 and FMA, products that are
//! not tiny ([`Kernel::Auto`]) run the packed kernel of `super::sgemm` (x86-64 only); the others
//! (or all, when [`gemm_with`] asks for it) run ndarray's `general_mat_mul` (the cache-blocked,
//! SIMD `matrixmultiply` kernels) on tiles of the output in parallel. The choice depends on the
//! shapes and the CPU only, and either way each output element is computed by a sequence of
//! operations that depends on the shapes only, so results do not depend on the number of
//! threads.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, ArrayView2, ArrayViewMut2, Axis, ShapeBuilder};
use rayon::prelude::*;
use std::cell::Cell;
use std::thread::LocalKey;

use super::par::{CHUNK, PAR_MIN};
use crate::op::{conv_out, numel, pad_before, Padding};

/// Tiles below this many flops (2 m n k) are not split further.
const MIN_TILE_FLOPS: usize = 1 << 22;
/// Split the output into about this many tiles when each stays above `MIN_TILE_FLOPS`.
const TARGET_TILES: usize = 32;

/// Tile sizes (rows, columns) of the output of an `m x k` by `k x n` product: a function of
/// the shapes only.
fn tiles(m: usize, n: usize, k: usize) -> (usize, usize) {
    let (mut mb, mut nb) = (m.max(1), n.max(1));
    let half = |x: usize| x.div_ceil(2).next_multiple_of(16);
    loop {
        let count = m.div_ceil(mb) * n.div_ceil(nb);
        if count >= TARGET_TILES {
            break;
        }
        let (cm, cn) = if mb >= nb {
            (half(mb), nb)
        } else {
            (mb, half(nb))
        };
        if (cm, cn) == (mb, nb) || cm < 64 || cn < 64 || 2 * cm * cn * k < MIN_TILE_FLOPS {
            break;
        }
        (mb, nb) = (cm, cn);
    }
    (mb, nb)
}

/// Which implementation [`gemm_with`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// `Packed` for products of at least [`PACKED_MIN`] multiply-adds with at least 8 rows and
    /// 8 columns, else `Fallback` (below that the packed kernel's fixed costs, packing and
    /// 6 x 16 register blocks, lose to matrixmultiply's).
    Auto,
    /// The packed AVX2/FMA kernel (`super::sgemm`) where the CPU has both, else `Fallback`.
    Packed,
    /// ndarray's `general_mat_mul` (matrixmultiply) on tiles of the output in parallel.
    Fallback,
}

/// Multiply-adds (`m n k`) from which [`Kernel::Auto`] runs the packed kernel (about 50³).
pub const PACKED_MIN: usize = 1 << 17;

/// `c = alpha * a · b + beta * c`, in parallel for large products. When `beta == 0`, `c` is not
/// read (it may hold anything, NaN included).
pub fn gemm(alpha: f32, a: ArrayView2<f32>, b: ArrayView2<f32>, beta: f32, c: ArrayViewMut2<f32>) {
    gemm_with(Kernel::Auto, alpha, a, b, beta, c);
}

/// [`gemm`] with the implementation chosen by `kernel` (`Auto` is what [`gemm`] runs).
pub fn gemm_with(
    kernel: Kernel,
    alpha: f32,
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    beta: f32,
    c: ArrayViewMut2<f32>,
) {
    gemm_par(kernel, true, alpha, a, b, beta, c);
}

/// [`gemm_with`]; the packed kernel stays on the calling thread unless `parallel` (for callers
/// that already run enough products in parallel).
fn gemm_par(
    kernel: Kernel,
    parallel: bool,
    alpha: f32,
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    beta: f32,
    c: ArrayViewMut2<f32>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let packed = match kernel {
        Kernel::Auto => m >= 8 && n >= 8 && m.saturating_mul(n).saturating_mul(k) >= PACKED_MIN,
        Kernel::Packed => true,
        Kernel::Fallback => false,
    };
    #[cfg(target_arch = "x86_64")]
    if packed {
        if let Some(cpu) = super::sgemm::Avx2Fma::detect() {
            super::sgemm::gemm(cpu, parallel, alpha, a, b, beta, c);
            return;
        }
    }
    let _ = (packed, parallel);
    gemm_fallback(alpha, a, b, beta, c);
}

/// Handles the products with nothing to sum: an empty `c` (nothing to do) or `k == 0`
/// (`c = beta * c`, and `c` not read when `beta == 0`). Returns whether it did.
pub(super) fn degenerate(k: usize, beta: f32, c: &mut ArrayViewMut2<f32>) -> bool {
    if c.is_empty() {
        return true;
    }
    if k == 0 {
        if beta == 0.0 {
            c.fill(0.0);
        } else {
            c.mapv_inplace(|v| v * beta);
        }
        return true;
    }
    false
}

/// [`gemm`] with ndarray's `general_mat_mul`, tiled over the output in parallel for large
/// products.
fn gemm_fallback(
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
    if degenerate(k, beta, &mut c) {
        return;
    }
    let (mb, nb) = tiles(m, n, k);
    if mb >= m && nb >= n {
        general_mat_mul(alpha, &a, &b, beta, &mut c);
        return;
    }
    c.axis_chunks_iter_mut(Axis(0), mb)
        .into_par_iter()
        .enumerate()
        .for_each(|(bi, mut crows)| {
            let r0 = bi * mb;
            let a_blk = a.slice(s![r0..r0 + crows.nrows(), ..]);
            crows
                .axis_chunks_iter_mut(Axis(1), nb)
                .into_par_iter()
                .enumerate()
                .for_each(|(bj, mut ct)| {
                    let c0 = bj * nb;
                    let b_blk = b.slice(s![.., c0..c0 + ct.ncols()]);
                    general_mat_mul(alpha, &a_blk, &b_blk, beta, &mut ct);
                });
        });
}

fn view(data: &[f32], rows: usize, cols: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((rows, cols), &data[..rows * cols]).expect("contiguous view")
}

fn view_mut(data: &mut [f32], rows: usize, cols: usize) -> ArrayViewMut2<'_, f32> {
    ArrayViewMut2::from_shape((rows, cols), &mut data[..rows * cols]).expect("contiguous view")
}

/// `Op::MatMul`: `c[.., m, n] = op(a)[.., m, k] · op(b)[.., k, n]` with `op` the optional
/// transpose of the last two axes; an operand without batch axes is broadcast.
pub fn matmul(
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    trans_a: bool,
    trans_b: bool,
    c: &mut [f32],
) {
    let (ar, ac) = (a_shape[a_shape.len() - 2], a_shape[a_shape.len() - 1]);
    let (br, bc) = (b_shape[b_shape.len() - 2], b_shape[b_shape.len() - 1]);
    let (m, k) = if trans_a { (ac, ar) } else { (ar, ac) };
    let n = if trans_b { br } else { bc };
    let a_batched = a_shape.len() > 2;
    let b_batched = b_shape.len() > 2;
    let batch = if a_batched {
        numel(&a_shape[..a_shape.len() - 2])
    } else if b_batched {
        numel(&b_shape[..b_shape.len() - 2])
    } else {
        1
    };
    let c = &mut c[..batch * m * n];
    if c.is_empty() {
        return;
    }
    fn op_view(data: &[f32], rows: usize, cols: usize, t: bool) -> ArrayView2<'_, f32> {
        let v = view(data, rows, cols);
        if t {
            v.reversed_axes()
        } else {
            v
        }
    }
    let bv_shared = op_view(b, br, bc, trans_b);
    if a_batched && !b_batched && !trans_a {
        // [batch, m, k] · [k, n] is one [batch * m, k] · [k, n] product.
        gemm(
            1.0,
            view(a, batch * m, k),
            bv_shared,
            0.0,
            view_mut(c, batch * m, n),
        );
        return;
    }
    let one = |i: usize, ci: &mut [f32], parallel: bool| {
        let ai = if a_batched { &a[i * ar * ac..] } else { a };
        let bi = if b_batched { &b[i * br * bc..] } else { b };
        gemm_par(
            Kernel::Auto,
            parallel,
            1.0,
            op_view(ai, ar, ac, trans_a),
            op_view(bi, br, bc, trans_b),
            0.0,
            view_mut(ci, m, n),
        );
    };
    let flops = [2, batch, m, n, k]
        .into_iter()
        .fold(1usize, |acc, x| acc.saturating_mul(x));
    if batch == 1 || flops < MIN_TILE_FLOPS {
        for (i, ci) in c.chunks_mut(m * n).enumerate() {
            one(i, ci, true);
        }
    } else {
        // Enough products to keep every thread busy: each runs on one thread.
        let inner = batch < 2 * rayon::current_num_threads();
        c.par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(i, ci)| one(i, ci, inner));
    }
}

/// Geometry of a 2-D convolution.
#[derive(Clone, Copy, Debug)]
struct Conv {
    n: usize,
    ci: usize,
    h: usize,
    w: usize,
    co: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: usize,
    ph: usize,
    pw: usize,
}

impl Conv {
    #[allow(clippy::too_many_arguments)]
    fn new(
        n: usize,
        ci: usize,
        h: usize,
        w: usize,
        co: usize,
        kh: usize,
        kw: usize,
        stride: usize,
        padding: Padding,
    ) -> Conv {
        Conv {
            n,
            ci,
            h,
            w,
            co,
            kh,
            kw,
            oh: conv_out(h, kh, stride, padding).expect("checked shapes"),
            ow: conv_out(w, kw, stride, padding).expect("checked shapes"),
            stride,
            ph: pad_before(h, kh, stride, padding),
            pw: pad_before(w, kw, stride, padding),
        }
    }
    /// Rows of the im2col matrix (ci kh kw).
    fn k(&self) -> usize {
        self.ci * self.kh * self.kw
    }
    /// Columns of the im2col matrix (oh ow).
    fn p(&self) -> usize {
        self.oh * self.ow
    }
    /// Whether the im2col matrix is the input image itself (1x1, stride 1, no padding).
    fn identity(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride == 1
            && self.ph == 0
            && self.pw == 0
            && self.oh == self.h
            && self.ow == self.w
    }
    /// For stride 1, the convolution whose output is this one's input gradient: input `dy`
    /// (`co` channels of `oh x ow`), output `ci` channels of `h x w`, padded by
    /// `kh - 1 - ph` and `kw - 1 - pw` before, with the flipped kernel
    /// `w'[c, o, i, j] = w[o, c, kh - 1 - i, kw - 1 - j]`:
    /// `dx[c, y, x] = sum_{o,i,j} w[o, c, i, j] dy[o, y + ph - i, x + pw - j]`.
    fn transposed(&self) -> Option<Conv> {
        (self.stride == 1 && self.ph < self.kh && self.pw < self.kw).then(|| Conv {
            n: self.n,
            ci: self.co,
            h: self.oh,
            w: self.ow,
            co: self.ci,
            kh: self.kh,
            kw: self.kw,
            oh: self.h,
            ow: self.w,
            stride: 1,
            ph: self.kh - 1 - self.ph,
            pw: self.kw - 1 - self.pw,
        })
    }
    /// The output positions `o` in `0..out` whose input index `o * stride + k - pad` lies in
    /// `0..len`.
    fn valid(out: usize, stride: usize, k: usize, pad: usize, len: usize) -> (usize, usize) {
        // o * stride + k >= pad  and  o * stride + k - pad <= len - 1.
        let lo = if pad > k {
            (pad - k).div_ceil(stride)
        } else {
            0
        };
        let hi = if len + pad > k {
            ((len + pad - k - 1) / stride + 1).min(out)
        } else {
            0
        };
        (lo.min(hi), hi)
    }
}

/// Row `r = (c, i, j)` of the im2col of one image `x[ci, h, w]` over the output rows
/// `oy0..oy1`: `dst[(oy - oy0) ow + ox] = x[c, oy s + i - ph, ox s + j - pw]` (0 in the padding).
fn im2col_row(g: &Conv, x: &[f32], r: usize, oy0: usize, oy1: usize, dst: &mut [f32]) {
    let (c, i, j) = (r / (g.kh * g.kw), (r / g.kw) % g.kh, r % g.kw);
    let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
    let (xlo, xhi) = Conv::valid(g.ow, g.stride, j, g.pw, g.w);
    for oy in oy0..oy1 {
        let d = &mut dst[(oy - oy0) * g.ow..(oy - oy0 + 1) * g.ow];
        let iy = (oy * g.stride + i) as isize - g.ph as isize;
        if iy < 0 || iy >= g.h as isize || xlo >= xhi {
            d.fill(0.0);
            continue;
        }
        let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
        d[..xlo].fill(0.0);
        d[xhi..].fill(0.0);
        let x0 = xlo * g.stride + j - g.pw;
        if g.stride == 1 {
            d[xlo..xhi].copy_from_slice(&src[x0..x0 + (xhi - xlo)]);
        } else {
            for (o, v) in d[xlo..xhi]
                .iter_mut()
                .zip(src[x0..].iter().step_by(g.stride))
            {
                *o = *v;
            }
        }
    }
}

/// im2col of one image `x[ci, h, w]` into `col[ci kh kw, oh ow]`.
fn im2col(g: &Conv, x: &[f32], col: &mut [f32]) {
    let p = g.p();
    let row = |r: usize, dst: &mut [f32]| im2col_row(g, x, r, 0, g.oh, dst);
    if col.len() < PAR_MIN {
        for (r, dst) in col.chunks_mut(p).enumerate() {
            row(r, dst);
        }
    } else {
        col.par_chunks_mut(p)
            .enumerate()
            .for_each(|(r, dst)| row(r, dst));
    }
}

/// col2im of one image: `dx[ci, h, w] = sum of col[ci kh kw, oh ow]` over the positions each
/// input pixel was copied to (a fixed, sequential order per channel).
fn col2im(g: &Conv, col: &[f32], dx: &mut [f32]) {
    let plane = |c: usize, d: &mut [f32]| {
        d.fill(0.0);
        col2im_channel(g, col, c, 0, g.oh, d);
    };
    let hw = g.h * g.w;
    if hw == 0 {
        return;
    }
    if dx.len() < PAR_MIN {
        for (c, d) in dx.chunks_mut(hw).enumerate() {
            plane(c, d);
        }
    } else {
        dx.par_chunks_mut(hw)
            .enumerate()
            .for_each(|(c, d)| plane(c, d));
    }
}

/// Runs `f(image index, output chunk)` over the images of a batch, in parallel when there is
/// more than one.
fn per_image<F>(out: &mut [f32], per: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    if per == 0 {
        return;
    }
    if out.len() / per <= 1 {
        for (i, o) in out.chunks_mut(per).enumerate() {
            f(i, o);
        }
    } else {
        out.par_chunks_mut(per)
            .enumerate()
            .for_each(|(i, o)| f(i, o));
    }
}

/// Scratch buffers up to this many floats (16 MiB) are kept per thread for the next call.
const KEEP_SCRATCH: usize = 1 << 22;

thread_local! {
    static SCRATCH_A: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// Whole-call buffers of the calling thread: the partial weight gradients, the flipped
    /// kernel of the input gradient.
    static SCRATCH_CALL: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

fn with_scratch<R>(
    key: &'static LocalKey<Cell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    super::par::with_scratch(key, len, KEEP_SCRATCH, f)
}

/// Floats of an L2-resident im2col tile (512 KiB), for [`tiled`] convolutions.
const TILE: usize = 1 << 17;

/// Whether a convolution runs in L2-sized tiles of output rows per image (a function of the
/// shapes): its im2col matrix is larger than a tile (else it stays in cache anyway) and the
/// weights are small enough to stay in cache beside a tile (with bigger ones the product
/// dominates the im2col traffic, and a whole image per GEMM avoids re-reading them per tile).
fn tiled(g: &Conv) -> bool {
    !g.identity() && g.co * g.k() <= TILE && g.k() * g.p() > TILE
}

/// Output rows per tile of [`tiled`] convolutions (a function of the shapes).
fn tile_rows(g: &Conv) -> usize {
    (TILE / (g.k() * g.ow).max(1)).clamp(1, g.oh.max(1))
}

/// im2col of the output rows `oy0..oy1` of one image `x[ci, h, w]` into
/// `col[ci kh kw, (oy1 - oy0) ow]`, on the calling thread.
fn im2col_rows(g: &Conv, x: &[f32], oy0: usize, oy1: usize, col: &mut [f32]) {
    let pt = (oy1 - oy0) * g.ow;
    if pt == 0 {
        return;
    }
    for (r, dst) in col[..g.k() * pt].chunks_mut(pt).enumerate() {
        im2col_row(g, x, r, oy0, oy1, dst);
    }
}

/// [`im2col_rows`], from a padded window of the input with the packed kernel's CPU features.
fn im2col_rows_fast(g: &Conv, x: &[f32], oy0: usize, oy1: usize, col: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = super::sgemm::Avx2Fma::detect() {
        implicit::im2col_rows(cpu, g, x, oy0, oy1, col);
        return;
    }
    im2col_rows(g, x, oy0, oy1, col);
}

/// Adds the col2im of the im2col tile `col[ci kh kw, (oy1 - oy0) ow]` of output rows
/// `oy0..oy1` into one image `dx[ci, h, w]`, on the calling thread (channel after channel, each
/// in a fixed order).
fn col2im_rows(g: &Conv, col: &[f32], oy0: usize, oy1: usize, dx: &mut [f32]) {
    let hw = g.h * g.w;
    if oy1 <= oy0 || g.ow == 0 || hw == 0 {
        return;
    }
    for (c, d) in dx[..g.ci * hw].chunks_mut(hw).enumerate() {
        col2im_channel(g, col, c, oy0, oy1, d);
    }
}

/// Adds into channel `c` of one image (`d[h, w]`) its share of the im2col tile
/// `col[ci kh kw, (oy1 - oy0) ow]` of output rows `oy0..oy1`, in a fixed order (kernel row,
/// kernel column, output row).
fn col2im_channel(g: &Conv, col: &[f32], c: usize, oy0: usize, oy1: usize, d: &mut [f32]) {
    let pt = (oy1 - oy0) * g.ow;
    for i in 0..g.kh {
        for j in 0..g.kw {
            let r = (c * g.kh + i) * g.kw + j;
            let src = &col[r * pt..(r + 1) * pt];
            let (xlo, xhi) = Conv::valid(g.ow, g.stride, j, g.pw, g.w);
            if xlo >= xhi {
                continue;
            }
            for oy in oy0..oy1 {
                let iy = (oy * g.stride + i) as isize - g.ph as isize;
                if iy < 0 || iy >= g.h as isize {
                    continue;
                }
                let drow = &mut d[iy as usize * g.w..(iy as usize + 1) * g.w];
                let o0 = (oy - oy0) * g.ow;
                let srow = &src[o0 + xlo..o0 + xhi];
                let x0 = xlo * g.stride + j - g.pw;
                if g.stride == 1 {
                    for (o, v) in drow[x0..x0 + srow.len()].iter_mut().zip(srow) {
                        *o += *v;
                    }
                } else {
                    for (o, v) in drow[x0..].iter_mut().step_by(g.stride).zip(srow) {
                        *o += *v;
                    }
                }
            }
        }
    }
}

/// Tiled [`conv2d`]: every (image, block of output rows) is a task on the rayon pool that
/// builds its im2col tile in this thread's scratch and runs its product on its thread.
fn conv2d_tiled(g: &Conv, x: &[f32], w: &[f32], y: &mut [f32]) {
    let (k, p) = (g.k(), g.p());
    let wv = view(w, g.co, k);
    let chw = g.ci * g.h * g.w;
    let rows = tile_rows(g);
    let tiles = g.oh.div_ceil(rows);
    let yp = SendPtr(y[..g.n * g.co * p].as_mut_ptr());
    (0..g.n * tiles).into_par_iter().for_each(|t| {
        let (i, b) = (t / tiles, t % tiles);
        let (oy0, oy1) = (b * rows, ((b + 1) * rows).min(g.oh));
        let pt = (oy1 - oy0) * g.ow;
        let xi = &x[i * chw..(i + 1) * chw];
        // SAFETY: the view covers rows `oy0..oy1` of every output channel of image `i`,
        // inside `y` (checked above by slicing) and disjoint from every other task's view;
        // `y` outlives the parallel loop.
        let yt = unsafe {
            ArrayViewMut2::from_shape_ptr(
                (g.co, pt).strides((p, 1)),
                yp.get().add(i * g.co * p + oy0 * g.ow),
            )
        };
        with_scratch(&SCRATCH_A, k * pt, |col| {
            im2col_rows(g, xi, oy0, oy1, col);
            gemm_par(Kernel::Auto, false, 1.0, wv, view(col, k, pt), 0.0, yt);
        });
    });
}

#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: used only to hand disjoint parts of one output to parallel tasks.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
impl SendPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// The implicit-GEMM convolution on the packed kernel (x86-64 with AVX2 and FMA):
/// `y_i[co, p] = w[co, k] · im2col(x_i)[k, p]` for every image with `w` packed once
/// (`super::sgemm::PackedA`) and shared by all tasks, and the im2col matrix never written:
/// each task takes a run of `cols` panels of `NR` output pixels (panels never
/// straddle two images; a task may cover several small images or part of a large one), copies
/// the input rows they read into a zero-padded window (its scratch; [`Win`]: each row split
/// into `stride` phase rows) and packs the `b` panels of each block of steps straight from
/// that window, or, where every panel is `NR` pixels of one output row, has the kernel read
/// them in place (`gemm_direct`, the same operations). Every output element is the kernel's
/// sequence of operations for its blocks of `KC` steps (fixed by `k`), whatever the tasks, so
/// how the work is cut (which may depend on the thread count) does not change a bit. The weight
/// gradient (`backward_weight`) packs `a` from such windows instead (see the module docs), and
/// the strided input gradient (`backward_input_phases`) runs one such product per phase of the
/// input positions.
#[cfg(target_arch = "x86_64")]
mod implicit {
    use super::super::sgemm::{
        gemm_direct, gemm_packed, micro_rows, pack_columns, Avx2Fma, PackedA, KC, MC, MR, NR,
    };
    use super::{with_scratch, Conv, SendPtr, SCRATCH_A, SCRATCH_CALL, TILE};
    use ndarray::{ArrayViewMut2, ShapeBuilder};
    use rayon::prelude::*;
    use std::arch::x86_64::{
        _mm256_castpd_ps, _mm256_castps_pd, _mm256_loadu_ps, _mm256_permute2f128_ps,
        _mm256_permute4x64_pd, _mm256_setzero_ps, _mm256_shuffle_ps, _mm256_storeu_ps,
        _mm256_unpackhi_ps, _mm256_unpacklo_ps, _mm_loadu_ps, _mm_storeu_ps,
    };
    use std::cell::Cell;
    use std::ops::Range;

    thread_local! {
        static SCRATCH_W: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
        static SCRATCH_WIN: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
        static SCRATCH_DWA: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
        static SCRATCH_DWB: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
        /// The phases of a task of the strided input gradient, before they are interleaved.
        static SCRATCH_DX: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    }

    /// Output rows (channels) up to which the implicit GEMMs read `b` panels in place from the
    /// window (`gemm_direct`) where they can: each tile of `MC` rows reads a panel again, and
    /// in place a panel spans more cache lines (from the window's rows) than packed, which
    /// outweighs the packing from three tiles up (measured on Zen 4).
    const DIRECT_MAX_ROWS: usize = 2 * MC;

    /// Panels of `NR` output pixels per task (a function of the shapes): the packed `b` block
    /// (`min(k, KC)` steps) stays under [`TILE`] floats.
    fn cols(g: &Conv) -> usize {
        (TILE / (g.k().min(KC) * NR).max(1)).max(1)
    }

    /// One image's share of a task: panels `q0..q1` of image `img`, reading the window of
    /// padded input rows `y0..y0 + rows` (padded coordinates: input row `y - ph`), stored at
    /// `at` in the task's window buffer (`ci` planes of [`Win::plane`]`(rows)` floats).
    struct Segment {
        img: usize,
        q0: usize,
        q1: usize,
        y0: usize,
        rows: usize,
        at: usize,
    }

    /// Width of the padded window rows: padded column `x` is input column `x - pw` (zero
    /// outside the input), for every column an output pixel reads.
    fn wp(g: &Conv) -> usize {
        (g.ow.max(1) - 1) * g.stride + g.kw
    }

    /// The layout of a zero-padded window of the rows of an image (`ch` channels of `h x w`):
    /// padded row `y` is input row `y - ph`, padded column `x` input column `x - pw` (zero
    /// outside the input), for padded columns `0..wp`. Each row is stored as `s` phase rows of
    /// `wq` floats (at least `wp / s`), phase `b` holding the padded columns `b, b + s,
    /// b + 2s, ..`: padded column `x` of window row `r` (of the rows from `y0`) of channel `c`
    /// is at `c * plane + r * wrow + (x % s) * wq + x / s`, `wrow = s * wq`, `plane`
    /// ([`Win::plane`]) at least `rows * wrow`. With `s` the convolution's stride, the pixels
    /// of an output row read, for each kernel tap, consecutive floats of one phase row (a copy,
    /// or a `b` panel read in place, rather than a strided gather); `s = 1` is the plain padded
    /// row.
    #[derive(Clone, Copy)]
    struct Win {
        ch: usize,
        h: usize,
        w: usize,
        ph: usize,
        pw: usize,
        s: usize,
        wp: usize,
        wq: usize,
        align: bool,
    }

    impl Win {
        /// The input window of the convolution `g`, split by its stride; with `align`, phase
        /// rows of a multiple of `NR` floats (64 bytes), so that the `NR` pixels of a panel
        /// that starts at a multiple of `NR` on an output row read whole cache lines (for `b`
        /// panels read in place, `gemm_direct`).
        fn of(g: &Conv, align: bool) -> Win {
            let wp = wp(g);
            let wq = wp.div_ceil(g.stride);
            Win {
                ch: g.ci,
                h: g.h,
                w: g.w,
                ph: g.ph,
                pw: g.pw,
                s: g.stride,
                wp,
                wq: if align { wq.next_multiple_of(NR) } else { wq },
                align,
            }
        }

        /// Floats per channel of a window of `rows` rows: `rows * wrow`, plus one cache line
        /// where aligned rows would make it an even number of lines (the `b` panels read in
        /// place take one line from each channel for each tap, and channel planes a multiple
        /// of 4 KiB apart would all fall in the same sets of the L1 cache).
        fn plane(&self, rows: usize) -> usize {
            let p = rows * self.wrow();
            if self.align && (p / NR).is_multiple_of(2) {
                p + NR
            } else {
                p
            }
        }

        /// Floats of a window row (its `s` phase rows).
        fn wrow(&self) -> usize {
            self.wq * self.s
        }

        /// Offset of padded column `x` in a window row.
        fn col(&self, x: usize) -> usize {
            (x % self.s) * self.wq + x / self.s
        }
    }

    /// `d = src[..d.len()]` for fewer than 8 floats: two moves of 4, 2 or 1 floats, the second
    /// overlapping the first where the length is not a power of two (masked moves are slow
    /// on some CPUs).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn copy_short(d: &mut [f32], src: &[f32]) {
        let n = d.len();
        let src = &src[..n];
        let (dp, sp) = (d.as_mut_ptr(), src.as_ptr());
        // SAFETY: every access is `w <= n` floats at an offset `o <= n - w` of slices of `n`
        // floats.
        unsafe {
            if n >= 4 {
                let (a, b) = (_mm_loadu_ps(sp), _mm_loadu_ps(sp.add(n - 4)));
                _mm_storeu_ps(dp, a);
                _mm_storeu_ps(dp.add(n - 4), b);
            } else if n >= 2 {
                let a = sp.cast::<u64>().read_unaligned();
                let b = sp.add(n - 2).cast::<u64>().read_unaligned();
                dp.cast::<u64>().write_unaligned(a);
                dp.add(n - 2).cast::<u64>().write_unaligned(b);
            } else if n == 1 {
                *dp = *sp;
            }
        }
    }

    /// `d = src[..d.len()]`: vector moves, two of 8 floats per step of 16, the last ones
    /// overlapping those before where the length is not a multiple of 8 (`copy_from_slice`,
    /// or a loop of single moves, which the compiler turns into one, calls `memcpy`, which
    /// costs more than the copy for the short runs of the packing).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn copy(d: &mut [f32], src: &[f32]) {
        let n = d.len();
        if n == 16 {
            // The runs of whole panels (and of half panels below).
            let src = &src[..16];
            // SAFETY: both slices hold 16 floats.
            unsafe {
                let (a, b) = (
                    _mm256_loadu_ps(src.as_ptr()),
                    _mm256_loadu_ps(src.as_ptr().add(8)),
                );
                _mm256_storeu_ps(d.as_mut_ptr(), a);
                _mm256_storeu_ps(d.as_mut_ptr().add(8), b);
            }
            return;
        }
        if n == 8 {
            let src = &src[..8];
            // SAFETY: both slices hold 8 floats.
            unsafe { _mm256_storeu_ps(d.as_mut_ptr(), _mm256_loadu_ps(src.as_ptr())) };
            return;
        }
        if n < 8 {
            copy_short(d, src);
            return;
        }
        let src = &src[..n];
        let (dp, sp) = (d.as_mut_ptr(), src.as_ptr());
        // SAFETY: every access is 8 floats at an offset `o <= n - 8` of slices of `n` floats.
        unsafe {
            let mut o = 0;
            while o + 16 <= n {
                let (a, b) = (_mm256_loadu_ps(sp.add(o)), _mm256_loadu_ps(sp.add(o + 8)));
                _mm256_storeu_ps(dp.add(o), a);
                _mm256_storeu_ps(dp.add(o + 8), b);
                o += 16;
            }
            if o + 8 < n {
                _mm256_storeu_ps(dp.add(o), _mm256_loadu_ps(sp.add(o)));
            }
            if o < n {
                _mm256_storeu_ps(dp.add(n - 8), _mm256_loadu_ps(sp.add(n - 8)));
            }
        }
    }

    /// `d = 0`: [`copy`]'s moves (`fill` calls `memset`, which costs more than the stores for
    /// the short runs of the windows).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn zero(d: &mut [f32]) {
        const Z: [f32; 8] = [0.0; 8];
        let n = d.len();
        if n < 8 {
            copy_short(d, &Z);
            return;
        }
        let dp = d.as_mut_ptr();
        let z = _mm256_setzero_ps();
        // SAFETY: every store is 8 floats at an offset `o <= n - 8` of a slice of `n` floats.
        unsafe {
            let mut o = 0;
            while o + 16 <= n {
                _mm256_storeu_ps(dp.add(o), z);
                _mm256_storeu_ps(dp.add(o + 8), z);
                o += 16;
            }
            if o + 8 < n {
                _mm256_storeu_ps(dp.add(o), z);
            }
            if o < n {
                _mm256_storeu_ps(dp.add(n - 8), z);
            }
        }
    }

    /// `ev[j] = src[2j]` and `od[j] = src[2j + 1]` for the `src.len()` floats of `src` (`ev` holds
    /// `src.len().div_ceil(2)` floats, `od` `src.len() / 2`): 16 at a time with shuffles.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn deinterleave2(src: &[f32], ev: &mut [f32], od: &mut [f32]) {
        let (ne, no) = (src.len().div_ceil(2), src.len() / 2);
        let (ev, od) = (&mut ev[..ne], &mut od[..no]);
        // SAFETY: `src[2j..2j + 16]`, `ev[j..j + 8]` and `od[j..j + 8]` are inside the slices
        // for `j + 8 <= no`.
        let pairs = |j: usize, ev: &mut [f32], od: &mut [f32]| unsafe {
            let a = _mm256_loadu_ps(src.as_ptr().add(2 * j));
            let b = _mm256_loadu_ps(src.as_ptr().add(2 * j + 8));
            // [a0 a2 b0 b2 | a4 a6 b4 b6], then the 64-bit pairs in the order 0 2 1 3 (and the
            // same for the odd floats).
            let e = _mm256_shuffle_ps::<0x88>(a, b);
            let o = _mm256_shuffle_ps::<0xDD>(a, b);
            let e = _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(e)));
            let o = _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(o)));
            _mm256_storeu_ps(ev.as_mut_ptr().add(j), e);
            _mm256_storeu_ps(od.as_mut_ptr().add(j), o);
        };
        let mut j = 0;
        while j + 8 <= no {
            pairs(j, ev, od);
            j += 8;
        }
        if j < no && no >= 8 {
            // The last 8 pairs again, overlapping the ones before.
            pairs(no - 8, ev, od);
        } else {
            for j in j..no {
                ev[j] = src[2 * j];
                od[j] = src[2 * j + 1];
            }
        }
        if ne > no {
            ev[no] = src[2 * no];
        }
    }

    /// Copies padded rows `y0..y0 + rows` of every channel of image `x` into `win`, in the
    /// layout of `wn` (`ch x plane` floats, `plane = wn.plane(rows)`, of which the floats past
    /// `rows x wrow` in each channel are left as they are).
    #[target_feature(enable = "avx2")]
    fn fill_window(wn: &Win, x: &[f32], y0: usize, rows: usize, win: &mut [f32]) {
        let (wp, s, wq, wrow) = (wn.wp, wn.s, wn.wq, wn.wrow());
        let (lo, hi) = (wn.pw.min(wp), (wn.pw + wn.w).min(wp));
        // The window rows that are input rows: `r0..r1`, input rows from `r0 + y0 - ph`.
        let r0 = wn.ph.saturating_sub(y0).min(rows);
        let r1 = (wn.ph + wn.h).saturating_sub(y0).clamp(r0, rows);
        let src_at = |c: usize, r: usize| (c * wn.h + y0 + r - wn.ph) * wn.w;
        let wplane = wn.plane(rows);
        for (c, plane) in win[..wn.ch * wplane].chunks_exact_mut(wplane).enumerate() {
            zero(&mut plane[..r0 * wrow]);
            zero(&mut plane[r1 * wrow..rows * wrow]);
            if lo >= hi {
                zero(&mut plane[r0 * wrow..r1 * wrow]);
                continue;
            }
            for (r, d) in (r0..r1).zip(plane[r0 * wrow..r1 * wrow].chunks_exact_mut(wrow)) {
                // Padded columns `lo..hi` are input columns `0..hi - lo`.
                let src = &x[src_at(c, r)..][..hi - lo];
                if s == 1 {
                    zero(&mut d[..lo]);
                    copy(&mut d[lo..hi], src);
                    zero(&mut d[hi..]);
                    continue;
                }
                if s == 2 {
                    // Input column `2j` is padded column `2j + pw`: phase `pw % 2`, at
                    // `j + pw / 2`; column `2j + 1` phase `(pw + 1) % 2`, at `j + (pw + 1) / 2`.
                    let (d0, d1) = d.split_at_mut(wq);
                    let (ev, od) = if lo % 2 == 0 { (d0, d1) } else { (d1, d0) };
                    let (e0, o0) = (lo / 2, lo.div_ceil(2));
                    let (ne, no) = (src.len().div_ceil(2), src.len() / 2);
                    zero(&mut ev[..e0]);
                    zero(&mut ev[e0 + ne..]);
                    zero(&mut od[..o0]);
                    zero(&mut od[o0 + no..]);
                    deinterleave2(src, &mut ev[e0..], &mut od[o0..]);
                    continue;
                }
                for (b, sub) in d.chunks_exact_mut(wq).enumerate() {
                    // `sub[q]` is padded column `q s + b`: input columns from `q_lo` to `q_hi`.
                    let q_lo = lo.saturating_sub(b).div_ceil(s);
                    let q_hi = if hi > b { (hi - b).div_ceil(s) } else { 0 }.max(q_lo);
                    zero(&mut sub[..q_lo]);
                    zero(&mut sub[q_hi..]);
                    if q_hi > q_lo {
                        let src = &src[q_lo * s + b - lo..];
                        for (v, x) in sub[q_lo..q_hi].iter_mut().zip(src.iter().step_by(s)) {
                            *v = *x;
                        }
                    }
                }
            }
        }
    }

    /// A run of pixels of a `b` panel: pixels `l0..l0 + len` of panel `q` (of the panels that
    /// one call packs) read, for the step with tap offset `(c, off)`, the window floats from
    /// `w0 + c * plane + off`.
    #[derive(Clone, Copy)]
    struct Run {
        q: usize,
        l0: usize,
        len: usize,
        w0: usize,
        plane: usize,
    }

    /// Packs `taps.len()` steps (each a window channel and offset) of panels into `dst`
    /// (`pk x NR` per panel, row after row, panel after panel), the panels `zero` (those with
    /// fewer than `NR` pixels) zero-filled first: for each run of runs with the same channel
    /// planes (one image's), step after step, each step's runs in order, so a window is read
    /// sequentially.
    #[target_feature(enable = "avx2")]
    fn pack_runs(
        win: &[f32],
        taps: &[(usize, usize)],
        runs: &[Run],
        zero: &[usize],
        dst: &mut [f32],
    ) {
        let pk = taps.len();
        for &q in zero {
            dst[q * pk * NR..(q + 1) * pk * NR].fill(0.0);
        }
        // (offset in `dst` of step 0, length, window offset) of each run.
        let mut at = Vec::with_capacity(runs.len());
        for group in runs.chunk_by(|a, b| a.plane == b.plane) {
            let plane = group[0].plane;
            at.clear();
            at.extend(group.iter().map(|r| (r.q * pk * NR + r.l0, r.len, r.w0)));
            for (t, &(c, off)) in taps.iter().enumerate() {
                let (src, d) = (&win[c * plane + off..], &mut dst[t * NR..]);
                for &(o, len, w0) in &at {
                    copy(&mut d[o..o + len], &src[w0..]);
                }
            }
        }
    }

    /// The tap offsets of the steps (im2col rows `(c, i, j)`) of the convolution `g` in a
    /// window of layout `wn`: `(c, i wrow + col(j))`.
    fn conv_taps(g: &Conv, wn: &Win) -> Vec<(usize, usize)> {
        let mut taps = Vec::with_capacity(g.k());
        for c in 0..g.ci {
            for i in 0..g.kh {
                for j in 0..g.kw {
                    taps.push((c, i * wn.wrow() + wn.col(j)));
                }
            }
        }
        taps
    }

    /// Floats of packed `dyᵀ` per block of the weight gradient, about (`steps x co`).
    const DW_B: usize = 1 << 17;
    /// Weight gradients below this many flops run on the calling thread.
    const DW_PAR_FLOPS: usize = 1 << 23;
    /// Row parts per thread of the weight gradient.
    const DW_PARTS: usize = 1;
    /// Groups of blocks (partial sums) of the weight gradient where there are many pixels.
    const DW_GROUPS: usize = 2;

    /// Steps (pixels) per block of the weight gradient (a function of the shapes): the packed
    /// `dyᵀ` block (`steps x co`) stays under [`DW_B`] floats.
    fn dw_steps(g: &Conv) -> usize {
        (DW_B / g.co.next_multiple_of(NR)).clamp(64, KC) / 8 * 8
    }

    /// The weight gradient on the packed kernel: `dw[co, k] = dy[co, n p] · im2col(x)[k, n p]ᵀ`
    /// over all images, computed as its transpose `dwᵀ = im2col(x) · dyᵀ` (see
    /// [`dw_rows`]) in whole-call scratch, then transposed into `dw`. The rows of `dwᵀ` (panels of
    /// `MR` im2col rows) are split between tasks, each computing its rows completely (no
    /// partial sums); each element is the kernel's sequence over the blocks of
    /// [`dw_steps`] pixels (a function of the shapes), whatever the split.
    pub(super) fn backward_weight(cpu: Avx2Fma, g: &Conv, x: &[f32], dy: &[f32], dw: &mut [f32]) {
        let (k, p) = (g.k(), g.p());
        let total = g.n * p;
        let dw = &mut dw[..g.co * k];
        if dw.is_empty() {
            return;
        }
        if total == 0 {
            dw.fill(0.0);
            return;
        }
        let mp = k.div_ceil(MR);
        let kc = dw_steps(g);
        let nb = total.div_ceil(kc);
        // Two groups of blocks (partial sums) where packing `dyᵀ` once more for another part
        // of the rows would cost more than adding a partial (a function of the shapes).
        let groups = if total > k { DW_GROUPS.min(nb) } else { 1 };
        let flops = 2usize.saturating_mul(g.co * k).saturating_mul(total);
        let parts = if flops < DW_PAR_FLOPS {
            1
        } else {
            (rayon::current_num_threads() * DW_PARTS)
                .div_ceil(groups)
                .clamp(1, mp)
        };
        let co = g.co;
        let wlen = k * co;
        with_scratch(&SCRATCH_CALL, groups * wlen, |dwt| {
            let mut chunks = Vec::with_capacity(groups * parts);
            for (gi, mut rest) in dwt.chunks_exact_mut(wlen).enumerate() {
                let blocks = gi * nb / groups..(gi + 1) * nb / groups;
                for i in 0..parts {
                    let (pa, pb) = (i * mp / parts, (i + 1) * mp / parts);
                    let rows = (pb * MR).min(k) - (pa * MR).min(k);
                    let (c, r) = rest.split_at_mut(rows * co);
                    rest = r;
                    chunks.push((blocks.clone(), pa..pb, c));
                }
            }
            let run = |(blocks, panels, out): (Range<usize>, Range<usize>, &mut [f32])| {
                if !panels.is_empty() {
                    dw_rows(cpu, g, x, dy, blocks, panels, out);
                }
            };
            if flops < DW_PAR_FLOPS {
                chunks.into_iter().for_each(run);
            } else {
                chunks.into_par_iter().for_each(run);
            }
            // dw[o, r] = the sum of the groups' dwᵀ[r, o] in group order, 16 rows of `dw` at a
            // time.
            let (dwt, partials) = dwt.split_at(wlen);
            let sum = [0f32; 16];
            let rows16 = |o0: usize, d: &mut [f32]| {
                let m = d.len() / k;
                let mut sum = sum;
                for r in 0..k {
                    let sum = &mut sum[..m];
                    sum.copy_from_slice(&dwt[r * co + o0..][..m]);
                    for part in partials.chunks_exact(wlen) {
                        for (v, &x) in sum.iter_mut().zip(&part[r * co + o0..]) {
                            *v += x;
                        }
                    }
                    for (o, &v) in sum.iter().enumerate() {
                        d[o * k + r] = v;
                    }
                }
            };
            if dw.len() < super::PAR_MIN {
                for (b, d) in dw.chunks_mut(16 * k).enumerate() {
                    rows16(16 * b, d);
                }
            } else {
                dw.par_chunks_mut(16 * k)
                    .enumerate()
                    .for_each(|(b, d)| rows16(16 * b, d));
            }
        });
    }

    /// Rows `panels` (panels of `MR` im2col rows `(c, i, j)`) of `dwᵀ[k, co] = im2col(x) · dyᵀ`
    /// into `out` (those rows, `co` floats each), on the calling thread. For each block of
    /// [`dw_steps`] pixels (the pixels of all images in order, a block may straddle images):
    /// the input rows the block reads (of the channels of these rows only) are copied into
    /// zero-padded windows, `dyᵀ` is packed into `b` panels of `NR` output channels (8 x 8
    /// transposes of the `dy` rows), and each tile of `MC` rows of `a` is packed straight from
    /// the windows (an im2col row over a run of pixels is a run of a window row) and swept
    /// against every `b` panel.
    fn dw_rows(
        cpu: Avx2Fma,
        g: &Conv,
        x: &[f32],
        dy: &[f32],
        blocks: Range<usize>,
        panels: Range<usize>,
        out: &mut [f32],
    ) {
        let (k, p, co) = (g.k(), g.p(), g.co);
        let (khw, chw) = (g.kh * g.kw, g.ci * g.h * g.w);
        let total = g.n * p;
        let kc = dw_steps(g);
        let (r0, r1) = (panels.start * MR, (panels.end * MR).min(k));
        let (c_lo, c_hi) = (r0 / khw, (r1 - 1) / khw + 1);
        let nc = c_hi - c_lo;
        let s = g.stride;
        let np = co.div_ceil(NR);
        let mut cv = ndarray::ArrayViewMut2::from_shape((r1 - r0, co), out).expect("rows x co");
        // The window of the channels `c_lo..c_hi` of the input.
        let wn = Win {
            ch: nc,
            ..Win::of(g, false)
        };
        let wrow = wn.wrow();
        let own = g.identity();
        let mut segs = Vec::new();
        let mut runs = Vec::new();
        for bi in blocks.clone() {
            let t0 = bi * kc;
            let bl = kc.min(total - t0);
            // Segments (image, pixels pix0..pix1, offset in the block, window rows y0..y0 + rows
            // at `at`) and their runs of pixels on one output row (offset in the block, length,
            // window offset of the first pixel for kernel offset (c_lo, 0, 0), channel plane).
            segs.clear();
            runs.clear();
            let mut at = 0;
            let mut t = t0;
            while t < t0 + bl {
                let (img, pix0) = (t / p, t % p);
                let pix1 = p.min(pix0 + t0 + bl - t);
                let (oy0, oy1) = (pix0 / g.ow, (pix1 - 1) / g.ow + 1);
                let (y0, rows) = (oy0 * s, (oy1 - 1 - oy0) * s + g.kh);
                segs.push((img, pix0, pix1, t - t0, y0, rows, at));
                if own {
                    // 1x1, stride 1, unpadded: the im2col rows are the input rows.
                    runs.push((t - t0, pix1 - pix0, img * chw + c_lo * p + pix0, p));
                    t += pix1 - pix0;
                    continue;
                }
                let mut pix = pix0;
                while pix < pix1 {
                    let (oy, ox) = (pix / g.ow, pix % g.ow);
                    let len = (g.ow - ox).min(pix1 - pix);
                    let w0 = at + (oy * s - y0) * wrow + ox;
                    runs.push((t - t0 + pix - pix0, len, w0, wn.plane(rows)));
                    pix += len;
                }
                at += nc * wn.plane(rows);
                t += pix1 - pix0;
            }
            with_scratch(&SCRATCH_A, at, |win| {
                for &(img, _, _, _, y0, rows, wat) in segs.iter().filter(|_| !own) {
                    let xi = &x[img * chw + c_lo * g.h * g.w..(img + 1) * chw];
                    // SAFETY: `cpu` proves AVX2.
                    unsafe { fill_window(&wn, xi, y0, rows, &mut win[wat..]) };
                }
                with_scratch(&SCRATCH_DWB, np * bl * NR, |bp| {
                    for (jp, dst) in bp.chunks_exact_mut(bl * NR).enumerate() {
                        let (o0, o1) = (jp * NR, (jp * NR + NR).min(co));
                        for &(img, pix0, pix1, d0, ..) in &segs {
                            let len = pix1 - pix0;
                            let mut rows: [&[f32]; NR] = [&[]; NR];
                            for (r, o) in rows.iter_mut().zip(o0..o1) {
                                *r = &dy[(img * co + o) * p + pix0..][..len];
                            }
                            let d = &mut dst[d0 * NR..(d0 + len) * NR];
                            pack_columns(cpu, &rows[..o1 - o0], len, d);
                        }
                    }
                    with_scratch(&SCRATCH_DWA, MC * bl, |ap| {
                        for t0 in panels.clone().step_by(MC / MR) {
                            let t1 = (t0 + MC / MR).min(panels.end);
                            let ap = &mut ap[..(t1 - t0) * MR * bl];
                            for (row, d) in ap.chunks_exact_mut(bl).enumerate() {
                                let r = t0 * MR + row;
                                if r >= k {
                                    d.fill(0.0);
                                    continue;
                                }
                                let src = if own { x } else { &*win };
                                let (c, i, j) = (r / khw, (r / g.kw) % g.kh, r % g.kw);
                                let off = i * wrow + wn.col(j);
                                for &(o, len, w0, plane) in &runs {
                                    let src = &src[w0 + (c - c_lo) * plane + off..];
                                    // SAFETY: `cpu` proves AVX2.
                                    unsafe { copy(&mut d[o..o + len], src) };
                                }
                            }
                            let ap = &*ap;
                            for (jp, bpanel) in bp.chunks_exact(bl * NR).enumerate() {
                                for (ip, apanel) in ap.chunks_exact(MR * bl).enumerate() {
                                    let at = ((t0 + ip - panels.start) * MR, jp * NR);
                                    let first = bi == blocks.start;
                                    micro_rows(cpu, bl, apanel, bpanel, &mut cv, at, first);
                                }
                            }
                        }
                    });
                });
            });
        }
    }

    /// im2col of the output rows `oy0..oy1` of one image `x[ci, h, w]` into
    /// `col[ci kh kw, (oy1 - oy0) ow]` on the calling thread, from a zero-padded window of the
    /// input rows (the same values as `super::im2col_rows`, without its per-row range logic).
    pub(super) fn im2col_rows(
        cpu: Avx2Fma,
        g: &Conv,
        x: &[f32],
        oy0: usize,
        oy1: usize,
        col: &mut [f32],
    ) {
        let pt = (oy1 - oy0) * g.ow;
        if pt == 0 || g.k() == 0 {
            return;
        }
        let wn = Win::of(g, false);
        let (wrow, s) = (wn.wrow(), g.stride);
        let (y0, rows) = (oy0 * s, (oy1 - 1 - oy0) * s + g.kh);
        let plane = wn.plane(rows);
        let taps = conv_taps(g, &wn);
        with_scratch(&SCRATCH_WIN, g.ci * plane, |win| {
            let _: Avx2Fma = cpu;
            // SAFETY: `cpu` proves AVX2.
            unsafe { fill_window(&wn, x, y0, rows, win) };
            for (d, &(c, off)) in col[..g.k() * pt].chunks_exact_mut(pt).zip(&taps) {
                let base = c * plane + off;
                for (oy, dr) in d.chunks_exact_mut(g.ow).enumerate() {
                    // SAFETY: `cpu` proves AVX2.
                    unsafe { copy(dr, &win[base + oy * s * wrow..]) };
                }
            }
        });
    }

    /// `y[n, m, oh, ow] = a[m, k] · im2col(x)` for the convolution `g` (`m = g.co`), with `a`
    /// packed from its rows.
    pub(super) fn conv(
        cpu: Avx2Fma,
        g: &Conv,
        x: &[f32],
        a: ndarray::ArrayView2<f32>,
        y: &mut [f32],
    ) {
        let (k, p) = (g.k(), g.p());
        let y = &mut y[..g.n * g.co * p];
        if y.is_empty() {
            return;
        }
        let pp = p.div_ceil(NR);
        let units = g.n * pp;
        let per = cols(g);
        let tasks = units.div_ceil(per);
        let par = y.len() >= super::PAR_MIN;
        let threads = if par { rayon::current_num_threads() } else { 1 };
        with_scratch(&SCRATCH_W, PackedA::len(g.co, k), |buf| {
            let a = PackedA::new(a, buf, par && g.co * k >= super::PAR_MIN);
            // Split the rows too when there are too few tasks to keep the threads busy (the
            // results do not depend on it).
            let parts = if tasks >= 2 * threads {
                1
            } else {
                (2 * threads).div_ceil(tasks).min(a.panels())
            };
            let yp = SendPtr(y.as_mut_ptr());
            let chw = g.ci * g.h * g.w;
            // Panels of `NR` pixels on one output row each (`ow` a multiple of `NR`): read in
            // place from the window (aligned), not packed. Not from the image itself (1x1,
            // stride 1, unpadded), whose channel planes may be a multiple of 4 KiB apart.
            let direct = g.ow.is_multiple_of(NR) && !g.identity() && g.co <= DIRECT_MAX_ROWS;
            let wn = Win::of(g, direct);
            let wrow = wn.wrow();
            let taps = conv_taps(g, &wn);
            let run = |t: usize| {
                let (task, part) = (t / parts, t % parts);
                let panels = part * a.panels() / parts..(part + 1) * a.panels() / parts;
                let (r0, r1) = (
                    panels.start * super::super::sgemm::MR,
                    (panels.end * super::super::sgemm::MR).min(g.co),
                );
                let (u0, u1) = (task * per, ((task + 1) * per).min(units));
                // The task's images and their windows (1x1, stride 1, unpadded: the image is
                // its own window).
                let own = g.identity();
                let mut segs = Vec::new();
                let mut at = 0;
                let mut u = u0;
                while u < u1 {
                    let (img, q0) = (u / pp, u % pp);
                    let q1 = (pp.min(q0 + (u1 - u))).max(q0 + 1);
                    let (oy0, oy1) = (
                        q0 * NR / g.ow.max(1),
                        ((q1 * NR).min(p) - 1) / g.ow.max(1) + 1,
                    );
                    let (y0, rows) = (oy0 * g.stride, (oy1 - 1 - oy0) * g.stride + g.kh);
                    let (y0, rows, seg_at) = if own {
                        (0, g.h, img * chw)
                    } else {
                        (y0, rows, at)
                    };
                    segs.push(Segment {
                        img,
                        q0,
                        q1,
                        y0,
                        rows,
                        at: seg_at,
                    });
                    at += if own { 0 } else { g.ci * wn.plane(rows) };
                    u += q1 - q0;
                }
                // Runs of pixels on one output row (window offset of the first pixel for
                // kernel offset (0, 0, 0)), and the panels short of `NR` pixels.
                let (mut runs, mut zero) = (Vec::new(), Vec::new());
                let mut qt = 0;
                for sg in &segs {
                    let plane = if own { p } else { wn.plane(sg.rows) };
                    for q in sg.q0..sg.q1 {
                        let (pix0, pix1) = (q * NR, ((q + 1) * NR).min(p));
                        if pix1 - pix0 < NR {
                            zero.push(qt);
                        }
                        let mut pix = pix0;
                        while pix < pix1 {
                            let (oy, ox) = (pix / g.ow, pix % g.ow);
                            let len = (g.ow - ox).min(pix1 - pix);
                            let w0 = sg.at + (oy * g.stride - sg.y0) * wrow + ox;
                            runs.push(Run {
                                q: qt,
                                l0: pix - pix0,
                                len,
                                w0,
                                plane,
                            });
                            pix += len;
                        }
                        qt += 1;
                    }
                }
                with_scratch(&SCRATCH_A, at, |win| {
                    for sg in segs.iter().filter(|_| !own) {
                        let xi = &x[sg.img * chw..(sg.img + 1) * chw];
                        let _: Avx2Fma = cpu;
                        // SAFETY: `cpu` proves AVX2.
                        unsafe { fill_window(&wn, xi, sg.y0, sg.rows, &mut win[sg.at..]) };
                    }
                    let mut outs = Vec::with_capacity(u1 - u0);
                    for sg in &segs {
                        for q in sg.q0..sg.q1 {
                            let c0 = q * NR;
                            let nc = NR.min(p - c0);
                            // SAFETY: rows `r0..r1` by pixels `c0..c0 + nc` of image `img`
                            // lie inside `y` (`r1 <= co`, `c0 + nc <= p`, `img < n`); each
                            // (image, panel, row part) belongs to exactly one task, so the
                            // views of parallel tasks are disjoint; `y` outlives the loop.
                            let v = unsafe {
                                ArrayViewMut2::from_shape_ptr(
                                    (r1 - r0, nc).strides((p, 1)),
                                    yp.get().add((sg.img * g.co + r0) * p + c0),
                                )
                            };
                            outs.push(v);
                        }
                    }
                    let win = if own { x } else { &*win };
                    if direct {
                        // One product per segment (its own channel planes): panel `q` step
                        // `(c, i, j)` at `w0_q + c * plane + i * wrow + col(j)`.
                        let mut rest = &mut outs[..];
                        let mut runs = runs.iter();
                        let mut offs = Vec::with_capacity(k);
                        for sg in &segs {
                            let plane = if own { p } else { wn.plane(sg.rows) };
                            offs.clear();
                            offs.extend(taps.iter().map(|&(c, off)| c * plane + off));
                            let nq = sg.q1 - sg.q0;
                            let bases: Vec<usize> = runs.by_ref().take(nq).map(|r| r.w0).collect();
                            let (o, tail) = std::mem::take(&mut rest).split_at_mut(nq);
                            rest = tail;
                            gemm_direct(cpu, 1.0, &a, panels.clone(), win, &bases, &offs, 0.0, o);
                        }
                        return;
                    }
                    let pack = |p0: usize, pk: usize, dst: &mut [f32]| {
                        // SAFETY: `cpu` proves AVX2.
                        unsafe { pack_runs(win, &taps[p0..p0 + pk], &runs, &zero, dst) };
                    };
                    gemm_packed(cpu, 1.0, &a, panels.clone(), pack, 0.0, &mut outs);
                });
            };
            if tasks * parts == 1 {
                run(0);
            } else {
                (0..tasks * parts).into_par_iter().for_each(run);
            }
        });
    }

    /// One axis of the phase decomposition of a strided input gradient (for input positions
    /// `s m + r`, phase `r`): their gradient takes the kernel taps `i ≡ r + pad (mod s)`, tap
    /// `u < t` being kernel index `first - s u` and reading `dy` at `m - p + u`.
    #[derive(Clone, Copy)]
    struct Phase {
        first: usize,
        t: usize,
        p: isize,
        /// Positions `m` of the phase (input indices `s m + r < len`).
        len: usize,
    }

    /// The `s` phases of an axis of `len` input positions, kernel `k`, padding `pad` before.
    /// Input index `y = s m + r` is read by output `o` through tap `i` where
    /// `s o + i = y + pad`: `i = a + s v` with `a = (r + pad) % s`, and `o = m + u0 - v` with
    /// `u0 = (r + pad) / s`; the taps are taken in the order `u = t - 1 - v`.
    fn phases(k: usize, s: usize, pad: usize, len: usize) -> Vec<Phase> {
        (0..s)
            .map(|r| {
                let (a, u0) = ((r + pad) % s, (r + pad) / s);
                let t = if a < k { (k - a).div_ceil(s) } else { 0 };
                Phase {
                    first: a + s * t.saturating_sub(1),
                    t,
                    p: t as isize - 1 - u0 as isize,
                    len: if len > r { (len - r).div_ceil(s) } else { 0 },
                }
            })
            .collect()
    }

    /// One product of a strided input gradient: phase `r` of the rows and `rc` of the columns,
    /// `k` steps (`co` channels by the taps of both phases) and their offsets in the window.
    struct PhaseProduct {
        r: usize,
        rc: usize,
        k: usize,
        taps: Vec<(usize, usize)>,
    }

    /// `d[2n] = e[n]`, `d[2n + 1] = o[n]` (`e` holds the even positions of `d`, `o` the odd
    /// ones).
    #[target_feature(enable = "avx2")]
    fn interleave2(d: &mut [f32], e: &[f32], o: &[f32]) {
        let (ne, no) = (d.len().div_ceil(2), d.len() / 2);
        let (e, o) = (&e[..ne], &o[..no]);
        let mut t = 0;
        while t + 8 <= no {
            // SAFETY: `e[t..t + 8]`, `o[t..t + 8]` and `d[2t..2t + 16]` are inside the slices.
            unsafe {
                let (a, b) = (
                    _mm256_loadu_ps(e.as_ptr().add(t)),
                    _mm256_loadu_ps(o.as_ptr().add(t)),
                );
                // [a0 b0 a1 b1 | a4 b4 a5 b5] and [a2 b2 a3 b3 | a6 b6 a7 b7].
                let (lo, hi) = (_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
                let dp = d.as_mut_ptr().add(2 * t);
                _mm256_storeu_ps(dp, _mm256_permute2f128_ps::<0x20>(lo, hi));
                _mm256_storeu_ps(dp.add(8), _mm256_permute2f128_ps::<0x31>(lo, hi));
            }
            t += 8;
        }
        for t in t..no {
            d[2 * t] = e[t];
            d[2 * t + 1] = o[t];
        }
        if ne > no {
            d[2 * no] = e[no];
        }
    }

    /// The input gradient of a strided convolution `g` (`dx[n, ci, h, w]` from
    /// `dy[n, co, oh, ow]` and `w[co, ci, kh, kw]`) as `s²` stride-1 products, one per phase
    /// `(r, rc)` of the input positions `(s m + r, s n + rc)`: each is `dx` at those positions,
    /// `a[ci, (o, u, v)] · b[(o, u, v), (m, n)]` with `a` the phase's taps of the kernel
    /// (packed once per call, shared by every task) and `b[(o, u, v), (m, n)] =
    /// dy[o, m - p_r + u, n - p_rc + v]` (zero outside `dy`) packed straight from one
    /// zero-padded window of `dy` that serves all the phases, or read there in place where the
    /// phase's width is a multiple of `NR` (no col2im). Each task takes one
    /// image's block of rows `m` (all of its phases, so the input rows `s m0..s m1`), and
    /// part of the channels where there are too few tasks; it computes each phase into its
    /// scratch and interleaves the phases into the rows of `dx` (`s = 2` with vector shuffles).
    /// Positions whose phase has no tap get zero. Every element is the kernel's sequence over
    /// the blocks of `KC` steps of its phase's product (fixed by the shapes), whatever the
    /// tasks.
    pub(super) fn backward_input_phases(
        cpu: Avx2Fma,
        g: &Conv,
        dy: &[f32],
        w: &[f32],
        dx: &mut [f32],
    ) {
        let (s, hw) = (g.stride, g.h * g.w);
        let dx = &mut dx[..g.n * g.ci * hw];
        if dx.is_empty() {
            return;
        }
        let (rph, cph) = (phases(g.kh, s, g.ph, g.h), phases(g.kw, s, g.pw, g.w));
        let live = |f: &&Phase| f.t > 0 && f.len > 0;
        let (pmax, qmax) = match (
            rph.iter().filter(live).map(|f| f.p).max(),
            cph.iter().filter(live).map(|f| f.p).max(),
        ) {
            (Some(pm), Some(qm)) if g.co > 0 => (pm, qm),
            _ => {
                // No phase reads `dy`.
                dx.fill(0.0);
                return;
            }
        };
        // The window: `dy` row `y` at padded row `y + pt`, column `x` at `x + pl`, wide
        // enough for every column a phase reads (`n - p_rc + v + pl`).
        let (pt, pl) = (pmax.max(0) as usize, qmax.max(0) as usize);
        let wd = cph
            .iter()
            .filter(live)
            .map(|f| (f.len + f.t + pl) as isize - 1 - f.p)
            .max()
            .unwrap_or(1) as usize;
        let wn = Win {
            ch: g.co,
            h: g.oh,
            w: g.ow,
            ph: pt,
            pw: pl,
            s: 1,
            wp: wd,
            wq: wd,
            align: false,
        };
        // The products, their weights `a[c, (o, u, v)] = w[o, c, first_r - s u, first_rc - s v]`
        // and their tap offsets in the window (channel, `u wd + v`).
        let mut prods = Vec::new();
        let (mut alen, mut wlen) = (0, 0);
        for (r, fr) in rph.iter().enumerate() {
            for (rc, fc) in cph.iter().enumerate() {
                if !(live(&fr) && live(&fc)) {
                    continue;
                }
                let k = g.co * fr.t * fc.t;
                let mut taps = Vec::with_capacity(k);
                for o in 0..g.co {
                    for u in 0..fr.t {
                        for v in 0..fc.t {
                            taps.push((o, u * wd + v));
                        }
                    }
                }
                prods.push(PhaseProduct { r, rc, k, taps });
                alen += PackedA::len(g.ci, k);
                wlen = wlen.max(g.ci * k);
            }
        }
        let khw = g.kh * g.kw;
        let par = dx.len() >= super::PAR_MIN;
        let threads = if par { rayon::current_num_threads() } else { 1 };
        with_scratch(&SCRATCH_W, alen, |abuf| {
            let mut packed = Vec::with_capacity(prods.len());
            let mut rest = &mut *abuf;
            with_scratch(&SCRATCH_CALL, wlen, |wbuf| {
                for pr in &prods {
                    let (fr, fc) = (&rph[pr.r], &cph[pr.rc]);
                    let wa = &mut wbuf[..g.ci * pr.k];
                    for (c, row) in wa.chunks_exact_mut(pr.k).enumerate() {
                        let mut d = row.iter_mut();
                        for o in 0..g.co {
                            let wo = &w[(o * g.ci + c) * khw..][..khw];
                            for u in 0..fr.t {
                                let i = fr.first - s * u;
                                for v in 0..fc.t {
                                    *d.next().expect("k steps") = wo[i * g.kw + fc.first - s * v];
                                }
                            }
                        }
                    }
                    let (buf, tail) =
                        std::mem::take(&mut rest).split_at_mut(PackedA::len(g.ci, pr.k));
                    rest = tail;
                    let av = ndarray::ArrayView2::from_shape((g.ci, pr.k), &*wa).expect("ci x k");
                    packed.push(PackedA::new(av, buf, par && g.ci * pr.k >= super::PAR_MIN));
                }
            });
            // Tasks: blocks of rows `m` of one image, each phase's packed `b` (`k` steps of
            // its pixels) under about [`TILE`] floats.
            let mrows = g.h.div_ceil(s);
            let wmax = cph.iter().map(|f| f.len).max().unwrap_or(1).max(1);
            let kmax = prods.iter().map(|p| p.k).max().unwrap_or(1);
            let per = (TILE / (kmax.min(KC) * wmax)).clamp(1, mrows.max(1));
            let nb = mrows.div_ceil(per);
            let per = mrows.div_ceil(nb.max(1));
            let tasks = g.n * nb;
            let mp = g.ci.div_ceil(MR);
            let parts = if tasks >= 2 * threads {
                1
            } else {
                (2 * threads).div_ceil(tasks).min(mp)
            };
            let dxp = SendPtr(dx.as_mut_ptr());
            let chw = g.co * g.oh * g.ow;
            let zeros = vec![0f32; wmax];
            let run = |t: usize| {
                let (task, part) = (t / parts, t % parts);
                let (img, b) = (task / nb, task % nb);
                let (m0, m1) = (b * per, ((b + 1) * per).min(mrows));
                let panels = part * mp / parts..(part + 1) * mp / parts;
                let (r0, r1) = (panels.start * MR, (panels.end * MR).min(g.ci));
                if r0 >= r1 {
                    return;
                }
                // Window rows: from `y0` (phase rows `m0 - p_r + u + pt`), as many as the
                // phases with positions in the block read.
                let y0 = (m0 as isize + pt as isize - pmax) as usize;
                let rows = prods
                    .iter()
                    .map(|pr| &rph[pr.r])
                    .filter(|f| f.len > m0)
                    .map(|f| (f.len.min(m1) - m0 + f.t) as isize + pmax - f.p - 1)
                    .max()
                    .unwrap_or(0)
                    .max(0) as usize;
                let plane = rows * wd;
                // Each product's pixels `(m - m0) len_rc + n` in the block, and its place in
                // the task's scratch (`r1 - r0` rows of them).
                let pix: Vec<usize> = prods
                    .iter()
                    .map(|pr| rph[pr.r].len.min(m1).saturating_sub(m0) * cph[pr.rc].len)
                    .collect();
                let total: usize = pix.iter().sum();
                with_scratch(&SCRATCH_A, g.co * plane, |win| {
                    let dyi = &dy[img * chw..(img + 1) * chw];
                    // SAFETY: `cpu` proves AVX2.
                    unsafe { fill_window(&wn, dyi, y0, rows, win) };
                    with_scratch(&SCRATCH_DX, (r1 - r0) * total, |tmp| {
                        let mut rest = &mut *tmp;
                        for ((pr, a), &np) in prods.iter().zip(&packed).zip(&pix) {
                            let (out, tail) =
                                std::mem::take(&mut rest).split_at_mut((r1 - r0) * np);
                            rest = tail;
                            if np == 0 {
                                continue;
                            }
                            let (fr, fc) = (&rph[pr.r], &cph[pr.rc]);
                            let wc = fc.len;
                            // Runs of pixels on one row `m` (window offset of the first for
                            // tap (0, 0, 0)), and the last panel if short of `NR` pixels.
                            let mut runs = Vec::with_capacity(np / wc * (wc / NR + 2));
                            let zero = if np % NR != 0 { vec![np / NR] } else { vec![] };
                            for mm in 0..np / wc {
                                let wrow = (mm as isize + pmax - fr.p) as usize * wd;
                                let mut q = mm * wc;
                                while q < (mm + 1) * wc {
                                    let len = (NR - q % NR).min((mm + 1) * wc - q);
                                    let n = q - mm * wc;
                                    runs.push(Run {
                                        q: q / NR,
                                        l0: q % NR,
                                        len,
                                        w0: wrow + (n as isize + pl as isize - fc.p) as usize,
                                        plane,
                                    });
                                    q += len;
                                }
                            }
                            let mut view = ArrayViewMut2::from_shape((r1 - r0, np), out)
                                .expect("rows x pixels");
                            let mut outs: Vec<_> =
                                view.axis_chunks_iter_mut(ndarray::Axis(1), NR).collect();
                            let win = &*win;
                            if wc.is_multiple_of(NR) && g.ci <= DIRECT_MAX_ROWS {
                                // Panels of `NR` pixels on one row `m` each: read in place.
                                let offs: Vec<usize> =
                                    pr.taps.iter().map(|&(c, off)| c * plane + off).collect();
                                let bases: Vec<usize> = runs.iter().map(|r| r.w0).collect();
                                gemm_direct(
                                    cpu,
                                    1.0,
                                    a,
                                    panels.clone(),
                                    win,
                                    &bases,
                                    &offs,
                                    0.0,
                                    &mut outs,
                                );
                                continue;
                            }
                            let pack = |p0: usize, pk: usize, dst: &mut [f32]| {
                                // SAFETY: `cpu` proves AVX2.
                                unsafe { pack_runs(win, &pr.taps[p0..p0 + pk], &runs, &zero, dst) };
                            };
                            gemm_packed(cpu, 1.0, a, panels.clone(), pack, 0.0, &mut outs);
                        }
                        // Interleave the phases into the rows `s m0..s m1` of `dx`: row `m`
                        // of phase (r, rc) of channel `c`, or zeros where it has no product.
                        let tmp = &*tmp;
                        let mut at = 0;
                        let mut slot = vec![None; s * s];
                        for (pr, &np) in prods.iter().zip(&pix) {
                            slot[pr.r * s + pr.rc] = Some((at, np));
                            at += (r1 - r0) * np;
                        }
                        let src = |r: usize, rc: usize, c: usize, m: usize| -> &[f32] {
                            let wc = cph[rc].len;
                            match slot[r * s + rc] {
                                Some((at, np)) => &tmp[at + (c - r0) * np + (m - m0) * wc..][..wc],
                                None => &zeros[..wc],
                            }
                        };
                        for c in r0..r1 {
                            for m in m0..m1 {
                                for r in 0..s {
                                    let y = s * m + r;
                                    if y >= g.h {
                                        continue;
                                    }
                                    // SAFETY: row `y` of channel `c` of image `img` lies inside
                                    // `dx`; each (image, row, channel) belongs to exactly one
                                    // task, so the rows of parallel tasks are disjoint; `dx`
                                    // outlives the loop.
                                    let d = unsafe {
                                        std::slice::from_raw_parts_mut(
                                            dxp.get().add(((img * g.ci + c) * g.h + y) * g.w),
                                            g.w,
                                        )
                                    };
                                    if s == 2 {
                                        // SAFETY: `cpu` proves AVX2.
                                        unsafe { interleave2(d, src(r, 0, c, m), src(r, 1, c, m)) };
                                    } else {
                                        for rc in 0..s.min(g.w) {
                                            let sv = src(r, rc, c, m);
                                            for (x, v) in d[rc..].iter_mut().step_by(s).zip(sv) {
                                                *x = *v;
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    });
                });
            };
            if tasks * parts == 1 {
                run(0);
            } else {
                (0..tasks * parts).into_par_iter().for_each(run);
            }
        });
    }
}

thread_local! {
    static GENERIC_CONVS: Cell<bool> = const { Cell::new(false) };
}

/// Makes the convolutions called from this thread take the generic path (im2col and [`gemm`],
/// what CPUs without AVX2 and FMA run) instead of the implicit GEMM (`true`), or go back to the
/// default (`false`). For tests and timing: it keeps the generic path tested on x86-64.
pub fn set_generic_convs(on: bool) {
    GENERIC_CONVS.with(|g| g.set(on));
}

/// The CPU features of the implicit-GEMM convolutions, unless this thread asked for the
/// generic path ([`set_generic_convs`]).
#[cfg(target_arch = "x86_64")]
fn implicit_cpu() -> Option<super::sgemm::Avx2Fma> {
    if GENERIC_CONVS.with(|g| g.get()) {
        return None;
    }
    super::sgemm::Avx2Fma::detect()
}

/// `Op::Conv2d`: `x[n, ci, h, w], w[co, ci, kh, kw] -> y[n, co, oh, ow]`. With the packed
/// kernel: the implicit GEMM (`implicit`); else im2col and [`gemm`] per image (or per block of
/// output rows, `tiled`).
pub fn conv2d(
    x: &[f32],
    x_shape: &[usize],
    w: &[f32],
    w_shape: &[usize],
    stride: usize,
    padding: Padding,
    y: &mut [f32],
) {
    let g = Conv::new(
        x_shape[0], x_shape[1], x_shape[2], x_shape[3], w_shape[0], w_shape[2], w_shape[3], stride,
        padding,
    );
    let (k, p) = (g.k(), g.p());
    let wv = view(w, g.co, k);
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = implicit_cpu() {
        implicit::conv(cpu, &g, x, wv, y);
        return;
    }
    let chw = g.ci * g.h * g.w;
    if tiled(&g) {
        conv2d_tiled(&g, x, w, y);
        return;
    }
    let par = g.n < rayon::current_num_threads();
    per_image(&mut y[..g.n * g.co * p], g.co * p, |i, yi| {
        let xi = &x[i * chw..(i + 1) * chw];
        let mut product = |b: ArrayView2<'_, f32>| {
            gemm_par(Kernel::Auto, par, 1.0, wv, b, 0.0, view_mut(yi, g.co, p))
        };
        if g.identity() {
            product(view(xi, k, p));
        } else {
            with_scratch(&SCRATCH_A, k * p, |col| {
                im2col(&g, xi, col);
                product(view(col, k, p));
            });
        }
    });
}

/// `Op::Conv2dBackwardInput`: `dy[n, co, oh, ow], w[co, ci, kh, kw] -> dx[n, ci, in_h, in_w]`.
/// With the packed kernel and stride 1: the implicit-GEMM forward convolution of `dy` with the
/// flipped, transposed kernel (`Conv::transposed`); with the packed kernel and a larger stride:
/// one stride-1 implicit GEMM per phase of the input positions
/// (`implicit::backward_input_phases`); else `wᵀ · dy_i` and col2im per image.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_input(
    dy: &[f32],
    dy_shape: &[usize],
    w: &[f32],
    w_shape: &[usize],
    stride: usize,
    padding: Padding,
    in_h: usize,
    in_w: usize,
    dx: &mut [f32],
) {
    let g = Conv::new(
        dy_shape[0],
        w_shape[1],
        in_h,
        in_w,
        w_shape[0],
        w_shape[2],
        w_shape[3],
        stride,
        padding,
    );
    let (k, p) = (g.k(), g.p());
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = implicit_cpu() {
        if let Some(t) = g.transposed() {
            // Stride 1: the forward convolution of `dy` with the flipped, transposed kernel.
            let khw = g.kh * g.kw;
            with_scratch(&SCRATCH_CALL, g.ci * g.co * khw, |wf| {
                let flip = |c: usize, row: &mut [f32]| {
                    for (o, d) in row.chunks_exact_mut(khw).enumerate() {
                        let src = &w[(o * g.ci + c) * khw..][..khw];
                        for (v, x) in d.iter_mut().zip(src.iter().rev()) {
                            *v = *x;
                        }
                    }
                };
                if wf.len() < PAR_MIN {
                    wf.chunks_mut(g.co * khw)
                        .enumerate()
                        .for_each(|(c, r)| flip(c, r));
                } else {
                    wf.par_chunks_mut(g.co * khw)
                        .enumerate()
                        .for_each(|(c, r)| flip(c, r));
                }
                implicit::conv(cpu, &t, dy, view(wf, g.ci, g.co * khw), dx);
            });
            return;
        }
        // Strided: one stride-1 product per phase of the input positions.
        implicit::backward_input_phases(cpu, &g, dy, w, dx);
        return;
    }
    let wt = view(w, g.co, k).reversed_axes();
    let chw = g.ci * g.h * g.w;
    let par = g.n < rayon::current_num_threads();
    if tiled(&g) {
        // One task per image, its blocks of output rows in order (their col2im overlap).
        let rows = tile_rows(&g);
        per_image(&mut dx[..g.n * chw], chw, |i, dxi| {
            let dyi = view(&dy[i * g.co * p..], g.co, p);
            dxi.fill(0.0);
            with_scratch(&SCRATCH_A, k * rows * g.ow, |col| {
                for oy0 in (0..g.oh).step_by(rows) {
                    let oy1 = (oy0 + rows).min(g.oh);
                    let pt = (oy1 - oy0) * g.ow;
                    let dyt = dyi.slice(s![.., oy0 * g.ow..oy1 * g.ow]);
                    gemm_par(Kernel::Auto, par, 1.0, wt, dyt, 0.0, view_mut(col, k, pt));
                    col2im_rows(&g, col, oy0, oy1, dxi);
                }
            });
        });
        return;
    }
    per_image(&mut dx[..g.n * chw], chw, |i, dxi| {
        let dyi = view(&dy[i * g.co * p..], g.co, p);
        if g.identity() {
            gemm_par(Kernel::Auto, par, 1.0, wt, dyi, 0.0, view_mut(dxi, k, p));
        } else {
            with_scratch(&SCRATCH_A, k * p, |col| {
                gemm_par(Kernel::Auto, par, 1.0, wt, dyi, 0.0, view_mut(col, k, p));
                col2im(&g, col, dxi);
            });
        }
    });
}

/// The weight gradient of the images `imgs` into `acc[co, k]`: `dy_i · im2col(x_i)ᵀ`
/// accumulated image after image (for [`tiled`] shapes, block of output rows after block), on
/// the calling thread unless `par`. `col` is scratch of `k p` floats (none for 1x1 convolutions).
#[allow(clippy::too_many_arguments)]
fn group_images(
    g: &Conv,
    x: &[f32],
    dy: &[f32],
    imgs: std::ops::Range<usize>,
    par: bool,
    col: &mut [f32],
    acc: &mut [f32],
) {
    let (k, p) = (g.k(), g.p());
    let chw = g.ci * g.h * g.w;
    if imgs.is_empty() {
        acc.fill(0.0);
    }
    let tiles = tiled(g);
    let rows = tile_rows(g);
    let mut first = true;
    for i in imgs {
        let xi = &x[i * chw..(i + 1) * chw];
        let dyi = view(&dy[i * g.co * p..], g.co, p);
        if tiles {
            for oy0 in (0..g.oh).step_by(rows) {
                let oy1 = (oy0 + rows).min(g.oh);
                let pt = (oy1 - oy0) * g.ow;
                im2col_rows_fast(g, xi, oy0, oy1, col);
                let colv = view(col, k, pt).reversed_axes();
                let dyt = dyi.slice(s![.., oy0 * g.ow..oy1 * g.ow]);
                let beta = if first { 0.0 } else { 1.0 };
                gemm_par(
                    Kernel::Auto,
                    par,
                    1.0,
                    dyt,
                    colv,
                    beta,
                    view_mut(acc, g.co, k),
                );
                first = false;
            }
            continue;
        }
        let colv = if g.identity() {
            view(xi, k, p)
        } else {
            if par {
                im2col(g, xi, col);
            } else {
                im2col_rows_fast(g, xi, 0, g.oh, col);
            }
            view(col, k, p)
        };
        let beta = if first { 0.0 } else { 1.0 };
        gemm_par(
            Kernel::Auto,
            par,
            1.0,
            dyi,
            colv.reversed_axes(),
            beta,
            view_mut(acc, g.co, k),
        );
        first = false;
    }
}

/// Output channels from which the weight gradient runs `implicit::backward_weight` (where the
/// packed kernel runs); narrower ones waste most of its `NR`-column panels.
const DW_IMPLICIT_MIN_CO: usize = 8;

/// Floats of per-group partial weight gradients held at once in the weight gradient.
const PARTIAL_BUDGET: usize = 1 << 22;

/// `Op::Conv2dBackwardWeight`: `x[n, ci, h, w], dy[n, co, oh, ow] -> dw[co, ci, kh, kw]`,
/// the sum over images of `dy_i · im2col(x_i)ᵀ`. With the packed kernel and at least
/// [`DW_IMPLICIT_MIN_CO`] output channels: `implicit::backward_weight`. Else images are split
/// into contiguous groups (a function of the shapes); each group accumulates its images in
/// order and the group partials are added in order.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_weight(
    x: &[f32],
    x_shape: &[usize],
    dy: &[f32],
    dy_shape: &[usize],
    stride: usize,
    padding: Padding,
    kh: usize,
    kw: usize,
    dw: &mut [f32],
) {
    let g = Conv::new(
        x_shape[0],
        x_shape[1],
        x_shape[2],
        x_shape[3],
        dy_shape[1],
        kh,
        kw,
        stride,
        padding,
    );
    let (k, p) = (g.k(), g.p());
    let wlen = g.co * k;
    let dw = &mut dw[..wlen];
    if wlen == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = implicit_cpu() {
        if g.co >= DW_IMPLICIT_MIN_CO {
            implicit::backward_weight(cpu, &g, x, dy, dw);
            return;
        }
    }
    let groups = (PARTIAL_BUDGET / wlen).clamp(1, g.n.max(1));
    let per_group = g.n.div_ceil(groups).max(1);
    let ngroups = g.n.div_ceil(per_group);
    let par = ngroups < rayon::current_num_threads();
    let group = |gi: usize, acc: &mut [f32]| {
        let len = if g.identity() {
            0
        } else if tiled(&g) {
            k * tile_rows(&g) * g.ow
        } else {
            k * p
        };
        with_scratch(&SCRATCH_A, len, |col| {
            group_images(
                &g,
                x,
                dy,
                gi * per_group..((gi + 1) * per_group).min(g.n),
                par,
                col,
                acc,
            )
        })
    };
    if ngroups <= 1 {
        group(0, dw);
        return;
    }
    // Every partial is overwritten (each group's first product has beta = 0).
    with_scratch(&SCRATCH_CALL, (ngroups - 1) * wlen, |partials| {
        add_partials(dw, partials, wlen, &group)
    });
}

/// The weight gradient's groups after the first: each into its part of `partials` (`wlen`
/// floats each) while group 0 writes `dw`, all in parallel; then the partials added to `dw` in
/// group order.
fn add_partials(
    dw: &mut [f32],
    partials: &mut [f32],
    wlen: usize,
    group: &(impl Fn(usize, &mut [f32]) + Sync),
) {
    rayon::join(
        || group(0, dw),
        || {
            partials
                .par_chunks_mut(wlen)
                .enumerate()
                .for_each(|(j, part)| group(j + 1, part));
        },
    );
    // Add the partials in group order (per element, so the order is fixed).
    let add = |off: usize, d: &mut [f32]| {
        for part in partials.chunks(wlen) {
            for (o, v) in d.iter_mut().zip(&part[off..]) {
                *o += *v;
            }
        }
    };
    if partials.len() < PAR_MIN {
        add(0, dw);
    } else {
        dw.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, d)| add(c * CHUNK, d));
    }
}

/// `Op::Attention`: per batch and head, `softmax(q kᵀ / sqrt(dh))` over the unmasked keys
/// (mask value 0; any other value keeps the key), times `v`. Rows with every key masked are
/// zero.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &[f32],
    q_shape: &[usize],
    k: &[f32],
    k_shape: &[usize],
    v: &[f32],
    mask: &[f32],
    heads: usize,
    y: &mut [f32],
) {
    let (b, s, e) = (q_shape[0], q_shape[1], q_shape[2]);
    let t = k_shape[1];
    let dh = e / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let y = &mut y[..b * s * e];
    if y.is_empty() {
        return;
    }
    let one = |bi: usize, yb: &mut [f32]| {
        let keep: Vec<bool> = mask[bi * t..(bi + 1) * t]
            .iter()
            .map(|&m| m != 0.0)
            .collect();
        let qb = view(&q[bi * s * e..], s, e);
        let kb = view(&k[bi * t * e..], t, e);
        let vb = view(&v[bi * t * e..], t, e);
        let head = |h: usize, mut yh: ArrayViewMut2<f32>| {
            let cols = s![.., h * dh..(h + 1) * dh];
            let mut scores = vec![0f32; s * t];
            gemm(
                scale,
                qb.slice(cols),
                kb.slice(cols).reversed_axes(),
                0.0,
                view_mut(&mut scores, s, t),
            );
            masked_softmax_rows(&mut scores, t, &keep);
            gemm(1.0, view(&scores, s, t), vb.slice(cols), 0.0, yh.view_mut());
        };
        let mut yv = view_mut(yb, s, e);
        if s * t * e < PAR_MIN || heads == 1 {
            for (h, yh) in yv.axis_chunks_iter_mut(Axis(1), dh).enumerate() {
                head(h, yh);
            }
        } else {
            yv.axis_chunks_iter_mut(Axis(1), dh)
                .into_par_iter()
                .enumerate()
                .for_each(|(h, yh)| head(h, yh));
        }
    };
    if b == 1 {
        one(0, y);
    } else {
        y.par_chunks_mut(s * e)
            .enumerate()
            .for_each(|(bi, yb)| one(bi, yb));
    }
}

super::par::simd_fn! {
    /// Softmax over the kept columns of each row of `scores` (rows of `t`); rows with no kept
    /// column become zero.
    fn masked_softmax_rows(scores: &mut [f32], t: usize, keep: &[bool]) {
        if t == 0 {
            return;
        }
        for row in scores.chunks_mut(t) {
            let mut mx = f32::NEG_INFINITY;
            let mut any = false;
            for (x, &kp) in row.iter().zip(keep) {
                if kp {
                    any = true;
                    mx = if *x > mx { *x } else { mx };
                }
            }
            if !any {
                row.fill(0.0);
                continue;
            }
            for (x, &kp) in row.iter_mut().zip(keep) {
                let e = super::math::exp(*x - mx);
                *x = if kp { e } else { 0.0 };
            }
            let inv = (1.0 / super::par::seq_sum(row)) as f32;
            for x in row.iter_mut() {
                *x *= inv;
            }
        }
    }
}
