//! Exact-value tests of the CPU kernels against naive loops and hand-computed values.
//! Gradients are checked against finite differences in `tests/gradcheck.rs`.

use super::{eval, run, CpuBackend};
use crate::backend::{Backend, Tensor};
use crate::op::{conv_out, pad_before, Activation, Op, Padding};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
    fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
}

fn ev(op: &Op, ins: &[(&[f32], &[usize])]) -> Vec<Vec<f32>> {
    eval(op, ins).unwrap().into_iter().map(|(v, _)| v).collect()
}

/// [`ev`] into outputs filled with NaN first, so that an element a kernel forgets to write
/// shows.
fn ev_nan(op: &Op, ins: &[(&[f32], &[usize])]) -> Vec<Vec<f32>> {
    let shapes: Vec<&[usize]> = ins.iter().map(|(_, s)| *s).collect();
    let mut outs: Vec<Vec<f32>> = op
        .output_shapes(&shapes)
        .unwrap()
        .iter()
        .map(|s| vec![f32::NAN; s.iter().product()])
        .collect();
    let mut refs: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
    run(op, ins, &mut refs).unwrap();
    outs
}

#[track_caller]
fn assert_close(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let scale = want.iter().fold(1f64, |a, &b| a.max(b.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= tol * scale,
            "element {i}: got {g}, want {w} (tolerance {tol} x {scale})"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Matmul

fn naive_matmul(
    a: &[f32],
    ash: &[usize],
    b: &[f32],
    bsh: &[usize],
    ta: bool,
    tb: bool,
) -> Vec<f64> {
    let (ar, ac) = (ash[ash.len() - 2], ash[ash.len() - 1]);
    let (br, bc) = (bsh[bsh.len() - 2], bsh[bsh.len() - 1]);
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let n = if tb { br } else { bc };
    let batch = if ash.len() > 2 {
        ash[..ash.len() - 2].iter().product()
    } else if bsh.len() > 2 {
        bsh[..bsh.len() - 2].iter().product()
    } else {
        1
    };
    let mut c = vec![0f64; batch * m * n];
    for bi in 0..batch {
        let ao = if ash.len() > 2 { bi * ar * ac } else { 0 };
        let bo = if bsh.len() > 2 { bi * br * bc } else { 0 };
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for l in 0..k {
                    let av = if ta {
                        a[ao + l * ac + i]
                    } else {
                        a[ao + i * ac + l]
                    };
                    let bv = if tb {
                        b[bo + j * bc + l]
                    } else {
                        b[bo + l * bc + j]
                    };
                    s += av as f64 * bv as f64;
                }
                c[bi * m * n + i * n + j] = s;
            }
        }
    }
    c
}

#[test]
fn matmul_known_values() {
    // [[1, 2, 3], [4, 5, 6]] x [[7, 8], [9, 10], [11, 12]] = [[58, 64], [139, 154]].
    let a = [1., 2., 3., 4., 5., 6.];
    let b = [7., 8., 9., 10., 11., 12.];
    let op = Op::MatMul {
        trans_a: false,
        trans_b: false,
    };
    let c = ev(&op, &[(&a, &[2, 3]), (&b, &[3, 2])]);
    assert_eq!(c[0], vec![58., 64., 139., 154.]);
    // aᵀ (a read as [3, 2]) times b read as [2, 3] transposed... use a [2, 3] as Aᵀ of [3, 2].
    let op = Op::MatMul {
        trans_a: true,
        trans_b: true,
    };
    // Aᵀ = [[1, 4], [2, 5], [3, 6]] ([3, 2]); Bᵀ with b as [3, 2] -> [[7, 9, 11], [8, 10, 12]].
    let c = ev(&op, &[(&a, &[2, 3]), (&b, &[3, 2])]);
    // Row 0: [1, 4] -> [1*7 + 4*8, 1*9 + 4*10, 1*11 + 4*12] = [39, 49, 59].
    assert_eq!(&c[0][..3], &[39., 49., 59.]);
}

#[test]
fn matmul_matches_naive() {
    let mut rng = Rng(1);
    let cases: &[(&[usize], &[usize], bool, bool)] = &[
        (&[3, 4], &[4, 5], false, false),
        (&[4, 3], &[4, 5], true, false),
        (&[3, 4], &[5, 4], false, true),
        (&[4, 3], &[5, 4], true, true),
        (&[2, 3, 3, 4], &[2, 3, 4, 5], false, false),
        (&[2, 4, 3], &[2, 5, 4], true, true),
        (&[5, 3, 4], &[4, 2], false, false), // folded into one product
        (&[5, 4, 3], &[4, 2], true, false),
        (&[3, 4], &[6, 4, 2], false, false), // a broadcast
        (&[4, 3], &[6, 2, 4], true, true),
        (&[1, 0], &[0, 3], false, false),       // k = 0
        (&[300, 80], &[80, 260], false, false), // tiled in parallel
        (&[80, 300], &[260, 80], true, true),
        (&[3, 70, 64], &[3, 64, 90], false, false),
    ];
    for &(ash, bsh, ta, tb) in cases {
        let a = rng.vec(ash.iter().product(), -1.0, 1.0);
        let b = rng.vec(bsh.iter().product(), -1.0, 1.0);
        let op = Op::MatMul {
            trans_a: ta,
            trans_b: tb,
        };
        let c = ev(&op, &[(&a, ash), (&b, bsh)]);
        assert_close(&c[0], &naive_matmul(&a, ash, &b, bsh, ta, tb), 1e-5);
    }
}

#[test]
fn matmul_tiles_cover_large_products() {
    use super::linalg::gemm;
    use ndarray::{ArrayView2, ArrayViewMut2};
    let mut rng = Rng(2);
    let (m, k, n) = (257, 65, 300);
    let a = rng.vec(m * k, -1.0, 1.0);
    let b = rng.vec(k * n, -1.0, 1.0);
    let c0 = rng.vec(m * n, -1.0, 1.0);
    let mut c = c0.clone();
    gemm(
        0.5,
        ArrayView2::from_shape((m, k), &a).unwrap(),
        ArrayView2::from_shape((k, n), &b).unwrap(),
        2.0,
        ArrayViewMut2::from_shape((m, n), &mut c).unwrap(),
    );
    let ab = naive_matmul(&a, &[m, k], &b, &[k, n], false, false);
    let want: Vec<f64> = ab
        .iter()
        .zip(&c0)
        .map(|(p, &q)| 0.5 * p + 2.0 * q as f64)
        .collect();
    assert_close(&c, &want, 1e-5);
}

/// `alpha * op(a) · op(b) + beta * c0` in `f64`, with `a` stored `[m, k]` (`[k, m]` when
/// `ta`) and `b` stored `[k, n]` (`[n, k]` when `tb`).
#[allow(clippy::too_many_arguments)]
fn naive_gemm(
    (m, n, k): (usize, usize, usize),
    alpha: f32,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    beta: f32,
    c0: &[f32],
) -> Vec<f64> {
    let mut c = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for l in 0..k {
                let av = if ta { a[l * m + i] } else { a[i * k + l] };
                let bv = if tb { b[j * k + l] } else { b[l * n + j] };
                s += av as f64 * bv as f64;
            }
            let prev = if beta == 0.0 {
                0.0
            } else {
                beta as f64 * c0[i * n + j] as f64
            };
            c[i * n + j] = alpha as f64 * s + prev;
        }
    }
    c
}

