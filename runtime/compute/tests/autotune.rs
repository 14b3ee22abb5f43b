//! GPU kernel autotuning (`gpu/autotune.rs`), on whatever adapter wgpu finds (lavapipe in CI,
//! where autotuning is off by default and these tests turn it on).
//!
//! - The variants autotuning chooses between give bit-identical results: every aligned GEMM
//!   tile, and every fast convolution tile height, the weight gradient's K split included.
//! - Autotuning picks one of the variants, caches it per shape class, leaves its trial runs
//!   out of the dispatch count and the profile, and changes no result.

mod common;

use common::{gpu, run_on, Input};
use mlp_compute::gpu::{GpuBackend, GpuOptions};
use mlp_compute::op::{Op, Padding};
use mlp_compute::Backend;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn input(&mut self, shape: &[usize]) -> Input {
        let n = shape.iter().product();
        ((0..n).map(|_| self.next()).collect(), shape.to_vec())
    }
}

fn backend(set: impl FnOnce(&mut GpuBackend)) -> GpuBackend {
    let mut g = GpuBackend::new(GpuOptions::allow_cpu()).expect("a second GPU backend");
    set(&mut g);
    g
}

fn bits(v: &[Vec<f32>]) -> Vec<Vec<u32>> {
    v.iter()
        .map(|x| x.iter().map(|f| f.to_bits()).collect())
        .collect()
}

/// The three convolutions of one layer: (op, inputs).
fn conv_ops(
    rng: &mut Rng,
    (nb, ci, h, co, k, stride): (usize, usize, usize, usize, usize, usize),
) -> Vec<(Op, Vec<Input>)> {
    let padding = Padding::Same;
    let oh = h.div_ceil(stride);
    let x = rng.input(&[nb, ci, h, h]);
    let w = rng.input(&[co, ci, k, k]);
    let dy = rng.input(&[nb, co, oh, oh]);
    vec![
        (Op::Conv2d { stride, padding }, vec![x.clone(), w.clone()]),
        (
            Op::Conv2dBackwardInput {
                stride,
                padding,
                in_h: h,
                in_w: h,
            },
            vec![dy.clone(), w],
        ),
        (
            Op::Conv2dBackwardWeight {
                stride,
                padding,
                kh: k,
                kw: k,
            },
            vec![x, dy],
        ),
    ]
}

/// Shapes where the tile heights differ in grid and in how many rows each covers (M of 24,
/// 64, 96 and 160), the weight gradient's K long enough to be split. In the last, a split
/// chosen by each tile's own grid would differ (21 splits for 32 rows, 32 for 128).
const CONV_SHAPES: [(usize, usize, usize, usize, usize, usize); 5] = [
    (2, 24, 18, 24, 3, 1),
    (4, 64, 16, 64, 3, 1),
    (3, 96, 13, 40, 3, 2),
    (2, 8, 20, 160, 1, 1),
    (2, 64, 64, 160, 3, 1),
];

#[test]
fn conv_tiles_give_identical_bits() {
    if gpu().is_none() {
        return;
    }
    let backends: Vec<GpuBackend> = [32, 64, 128]
        .into_iter()
        .map(|t| backend(|g| g.set_conv_tile(Some(t)).unwrap()))
        .collect();
    let mut rng = Rng(11);
    for shape in CONV_SHAPES {
        for (op, ins) in conv_ops(&mut rng, shape) {
            let outs: Vec<_> = backends
                .iter()
                .map(|g| bits(&run_on(g, &op, &ins, None)))
                .collect();
            for (t, o) in [64, 128].iter().zip(&outs[1..]) {
                assert!(
                    *o == outs[0],
                    "{op:?} {shape:?}: tile {t} differs from tile 32 in the last bits"
                );
            }
        }
    }
    for g in &backends {
        assert_eq!(
            g.compiled_kernels()
                .iter()
                .filter(|k| k.contains("_fast_"))
                .count(),
            3,
            "{:?}",
            g.compiled_kernels()
        );
    }
}

