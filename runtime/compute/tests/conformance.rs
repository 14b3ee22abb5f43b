//! GPU/CPU conformance: every op runs on the CPU backend and on the GPU backend (any wgpu
//! adapter, lavapipe included) over fixed edge-case shapes (1s, odd sizes, sizes not divisible
//! by the workgroup or tile, empty axes) and seeded random and larger ones, and the results must
//! agree within per-op tolerances:
//! - data movement, masks, comparisons (add, concat, pooling, dropout, ...): within 1 ulp-ish
//!   (`rel 1e-6`), dropout's keep pattern exactly;
//! - transcendental maps (activations, softmax, losses' gradients): `rel 1e-5`;
//! - reductions of `k` terms of magnitude at most `T` (matmul, conv, sums, norms' statistics):
//!   `abs 5e-7 k T` on top of `rel 1e-5`, that is well under one term's size yet far above
//!   f32 rounding, so a missing or doubled term fails while summation order does not.
//!
//! Without a GPU adapter the tests print a skip notice and pass, except under `CI=true`, where
//! a missing adapter (CI installs Mesa's lavapipe) is a failure.

use mlp_compute::gpu::{GpuBackend, GpuOptions};
mod common;

use common::{cpu, gpu, run_on, Input};
use mlp_compute::op::{numel, Activation, Op, Padding};
use mlp_compute::{Backend, ComputeError, Tensor};

// ------------------------------------------------------------------------------------ harness

/// SplitMix64: a seeded, dependency-free generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    fn f(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
    fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.f(lo, hi)).collect()
    }
    /// Uniform integer in [lo, hi].
    fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

/// `|gpu - cpu| <= abs + rel * |cpu|` per element.
#[derive(Clone, Copy, Debug)]
struct Tol {
    rel: f32,
    abs: f32,
}

const EXACT: Tol = Tol {
    rel: 1e-6,
    abs: 0.0,
};
const ELEM: Tol = Tol {
    rel: 1e-5,
    abs: 1e-6,
};

/// Tolerance for sums of `k` terms of magnitude at most `t`.
fn sum_tol(k: usize, t: f32) -> Tol {
    Tol {
        rel: 1e-5,
        abs: 5e-7 * k.max(1) as f32 * t + 1e-6,
    }
}

/// Runs `op` on both backends and compares every output with `tols[k]` (or `tols[0]`).
/// Returns the CPU outputs.
fn check_init(op: &Op, inputs: &[Input], init: Option<&[Vec<f32>]>, tols: &[Tol]) -> Vec<Vec<f32>> {
    check_on(gpu(), op, inputs, init, tols)
}

/// `check_init` against a given GPU backend (`None`: CPU only).
fn check_on(
    gpu: Option<&GpuBackend>,
    op: &Op,
    inputs: &[Input],
    init: Option<&[Vec<f32>]>,
    tols: &[Tol],
) -> Vec<Vec<f32>> {
    let want = run_on(cpu(), op, inputs, init);
    let Some(gpu) = gpu else {
        return want;
    };
    let got = run_on(gpu, op, inputs, init);
    let shapes: Vec<&Vec<usize>> = inputs.iter().map(|(_, s)| s).collect();
    for (k, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(w.len(), g.len());
        let tol = tols.get(k).copied().unwrap_or(tols[0]);
        let mut worst: Option<(usize, f32)> = None;
        for (i, (&a, &b)) in w.iter().zip(g).enumerate() {
            let ok = if a.is_nan() || b.is_nan() {
                a.is_nan() && b.is_nan()
            } else if a.is_infinite() || b.is_infinite() {
                a == b
            } else {
                (a - b).abs() <= tol.abs + tol.rel * a.abs()
            };
            if !ok {
                let excess = (a - b).abs() / (tol.abs + tol.rel * a.abs()).max(f32::MIN_POSITIVE);
                if worst.is_none_or(|(_, e)| excess > e || excess.is_nan()) {
                    worst = Some((i, excess));
                }
            }
        }
        if let Some((i, _)) = worst {
            let bad = w
                .iter()
                .zip(g)
                .filter(|(a, b)| {
                    !((*a - *b).abs() <= tol.abs + tol.rel * a.abs()
                        || (a.is_nan() && b.is_nan())
                        || *a == *b)
                })
                .count();
            panic!(
                "{op:?} on inputs {shapes:?}: output {k} differs at {i} of {}: cpu {} gpu {} \
                 ({bad} elements out of tolerance {tol:?})",
                w.len(),
                w[i],
                g[i]
            );
        }
    }
    want
}

fn check(op: &Op, inputs: &[Input], tols: &[Tol]) -> Vec<Vec<f32>> {
    check_init(op, inputs, None, tols)
}

fn input(rng: &mut Rng, shape: &[usize], lo: f32, hi: f32) -> Input {
    (rng.vec(numel(shape), lo, hi), shape.to_vec())
}

// -------------------------------------------------------------------------------------- tests

