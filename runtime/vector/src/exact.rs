//! Exact (brute-force) k-nearest-neighbour search: blocked matrix products over rayon.
//!
//! The query block × row block products run through `matrixmultiply::sgemm` (packed, with
//! its own AVX/FMA kernels picked at run time); each block of scores then feeds one bounded
//! heap per query. Work is split into (query block, row range) tasks so that both a single
//! query against many rows and many queries keep every core busy; the partial heaps are merged
//! at the end. Ties are broken by row number, so the result does not depend on the split.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rayon::prelude::*;

use crate::metric::Metric;
use crate::simd;

/// Queries per block.
const QB: usize = 64;
/// Rows per block.
const RB: usize = 512;
/// Below this many queries in a block, dot products are computed one by one instead of
/// through sgemm (whose packing would cost more than it saves).
const GEMM_MIN_QUERIES: usize = 4;

/// A run of consecutive rows stored contiguously.
#[derive(Clone, Copy)]
pub(crate) struct Segment<'a> {
    /// `rows × dim` values, row-major.
    pub data: &'a [f32],
    /// `‖x‖²` of each row (used for L2 only; may be empty otherwise).
    pub norms: &'a [f32],
    /// Global number of the segment's first row.
    pub first_row: u32,
}

/// A candidate: ranking key (smaller is closer) and global row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cand {
    pub key: f32,
    pub row: u32,
}

impl PartialEq for Cand {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key
            .total_cmp(&other.key)
            .then(self.row.cmp(&other.row))
    }
}

/// The k smallest candidates seen so far (a max-heap of at most k).
#[derive(Clone, Debug)]
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Cand>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(4096) + 1),
        }
    }

    #[inline]
    pub fn push(&mut self, c: Cand) {
        if self.heap.len() < self.k {
            self.heap.push(c);
        } else if let Some(mut top) = self.heap.peek_mut() {
            if c < *top {
                *top = c;
            }
        }
    }

    pub fn merge(&mut self, other: TopK) {
        for c in other.heap {
            self.push(c);
        }
    }

    /// The candidates, nearest first.
    pub fn into_sorted(self) -> Vec<Cand> {
        self.heap.into_sorted_vec()
    }
}

/// The ranking key of a row given `dot = q·x` (smaller is closer). For L2 it is
/// `‖x‖² - 2 q·x`, i.e. the squared distance less the query's constant `‖q‖²`.
#[inline]
fn key(metric: Metric, dot: f32, norm: f32) -> f32 {
    match metric {
        Metric::Cosine | Metric::Dot => -dot,
        Metric::L2 => norm - 2.0 * dot,
    }
}