/// Runs `gemm_with(kernel)` on random operands of the given shape and transposes (the output
/// a strided view inside a larger buffer when `strided`) and checks it against [`naive_gemm`].
#[allow(clippy::too_many_arguments)]
fn check_gemm(
    kernel: super::linalg::Kernel,
    rng: &mut Rng,
    (m, n, k): (usize, usize, usize),
    ta: bool,
    tb: bool,
    alpha: f32,
    beta: f32,
    strided: bool,
) {
    use ndarray::{s, ArrayView2, ArrayViewMut2};
    let a = rng.vec(m * k, -1.0, 1.0);
    let b = rng.vec(k * n, -1.0, 1.0);
    let av = if ta {
        ArrayView2::from_shape((k, m), &a).unwrap().reversed_axes()
    } else {
        ArrayView2::from_shape((m, k), &a).unwrap()
    };
    let bv = if tb {
        ArrayView2::from_shape((n, k), &b).unwrap().reversed_axes()
    } else {
        ArrayView2::from_shape((k, n), &b).unwrap()
    };
    let c0 = rng.vec(m * n, -1.0, 1.0);
    let got: Vec<f32> = if strided {
        // c is the columns 3.. of a [m, n + 5] buffer; the padding must stay untouched.
        let w = n + 5;
        let mut big: Vec<f32> = (0..m * w).map(|i| -(i as f32)).collect();
        for i in 0..m {
            big[i * w + 3..i * w + 3 + n].copy_from_slice(&c0[i * n..(i + 1) * n]);
        }
        let mut bigv = ArrayViewMut2::from_shape((m, w), &mut big).unwrap();
        super::linalg::gemm_with(
            kernel,
            alpha,
            av,
            bv,
            beta,
            bigv.slice_mut(s![.., 3..3 + n]),
        );
        let mut out = Vec::with_capacity(m * n);
        for i in 0..m {
            for j in 0..w {
                if j < 3 || j >= 3 + n {
                    assert_eq!(big[i * w + j], -((i * w + j) as f32), "padding overwritten");
                }
            }
            out.extend_from_slice(&big[i * w + 3..i * w + 3 + n]);
        }
        out
    } else {
        let mut c = if beta == 0.0 {
            vec![f32::NAN; m * n] // not read when beta == 0
        } else {
            c0.clone()
        };
        super::linalg::gemm_with(
            kernel,
            alpha,
            av,
            bv,
            beta,
            ArrayViewMut2::from_shape((m, n), &mut c).unwrap(),
        );
        c
    };
    let want = naive_gemm((m, n, k), alpha, &a, ta, &b, tb, beta, &c0);
    // f32 rounding grows with the inner dimension.
    let tol = 1e-6 * (k as f64).sqrt().max(10.0);
    assert_close(&got, &want, tol);
}

/// Shapes that cross every block boundary of the packed kernel (register blocks of 6 x 16,
/// 256 inner steps per packed block, 1024 rows of B packed at once, tiles of 144 rows) and
/// the degenerate ones.
const GEMM_SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (7, 1, 33),
    (1, 7, 33),
    (1, 33, 1),
    (33, 1, 7),
    (6, 16, 1),
    (7, 17, 257),
    (33, 33, 33),
    (13, 1000, 9),
    (1000, 13, 9),
    (1023, 3, 70),
    (145, 129, 300),
    (300, 260, 80),
    (257, 33, 1023),
    (20, 1100, 1100),
    (40, 40, 2100),
    (0, 5, 7),
    (5, 0, 7),
    (5, 7, 0),
    (0, 0, 0),
];

#[test]
fn gemm_kernels_match_naive_on_edge_shapes_and_transposes() {
    use super::linalg::Kernel;
    let mut rng = Rng(11);
    for kernel in [Kernel::Packed, Kernel::Auto, Kernel::Fallback] {
        for &shape in GEMM_SHAPES {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                check_gemm(kernel, &mut rng, shape, ta, tb, 1.0, 0.0, false);
            }
        }
    }
}

#[test]
fn gemm_kernels_scale_and_accumulate_into_strided_outputs() {
    use super::linalg::Kernel;
    let mut rng = Rng(12);
    for kernel in [Kernel::Packed, Kernel::Auto, Kernel::Fallback] {
        for &(shape, alpha, beta) in &[
            ((7, 17, 257), 0.5, 2.0),
            ((33, 40, 5), -1.5, 0.0),
            ((300, 260, 80), 0.25, 1.0),
            ((5, 7, 0), 2.0, 3.0),
            ((20, 1100, 1100), 1.0, -0.5),
        ] {
            for (ta, tb) in [(false, false), (true, true), (true, false)] {
                check_gemm(kernel, &mut rng, shape, ta, tb, alpha, beta, false);
                check_gemm(kernel, &mut rng, shape, ta, tb, alpha, beta, true);
            }
        }
    }
}

#[test]
fn packed_gemm_is_bitwise_the_same_on_any_thread_count() {
    use super::linalg::gemm;
    use ndarray::{ArrayView2, ArrayViewMut2};
    let mut rng = Rng(13);
    for &(m, n, k) in &[
        (300, 260, 80),
        (1000, 13, 300),
        (20, 1100, 1100),
        (145, 700, 1300),
    ] {
        let a = rng.vec(m * k, -1.0, 1.0);
        let b = rng.vec(k * n, -1.0, 1.0);
        let c0 = rng.vec(m * n, -1.0, 1.0);
        let run = |threads: usize| {
            let mut c = c0.clone();
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    gemm(
                        0.5,
                        ArrayView2::from_shape((m, k), &a).unwrap(),
                        ArrayView2::from_shape((n, k), &b).unwrap().reversed_axes(),
                        1.5,
                        ArrayViewMut2::from_shape((m, n), &mut c).unwrap(),
                    )
                });
            c
        };
        let one = run(1);
        for t in [2, 3, 5] {
            let other = run(t);
            assert!(
                one.iter()
                    .zip(&other)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{m}x{n}x{k}: 1 and {t} threads differ"
            );
        }
    }
}