/// (batch axes of a, batch axes of b, m, k, n).
type MatMulCase = (Vec<usize>, Vec<usize>, usize, usize, usize);

#[test]
fn matmul() {
    let mut rng = Rng(1);
    let mut cases: Vec<MatMulCase> = vec![
        (vec![], vec![], 1, 1, 1),
        (vec![], vec![], 1, 7, 1),
        (vec![], vec![], 3, 5, 7),
        (vec![], vec![], 64, 64, 64),
        (vec![], vec![], 63, 65, 66),
        (vec![], vec![], 65, 17, 129),
        (vec![], vec![], 5, 0, 4),
        (vec![2], vec![2], 7, 9, 5),
        (vec![3], vec![], 33, 16, 17),
        (vec![], vec![3], 17, 31, 70),
        (vec![2, 3], vec![2, 3], 9, 20, 11),
        // 270 and 289 output tiles of 128x128: the 128x128 kernel.
        (vec![30], vec![30], 257, 13, 300),
        (vec![], vec![], 2070, 9, 2071),
        // [batch, m, k] x [k, n] folded into one product.
        (vec![5], vec![], 30, 19, 70),
        // Mid-size.
        (vec![], vec![], 200, 300, 190),
    ];
    for _ in 0..4 {
        let batch = if rng.int(0, 1) == 1 {
            vec![rng.int(1, 4)]
        } else {
            vec![]
        };
        cases.push((
            batch.clone(),
            batch,
            rng.int(1, 150),
            rng.int(1, 150),
            rng.int(1, 150),
        ));
    }
    for (ab, bb, m, k, n) in cases {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut sa = ab.clone();
            sa.extend(if ta { [k, m] } else { [m, k] });
            let mut sb = bb.clone();
            sb.extend(if tb { [n, k] } else { [k, n] });
            let a = input(&mut rng, &sa, -1.0, 1.0);
            let b = input(&mut rng, &sb, -1.0, 1.0);
            check(
                &Op::MatMul {
                    trans_a: ta,
                    trans_b: tb,
                },
                &[a, b],
                &[sum_tol(k, 1.0)],
            );
        }
    }
}

/// The aligned double-buffered GEMM (matmul_fast.wgsl), forced on by a backend of its own
/// whose big-tile threshold is 0: every transpose, batches, broadcasts, the folded
/// `[batch, m, k] x [k, n]` product, attention's per-head views, and near misses that must
/// fall back to the guarded kernel.
///
/// Then the same cases on backends forcing each tile variant (`matmul_fast_RxC.wgsl`), with
/// products sized for the 256-row and 256-column tiles added.
#[test]
fn matmul_fast_path() {
    if gpu().is_none() {
        return;
    }
    for tile in [
        None,
        Some("64x64"),
        Some("128x128"),
        Some("128x256"),
        Some("256x128"),
    ] {
        let mut g = GpuBackend::new(GpuOptions::allow_cpu()).expect("a second GPU backend");
        g.set_big_matmul_threshold(0);
        g.set_gemm_tile(tile).unwrap();
        matmul_fast_cases(&g);
        let want = match tile {
            None => "matmul_fast.wgsl".to_string(),
            Some(t) => format!("matmul_fast_{t}.wgsl"),
        };
        assert!(
            g.compiled_kernels().contains(&want.as_str()),
            "{want} never ran: {:?}",
            g.compiled_kernels()
        );
    }
    let mut g = GpuBackend::new(GpuOptions::allow_cpu()).expect("a second GPU backend");
    assert!(g.set_gemm_tile(Some("96x96")).is_err());
}

fn matmul_fast_cases(g: &GpuBackend) {
    let mut rng = Rng(7);
    let cases: Vec<MatMulCase> = vec![
        (vec![], vec![], 256, 16, 256),
        (vec![2], vec![2], 256, 8, 512),
        (vec![], vec![], 512, 24, 256),
        (vec![], vec![], 128, 8, 128),
        (vec![], vec![], 256, 72, 128),
        (vec![3], vec![3], 128, 16, 256),
        (vec![2], vec![], 128, 24, 128),
        (vec![], vec![2], 128, 8, 128),
        (vec![5], vec![], 128, 40, 128),
        // Near misses: K not a multiple of 8, M not a multiple of 128.
        (vec![], vec![], 128, 12, 128),
        (vec![], vec![], 136, 8, 128),
    ];
    for (ab, bb, m, k, n) in cases {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut sa = ab.clone();
            sa.extend(if ta { [k, m] } else { [m, k] });
            let mut sb = bb.clone();
            sb.extend(if tb { [n, k] } else { [k, n] });
            let a = input(&mut rng, &sa, -1.0, 1.0);
            let b = input(&mut rng, &sb, -1.0, 1.0);
            let op = Op::MatMul {
                trans_a: ta,
                trans_b: tb,
            };
            let want = run_on(cpu(), &op, &[a.clone(), b.clone()], None);
            let got = run_on(g, &op, &[a, b], None);
            let tol = sum_tol(k, 1.0);
            for (i, (x, y)) in got[0].iter().zip(&want[0]).enumerate() {
                assert!(
                    (x - y).abs() <= tol.abs + tol.rel * y.abs(),
                    "matmul {sa:?} x {sb:?} (trans {ta} {tb}) element {i}: gpu {x} cpu {y}"
                );
            }
        }
    }
    let (b, s, e) = (2usize, 128usize, 384usize);
    let q = input(&mut rng, &[b, s, e], -1.0, 1.0);
    let kk = input(&mut rng, &[b, s, e], -1.0, 1.0);
    let v = input(&mut rng, &[b, s, e], -1.0, 1.0);
    let mask: Input = (
        (0..b * s)
            .map(|i| if i % 7 == 3 { 0.0 } else { 1.0 })
            .collect(),
        vec![b, s],
    );
    let op = Op::Attention { heads: 12 };
    let ins = [q, kk, v, mask];
    let want = run_on(cpu(), &op, &ins, None);
    let got = run_on(g, &op, &ins, None);
    for (x, y) in got[0].iter().zip(&want[0]) {
        assert!(
            (x - y).abs() <= 1e-4 + 1e-4 * y.abs(),
            "attention: gpu {x} cpu {y}"
        );
    }
}

