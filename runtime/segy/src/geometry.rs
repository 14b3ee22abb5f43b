//! Survey geometry: sorting, line numbers and the map from (inline, crossline, offset) cells to
//! traces, for regular surveys and for irregular ones (missing traces padded with a mask).

use serde::Serialize;
use std::collections::HashMap;

/// How traces are ordered in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sorting {
    /// Inline is the slowest key: each inline's traces are contiguous.
    Inline,
    /// Crossline is the slowest key.
    Crossline,
    /// No grid (shot gathers, duplicates, ...): read as traces.
    Unstructured,
}

impl Sorting {
    /// "inline", "crossline" or "unstructured".
    pub fn name(self) -> &'static str {
        match self {
            Sorting::Inline => "inline",
            Sorting::Crossline => "crossline",
            Sorting::Unstructured => "unstructured",
        }
    }
}

/// Marks a cell with no trace in [`Cube::index`].
pub const MISSING: u32 = u32::MAX;

/// A regular grid over the traces: `index[(i * xlines.len() + j) * offsets.len() + k]` is the
/// trace at `ilines[i]`, `xlines[j]`, `offsets[k]`, or [`MISSING`].
#[derive(Clone, Debug)]
pub struct Cube {
    pub ilines: Vec<i32>,
    pub xlines: Vec<i32>,
    pub offsets: Vec<i32>,
    pub index: Vec<u32>,
    /// Cells with no trace.
    pub missing: usize,
}

impl Cube {
    /// Number of cells (`ilines * xlines * offsets`).
    pub fn cells(&self) -> usize {
        self.index.len()
    }

    /// The trace of a cell, by positions (not line numbers).
    pub fn trace_at(&self, i: usize, j: usize, k: usize) -> Option<usize> {
        let t = self.index[(i * self.xlines.len() + j) * self.offsets.len() + k];
        (t != MISSING).then_some(t as usize)
    }

    /// The missing cells as (inline, crossline, offset) numbers, at most `limit` of them.
    pub fn missing_cells(&self, limit: usize) -> Vec<(i32, i32, i32)> {
        let (nx, no) = (self.xlines.len(), self.offsets.len());
        self.index
            .iter()
            .enumerate()
            .filter(|(_, &t)| t == MISSING)
            .take(limit)
            .map(|(c, _)| {
                (
                    self.ilines[c / (nx * no)],
                    self.xlines[(c / no) % nx],
                    self.offsets[c % no],
                )
            })
            .collect()
    }
}

/// What was inferred about a file's layout.
#[derive(Clone, Debug)]
pub struct Geometry {
    pub sorting: Sorting,
    /// The grid, when the traces form one (regular or padded).
    pub cube: Option<Cube>,
    /// Why there is no grid, when there is none.
    pub reason: Option<String>,
}

impl Geometry {
    /// A file read as plain traces.
    pub fn unstructured(reason: impl Into<String>) -> Geometry {
        Geometry {
            sorting: Sorting::Unstructured,
            cube: None,
            reason: Some(reason.into()),
        }
    }

    /// Whether the grid has no missing cells.
    pub fn is_regular(&self) -> bool {
        self.cube.as_ref().is_some_and(|c| c.missing == 0)
    }
}

/// A padded grid may be at most this many times larger than the trace count (at least a
/// quarter of its cells hold traces) before the file is called unstructured instead.
const MAX_PADDING_FACTOR: usize = 4;