/// The k nearest rows of every query (`queries` is `m × dim`, already prepared: unit length
/// for cosine). Returns one list per query, nearest first by ranking key.
pub(crate) fn topk_batch(
    metric: Metric,
    dim: usize,
    segments: &[Segment<'_>],
    queries: &[f32],
    k: usize,
) -> Vec<Vec<Cand>> {
    let m = queries.len().checked_div(dim).unwrap_or(0);
    let total_rows: usize = segments.iter().map(|s| s.data.len() / dim.max(1)).sum();
    if m == 0 {
        return Vec::new();
    }
    if k == 0 || total_rows == 0 {
        return vec![Vec::new(); m];
    }
    let qblocks = m.div_ceil(QB);
    let threads = rayon::current_num_threads().max(1);
    let row_blocks = total_rows.div_ceil(RB);
    let parts = (2 * threads).div_ceil(qblocks).clamp(1, row_blocks);
    let blocks_per_part = row_blocks.div_ceil(parts);
    let part_rows = blocks_per_part * RB;
    let parts = total_rows.div_ceil(part_rows);

    let tasks: Vec<(usize, usize)> = (0..qblocks)
        .flat_map(|qb| (0..parts).map(move |p| (qb, p)))
        .collect();
    let partial: Vec<Vec<TopK>> = tasks
        .par_iter()
        .map(|&(qb, p)| {
            let q0 = qb * QB;
            let q1 = (q0 + QB).min(m);
            let r0 = p * part_rows;
            let r1 = (r0 + part_rows).min(total_rows);
            scan(
                metric,
                dim,
                segments,
                &queries[q0 * dim..q1 * dim],
                r0,
                r1,
                k,
            )
        })
        .collect();

    let mut out: Vec<TopK> = (0..m).map(|_| TopK::new(k)).collect();
    for (&(qb, _), tops) in tasks.iter().zip(partial) {
        for (i, t) in tops.into_iter().enumerate() {
            out[qb * QB + i].merge(t);
        }
    }
    out.into_iter().map(TopK::into_sorted).collect()
}

/// One task: the queries of one block against the rows `[r0, r1)` (positions in the
/// concatenation of the segments).
fn scan(
    metric: Metric,
    dim: usize,
    segments: &[Segment<'_>],
    queries: &[f32],
    r0: usize,
    r1: usize,
    k: usize,
) -> Vec<TopK> {
    let nq = queries.len() / dim;
    let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
    let mut scores = vec![0.0f32; nq * RB];
    let mut seg_start = 0usize;
    for seg in segments {
        let seg_rows = seg.data.len() / dim;
        let (lo, hi) = (r0.max(seg_start), r1.min(seg_start + seg_rows));
        if lo < hi {
            let mut b = lo;
            while b < hi {
                let e = (b + RB).min(hi);
                let local = b - seg_start;
                let rows = e - b;
                let block = &seg.data[local * dim..(local + rows) * dim];
                dots(queries, block, dim, &mut scores[..nq * rows]);
                for (qi, top) in tops.iter_mut().enumerate() {
                    let s = &scores[qi * rows..(qi + 1) * rows];
                    for (j, &d) in s.iter().enumerate() {
                        let norm = if metric == Metric::L2 {
                            seg.norms[local + j]
                        } else {
                            0.0
                        };
                        top.push(Cand {
                            key: key(metric, d, norm),
                            row: seg.first_row + (local + j) as u32,
                        });
                    }
                }
                b = e;
            }
        }
        seg_start += seg_rows;
    }
    tops
}

/// `out[i * rows + j] = queries[i] · block[j]` for `nq` queries and `rows` rows.
fn dots(queries: &[f32], block: &[f32], dim: usize, out: &mut [f32]) {
    let nq = queries.len() / dim;
    let rows = block.len() / dim;
    assert!(queries.len() == nq * dim && block.len() == rows * dim && out.len() == nq * rows);
    if nq < GEMM_MIN_QUERIES {
        for (qi, q) in queries.chunks_exact(dim).enumerate() {
            for (j, x) in block.chunks_exact(dim).enumerate() {
                out[qi * rows + j] = simd::dot(q, x);
            }
        }
        return;
    }
    // SAFETY: A is nq×dim row-major (rsa = dim, csa = 1) inside `queries`; B = blockᵀ is
    // dim×rows with element (p, j) at block[j*dim + p] (rsb = 1, csb = dim) inside `block`;
    // C is nq×rows row-major inside `out`. The lengths were asserted above.
    unsafe {
        matrixmultiply::sgemm(
            nq,
            dim,
            rows,
            1.0,
            queries.as_ptr(),
            dim as isize,
            1,
            block.as_ptr(),
            1,
            dim as isize,
            0.0,
            out.as_mut_ptr(),
            rows as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topk_keeps_smallest_with_row_tiebreak() {
        let mut t = TopK::new(3);
        for (key, row) in [(3.0, 0), (1.0, 5), (1.0, 2), (2.0, 9), (0.5, 7), (1.0, 1)] {
            t.push(Cand { key, row });
        }
        let got: Vec<(f32, u32)> = t.into_sorted().iter().map(|c| (c.key, c.row)).collect();
        assert_eq!(got, vec![(0.5, 7), (1.0, 1), (1.0, 2)]);
    }

    #[test]
    fn batch_matches_naive_for_every_metric_and_split() {
        let dim = 5;
        let n = 1300;
        let data: Vec<f32> = (0..n * dim)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
            .collect();
        let norms: Vec<f32> = data.chunks(dim).map(simd::norm2).collect();
        let queries: Vec<f32> = (0..70 * dim)
            .map(|i| ((i * 31 % 97) as f32 / 48.0) - 1.0)
            .collect();
        for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
            // Split the rows into two segments at an odd place.
            let cut = 611;
            let segs = [
                Segment {
                    data: &data[..cut * dim],
                    norms: &norms[..cut],
                    first_row: 0,
                },
                Segment {
                    data: &data[cut * dim..],
                    norms: &norms[cut..],
                    first_row: cut as u32,
                },
            ];
            for nq in [1, 3, 70] {
                let got = topk_batch(metric, dim, &segs, &queries[..nq * dim], 7);
                for (qi, q) in queries[..nq * dim].chunks(dim).enumerate() {
                    let mut all: Vec<Cand> = data
                        .chunks(dim)
                        .enumerate()
                        .map(|(r, x)| Cand {
                            key: key(metric, simd::dot(q, x), norms[r]),
                            row: r as u32,
                        })
                        .collect();
                    all.sort();
                    let want: Vec<u32> = all[..7].iter().map(|c| c.row).collect();
                    let have: Vec<u32> = got[qi].iter().map(|c| c.row).collect();
                    // sgemm and the dot kernel may round differently; compare keys loosely.
                    for (h, w) in got[qi].iter().zip(&all[..7]) {
                        assert!(
                            (h.key - w.key).abs() < 1e-4,
                            "{metric} q{qi}: {have:?} vs {want:?}"
                        );
                    }
                }
            }
        }
    }
}