#[test]
fn elementwise() {
    let mut rng = Rng(2);
    for shape in [
        vec![1],
        vec![7],
        vec![255],
        vec![257],
        vec![3, 1000],
        vec![65537],
        vec![0],
    ] {
        let a = input(&mut rng, &shape, -3.0, 3.0);
        let b = input(&mut rng, &shape, -3.0, 3.0);
        check(&Op::Add, &[a.clone(), b.clone()], &[EXACT]);
        check(&Op::Mul, &[a.clone(), b.clone()], &[EXACT]);
        check(&Op::AddScaled { alpha: -0.37 }, &[a.clone(), b], &[ELEM]);
        check(&Op::Scale { alpha: 1.7 }, &[a], &[EXACT]);
    }
}

#[test]
fn bias() {
    let mut rng = Rng(3);
    let cases: Vec<(Vec<usize>, usize)> = vec![
        (vec![1], 0),
        (vec![4, 7], 1),
        (vec![4, 7], 0),
        (vec![2, 3, 5, 7], 1),
        (vec![2, 3, 5, 7], 0),
        (vec![2, 3, 5, 7], 3),
        (vec![300, 129], 1),
        (vec![1000, 3], 1),
        (vec![2, 16, 64, 65], 1),
        (vec![3, 0, 4], 2),
        (vec![3, 5, 0], 1),
    ];
    for (shape, axis) in cases {
        let x = input(&mut rng, &shape, -2.0, 2.0);
        let bias = input(&mut rng, &[shape[axis]], -2.0, 2.0);
        check(&Op::BiasAdd { axis }, &[x.clone(), bias], &[EXACT]);
        let count = numel(&shape) / shape[axis].max(1);
        check(&Op::BiasGrad { axis }, &[x], &[sum_tol(count, 2.0)]);
    }
}

#[test]
fn activations() {
    let mut rng = Rng(4);
    let acts = [
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::LeakyRelu(1.5),
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Gelu,
    ];
    for shape in [vec![1], vec![1000], vec![3, 17, 5]] {
        let mut x = input(&mut rng, &shape, -6.0, 6.0);
        // Kinks, saturation and tiny values.
        for (i, v) in [0.0, -0.0, 50.0, -50.0, 1e-4, -1e-4, 20.0, -20.0]
            .into_iter()
            .enumerate()
        {
            if i < x.0.len() {
                x.0[i] = v;
            }
        }
        let dy = input(&mut rng, &shape, -1.0, 1.0);
        for a in acts {
            check(&Op::Act(a), std::slice::from_ref(&x), &[ELEM]);
            check(&Op::ActBackward(a), &[x.clone(), dy.clone()], &[ELEM]);
        }
    }
}

/// ReLU keeps NaN on both backends (as in PyTorch), so a NaN in the activations reaches the
/// loss instead of turning into 0.
#[test]
fn relu_keeps_nan() {
    let x = (vec![-1.0, f32::NAN, 2.0], vec![3]);
    let mut backends: Vec<&dyn Backend> = vec![cpu()];
    if let Some(g) = gpu() {
        backends.push(g);
    }
    for be in backends {
        let y = run_on(
            be,
            &Op::Act(Activation::Relu),
            std::slice::from_ref(&x),
            None,
        )
        .remove(0);
        assert!(y[1].is_nan(), "relu(NaN) = {} on {}", y[1], be.describe());
        assert_eq!((y[0], y[2]), (0.0, 2.0), "on {}", be.describe());
    }
}