mod gemm_props {
    use super::{check_gemm, Rng};
    use crate::cpu::linalg::Kernel;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        #[test]
        fn packed_gemm_matches_naive(
            m in 0usize..80,
            n in 0usize..80,
            k in 0usize..300,
            ta: bool,
            tb: bool,
            strided: bool,
            alpha in prop::sample::select(vec![1.0f32, 0.5, -2.0]),
            beta in prop::sample::select(vec![0.0f32, 1.0, 0.75]),
            seed: u64,
        ) {
            let mut rng = Rng(seed);
            check_gemm(Kernel::Packed, &mut rng, (m, n, k), ta, tb, alpha, beta, strided);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Convolution

struct ConvCase {
    n: usize,
    ci: usize,
    h: usize,
    w: usize,
    co: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    padding: Padding,
}

impl ConvCase {
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
    ) -> ConvCase {
        ConvCase {
            n,
            ci,
            h,
            w,
            co,
            kh,
            kw,
            stride,
            padding,
        }
    }
}

fn conv_cases() -> Vec<ConvCase> {
    let c = ConvCase::new;
    vec![
        c(2, 3, 5, 6, 4, 3, 3, 1, Padding::Same),
        c(2, 2, 7, 5, 3, 3, 3, 2, Padding::Same),
        c(1, 3, 8, 8, 2, 3, 3, 2, Padding::Same),
        c(2, 3, 7, 6, 2, 3, 3, 2, Padding::Valid),
        c(1, 2, 6, 6, 3, 2, 2, 2, Padding::Same),
        c(1, 2, 5, 4, 3, 1, 1, 1, Padding::Same),
        c(2, 2, 5, 7, 3, 1, 1, 2, Padding::Valid),
        c(1, 2, 7, 7, 2, 5, 5, 1, Padding::Same),
        c(1, 1, 4, 5, 2, 3, 2, 1, Padding::Valid),
        c(1, 2, 3, 3, 2, 5, 5, 3, Padding::Same), // kernel larger than the input
        c(4, 3, 40, 40, 5, 3, 3, 1, Padding::Same), // parallel im2col/col2im, weight groups
        c(3, 8, 40, 160, 6, 3, 3, 1, Padding::Same), // tiled: 4 blocks of output rows
        c(2, 8, 60, 300, 4, 3, 3, 2, Padding::Same), // tiled, strided: 3 blocks
        c(1, 8, 40, 160, 6, 3, 3, 1, Padding::Valid), // tiled, one image
    ]
}

fn geometry(c: &ConvCase) -> (usize, usize, usize, usize) {
    (
        conv_out(c.h, c.kh, c.stride, c.padding).unwrap(),
        conv_out(c.w, c.kw, c.stride, c.padding).unwrap(),
        pad_before(c.h, c.kh, c.stride, c.padding),
        pad_before(c.w, c.kw, c.stride, c.padding),
    )
}

/// Calls `f(n, co, ci, oy, ox, i, j, x index, w index, y index)` for every term of the
/// convolution sum.
fn conv_terms(c: &ConvCase, mut f: impl FnMut(usize, usize, usize)) {
    let (oh, ow, ph, pw) = geometry(c);
    for n in 0..c.n {
        for co in 0..c.co {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ci in 0..c.ci {
                        for i in 0..c.kh {
                            for j in 0..c.kw {
                                let iy = (oy * c.stride + i) as isize - ph as isize;
                                let ix = (ox * c.stride + j) as isize - pw as isize;
                                if iy < 0 || ix < 0 || iy >= c.h as isize || ix >= c.w as isize {
                                    continue;
                                }
                                let xi = ((n * c.ci + ci) * c.h + iy as usize) * c.w + ix as usize;
                                let wi = ((co * c.ci + ci) * c.kh + i) * c.kw + j;
                                let yi = ((n * c.co + co) * oh + oy) * ow + ox;
                                f(xi, wi, yi);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn conv2d_and_its_gradients_match_naive_loops() {
    match_naive_loops(conv_cases(), 3);
}

/// Shapes for the implicit-GEMM convolutions (`linalg::implicit`): pixel counts that are not
/// multiples of the 16-pixel panels, output channels that are not multiples of the 6-row
/// panels, more than one block of 1024 steps, tasks covering several images and images cut
/// between tasks, strides 1 to 3, non-square kernels and both paddings.
fn implicit_conv_cases() -> Vec<ConvCase> {
    let c = ConvCase::new;
    vec![
        c(5, 7, 9, 11, 13, 3, 3, 1, Padding::Same),  // p = 99
        c(3, 120, 6, 5, 7, 3, 3, 1, Padding::Same),  // k = 1080: two blocks of steps
        c(3, 5, 13, 9, 8, 3, 3, 2, Padding::Valid),  // strided, valid
        c(2, 4, 10, 7, 9, 1, 1, 2, Padding::Same),   // 1x1, strided
        c(3, 6, 8, 8, 10, 1, 1, 1, Padding::Valid),  // 1x1, stride 1
        c(7, 3, 4, 4, 5, 3, 3, 1, Padding::Valid),   // 4 pixels: many images per task
        c(2, 6, 33, 70, 11, 3, 3, 1, Padding::Same), // images cut between tasks
        c(2, 3, 9, 9, 4, 2, 3, 1, Padding::Valid),   // non-square kernel
        c(2, 3, 11, 10, 5, 5, 5, 1, Padding::Same),  // 5x5
        c(1, 2, 3, 3, 2, 5, 5, 3, Padding::Same),    // kernel larger than the input
        c(1, 16, 8, 8, 40, 3, 3, 1, Padding::Same),  // one task: rows split into parts
        c(3, 4, 12, 12, 6, 3, 3, 3, Padding::Valid), // stride 3
        // Weight gradient (`implicit::backward_weight`): two groups of blocks of pixels and
        // parts of rows in parallel; rows in parallel, one group; blocks of 816 pixels
        // straddling images; strided, a block starting inside an output row.
        c(3, 16, 20, 30, 24, 3, 3, 1, Padding::Same),
        c(4, 96, 7, 7, 48, 3, 3, 1, Padding::Same),
        c(2, 8, 30, 30, 160, 3, 3, 1, Padding::Same),
        c(2, 4, 50, 46, 160, 3, 3, 2, Padding::Same),
    ]
}

#[test]
fn implicit_conv2d_and_its_gradients_match_naive_loops() {
    match_naive_loops(implicit_conv_cases(), 5);
}

/// Strided shapes for the phase-split windows of the implicit forward convolution and weight
/// gradient and for the phase decomposition of the input gradient
/// (`implicit::backward_input_phases`): odd and even sizes, both paddings, kernels smaller
/// than, equal to and larger than the stride (phases without taps), non-square kernels,
/// channel counts that are not multiples of the 6-row panels nor of the 16-column panels,
/// pixel counts that are not multiples of 16, several images per task, several blocks of rows
/// per image, channel parts, and more than one block of 1024 steps.
fn strided_conv_cases() -> Vec<ConvCase> {
    let c = ConvCase::new;
    vec![
        c(3, 5, 13, 9, 8, 3, 3, 2, Padding::Same),     // odd sizes
        c(2, 7, 12, 10, 13, 3, 3, 2, Padding::Same),   // even sizes
        c(2, 7, 11, 14, 9, 3, 3, 2, Padding::Valid),   // valid, odd by even
        c(2, 6, 12, 13, 9, 3, 3, 2, Padding::Valid),   // valid, even by odd
        c(3, 4, 9, 9, 7, 1, 1, 2, Padding::Same),      // 1x1: phases without taps
        c(2, 3, 10, 11, 17, 1, 1, 2, Padding::Valid),  // 1x1, valid
        c(2, 5, 15, 13, 11, 5, 5, 2, Padding::Same),   // 5x5
        c(2, 3, 14, 17, 7, 5, 5, 2, Padding::Valid),   // 5x5, valid
        c(2, 3, 12, 10, 4, 2, 2, 2, Padding::Same),    // kernel = stride
        c(2, 3, 11, 9, 4, 2, 2, 2, Padding::Same),     // kernel = stride, odd sizes
        c(2, 3, 7, 9, 10, 4, 3, 2, Padding::Same),     // non-square, even kernel
        c(2, 6, 13, 11, 7, 3, 3, 3, Padding::Same),    // stride 3
        c(2, 4, 14, 16, 5, 5, 5, 3, Padding::Valid),   // stride 3, 5x5
        c(1, 2, 9, 8, 3, 2, 3, 3, Padding::Same),      // kernel rows < stride
        c(2, 3, 10, 7, 4, 1, 3, 3, Padding::Valid),    // 1x3, stride 3
        c(3, 5, 20, 17, 12, 3, 3, 3, Padding::Same),   // stride 3, wider
        c(7, 3, 6, 6, 5, 3, 3, 2, Padding::Same),      // 9 pixels: many images per task
        c(3, 16, 20, 18, 20, 3, 3, 2, Padding::Same),  // one block per image, channel parts
        c(2, 8, 70, 66, 40, 3, 3, 2, Padding::Same),   // two blocks of rows per image
        c(2, 120, 7, 6, 7, 3, 3, 2, Padding::Same),    // k = 1080: two blocks of steps
        c(1, 3, 6, 6, 260, 3, 3, 2, Padding::Same),    // input gradient: 1040 steps
        c(2, 4, 50, 46, 160, 3, 3, 2, Padding::Valid), // weight gradient blocks straddle images
        c(2, 3, 7, 2, 4, 3, 3, 3, Padding::Same),      // fewer columns than the stride
        c(2, 3, 1, 5, 4, 3, 3, 2, Padding::Same),      // one row
        c(1, 2, 2, 1, 3, 1, 1, 3, Padding::Valid),     // one column, 1x1, stride 3
    ]
}

/// Shapes whose panels of 16 output pixels each lie on one output row (`ow`, or for the
/// input gradient of strided convolutions a phase's width, a multiple of 16), which the
/// implicit GEMMs read in place from the window rather than pack (`sgemm::gemm_direct`), and
/// neighbours where only some phases are: strides 1 to 3, the image as its own window (1x1,
/// stride 1), several images per task, more than one tile of 48 rows, more than one block of
/// 1024 steps.
fn direct_conv_cases() -> Vec<ConvCase> {
    let c = ConvCase::new;
    vec![
        c(3, 5, 9, 32, 7, 3, 3, 1, Padding::Same),   // stride 1
        c(2, 4, 6, 16, 5, 1, 1, 1, Padding::Valid),  // 1x1, stride 1: the image itself
        c(2, 4, 8, 32, 70, 3, 3, 1, Padding::Same),  // two tiles of rows
        c(3, 6, 10, 32, 13, 3, 3, 2, Padding::Same), // stride 2: ow = 16, phases of 16
        c(2, 5, 11, 33, 9, 3, 3, 2, Padding::Same),  // phases of 17 and 16 columns
        c(2, 3, 12, 31, 7, 3, 3, 2, Padding::Valid), // ow = 15, phases of 16 and 15
        c(2, 4, 9, 48, 6, 3, 3, 3, Padding::Same),   // stride 3
        c(2, 4, 10, 96, 5, 5, 5, 2, Padding::Same),  // 5x5
        c(9, 3, 4, 32, 5, 3, 3, 2, Padding::Same),   // 32 pixels: many images per task
        c(2, 120, 5, 32, 7, 3, 3, 2, Padding::Same), // k = 1080: two blocks of steps
        c(1, 3, 6, 32, 260, 3, 3, 2, Padding::Same), // input gradient: 1040 steps
        c(2, 8, 40, 64, 20, 3, 3, 2, Padding::Same), // several tasks per image
    ]
}

#[test]
fn strided_conv2d_and_its_gradients_match_naive_loops() {
    match_naive_loops(strided_conv_cases(), 7);
}

#[test]
fn direct_conv2d_and_its_gradients_match_naive_loops() {
    match_naive_loops(direct_conv_cases(), 11);
}

/// The generic convolutions (im2col and GEMM: CPUs without AVX2 and FMA) on the same cases.
#[test]
fn generic_conv2d_and_its_gradients_match_naive_loops() {
    super::linalg::set_generic_convs(true);
    match_naive_loops(conv_cases(), 3);
    match_naive_loops(implicit_conv_cases(), 5);
    match_naive_loops(strided_conv_cases(), 7);
    match_naive_loops(direct_conv_cases(), 11);
    super::linalg::set_generic_convs(false);
}

mod conv_props {
    use super::{match_naive_loops, ConvCase};
    use crate::op::{conv_out, Padding};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Random shapes beyond the fixed lists (any kernel up to 5x5, strides 1 to 3, both
        /// paddings, widths on both sides of the 16-pixel panels), on the default path and on
        /// the generic one.
        #[test]
        fn random_convs_match_naive_loops(
            n in 1usize..4,
            ci in 1usize..11,
            co in 1usize..11,
            h in 1usize..19,
            w in 1usize..35,
            kh in 1usize..6,
            kw in 1usize..6,
            stride in 1usize..4,
            same: bool,
            generic: bool,
            seed: u64,
        ) {
            let padding = if same { Padding::Same } else { Padding::Valid };
            prop_assume!(conv_out(h, kh, stride, padding).is_some_and(|o| o > 0));
            prop_assume!(conv_out(w, kw, stride, padding).is_some_and(|o| o > 0));
            crate::cpu::linalg::set_generic_convs(generic);
            let case = ConvCase::new(n, ci, h, w, co, kh, kw, stride, padding);
            match_naive_loops(vec![case], seed);
            crate::cpu::linalg::set_generic_convs(false);
        }
    }
}

/// The three convolutions of every case (on the calling thread's choice of path) against f64
/// loops over every term.
fn match_naive_loops(cases: Vec<ConvCase>, seed: u64) {
    let mut rng = Rng(seed);
    for c in cases {
        let (oh, ow, _, _) = geometry(&c);
        let xs = [c.n, c.ci, c.h, c.w];
        let ws = [c.co, c.ci, c.kh, c.kw];
        let ys = [c.n, c.co, oh, ow];
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -1.0, 1.0);
        let dy = rng.vec(ys.iter().product(), -1.0, 1.0);
        let mut y = vec![0f64; dy.len()];
        let mut dx = vec![0f64; x.len()];
        let mut dw = vec![0f64; w.len()];
        conv_terms(&c, |xi, wi, yi| {
            y[yi] += x[xi] as f64 * w[wi] as f64;
            dx[xi] += dy[yi] as f64 * w[wi] as f64;
            dw[wi] += dy[yi] as f64 * x[xi] as f64;
        });
        let (stride, padding) = (c.stride, c.padding);
        let got = ev_nan(&Op::Conv2d { stride, padding }, &[(&x, &xs), (&w, &ws)]);
        assert_close(&got[0], &y, 1e-5);
        let op = Op::Conv2dBackwardInput {
            stride,
            padding,
            in_h: c.h,
            in_w: c.w,
        };
        let got = ev_nan(&op, &[(&dy, &ys), (&w, &ws)]);
        assert_close(&got[0], &dx, 1e-5);
        let op = Op::Conv2dBackwardWeight {
            stride,
            padding,
            kh: c.kh,
            kw: c.kw,
        };
        let got = ev_nan(&op, &[(&x, &xs), (&dy, &ys)]);
        assert_close(&got[0], &dw, 1e-5);
    }
}

#[test]
fn implicit_convs_are_bitwise_the_same_on_any_thread_count() {
    let mut rng = Rng(17);
    let cases = implicit_conv_cases()
        .into_iter()
        .chain(strided_conv_cases())
        .chain(direct_conv_cases());
    for c in cases {
        let (oh, ow, _, _) = geometry(&c);
        let xs = [c.n, c.ci, c.h, c.w];
        let ws = [c.co, c.ci, c.kh, c.kw];
        let ys = [c.n, c.co, oh, ow];
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -1.0, 1.0);
        let dy = rng.vec(ys.iter().product(), -1.0, 1.0);
        let (stride, padding) = (c.stride, c.padding);
        let all = || {
            let mut out = ev(&Op::Conv2d { stride, padding }, &[(&x, &xs), (&w, &ws)]);
            let op = Op::Conv2dBackwardInput {
                stride,
                padding,
                in_h: c.h,
                in_w: c.w,
            };
            out.extend(ev(&op, &[(&dy, &ys), (&w, &ws)]));
            let op = Op::Conv2dBackwardWeight {
                stride,
                padding,
                kh: c.kh,
                kw: c.kw,
            };
            out.extend(ev(&op, &[(&x, &xs), (&dy, &ys)]));
            out
        };
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(all)
        };
        let one = run(1);
        for t in [2, 3, 5] {
            let other = run(t);
            for (a, b) in one.iter().zip(&other) {
                assert!(
                    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{xs:?} {ws:?} stride {stride}: 1 and {t} threads differ"
                );
            }
        }
    }
}

#[test]
fn conv2d_known_values() {
    // A 3x3 all-ones kernel over a 3x3 image of 1..9, Same padding: neighbourhood sums.
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let w = [1f32; 9];
    let op = Op::Conv2d {
        stride: 1,
        padding: Padding::Same,
    };
    let y = ev(&op, &[(&x, &[1, 1, 3, 3]), (&w, &[1, 1, 3, 3])]);
    assert_eq!(y[0], vec![12., 21., 16., 27., 45., 33., 24., 39., 28.]);
    // Stride 2, Same on 4x4: out 2x2, total padding (2-1)*2+3-4 = 1, all after.
    let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
    let op = Op::Conv2d {
        stride: 2,
        padding: Padding::Same,
    };
    let y = ev(&op, &[(&x, &[1, 1, 4, 4]), (&w, &[1, 1, 3, 3])]);
    // Window at (0,0): rows 0..3, cols 0..3 = 0+1+2+4+5+6+8+9+10 = 45; at (0,2): cols 2..4
    // (col 4 is padding) = 2+3+6+7+10+11 = 39; (2,0): rows 2..4 = 8+9+10+12+13+14 = 66;
    // (2,2) = 10+11+14+15 = 50.
    assert_eq!(y[0], vec![45., 39., 66., 50.]);
}

// ---------------------------------------------------------------------------------------
// Pointwise and small ops

#[test]
fn elementwise_and_bias() {
    let a = [1f32, -2., 3.];
    let b = [0.5f32, 4., -1.];
    let s: &[usize] = &[3];
    assert_eq!(ev(&Op::Add, &[(&a, s), (&b, s)])[0], vec![1.5, 2., 2.]);
    assert_eq!(ev(&Op::Mul, &[(&a, s), (&b, s)])[0], vec![0.5, -8., -3.]);
    assert_eq!(
        ev(&Op::AddScaled { alpha: 2.0 }, &[(&a, s), (&b, s)])[0],
        vec![2., 6., 1.]
    );
    assert_eq!(
        ev(&Op::Scale { alpha: -1.0 }, &[(&a, s)])[0],
        vec![-1., 2., -3.]
    );
    // x[2, 3, 2] + bias on each axis.
    let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
    let xs: &[usize] = &[2, 3, 2];
    let y = ev(
        &Op::BiasAdd { axis: 1 },
        &[(&x, xs), (&[10., 20., 30.], &[3])],
    );
    assert_eq!(
        y[0],
        vec![10., 11., 22., 23., 34., 35., 16., 17., 28., 29., 40., 41.]
    );
    let y = ev(&Op::BiasAdd { axis: 2 }, &[(&x, xs), (&[100., 200.], &[2])]);
    assert_eq!(&y[0][..4], &[100., 201., 102., 203.]);
    let db = ev(&Op::BiasGrad { axis: 1 }, &[(&x, xs)]);
    assert_eq!(
        db[0],
        vec![0. + 1. + 6. + 7., 2. + 3. + 8. + 9., 4. + 5. + 10. + 11.]
    );
    let db = ev(&Op::BiasGrad { axis: 0 }, &[(&x, xs)]);
    assert_eq!(db[0], vec![15., 51.]);
    let db = ev(&Op::BiasGrad { axis: 2 }, &[(&x, xs)]);
    assert_eq!(db[0], vec![30., 36.]);
    // Large, both strategies, against f64 sums.
    let mut rng = Rng(4);
    for shape in [[64usize, 16, 40], [4, 8, 1024], [3000, 17, 1]] {
        let x = rng.vec(shape.iter().product(), -1.0, 1.0);
        let db = ev(&Op::BiasGrad { axis: 1 }, &[(&x, &shape)]);
        let mut want = vec![0f64; shape[1]];
        for (i, &v) in x.iter().enumerate() {
            want[(i / shape[2]) % shape[1]] += v as f64;
        }
        assert_close(&db[0], &want, 1e-6);
        let y = ev(
            &Op::BiasAdd { axis: 1 },
            &[(&x, &shape), (&want_f32(&want), &[shape[1]])],
        );
        for (i, (&yv, &xv)) in y[0].iter().zip(&x).enumerate() {
            assert_eq!(yv, xv + want[(i / shape[2]) % shape[1]] as f32);
        }
    }
}

fn want_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// NaN goes through ReLU and leaky ReLU (as in PyTorch), on the vector path (long inputs) and
/// the scalar one, so a NaN in the activations reaches the loss and stops training.
#[test]
fn relu_keeps_nan() {
    for n in [3usize, 1000] {
        let mut x = vec![-1f32; n];
        x[1] = f32::NAN;
        x[n - 1] = 2.0;
        for a in [Activation::Relu, Activation::LeakyRelu(0.1)] {
            let y = ev(&Op::Act(a), &[(&x, &[n])]).remove(0);
            assert!(y[1].is_nan(), "{a:?} of NaN gave {}", y[1]);
            assert_eq!(y[n - 1], 2.0);
            assert!(y[0] == 0.0 || y[0] == -0.1, "{a:?}(-1) = {}", y[0]);
        }
        assert!(super::kernels::act_value(Activation::Relu, f32::NAN).is_nan());
    }
}

#[test]
fn activations_known_values() {
    let x = [-2f32, -0.5, 0.0, 0.5, 2.0];
    let s: &[usize] = &[5];
    let act = |a| ev(&Op::Act(a), &[(&x, s)]).remove(0);
    assert_eq!(act(Activation::Relu), vec![0., 0., 0., 0.5, 2.]);
    assert_eq!(
        act(Activation::LeakyRelu(0.1)),
        vec![-0.2, -0.05, 0., 0.5, 2.]
    );
    let want_sig: Vec<f64> = x.iter().map(|&v| 1.0 / (1.0 + (-v as f64).exp())).collect();
    assert_close(&act(Activation::Sigmoid), &want_sig, 1e-6);
    let want_tanh: Vec<f64> = x.iter().map(|&v| (v as f64).tanh()).collect();
    assert_close(&act(Activation::Tanh), &want_tanh, 1e-6);
    // GELU(x) = x Φ(x): Φ(0.5) = 0.691462461, Φ(2) = 0.977249868.
    let want_gelu = [
        -2.0 * (1.0 - 0.977_249_868),
        -0.5 * (1.0 - 0.691_462_461),
        0.0,
        0.5 * 0.691_462_461,
        2.0 * 0.977_249_868,
    ];
    assert_close(&act(Activation::Gelu), &want_gelu, 1e-6);
    // Relu' is 0 at 0, leaky relu takes alpha at 0 (PyTorch).
    let dy = [1f32; 5];
    let g = ev(&Op::ActBackward(Activation::Relu), &[(&x, s), (&dy, s)]);
    assert_eq!(g[0], vec![0., 0., 0., 1., 1.]);
    let g = ev(
        &Op::ActBackward(Activation::LeakyRelu(0.1)),
        &[(&x, s), (&dy, s)],
    );
    assert_eq!(g[0], vec![0.1, 0.1, 0.1, 1., 1.]);
    // Sigmoid stays finite far out.
    let big = [-100f32, 100.];
    let y = ev(&Op::Act(Activation::Sigmoid), &[(&big, &[2])]);
    assert_eq!(y[0], vec![(-100f64).exp() as f32, 1.0]);
}

#[test]
fn maxpool_first_maximum_and_upsample() {
    // One 3x5 plane (odd: last row and column dropped); windows with ties.
    let x = [
        1., 3., 3., 0., 9., //
        3., 2., 0., 3., 9., //
        9., 9., 9., 9., 9.,
    ];
    let xs: &[usize] = &[1, 1, 3, 5];
    let y = ev(&Op::MaxPool2, &[(&x, xs)]);
    assert_eq!(y[0], vec![3., 3.]);
    let dy = [10f32, 20.];
    let dx = ev(
        &Op::MaxPool2Backward,
        &[(&x, xs), (&y[0], &[1, 1, 1, 2]), (&dy, &[1, 1, 1, 2])],
    );
    assert_eq!(
        dx[0],
        vec![0., 10., 20., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.]
    );
    let u = ev(&Op::Upsample2, &[(&[1., 2., 3., 4.], &[1, 1, 2, 2])]);
    assert_eq!(
        u[0],
        vec![1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.]
    );
    let d = ev(&Op::Upsample2Backward, &[(&u[0], &[1, 1, 4, 4])]);
    assert_eq!(d[0], vec![4., 8., 12., 16.]);
}

#[test]
fn concat_split_roundtrip() {
    let a: Vec<f32> = (0..12).map(|v| v as f32).collect(); // [2, 1, 2, 3]
    let b: Vec<f32> = (100..124).map(|v| v as f32).collect(); // [2, 2, 2, 3]
    let y = ev(
        &Op::ConcatChannels,
        &[(&a, &[2, 1, 2, 3]), (&b, &[2, 2, 2, 3])],
    );
    assert_eq!(&y[0][..6], &a[..6]);
    assert_eq!(&y[0][6..18], &b[..12]);
    assert_eq!(&y[0][18..24], &a[6..]);
    let parts = ev(&Op::SplitChannels { first: 1 }, &[(&y[0], &[2, 3, 2, 3])]);
    assert_eq!(parts[0], a);
    assert_eq!(parts[1], b);
}

#[test]
fn dropout_mask_and_scale() {
    use crate::op::dropout_keep;
    let x: Vec<f32> = (0..50_000).map(|i| (i % 7) as f32 + 1.0).collect();
    let (p, seed) = (0.25, 9);
    let y = ev(&Op::Dropout { p, seed }, &[(&x, &[50_000])]);
    let d = ev(&Op::DropoutBackward { p, seed }, &[(&x, &[50_000])]);
    assert_eq!(y, d);
    for (i, (&yv, &xv)) in y[0].iter().zip(&x).enumerate() {
        let want = if dropout_keep(seed, i as u32, p) {
            xv / 0.75
        } else {
            0.0
        };
        assert!(
            (yv - want).abs() <= 1e-6 * want.abs(),
            "{i}: {yv} vs {want}"
        );
    }
    let other = ev(&Op::Dropout { p, seed: 10 }, &[(&x, &[50_000])]);
    assert_ne!(y, other);
}

#[test]
fn embedding_out_of_range_ids_give_zero_rows() {
    let table: Vec<f32> = (0..6).map(|v| v as f32).collect(); // [3, 2]
    let ids = [2f32, 0., 3., -1., 1., 1e9];
    let y = ev(&Op::Embedding, &[(&ids, &[2, 3]), (&table, &[3, 2])]);
    assert_eq!(y[0], vec![4., 5., 0., 1., 0., 0., 0., 0., 2., 3., 0., 0.]);
}

// ---------------------------------------------------------------------------------------
// Normalisation, softmax, losses

#[test]
fn batchnorm_statistics() {
    let mut rng = Rng(5);
    let xs = [3usize, 2, 2, 3];
    // Large offset: the shifted one-pass variance must not cancel.
    let x: Vec<f32> = rng.vec(36, -1.0, 1.0).iter().map(|v| v + 1000.0).collect();
    let gamma = [1.5f32, -0.5];
    let beta = [0.25f32, 2.0];
    let out = ev(
        &Op::BatchNormTrain { eps: 1e-5 },
        &[(&x, &xs), (&gamma, &[2]), (&beta, &[2])],
    );
    for c in 0..2 {
        let vals: Vec<f64> = (0..3)
            .flat_map(|n| {
                x[(n * 2 + c) * 6..(n * 2 + c + 1) * 6]
                    .iter()
                    .map(|&v| v as f64)
            })
            .collect();
        let mean = vals.iter().sum::<f64>() / 18.0;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 18.0;
        let inv = 1.0 / (var + 1e-5).sqrt();
        assert!((out[1][c] as f64 - mean).abs() < 1e-4);
        assert!((out[2][c] as f64 - inv).abs() < 1e-4 * inv);
        for n in 0..3 {
            for k in 0..6 {
                let i = (n * 2 + c) * 6 + k;
                let want = (x[i] as f64 - mean) * inv * gamma[c] as f64 + beta[c] as f64;
                assert!(
                    (out[0][i] as f64 - want).abs() < 2e-3,
                    "{} vs {want}",
                    out[0][i]
                );
            }
        }
    }
    // Eval with running statistics.
    let y = ev(
        &Op::BatchNormEval { eps: 0.0 },
        &[
            (&[1., 2., 3., 4.], &[2, 2]),
            (&[2., 1.], &[2]),
            (&[0., 1.], &[2]),
            (&[1., 2.], &[2]),
            (&[4., 1.], &[2]),
        ],
    );
    assert_eq!(y[0], vec![0., 1., 2., 3.]);
}

#[test]
fn layernorm_and_softmax_values() {
    let x = [1f32, 2., 3., 4., 10., 10., 10., 10.];
    let out = ev(
        &Op::LayerNorm { eps: 0.0 },
        &[(&x, &[2, 4]), (&[1.; 4], &[4]), (&[0.; 4], &[4])],
    );
    let inv = 1.0 / 1.25f64.sqrt();
    assert_close(
        &out[0][..4],
        &[-1.5 * inv, -0.5 * inv, 0.5 * inv, 1.5 * inv],
        1e-6,
    );
    assert_eq!(out[1], vec![2.5, 10.]);
    // Softmax of huge values: stable.
    let x = [1000f32, 1001., 1002., -5., -5., -5.];
    let y = ev(&Op::Softmax, &[(&x, &[2, 3])]);
    let e: Vec<f64> = [0f64, 1., 2.].iter().map(|v| v.exp()).collect();
    let s: f64 = e.iter().sum();
    assert_close(
        &y[0],
        &[e[0] / s, e[1] / s, e[2] / s, 1. / 3., 1. / 3., 1. / 3.],
        1e-6,
    );
}

#[test]
fn loss_values() {
    let p = [0.5f32, -1., 2.];
    let t = [1f32, 0., 2.];
    let out = ev(&Op::MseLoss, &[(&p, &[3]), (&t, &[3])]);
    assert_close(&out[0], &[1.25 / 3.0], 1e-7);
    assert_close(&out[1], &[-1.0 / 3., -2.0 / 3., 0.], 1e-7);

    // BCE with pos_weight against the textbook formula; stable at large logits.
    let x = [0.3f32, -1.2, 2.0, 100., -100.];
    let t = [1f32, 0., 0.25, 0., 1.];
    let w = 2.5f64;
    let out = ev(
        &Op::BceWithLogits { pos_weight: 2.5 },
        &[(&x, &[5]), (&t, &[5])],
    );
    let mut want = 0f64;
    for (&x, &t) in x.iter().zip(&t).take(3) {
        let s = 1.0 / (1.0 + (-x as f64).exp());
        want -= w * t as f64 * s.ln() + (1.0 - t as f64) * (1.0 - s).ln();
    }
    want += 100.0 + w * 100.0; // log(1 + e^100) and w log(1 + e^100)
    assert!(
        (out[0][0] as f64 - want / 5.0).abs() < 1e-4 * want,
        "{}",
        out[0][0]
    );
    assert!(out[1].iter().all(|v| v.is_finite()));
    assert!((out[1][3] - 0.2).abs() < 1e-6 && (out[1][4] + 0.2 * 2.5).abs() < 1e-6);

    // Dice: 1 - (2 * 0.5 + 1) / (1.5 + 1 + 1).
    let p = [0.5f32, 1.0, 0.0];
    let t = [1f32, 0., 0.];
    let out = ev(&Op::DiceLoss { eps: 1.0 }, &[(&p, &[3]), (&t, &[3])]);
    assert!((out[0][0] - (1.0 - 2.0 / 3.5)).abs() < 1e-7);
    // dL/dp_i = (A - 2 t_i B) / B^2 with A = 2, B = 3.5.
    let b2 = 3.5f64 * 3.5;
    assert_close(&out[1], &[(2.0 - 7.0) / b2, 2.0 / b2, 2.0 / b2], 1e-7);
}

#[test]
fn sum_all_is_accurate() {
    // 1e6 copies of 0.1 plus 1: f32 naive summation would drift far.
    let mut x = vec![0.1f32; 1_000_000];
    x[0] = 1.0;
    let s = ev(&Op::SumAll, &[(&x, &[1_000_000])]);
    let want = 999_999.0 * 0.1f32 as f64 + 1.0;
    assert!(
        (s[0][0] as f64 - want).abs() < 0.01,
        "{} vs {want}",
        s[0][0]
    );
}

// ---------------------------------------------------------------------------------------
// Optimizers

fn optim_steps(op_of: impl Fn(u32) -> Op, state: usize) -> Vec<Vec<Vec<f32>>> {
    let mut bufs = vec![vec![1f32, -2., 0.5]];
    bufs.extend((0..state).map(|_| vec![0f32; 3]));
    let grads = [[0.1f32, -0.3, 0.2], [-0.05, 0.4, 0.1]];
    let mut out = Vec::new();
    for (k, g) in grads.iter().enumerate() {
        let mut outs: Vec<&mut [f32]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        run(&op_of(k as u32 + 1), &[(g, &[3])], &mut outs).unwrap();
        out.push(bufs.clone());
    }
    out
}

#[track_caller]
fn assert_rel_tol(got: &[f32], want: &[f64], tol: f64) {
    for (&g, &w) in got.iter().zip(want) {
        assert!(
            (g as f64 - w).abs() <= tol * w.abs().max(1e-3),
            "got {got:?}, want {want:?}"
        );
    }
}

#[track_caller]
fn assert_rel(got: &[f32], want: &[f64]) {
    assert_rel_tol(got, want, 2e-6)
}

/// For Adam's second moment: beta2 = 0.999 is not exact in f32 (1 - 0.999f32 is 1.3e-5 off
/// 0.001, where PyTorch's Python float is exact to 1e-16), which scales v by that much.
#[track_caller]
fn assert_rel_v(got: &[f32], want: &[f64]) {
    assert_rel_tol(got, want, 2e-5)
}

#[test]
fn sgd_matches_pytorch() {
    // torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01), two steps.
    let s = optim_steps(
        |_| Op::Sgd {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.01,
        },
        1,
    );
    assert_rel(&s[0][0], &[0.989, -1.968, 0.4795]);
    assert_rel(&s[0][1], &[0.11, -0.32, 0.205]);
    assert_rel(&s[1][0], &[0.983111, -1.977232, 0.4505705]);
    assert_rel(&s[1][1], &[0.05889, 0.09232, 0.289295]);
}

#[test]
fn adam_matches_pytorch() {
    let adam = |decoupled| {
        move |step| Op::Adam {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
            decoupled,
            step,
        }
    };
    // torch.optim.Adam([p], lr=0.01, weight_decay=0.1), two steps.
    let s = optim_steps(adam(false), 2);
    assert_rel(&s[0][0], &[0.990000001, -1.99, 0.49]);
    assert_rel(&s[0][1], &[0.02, -0.05, 0.025]);
    assert_rel_v(&s[0][2], &[4e-05, 0.00025, 6.25e-05]);
    assert_rel(&s[1][0], &[0.981720481, -1.98656015, 0.48043378]);
    assert_rel(&s[1][1], &[0.0229, -0.0249, 0.0374]);
    assert_rel_v(&s[1][2], &[4.2361e-05, 0.000290151, 8.46385e-05]);
    // torch.optim.AdamW([p], lr=0.01, weight_decay=0.1), two steps.
    let s = optim_steps(adam(true), 2);
    assert_rel(&s[0][0], &[0.989000001, -1.988, 0.4895]);
    assert_rel(&s[0][1], &[0.01, -0.03, 0.02]);
    assert_rel(&s[1][0], &[0.985347631, -1.9879471, 0.479688705]);
    assert_rel(&s[1][1], &[0.004, 0.013, 0.028]);
    assert_rel_v(&s[1][2], &[1.249e-05, 0.00024991, 4.996e-05]);
}

// ---------------------------------------------------------------------------------------
// Attention

fn naive_attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: &[f32],
    (b, s, t, heads, dh): (usize, usize, usize, usize, usize),
) -> Vec<f64> {
    let e = heads * dh;
    let mut y = vec![0f64; b * s * e];
    for bi in 0..b {
        for h in 0..heads {
            for i in 0..s {
                let mut scores = vec![f64::NEG_INFINITY; t];
                for (j, sc) in scores.iter_mut().enumerate() {
                    if mask[bi * t + j] == 0.0 {
                        continue;
                    }
                    let mut d = 0f64;
                    for c in 0..dh {
                        d += q[(bi * s + i) * e + h * dh + c] as f64
                            * k[(bi * t + j) * e + h * dh + c] as f64;
                    }
                    *sc = d / (dh as f64).sqrt();
                }
                let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if mx == f64::NEG_INFINITY {
                    continue; // all masked: zeros
                }
                let w: Vec<f64> = scores.iter().map(|s| (s - mx).exp()).collect();
                let z: f64 = w.iter().sum();
                for c in 0..dh {
                    let mut acc = 0f64;
                    for j in 0..t {
                        acc += w[j] / z * v[(bi * t + j) * e + h * dh + c] as f64;
                    }
                    y[(bi * s + i) * e + h * dh + c] = acc;
                }
            }
        }
    }
    y
}

#[test]
fn attention_matches_naive_with_masking() {
    let mut rng = Rng(6);
    for &(b, s, t, heads, dh) in &[(3, 4, 5, 2, 3), (1, 1, 1, 1, 1), (2, 33, 40, 4, 16)] {
        let e = heads * dh;
        let q = rng.vec(b * s * e, -2.0, 2.0);
        let k = rng.vec(b * t * e, -2.0, 2.0);
        let v = rng.vec(b * t * e, -2.0, 2.0);
        let mut mask: Vec<f32> = (0..b * t).map(|i| (i % 3 != 1) as u8 as f32).collect();
        if b > 1 {
            // Second batch element entirely masked: zero output.
            mask[t..2 * t].fill(0.0);
        }
        let op = Op::Attention { heads };
        let y = ev(
            &op,
            &[
                (&q, &[b, s, e]),
                (&k, &[b, t, e]),
                (&v, &[b, t, e]),
                (&mask, &[b, t]),
            ],
        );
        assert_close(
            &y[0],
            &naive_attention(&q, &k, &v, &mask, (b, s, t, heads, dh)),
            1e-5,
        );
        if b > 1 {
            assert!(y[0][s * e..2 * s * e].iter().all(|&v| v == 0.0));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Determinism and the backend

/// Runs a set of large ops and returns all their outputs.
fn large_outputs(rng_seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng(rng_seed);
    let mut out = Vec::new();
    let x = rng.vec(200_000, -1.0, 1.0);
    let t = rng.vec(200_000, 0.0, 1.0);
    out.extend(ev(&Op::SumAll, &[(&x, &[200_000])]));
    out.extend(ev(&Op::MseLoss, &[(&x, &[200_000]), (&t, &[200_000])]));
    out.extend(ev(
        &Op::BceWithLogits { pos_weight: 3.0 },
        &[(&x, &[200_000]), (&t, &[200_000])],
    ));
    out.extend(ev(
        &Op::DiceLoss { eps: 1.0 },
        &[(&t, &[200_000]), (&t, &[200_000])],
    ));
    out.extend(ev(&Op::BiasGrad { axis: 1 }, &[(&x, &[500, 40, 10])]));
    out.extend(ev(&Op::BiasGrad { axis: 1 }, &[(&x, &[2, 100, 1000])]));
    let xs: &[usize] = &[8, 5, 50, 100];
    let c: &[usize] = &[5];
    let g = rng.vec(5, 0.5, 1.5);
    let bt = rng.vec(5, -0.5, 0.5);
    let bn = ev(
        &Op::BatchNormTrain { eps: 1e-5 },
        &[(&x, xs), (&g, c), (&bt, c)],
    );
    let bb = ev(
        &Op::BatchNormBackward,
        &[(&x, xs), (&t, xs), (&g, c), (&bn[1], c), (&bn[2], c)],
    );
    out.extend(bn);
    out.extend(bb);
    let ls: &[usize] = &[2000, 100];
    let d: &[usize] = &[100];
    let g = rng.vec(100, 0.5, 1.5);
    let bt = rng.vec(100, -0.5, 0.5);
    let ln = ev(&Op::LayerNorm { eps: 1e-5 }, &[(&x, ls), (&g, d), (&bt, d)]);
    let lb = ev(
        &Op::LayerNormBackward,
        &[
            (&x, ls),
            (&t, ls),
            (&g, d),
            (&ln[1], &[2000]),
            (&ln[2], &[2000]),
        ],
    );
    out.extend(ln);
    out.extend(lb);
    let (xs, dys): (&[usize], &[usize]) = (&[8, 4, 40, 40], &[8, 6, 20, 20]);
    let xi = &x[..8 * 4 * 1600];
    let dy = &t[..8 * 6 * 400];
    let op = Op::Conv2dBackwardWeight {
        stride: 2,
        padding: Padding::Same,
        kh: 3,
        kw: 3,
    };
    out.extend(ev(&op, &[(xi, xs), (dy, dys)]));
    // Convolutions in several blocks of output rows per image (tiled).
    let (xs, ws, ys): (&[usize], &[usize], &[usize]) =
        (&[2, 8, 40, 160], &[6, 8, 3, 3], &[2, 6, 40, 160]);
    let (xi, wi, dy) = (&x[..102_400], &t[..432], &t[1000..77_800]);
    let (stride, padding) = (1, Padding::Same);
    out.extend(ev(&Op::Conv2d { stride, padding }, &[(xi, xs), (wi, ws)]));
    let op = Op::Conv2dBackwardInput {
        stride,
        padding,
        in_h: 40,
        in_w: 160,
    };
    out.extend(ev(&op, &[(dy, ys), (wi, ws)]));
    let op = Op::Conv2dBackwardWeight {
        stride,
        padding,
        kh: 3,
        kw: 3,
    };
    out.extend(ev(&op, &[(xi, xs), (dy, ys)]));
    let op = Op::MatMul {
        trans_a: false,
        trans_b: true,
    };
    out.extend(ev(
        &op,
        &[
            (&x[..300 * 400], &[300, 400]),
            (&t[..200 * 400], &[200, 400]),
        ],
    ));
    out
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    let one = pool(1).install(|| large_outputs(7));
    let three = pool(3).install(|| large_outputs(7));
    assert_eq!(one.len(), three.len());
    for (k, (a, b)) in one.iter().zip(&three).enumerate() {
        let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "output {k} differs between 1 and 3 threads");
    }
}

#[test]
fn avx2_and_baseline_kernels_agree_bitwise() {
    use super::par::set_avx2;
    let mut rng = Rng(8);
    let x = rng.vec(100_000, -30.0, 30.0);
    let t = rng.vec(100_000, 0.0, 1.0);
    let s: &[usize] = &[100_000];
    let run_all = || {
        let mut out = large_outputs(9);
        for a in [Activation::Sigmoid, Activation::Tanh, Activation::Gelu] {
            out.extend(ev(&Op::Act(a), &[(&x, s)]));
            out.extend(ev(&Op::ActBackward(a), &[(&x, s), (&t, s)]));
        }
        out.extend(ev(&Op::Softmax, &[(&x, &[1000, 100])]));
        out.extend(ev(
            &Op::SoftmaxBackward,
            &[(&t, &[1000, 100]), (&x, &[1000, 100])],
        ));
        let mut p = x.clone();
        let mut m = vec![0f32; x.len()];
        let mut v = vec![0f32; x.len()];
        let adam = Op::Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            decoupled: false,
            step: 2,
        };
        run(&adam, &[(&t, s)], &mut [&mut p, &mut m, &mut v]).unwrap();
        out.extend([p, m, v]);
        out
    };
    let fast = run_all();
    set_avx2(false);
    let base = run_all();
    set_avx2(true);
    for (k, (a, b)) in fast.iter().zip(&base).enumerate() {
        let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(
            same,
            "output {k} differs between the AVX2 and baseline kernels"
        );
    }
}

#[test]
fn backend_round_trip_and_errors() {
    let be = CpuBackend::new();
    let a = be.alloc(6).unwrap();
    let b = be.alloc(6).unwrap();
    let c = be.alloc(5).unwrap();
    be.upload(a, &[1., 2., 3., 4., 5., 6.]).unwrap();
    be.upload(b, &[1., 0., 0., 1., 1., 1.]).unwrap();
    let ta = Tensor::new(a, [2, 3]);
    let tb = Tensor::new(b, [3, 2]);
    let tc = Tensor::new(c, [2, 2]); // the buffer is longer than the tensor
    let mm = Op::MatMul {
        trans_a: false,
        trans_b: false,
    };
    be.dispatch(&mm, &[&ta, &tb], &[&tc]).unwrap();
    assert_eq!(be.download(c).unwrap(), vec![4., 5., 10., 11., 0.]);
    // Wrong output shape, aliasing, short buffer, freed buffer.
    assert!(be
        .dispatch(&mm, &[&ta, &tb], &[&Tensor::new(c, [2, 3])])
        .is_err());
    assert!(be
        .dispatch(
            &Op::Scale { alpha: 2.0 },
            &[&ta],
            &[&Tensor::new(a, [2, 3])]
        )
        .is_err());
    assert!(be.upload(c, &[0.; 7]).is_err());
    be.free(b);
    assert!(be.download(b).is_err());
    assert!(be.dispatch(&mm, &[&ta, &tb], &[&tc]).is_err());
    // The freed slot is reused, zero-filled.
    let r = be.alloc(3).unwrap();
    assert_eq!(r, b);
    assert_eq!(be.download(r).unwrap(), vec![0.0; 3]);
    // In place: SGD updates param and velocity.
    let g = be.alloc(2).unwrap();
    let p = be.alloc(2).unwrap();
    let v = be.alloc(2).unwrap();
    be.upload(g, &[1., -1.]).unwrap();
    be.upload(p, &[0.5, 0.5]).unwrap();
    let sgd = Op::Sgd {
        lr: 0.1,
        momentum: 0.5,
        weight_decay: 0.0,
    };
    let (tg, tp, tv) = (
        Tensor::new(g, [2]),
        Tensor::new(p, [2]),
        Tensor::new(v, [2]),
    );
    be.dispatch(&sgd, &[&tg], &[&tp, &tv]).unwrap();
    be.dispatch(&sgd, &[&tg], &[&tp, &tv]).unwrap();
    // v: 1, 1.5; p: 0.5 - 0.1 - 0.15.
    assert_eq!(be.download(v).unwrap(), vec![1.5, -1.5]);
    let pv = be.download(p).unwrap();
    assert!((pv[0] - 0.25).abs() < 1e-6 && (pv[1] - 0.75).abs() < 1e-6);
    be.sync().unwrap();
}

#[test]
fn backend_is_usable_from_many_threads() {
    use rayon::prelude::*;
    let be = CpuBackend::new();
    let x = be.alloc(1000).unwrap();
    be.upload(x, &vec![1.0; 1000]).unwrap();
    let tx = Tensor::new(x, [1000]);
    // Concurrent dispatches from rayon workers, reading one shared buffer.
    let sums: Vec<f32> = (0..16)
        .into_par_iter()
        .map(|k| {
            let y = be.alloc(1000).unwrap();
            let s = be.alloc(1).unwrap();
            let ty = Tensor::new(y, [1000]);
            be.dispatch(&Op::Scale { alpha: k as f32 }, &[&tx], &[&ty])
                .unwrap();
            be.dispatch(&Op::SumAll, &[&ty], &[&Tensor::new(s, [1])])
                .unwrap();
            be.download(s).unwrap()[0]
        })
        .collect();
    for (k, s) in sums.iter().enumerate() {
        assert_eq!(*s, 1000.0 * k as f32);
    }
}

#[test]
fn run_checks_shapes_and_lengths() {
    let x = [1f32, 2., 3.];
    let mut y = [0f32; 2];
    assert!(run(&Op::Scale { alpha: 1.0 }, &[(&x, &[3])], &mut [&mut y]).is_err());
    assert!(run(&Op::Add, &[(&x, &[3]), (&x, &[2])], &mut [&mut y]).is_err());
    let mut y = [9f32; 4];
    run(&Op::Scale { alpha: 2.0 }, &[(&x, &[3])], &mut [&mut y]).unwrap();
    assert_eq!(y, [2., 4., 6., 9.]);
    assert!(eval(
        &Op::Sgd {
            lr: 0.1,
            momentum: 0.0,
            weight_decay: 0.0
        },
        &[(&x, &[3])]
    )
    .is_err());
}