/// Aligned products for every tile (multiples of 256 by 256), both layouts of each operand.
fn gemm_cases(rng: &mut Rng) -> Vec<(Op, Vec<Input>)> {
    let mut cases = Vec::new();
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let (m, k, n) = (256, 40, 512);
        let a = if ta { [k, m] } else { [m, k] };
        let b = if tb { [n, k] } else { [k, n] };
        cases.push((
            Op::MatMul {
                trans_a: ta,
                trans_b: tb,
            },
            vec![rng.input(&a), rng.input(&b)],
        ));
    }
    cases.push((
        Op::MatMul {
            trans_a: false,
            trans_b: true,
        },
        vec![rng.input(&[2, 256, 64]), rng.input(&[2, 256, 64])],
    ));
    cases
}

#[test]
fn gemm_tiles_give_identical_bits() {
    if gpu().is_none() {
        return;
    }
    let tiles = ["64x64", "128x128", "128x256", "256x128"];
    let backends: Vec<GpuBackend> = tiles
        .iter()
        .map(|t| backend(|g| g.set_gemm_tile(Some(t)).unwrap()))
        .collect();
    let mut rng = Rng(12);
    for (op, ins) in gemm_cases(&mut rng) {
        let outs: Vec<_> = backends
            .iter()
            .map(|g| bits(&run_on(g, &op, &ins, None)))
            .collect();
        for (t, o) in tiles.iter().zip(&outs).skip(1) {
            assert!(
                *o == outs[0],
                "{op:?}: tile {t} differs from 64x64 in the last bits"
            );
        }
    }
    for (t, g) in tiles.iter().zip(&backends) {
        let file = format!("matmul_fast_{t}.wgsl");
        assert!(
            g.compiled_kernels().contains(&file.as_str()),
            "{file} never ran: {:?}",
            g.compiled_kernels()
        );
    }
}

/// Autotuning on: one tuning per shape class, a variant from the candidates, results and
/// dispatch counts as with it off.
#[test]
fn autotune_picks_caches_and_changes_nothing() {
    if gpu().is_none() {
        return;
    }
    let off = backend(|g| g.set_autotune(Some(false)));
    let on = backend(|g| g.set_autotune(Some(true)));
    assert!(on.autotuning() && !off.autotuning());
    let mut rng = Rng(13);
    // 2 * 64 * (4 * 16 * 16) * 576 = 75 MFLOP: over the tuning threshold.
    let conv = conv_ops(&mut rng, (4, 64, 16, 64, 3, 1));
    // 2 * 256 * 512 * 256 = 67 MFLOP.
    let mm = (
        Op::MatMul {
            trans_a: false,
            trans_b: false,
        },
        vec![rng.input(&[256, 256]), rng.input(&[256, 512])],
    );
    let mut cases = conv.clone();
    cases.push(mm.clone());
    for (op, ins) in &cases {
        let d0 = (on.stats().0, off.stats().0);
        let want = bits(&run_on(&off, op, ins, None));
        let got = bits(&run_on(&on, op, ins, None));
        assert!(got == want, "{op:?}: autotuning changed the result");
        assert_eq!(
            on.stats().0 - d0.0,
            off.stats().0 - d0.1,
            "{op:?}: trial runs counted as dispatches"
        );
    }
    let tuned = on.autotuned();
    assert_eq!(tuned.len(), 4, "{tuned:#?}");
    for t in &tuned {
        assert!(t.candidates.len() >= 2, "{t:?}");
        assert_eq!(t.candidates[0].0, t.default, "{t:?}");
        assert!(
            t.candidates.iter().any(|(k, _)| *k == t.chosen),
            "{t:?}: chose a kernel it did not time"
        );
        assert!(
            t.candidates
                .iter()
                .all(|(_, us)| us.is_finite() && *us > 0.0),
            "{t:?}"
        );
    }
    assert!(tuned[0].op.starts_with("conv2d [4,64,16,16]"), "{tuned:#?}");
    assert_eq!(tuned[3].op, "matmul 256x512x256");
    assert_eq!(tuned[3].candidates.len(), 5, "{:?}", tuned[3]);
    // The same shapes again, and a batch of 3 in the batch-4 class: no new tuning.
    for (op, ins) in &cases {
        run_on(&on, op, ins, None);
    }
    let conv3 = conv_ops(&mut rng, (3, 64, 16, 64, 3, 1));
    for (op, ins) in &conv3 {
        let want = bits(&run_on(&off, op, ins, None));
        assert!(bits(&run_on(&on, op, ins, None)) == want, "{op:?}");
    }
    assert_eq!(on.autotuned().len(), 4, "{:#?}", on.autotuned());
    // Off, under the threshold, and M within the smallest tile: nothing tuned.
    assert!(off.autotuned().is_empty());
    let mut untuned = conv_ops(&mut rng, (1, 8, 16, 8, 3, 1));
    untuned.extend(conv_ops(&mut rng, (8, 32, 32, 32, 3, 1)));
    for (op, ins) in &untuned {
        run_on(&on, op, ins, None);
    }
    assert_eq!(on.autotuned().len(), 4);
}