/// Every convolution case on the default backend (fast kernels where they qualify, tiles by
/// shape), on backends forcing each fast tile height, and on one with the fast kernels off
/// (the guarded kernels).
#[test]
fn conv2d() {
    let Some(default) = gpu() else {
        conv2d_on(None);
        return;
    };
    conv2d_on(Some(default));
    for tile in [Some(32), Some(64), Some(128), None] {
        let mut g = GpuBackend::new(GpuOptions::allow_cpu()).expect("a second GPU backend");
        match tile {
            Some(_) => g.set_conv_tile(tile).unwrap(),
            None => g.set_fast_conv(false),
        }
        conv2d_on(Some(&g));
        let fast: Vec<&str> = g
            .compiled_kernels()
            .into_iter()
            .filter(|k| k.starts_with("conv2d") && k.contains("_fast_"))
            .collect();
        match tile {
            Some(t) => assert!(
                fast.len() == 3 && fast.iter().all(|k| k.ends_with(&format!("_{t}.wgsl"))),
                "tile {t}: fast kernels run {fast:?}"
            ),
            None => assert!(fast.is_empty(), "fast kernels ran while off: {fast:?}"),
        }
    }
    let mut g = GpuBackend::new(GpuOptions::allow_cpu()).expect("a second GPU backend");
    assert!(g.set_conv_tile(Some(48)).is_err(), "tile 48 accepted");
}

fn conv2d_on(gpu: Option<&GpuBackend>) {
    let check = |op: &Op, inputs: &[Input], tols: &[Tol]| check_on(gpu, op, inputs, None, tols);
    let mut rng = Rng(5);
    use Padding::{Same, Valid};
    // (n, ci, h, w, co, kh, kw, stride, padding)
    let mut cases = vec![
        (1, 1, 5, 5, 1, 3, 3, 1, Same),
        (2, 3, 7, 8, 4, 3, 3, 2, Same),
        (2, 3, 8, 8, 5, 3, 3, 2, Same),
        (1, 2, 6, 9, 3, 3, 3, 1, Valid),
        (2, 3, 9, 7, 4, 3, 3, 2, Valid),
        (2, 5, 6, 6, 7, 1, 1, 1, Same),
        (2, 5, 7, 7, 3, 1, 1, 2, Same),
        (1, 4, 5, 5, 6, 1, 1, 2, Valid),
        (1, 3, 4, 4, 2, 5, 5, 1, Same),
        (1, 2, 6, 6, 3, 2, 2, 1, Same),
        (1, 2, 7, 7, 3, 4, 4, 2, Same),
        (1, 2, 3, 3, 2, 3, 3, 1, Valid),
        (1, 1, 1, 1, 1, 1, 1, 1, Same),
        (1, 70, 9, 9, 66, 3, 3, 1, Same),
        (2, 16, 20, 24, 32, 3, 3, 1, Same),
        // Long K for the weight gradient: split-K and the reduction of the splits.
        (4, 32, 32, 32, 64, 3, 3, 1, Same),
        (4, 16, 33, 31, 24, 3, 3, 2, Same),
        // Over 128 output channels (several row tiles), stride 2 with odd and even kernels.
        (1, 3, 17, 19, 150, 3, 3, 2, Same),
        (2, 130, 6, 5, 3, 3, 3, 1, Same),
        (1, 6, 10, 10, 5, 4, 4, 2, Valid),
        (1, 4, 9, 9, 3, 3, 3, 3, Same),
    ];
    for _ in 0..4 {
        let k = [1, 3][rng.int(0, 1)];
        let s = rng.int(1, 2);
        let pad = [Same, Valid][rng.int(0, 1)];
        cases.push((
            rng.int(1, 3),
            rng.int(1, 9),
            rng.int(k, 15),
            rng.int(k, 15),
            rng.int(1, 9),
            k,
            k,
            s,
            pad,
        ));
    }
    for (n, ci, h, w, co, kh, kw, stride, padding) in cases {
        let x = input(&mut rng, &[n, ci, h, w], -1.0, 1.0);
        let wt = input(&mut rng, &[co, ci, kh, kw], -1.0, 1.0);
        let fwd = Op::Conv2d { stride, padding };
        let y = check(
            &fwd,
            &[x.clone(), wt.clone()],
            &[sum_tol(ci * kh * kw, 1.0)],
        );
        let ys = fwd.output_shapes(&[&x.1, &wt.1]).unwrap().remove(0);
        assert_eq!(y[0].len(), numel(&ys));
        let dy = input(&mut rng, &ys, -1.0, 1.0);
        check(
            &Op::Conv2dBackwardInput {
                stride,
                padding,
                in_h: h,
                in_w: w,
            },
            &[dy.clone(), wt],
            &[sum_tol(co * kh * kw, 1.0)],
        );
        check(
            &Op::Conv2dBackwardWeight {
                stride,
                padding,
                kh,
                kw,
            },
            &[x, dy],
            &[sum_tol(n * ys[2] * ys[3], 1.0)],
        );
    }
}