/// Infers the geometry from each trace's (inline, crossline, offset) keys, in file order.
///
/// Sorting follows segyio's rule (the key that stays put while the other moves, once the
/// offsets wrap), so regular files get the same answer as segyio. Files segyio rejects with
/// "unable to find sorting" because traces are missing still get a grid when every
/// (inline, crossline, offset) is unique; missing cells are recorded.
pub fn infer(keys: &[[i32; 3]]) -> Geometry {
    let n = keys.len();
    if n == 0 {
        return Geometry::unstructured("the file has no traces");
    }
    let sorting = segyio_sorting(keys);
    if sorting != Sorting::Unstructured {
        if let Some(cube) = regular(keys, sorting) {
            return Geometry {
                sorting,
                cube: Some(cube),
                reason: None,
            };
        }
    }
    // Irregular: unique keys are needed.
    let mut seen: HashMap<[i32; 3], u32> = HashMap::with_capacity(n);
    for (t, k) in keys.iter().enumerate() {
        if let Some(prev) = seen.insert(*k, t as u32) {
            return Geometry::unstructured(format!(
                "traces {prev} and {t} share inline {}, crossline {} and offset {}, so the \
                 traces do not form a grid (pass other key bytes, or read traces)",
                k[0], k[1], k[2]
            ));
        }
    }
    // Lines ascending, or descending when the file runs that way (as a regular file's
    // lines keep file order, a padded one keeps its direction).
    let uniq = |d: usize| {
        let mut v: Vec<i32> = keys.iter().map(|k| k[d]).collect();
        v.sort_unstable();
        v.dedup();
        if keys[0][d] > keys[n - 1][d] {
            v.reverse();
        }
        v
    };
    let (ilines, xlines, offsets) = (uniq(0), uniq(1), uniq(2));
    let cells = ilines
        .len()
        .checked_mul(xlines.len())
        .and_then(|c| c.checked_mul(offsets.len()));
    let limit = n.saturating_mul(MAX_PADDING_FACTOR);
    let cells = match cells {
        Some(c) if c <= limit => c,
        _ => {
            return Geometry::unstructured(format!(
                "{} inlines x {} crosslines x {} offsets would pad {n} traces into a grid over \
                 {MAX_PADDING_FACTOR} times larger than the data; the line numbers are too \
                 sparse for a cube",
                ilines.len(),
                xlines.len(),
                offsets.len()
            ))
        }
    };
    let pos = |v: &[i32], x: i32| {
        if v.len() > 1 && v[0] > v[v.len() - 1] {
            v.binary_search_by(|p| x.cmp(p)).unwrap_or(0)
        } else {
            v.binary_search(&x).unwrap_or(0)
        }
    };
    let mut index = vec![MISSING; cells];
    let (nx, no) = (xlines.len(), offsets.len());
    for (t, k) in keys.iter().enumerate() {
        let c = (pos(&ilines, k[0]) * nx + pos(&xlines, k[1])) * no + pos(&offsets, k[2]);
        index[c] = t as u32;
    }
    let missing = cells - n;
    let sorting = if sorting == Sorting::Unstructured {
        slow_key(keys)
    } else {
        sorting
    };
    Geometry {
        sorting,
        cube: Some(Cube {
            ilines,
            xlines,
            offsets,
            index,
            missing,
        }),
        reason: None,
    }
}

/// segyio's sorting rule over the first traces.
fn segyio_sorting(keys: &[[i32; 3]]) -> Sorting {
    if keys.len() == 1 {
        return Sorting::Crossline;
    }
    let [il0, xl0, of0] = keys[0];
    let (mut il_prev, mut xl_prev) = (il0, xl0);
    for k in &keys[1..] {
        let [il, xl, of] = *k;
        if of == of0 {
            if il == il_prev && xl != xl_prev {
                return Sorting::Inline;
            }
            if xl == xl_prev && il != il_prev {
                return Sorting::Crossline;
            }
            return Sorting::Unstructured;
        }
        if il != il_prev || xl != xl_prev {
            return Sorting::Unstructured;
        }
        il_prev = il;
        xl_prev = xl;
    }
    Sorting::Crossline
}

/// For a grid found without segyio's rule: the key that changes less often between
/// consecutive traces is the slow one.
fn slow_key(keys: &[[i32; 3]]) -> Sorting {
    let (mut il_changes, mut xl_changes) = (0usize, 0usize);
    for w in keys.windows(2) {
        il_changes += (w[0][0] != w[1][0]) as usize;
        xl_changes += (w[0][1] != w[1][1]) as usize;
    }
    if il_changes <= xl_changes {
        Sorting::Inline
    } else {
        Sorting::Crossline
    }
}