/// A forced tile wins over autotuning.
#[test]
fn forced_tile_wins() {
    if gpu().is_none() {
        return;
    }
    let g = backend(|g| {
        g.set_autotune(Some(true));
        g.set_conv_tile(Some(64)).unwrap();
        g.set_gemm_tile(Some("128x256")).unwrap();
    });
    let mut rng = Rng(14);
    for (op, ins) in conv_ops(&mut rng, (4, 64, 16, 64, 3, 1)) {
        run_on(&g, &op, &ins, None);
    }
    let (op, ins) = gemm_cases(&mut rng).remove(0);
    run_on(&g, &op, &ins, None);
    assert!(g.autotuned().is_empty(), "{:#?}", g.autotuned());
}

/// Profiling during autotuning: the profile has the real dispatches only.
#[test]
fn trial_runs_stay_out_of_the_profile() {
    if gpu().is_none() {
        return;
    }
    let g = backend(|g| g.set_autotune(Some(true)));
    if g.enable_profiling().is_err() {
        eprintln!("no timestamp queries on {}: nothing to check", g.describe());
        return;
    }
    let mut rng = Rng(15);
    let (op, ins) = conv_ops(&mut rng, (4, 64, 16, 64, 3, 1)).remove(0);
    run_on(&g, &op, &ins, None);
    assert_eq!(g.autotuned().len(), 1);
    let p = g.profile().unwrap();
    let calls: u64 = p
        .iter()
        .filter(|k| k.kernel.starts_with("conv2d"))
        .map(|k| k.calls)
        .sum();
    assert_eq!(calls, 1, "{p:#?}");
}

/// Where the size rule picks a guarded kernel (`matmul_big.wgsl` for a product aligned to 64
/// but not to 128), autotuning may set the aligned 64x64 tile against it: the same bits.
#[test]
fn guarded_and_aligned_gemm_give_identical_bits() {
    if gpu().is_none() {
        return;
    }
    let rule = backend(|g| {
        g.set_autotune(Some(false));
        g.set_big_matmul_threshold(0);
    });
    let tiled = backend(|g| g.set_gemm_tile(Some("64x64")).unwrap());
    let mut rng = Rng(16);
    for (ta, tb) in [(false, false), (true, true)] {
        let (m, k, n) = (192, 72, 320);
        let a = if ta { [k, m] } else { [m, k] };
        let b = if tb { [n, k] } else { [k, n] };
        let op = Op::MatMul {
            trans_a: ta,
            trans_b: tb,
        };
        let ins = vec![rng.input(&a), rng.input(&b)];
        let want = bits(&run_on(&rule, &op, &ins, None));
        assert!(bits(&run_on(&tiled, &op, &ins, None)) == want, "{op:?}");
    }
    assert!(rule.compiled_kernels().contains(&"matmul_big.wgsl"));
    assert!(tiled.compiled_kernels().contains(&"matmul_fast_64x64.wgsl"));
}