#[test]
fn pooling_and_resampling() {
    let mut rng = Rng(6);
    for shape in [
        vec![1, 1, 2, 2],
        vec![2, 3, 5, 7],
        vec![1, 2, 8, 8],
        vec![2, 4, 33, 17],
        vec![1, 1, 3, 2],
    ] {
        // Small integers: many ties, so the first-maximum rule matters.
        let x: Input = (
            (0..numel(&shape)).map(|_| rng.int(0, 2) as f32).collect(),
            shape.clone(),
        );
        let y = check(&Op::MaxPool2, std::slice::from_ref(&x), &[EXACT]).remove(0);
        let ys = vec![shape[0], shape[1], shape[2] / 2, shape[3] / 2];
        let dy = input(&mut rng, &ys, -1.0, 1.0);
        check(
            &Op::MaxPool2Backward,
            &[x.clone(), (y, ys.clone()), dy],
            &[EXACT],
        );
        let xr = input(&mut rng, &shape, -1.0, 1.0);
        let y = check(&Op::MaxPool2, std::slice::from_ref(&xr), &[EXACT]).remove(0);
        let dy = input(&mut rng, &ys, -1.0, 1.0);
        check(&Op::MaxPool2Backward, &[xr, (y, ys), dy], &[EXACT]);
    }
    for shape in [vec![1, 1, 1, 1], vec![2, 3, 5, 7], vec![1, 4, 16, 9]] {
        let x = input(&mut rng, &shape, -1.0, 1.0);
        check(&Op::Upsample2, &[x], &[EXACT]);
        let d = vec![shape[0], shape[1], 2 * shape[2], 2 * shape[3]];
        let dy = input(&mut rng, &d, -1.0, 1.0);
        check(&Op::Upsample2Backward, &[dy], &[ELEM]);
    }
}

#[test]
fn channels() {
    let mut rng = Rng(7);
    for (n, ca, cb, h, w) in [
        (2, 3, 1, 4, 5),
        (1, 0, 2, 3, 3),
        (1, 2, 0, 3, 3),
        (3, 5, 7, 9, 11),
        (1, 1, 1, 1, 1),
    ] {
        let a = input(&mut rng, &[n, ca, h, w], -1.0, 1.0);
        let b = input(&mut rng, &[n, cb, h, w], -1.0, 1.0);
        check(&Op::ConcatChannels, &[a, b], &[EXACT]);
        let dy = input(&mut rng, &[n, ca + cb, h, w], -1.0, 1.0);
        check(&Op::SplitChannels { first: ca }, &[dy], &[EXACT]);
    }
}

#[test]
fn batchnorm() {
    let mut rng = Rng(8);
    let norm_tol = Tol {
        rel: 1e-4,
        abs: 1e-4,
    };
    for shape in [
        vec![4, 3],
        vec![2, 5, 7],
        vec![2, 3, 4, 5],
        vec![1, 1, 1, 1],
        vec![16, 64],
        vec![8, 16, 32, 32],
        vec![3, 2, 0],
    ] {
        let c = shape[1];
        let mut x = input(&mut rng, &shape, -1.0, 1.0);
        // An offset, so that the statistics must not cancel.
        for v in &mut x.0 {
            *v = 3.0 + 2.0 * *v;
        }
        let gamma = input(&mut rng, &[c], 0.5, 1.5);
        let beta = input(&mut rng, &[c], -0.5, 0.5);
        let eps = 1e-5;
        let out = check(
            &Op::BatchNormTrain { eps },
            &[x.clone(), gamma.clone(), beta.clone()],
            &[norm_tol],
        );
        let rm = input(&mut rng, &[c], -1.0, 1.0);
        let rv = input(&mut rng, &[c], 0.5, 2.0);
        check(
            &Op::BatchNormEval { eps },
            &[x.clone(), gamma.clone(), beta, rm, rv],
            &[ELEM],
        );
        let dy = input(&mut rng, &shape, -1.0, 1.0);
        let count = numel(&shape) / c.max(1);
        check(
            &Op::BatchNormBackward,
            &[
                x,
                dy,
                gamma,
                (out[1].clone(), vec![c]),
                (out[2].clone(), vec![c]),
            ],
            &[norm_tol, sum_tol(count, 4.0), sum_tol(count, 1.0)],
        );
    }
}

#[test]
fn layernorm() {
    let mut rng = Rng(9);
    let norm_tol = Tol {
        rel: 1e-4,
        abs: 1e-4,
    };
    for shape in [
        vec![1, 1],
        vec![3, 7],
        vec![2, 3, 64],
        vec![5, 1000],
        vec![300, 33],
        vec![0, 5],
    ] {
        let d = *shape.last().unwrap();
        let rows = numel(&shape) / d;
        let mut x = input(&mut rng, &shape, -1.0, 1.0);
        for v in &mut x.0 {
            *v = 1.0 + 3.0 * *v;
        }
        let gamma = input(&mut rng, &[d], 0.5, 1.5);
        let beta = input(&mut rng, &[d], -0.5, 0.5);
        let out = check(
            &Op::LayerNorm { eps: 1e-5 },
            &[x.clone(), gamma.clone(), beta],
            &[norm_tol],
        );
        let dy = input(&mut rng, &shape, -1.0, 1.0);
        check(
            &Op::LayerNormBackward,
            &[
                x,
                dy,
                gamma,
                (out[1].clone(), vec![rows]),
                (out[2].clone(), vec![rows]),
            ],
            &[norm_tol, sum_tol(rows, 3.0), sum_tol(rows, 1.0)],
        );
    }
}