/// A complete grid in file order: offsets fastest, then the fast line key, then the slow one.
fn regular(keys: &[[i32; 3]], sorting: Sorting) -> Option<Cube> {
    let n = keys.len();
    let first = keys[0];
    let no = keys
        .iter()
        .take_while(|k| k[0] == first[0] && k[1] == first[1])
        .count();
    let (slow, fast) = if sorting == Sorting::Inline {
        (0, 1)
    } else {
        (1, 0)
    };
    // Number of fast lines: stride `no` until the slow key changes.
    let nf = keys
        .iter()
        .step_by(no)
        .take_while(|k| k[slow] == first[slow])
        .count();
    if !n.is_multiple_of(no * nf) {
        return None;
    }
    let offsets: Vec<i32> = keys[..no].iter().map(|k| k[2]).collect();
    let fast_lines: Vec<i32> = keys.iter().step_by(no).take(nf).map(|k| k[fast]).collect();
    let slow_lines: Vec<i32> = keys.iter().step_by(no * nf).map(|k| k[slow]).collect();
    for v in [&offsets, &fast_lines, &slow_lines] {
        let mut s = v.to_vec();
        s.sort_unstable();
        s.dedup();
        if s.len() != v.len() {
            return None;
        }
    }
    for (t, k) in keys.iter().enumerate() {
        if k[2] != offsets[t % no]
            || k[fast] != fast_lines[(t / no) % nf]
            || k[slow] != slow_lines[t / (no * nf)]
        {
            return None;
        }
    }
    let (ilines, xlines) = if sorting == Sorting::Inline {
        (slow_lines, fast_lines)
    } else {
        (fast_lines, slow_lines)
    };
    let (ni, nx) = (ilines.len(), xlines.len());
    let mut index = vec![0u32; n];
    for t in 0..n {
        let k = t % no;
        let (f, s) = ((t / no) % nf, t / (no * nf));
        let (i, j) = if sorting == Sorting::Inline {
            (s, f)
        } else {
            (f, s)
        };
        index[(i * nx + j) * no + k] = t as u32;
    }
    debug_assert_eq!(ni * nx * no, n);
    Some(Cube {
        ilines,
        xlines,
        offsets,
        index,
        missing: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(ils: &[i32], xls: &[i32], offs: &[i32], inline_sorted: bool) -> Vec<[i32; 3]> {
        let mut v = Vec::new();
        if inline_sorted {
            for &i in ils {
                for &x in xls {
                    for &o in offs {
                        v.push([i, x, o]);
                    }
                }
            }
        } else {
            for &x in xls {
                for &i in ils {
                    for &o in offs {
                        v.push([i, x, o]);
                    }
                }
            }
        }
        v
    }

    #[test]
    fn inline_and_crossline_sorted() {
        let g = infer(&grid(&[1, 2, 3], &[20, 21], &[0], true));
        assert_eq!(g.sorting, Sorting::Inline);
        let c = g.cube.unwrap();
        assert_eq!(
            (c.ilines, c.xlines, c.offsets),
            (vec![1, 2, 3], vec![20, 21], vec![0])
        );
        let g = infer(&grid(&[1, 2, 3], &[20, 21], &[0], false));
        assert_eq!(g.sorting, Sorting::Crossline);
        let c = g.cube.unwrap();
        assert_eq!(c.trace_at(1, 0, 0), Some(1));
        assert_eq!(c.trace_at(0, 1, 0), Some(3));
    }

    #[test]
    fn decreasing_lines_keep_file_order() {
        let g = infer(&grid(&[5, 4, 3], &[9, 8], &[1, 2], true));
        let c = g.cube.unwrap();
        assert_eq!(c.ilines, vec![5, 4, 3]);
        assert_eq!(c.xlines, vec![9, 8]);
        assert_eq!(c.offsets, vec![1, 2]);
        assert!(g.reason.is_none());
    }

    #[test]
    fn missing_traces_are_padded() {
        let mut keys = grid(&[1, 2, 3], &[10, 11, 12], &[0], true);
        keys.remove(4); // il 2, xl 11
        let g = infer(&keys);
        assert_eq!(g.sorting, Sorting::Inline);
        let c = g.cube.unwrap();
        assert_eq!(c.missing, 1);
        assert_eq!(c.missing_cells(10), vec![(2, 11, 0)]);
        assert_eq!(c.trace_at(2, 2, 0), Some(7));
    }

    #[test]
    fn padded_grids_keep_the_direction_of_the_lines() {
        let mut keys = grid(&[9, 8, 7], &[3, 2, 1, 0], &[0], true);
        keys.remove(5);
        let g = infer(&keys);
        let c = g.cube.unwrap();
        assert_eq!(c.ilines, vec![9, 8, 7]);
        assert_eq!(c.xlines, vec![3, 2, 1, 0]);
        assert_eq!(c.missing_cells(5), vec![(8, 2, 0)]);
        assert_eq!(c.trace_at(0, 0, 0), Some(0));
        assert_eq!(c.trace_at(2, 3, 0), Some(10));
    }

    #[test]
    fn duplicates_are_unstructured() {
        let g = infer(&[[0, 0, 0], [0, 0, 0], [0, 0, 0]]);
        assert_eq!(g.sorting, Sorting::Unstructured);
        assert!(g.cube.is_none());
        assert!(g.reason.unwrap().contains("share"));
    }

    #[test]
    fn sparse_numbers_are_unstructured() {
        let keys: Vec<[i32; 3]> = (0..2000)
            .map(|i| [i * 7919, i * 104729 % 99991, 0])
            .collect();
        let g = infer(&keys);
        assert_eq!(g.sorting, Sorting::Unstructured);
    }

    #[test]
    fn one_trace_is_crossline_like_segyio() {
        let g = infer(&[[7, 9, 0]]);
        assert_eq!(g.sorting, Sorting::Crossline);
        assert_eq!(g.cube.unwrap().cells(), 1);
    }
}