#[test]
fn softmax() {
    let mut rng = Rng(10);
    for shape in [
        vec![1],
        vec![3, 7],
        vec![2, 3, 128],
        vec![4, 1000],
        vec![1000, 3],
    ] {
        let x = input(&mut rng, &shape, -5.0, 5.0);
        let y = check(&Op::Softmax, &[x], &[ELEM]).remove(0);
        let dy = input(&mut rng, &shape, -1.0, 1.0);
        check(&Op::SoftmaxBackward, &[(y, shape.clone()), dy], &[ELEM]);
    }
}

#[test]
fn dropout() {
    let mut rng = Rng(11);
    for shape in [vec![1000], vec![3, 333], vec![70001]] {
        let x = input(&mut rng, &shape, 0.5, 2.0);
        for (p, seed) in [(0.0, 1), (0.3, 7), (0.5, 12345), (0.99, 3), (1.0, 9)] {
            // x is never 0, so the keep pattern shows as the non-zeros.
            let y = check(&Op::Dropout { p, seed }, std::slice::from_ref(&x), &[EXACT]);
            if let Some(g) = gpu() {
                let got = run_on(
                    g,
                    &Op::DropoutBackward { p, seed },
                    std::slice::from_ref(&x),
                    None,
                );
                let zeros = |v: &[f32]| v.iter().map(|&a| a == 0.0).collect::<Vec<_>>();
                assert_eq!(
                    zeros(&y[0]),
                    zeros(&got[0]),
                    "keep pattern p={p} seed={seed}"
                );
            }
            check(
                &Op::DropoutBackward { p, seed },
                std::slice::from_ref(&x),
                &[EXACT],
            );
        }
    }
}

#[test]
fn sums_and_losses() {
    let mut rng = Rng(12);
    for shape in [
        vec![0],
        vec![1],
        vec![255],
        vec![4097],
        vec![100_000],
        vec![3, 4097],
    ] {
        let n = numel(&shape);
        let x = input(&mut rng, &shape, -1.0, 1.0);
        check(&Op::SumAll, std::slice::from_ref(&x), &[sum_tol(n, 1.0)]);
        let t = input(&mut rng, &shape, -1.0, 1.0);
        check(
            &Op::MseLoss,
            &[x.clone(), t],
            &[sum_tol(n, 4.0 / n.max(1) as f32), ELEM],
        );
        let logits = input(&mut rng, &shape, -8.0, 8.0);
        let t01: Input = (
            (0..n).map(|_| rng.int(0, 1) as f32).collect(),
            shape.clone(),
        );
        for pos_weight in [1.0, 3.5] {
            check(
                &Op::BceWithLogits { pos_weight },
                &[logits.clone(), t01.clone()],
                &[sum_tol(n, 30.0 / n.max(1) as f32), ELEM],
            );
        }
        let probs = input(&mut rng, &shape, 0.0, 1.0);
        check(
            &Op::DiceLoss { eps: 1.0 },
            &[probs, t01],
            &[
                Tol {
                    rel: 1e-4,
                    abs: 1e-5,
                },
                Tol {
                    rel: 1e-4,
                    abs: 1e-7,
                },
            ],
        );
    }
}

#[test]
fn optimizers() {
    let mut rng = Rng(13);
    for n in [1usize, 1000, 70001] {
        let g = input(&mut rng, &[n], -1.0, 1.0);
        let p0 = rng.vec(n, -1.0, 1.0);
        let v0 = rng.vec(n, -0.1, 0.1);
        check_init(
            &Op::Sgd {
                lr: 0.01,
                momentum: 0.9,
                weight_decay: 1e-4,
            },
            std::slice::from_ref(&g),
            Some(&[p0.clone(), v0.clone()]),
            &[ELEM],
        );
        let m0 = rng.vec(n, -0.1, 0.1);
        let s0 = rng.vec(n, 0.0, 0.01);
        for (decoupled, step, beta1) in [(false, 1, 0.9), (true, 10, 0.9), (false, 3, 0.3)] {
            check_init(
                &Op::Adam {
                    lr: 1e-3,
                    beta1,
                    beta2: 0.999,
                    eps: 1e-8,
                    weight_decay: 0.01,
                    decoupled,
                    step,
                },
                std::slice::from_ref(&g),
                Some(&[p0.clone(), m0.clone(), s0.clone()]),
                &[ELEM],
            );
        }
    }
}

#[test]
fn embedding() {
    let mut rng = Rng(14);
    for (v, d, ids_shape) in [(10, 4, vec![7]), (1, 1, vec![1]), (50, 129, vec![3, 5])] {
        let n = numel(&ids_shape);
        let mut ids: Vec<f32> = (0..n).map(|_| rng.int(0, v - 1) as f32).collect();
        for (i, bad) in [-1.0, v as f32, v as f32 + 3.0, 2.5, f32::NAN, -0.5]
            .into_iter()
            .enumerate()
        {
            if 2 * i + 1 < n {
                ids[2 * i + 1] = bad;
            }
        }
        let table = input(&mut rng, &[v, d], -1.0, 1.0);
        check(&Op::Embedding, &[(ids, ids_shape), table], &[EXACT]);
    }
}

#[test]
fn attention() {
    let mut rng = Rng(15);
    // (b, s, t, heads, dh)
    for (b, s, t, heads, dh) in [
        (1, 1, 1, 1, 1),
        (2, 3, 5, 2, 4),
        (2, 7, 9, 3, 8),
        (1, 65, 70, 2, 32),
        (2, 16, 130, 4, 16),
        (3, 4, 6, 1, 5),
    ] {
        let e = heads * dh;
        let q = input(&mut rng, &[b, s, e], -1.0, 1.0);
        let k = input(&mut rng, &[b, t, e], -1.0, 1.0);
        let v = input(&mut rng, &[b, t, e], -1.0, 1.0);
        let mut mask: Vec<f32> = (0..b * t)
            .map(|_| if rng.int(0, 3) == 0 { 0.0 } else { 1.0 })
            .collect();
        mask[0] = 1.0;
        if b > 2 {
            // A batch whose keys are all masked: zero rows.
            mask[2 * t..3 * t].fill(0.0);
        }
        check(
            &Op::Attention { heads },
            &[q, k, v, (mask, vec![b, t])],
            &[Tol {
                rel: 1e-4,
                abs: 1e-5 * (dh as f32).sqrt(),
            }],
        );
    }
}

// ------------------------------------------------------------------- backend-level behaviour

/// Grids beyond 65535 workgroups per dimension: a 1-D kernel over more than 65535 * 256
/// elements, a batched product with more than 65535 batches and one with more than
/// 65535 * 64 rows.
#[test]
fn large_grids() {
    let mut rng = Rng(16);
    let n = 65535 * 256 + 1000;
    let x = input(&mut rng, &[n], -1.0, 1.0);
    check(&Op::Scale { alpha: 0.5 }, &[x], &[EXACT]);
    let a = input(&mut rng, &[70_000, 2, 3], -1.0, 1.0);
    let b = input(&mut rng, &[3, 2], -1.0, 1.0);
    check(
        &Op::MatMul {
            trans_a: false,
            trans_b: false,
        },
        &[a, b],
        &[sum_tol(3, 1.0)],
    );
    let rows = 65535 * 64 + 70;
    let a = input(&mut rng, &[rows, 1], -1.0, 1.0);
    let b = input(&mut rng, &[1, 2], -1.0, 1.0);
    check(
        &Op::MatMul {
            trans_a: false,
            trans_b: false,
        },
        &[a, b],
        &[sum_tol(1, 1.0)],
    );
}

/// More dispatches than one parameter arena holds before a sync, uploads ordered after pending
/// work, pooled buffers coming back zeroed.
#[test]
fn batching_and_ordering() {
    let Some(g) = gpu() else { return };
    let n = 1000;
    let mut rng = Rng(17);
    let x0 = rng.vec(n, -1.0, 1.0);
    let d = rng.vec(n, -1.0, 1.0);
    let (xb, db, yb) = (
        g.alloc(n).unwrap(),
        g.alloc(n).unwrap(),
        g.alloc(n).unwrap(),
    );
    g.upload(xb, &x0).unwrap();
    g.upload(db, &d).unwrap();
    let (xt, dt, yt) = (
        Tensor::new(xb, vec![n]),
        Tensor::new(db, vec![n]),
        Tensor::new(yb, vec![n]),
    );
    // x <- x + 0.001 d, 1500 times, ping-ponging between x and y.
    let steps = 1500;
    let mut want = x0.clone();
    for s in 0..steps {
        let (src, dst) = if s % 2 == 0 { (&xt, &yt) } else { (&yt, &xt) };
        g.dispatch(&Op::AddScaled { alpha: 0.001 }, &[src, &dt], &[dst])
            .unwrap();
        for (w, dv) in want.iter_mut().zip(&d) {
            *w += 0.001 * dv;
        }
    }
    let got = g.download(if steps % 2 == 0 { xb } else { yb }).unwrap();
    for (a, b) in want.iter().zip(&got) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    // An upload while a dispatch reading the buffer is pending lands after it.
    let ones = vec![1.0; n];
    g.dispatch(&Op::Scale { alpha: 2.0 }, &[&dt], &[&yt])
        .unwrap();
    g.upload(db, &ones).unwrap();
    g.dispatch(&Op::Scale { alpha: 3.0 }, &[&dt], &[&xt])
        .unwrap();
    let y = g.download(yb).unwrap();
    let x = g.download(xb).unwrap();
    for i in 0..n {
        assert_eq!(y[i], 2.0 * d[i]);
        assert_eq!(x[i], 3.0);
    }
    // A freed buffer comes back from the pool zero-filled, in order with pending work.
    g.dispatch(&Op::Scale { alpha: 2.0 }, &[&xt], &[&yt])
        .unwrap();
    g.free(yb);
    let zb = g.alloc(n).unwrap();
    assert_eq!(g.download(zb).unwrap(), vec![0.0; n]);
    g.sync().unwrap();
    for b in [xb, db, zb] {
        g.free(b);
    }
}

#[test]
fn errors_are_reported_not_panics() {
    let Some(g) = gpu() else { return };
    match g.alloc(usize::MAX / 8) {
        Err(ComputeError::OutOfMemory(msg)) => assert!(msg.contains("exceeds"), "{msg}"),
        other => panic!("expected an out-of-memory error, got {other:?}"),
    }
    let a = g.alloc(6).unwrap();
    let c = g.alloc(4).unwrap();
    let err = g
        .dispatch(
            &Op::MatMul {
                trans_a: false,
                trans_b: false,
            },
            &[&Tensor::new(a, vec![2, 3]), &Tensor::new(a, vec![2, 3])],
            &[&Tensor::new(c, vec![2, 2])],
        )
        .unwrap_err();
    assert!(matches!(err, ComputeError::Shape { .. }), "{err}");
    let err = g.upload(c, &[0.0; 5]).unwrap_err();
    assert!(matches!(err, ComputeError::Buffer(_)), "{err}");
    g.free(c);
    assert!(g.download(c).is_err());
    g.free(a);
    g.sync().unwrap();
}

#[test]
fn adapters_are_listed() {
    let list = mlp_compute::gpu::adapters();
    for a in &list {
        eprintln!("adapter {a}");
    }
    if let Some(g) = gpu() {
        assert!(!list.is_empty());
        assert!(g.describe().contains(&g.adapter_info().name));
    }
}

/// Throughput sanity check (not a benchmark): `cargo test -p mlp-compute --test conformance
/// -- --ignored --nocapture matmul_throughput`.
#[test]
#[ignore]
fn matmul_throughput() {
    let Some(g) = gpu() else { return };
    for n in [256usize, 512, 1024] {
        let mut rng = Rng(18);
        let a = g.alloc(n * n).unwrap();
        let b = g.alloc(n * n).unwrap();
        let c = g.alloc(n * n).unwrap();
        g.upload(a, &rng.vec(n * n, -1.0, 1.0)).unwrap();
        g.upload(b, &rng.vec(n * n, -1.0, 1.0)).unwrap();
        let (ta, tb, tc) = (
            Tensor::new(a, vec![n, n]),
            Tensor::new(b, vec![n, n]),
            Tensor::new(c, vec![n, n]),
        );
        let op = Op::MatMul {
            trans_a: false,
            trans_b: false,
        };
        g.dispatch(&op, &[&ta, &tb], &[&tc]).unwrap();
        g.sync().unwrap();
        let reps = 3;
        let t0 = std::time::Instant::now();
        for _ in 0..reps {
            g.dispatch(&op, &[&ta, &tb], &[&tc]).unwrap();
        }
        g.sync().unwrap();
        let dt = t0.elapsed().as_secs_f64() / reps as f64;
        eprintln!(
            "matmul {n}x{n}x{n}: {:.3} ms, {:.2} GFLOP/s on {}",
            dt * 1e3,
            2.0 * (n as f64).powi(3) / dt / 1e9,
            g.describe()
        );
        for buf in [a, b, c] {
            g.free(buf);
        }
    }
}

/// Host cost of recording small dispatches (not a benchmark): `cargo test -p mlp-compute
/// --test conformance -- --ignored --nocapture dispatch_overhead`.
#[test]
#[ignore]
fn dispatch_overhead() {
    let Some(g) = gpu() else { return };
    let n = 256;
    let (a, b) = (g.alloc(n).unwrap(), g.alloc(n).unwrap());
    let (ta, tb) = (Tensor::new(a, vec![n]), Tensor::new(b, vec![n]));
    let op = Op::Scale { alpha: 1.0 };
    g.dispatch(&op, &[&ta], &[&tb]).unwrap();
    g.sync().unwrap();
    let reps = 5000;
    let t0 = std::time::Instant::now();
    for i in 0..reps {
        if i % 2 == 0 {
            g.dispatch(&op, &[&ta], &[&tb]).unwrap();
        } else {
            g.dispatch(&op, &[&tb], &[&ta]).unwrap();
        }
    }
    let record = t0.elapsed();
    g.sync().unwrap();
    let total = t0.elapsed();
    eprintln!(
        "{reps} dispatches: {:.1} us each to record, {:.1} us each with execution ({:?})",
        record.as_secs_f64() * 1e6 / reps as f64,
        total.as_secs_f64() * 1e6 / reps as f64,
        g.stats()
    );
    g.free(a);
    g.free(b);
}
