//! The HNSW graph: built by `instant-distance`, searched with its `Search`, taken apart into
//! plain arrays for the index file and put back together when a file is loaded.
//!
//! `instant-distance` keeps its points in a `Vec<P>` and gives no access to the graph except
//! through serde. So:
//! * the point type [`Row`] is a small handle (pointer, dimension, metric) into the index's
//!   contiguous vector buffer, which the [`Graph`] keeps alive (an `Arc<VecBuf>`, never
//!   written to while the graph exists);
//! * after a build, the map is serialised (CBOR, in memory) and read back as plain arrays,
//!   [`Parts`]: the point order, the layer-0 neighbour lists (64 slots per point) and the upper
//!   layers (32 slots per point);
//! * to load (or to change `ef_search`), [`Parts`] are validated (every neighbour in range, the
//!   layers nested, the order a permutation) and serialised in the shape `HnswMap` expects, then
//!   deserialised into a new map, with each point's row number turned back into a handle into
//!   the buffer (bounds-checked) through a thread-local context.

use std::cell::Cell;
use std::sync::Arc;

use instant_distance::{Builder, HnswMap, Point, Search};
use serde::{Deserialize, Serialize};

use crate::buf::VecBuf;
use crate::metric::Metric;
use crate::simd;

/// Neighbour slots per point on layer 0 (`2 * M` in `instant-distance`).
pub(crate) const ZERO_LINKS: usize = 64;
/// Neighbour slots per point on the upper layers (`M`).
pub(crate) const UPPER_LINKS: usize = 32;
/// The empty slot marker.
pub(crate) const INVALID: u32 = u32::MAX;

/// A point of the graph: a handle to one row of the vector buffer (or to a query).
///
/// The distance it defines for `instant-distance` (smaller is closer):
/// * cosine: `1 - a·b` on unit vectors (`= ‖a - b‖² / 2`, a squared metric);
/// * L2: `‖a - b‖²` (squared: same order, no square root);
/// * dot: `-(a·b)`. Not a metric (a point need not be its own nearest neighbour), which is
///   what hnswlib's `ip` space and ip-NSW (Morozov & Babenko, 2018) do too. The alternative,
///   the MIPS-to-L2 reduction (Bachrach et al., 2014: an extra coordinate `√(Φ² - ‖x‖²)`),
///   was measured and gave lower recall at every `ef` (0.954 against 0.993 at `ef = 16`,
///   20k × 64 synthetic), so it is not used; `spec/vector-index.md` has the figures.
///
/// 16 bytes: `instant-distance` keeps these in one array indexed by point and reads one for
/// every distance, so their size matters (profiling showed a cache miss there with 24 bytes).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Row {
    ptr: *const f32,
    dim: u32,
    metric: Metric,
}

const _: () = assert!(std::mem::size_of::<Row>() == 16);

// SAFETY: a `Row` only ever reads the `dim` floats at `ptr`. For stored rows they belong to the
// `Arc<VecBuf>` held by the same `Graph` as the map holding the rows, which is never mutated
// and outlives the map (field order in `Graph`). Query rows live only for one `search` call,
// during which the caller borrows the query slice.
unsafe impl Send for Row {}
unsafe impl Sync for Row {}

impl Row {
    #[inline]
    fn slice(&self) -> &[f32] {
        // SAFETY: see the `Send`/`Sync` comment: `ptr` points to `dim` readable floats for as
        // long as this `Row` can be reached.
        unsafe { std::slice::from_raw_parts(self.ptr, self.dim as usize) }
    }

    /// A query handle borrowing `q` (already prepared: unit length for cosine).
    pub(crate) fn query(metric: Metric, q: &[f32]) -> Row {
        Row {
            ptr: q.as_ptr(),
            dim: q.len() as u32,
            metric,
        }
    }
}

impl Point for Row {
    #[inline]
    fn distance(&self, other: &Self) -> f32 {
        let (a, b) = (self.slice(), other.slice());
        match self.metric {
            Metric::Cosine => 1.0 - simd::dot(a, b),
            Metric::L2 => simd::l2sq(a, b),
            Metric::Dot => -simd::dot(a, b),
        }
    }
}

/// Points are taken apart through the map's values (their row numbers), so a point itself
/// serialises as nothing.
impl Serialize for Row {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

/// What [`Row`]'s `Deserialize` needs to turn a row number back into a handle.
#[derive(Clone, Copy)]
struct RowContext {
    base: *const f32,
    rows: usize,
    dim: usize,
    metric: Metric,
}

thread_local! {
    static ROW_CONTEXT: Cell<Option<RowContext>> = const { Cell::new(None) };
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let row = u32::deserialize(d)?;
        let ctx = ROW_CONTEXT.with(Cell::get).ok_or_else(|| {
            serde::de::Error::custom("graph point read outside of Graph::assemble")
        })?;
        let r = row as usize;
        if r >= ctx.rows {
            return Err(serde::de::Error::custom(format!(
                "graph point {row} out of range ({} rows)",
                ctx.rows
            )));
        }
        // SAFETY: r < rows, so the row lies inside the buffer (rows × dim floats), which the
        // `Graph` being assembled keeps alive.
        let ptr = unsafe { ctx.base.add(r * ctx.dim) };
        Ok(stored_row(ctx.metric, ptr, ctx.dim))
    }
}

fn stored_row(metric: Metric, ptr: *const f32, dim: usize) -> Row {
    Row {
        ptr,
        dim: dim as u32,
        metric,
    }
}

/// The graph as plain arrays (what the index file stores).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Parts {
    /// Points in the graph's internal order: `order[pid]` is the row of point `pid`.
    pub order: Vec<u32>,
    /// `ZERO_LINKS` slots per point (by pid), `INVALID` for empty slots.
    pub zero: Vec<u32>,
    /// Upper layers, lowest first; `UPPER_LINKS` slots per point; layer `i` holds points
    /// `0..len_i` (pids).
    pub layers: Vec<Vec<u32>>,
}

impl Parts {
    pub fn points(&self) -> usize {
        self.order.len()
    }

    /// Number of points in each upper layer, lowest first.
    pub fn layer_lens(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.len() / UPPER_LINKS).collect()
    }

    /// Checks everything `instant-distance`'s search relies on, so that no file can make it
    /// index out of bounds.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.order.len();
        if n == 0 {
            if !self.zero.is_empty() || !self.layers.is_empty() {
                return Err("graph with no points has neighbour lists".into());
            }
            return Ok(());
        }
        if n >= INVALID as usize {
            return Err(format!("graph has {n} points, more than the format allows"));
        }
        let mut seen = vec![false; n];
        for &r in &self.order {
            let r = r as usize;
            if r >= n || seen[r] {
                return Err(format!("graph point order is not a permutation (row {r})"));
            }
            seen[r] = true;
        }
        if self.zero.len() != n * ZERO_LINKS {
            return Err(format!(
                "layer 0 has {} slots, expected {}",
                self.zero.len(),
                n * ZERO_LINKS
            ));
        }
        check_links(&self.zero, n, 0)?;
        let mut below = n;
        for (i, layer) in self.layers.iter().enumerate() {
            if layer.len() % UPPER_LINKS != 0 {
                return Err(format!("layer {} has a partial node", i + 1));
            }
            let len = layer.len() / UPPER_LINKS;
            if len == 0 || len > below {
                return Err(format!(
                    "layer {} has {len} points; layers must be non-empty and nested ({below} below)",
                    i + 1
                ));
            }
            check_links(layer, len, i + 1)?;
            below = len;
        }
        Ok(())
    }
}

fn check_links(slots: &[u32], len: usize, layer: usize) -> Result<(), String> {
    match slots.iter().find(|&&p| p != INVALID && p as usize >= len) {
        Some(p) => Err(format!(
            "layer {layer} links to point {p}, but the layer has {len} points"
        )),
        None => Ok(()),
    }
}

/// A built graph over the rows `0..points` of `data`.
pub(crate) struct Graph {
    // Field order matters: `map` holds handles into `data` and must be dropped first.
    map: HnswMap<Row, u32>,
    parts: Parts,
    data: Arc<VecBuf>,
}

impl Graph {
    /// Builds the graph over all rows of `data`.
    pub fn build(
        metric: Metric,
        dim: usize,
        data: Arc<VecBuf>,
        ef_construction: usize,
        ef_search: usize,
        seed: u64,
    ) -> Result<Graph, String> {
        let rows = data.len() / dim;
        let points: Vec<Row> = (0..rows)
            .map(|r| stored_row(metric, data[r * dim..].as_ptr(), dim))
            .collect();
        let values: Vec<u32> = (0..rows as u32).collect();
        let map = Builder::default()
            .ef_construction(ef_construction.max(1))
            .ef_search(ef_search.max(1))
            .seed(seed)
            .build(points, values);
        let parts = extract(&map)?;
        parts.validate()?;
        if parts.points() != rows {
            return Err(format!(
                "graph has {} points for {rows} rows",
                parts.points()
            ));
        }
        Ok(Graph { map, parts, data })
    }

    /// Rebuilds the map from `parts` (validated here) over `data`.
    pub fn assemble(
        metric: Metric,
        dim: usize,
        data: Arc<VecBuf>,
        parts: Parts,
        ef_search: usize,
    ) -> Result<Graph, String> {
        parts.validate()?;
        let rows = data.len() / dim;
        if parts.points() != rows {
            return Err(format!(
                "graph has {} points for {rows} rows",
                parts.points()
            ));
        }
        let ef_search = ef_search.max(1);
        let mirror = MapMirror {
            hnsw: HnswMirror {
                ef_search,
                points: &parts.order,
                zero: Chunks(&parts.zero, ZERO_LINKS),
                layers: parts
                    .layers
                    .iter()
                    .map(|l| Chunks(l, UPPER_LINKS))
                    .collect(),
            },
            values: &parts.order,
        };
        let mut bytes = Vec::new();
        ciborium::into_writer(&mirror, &mut bytes).map_err(|e| format!("graph encoding: {e}"))?;
        let ctx = RowContext {
            base: data.as_ptr(),
            rows,
            dim,
            metric,
        };
        let map: HnswMap<Row, u32> = {
            let _guard = ContextGuard::set(ctx);
            ciborium::from_reader(bytes.as_slice()).map_err(|e| format!("graph decoding: {e}"))?
        };
        Ok(Graph { map, parts, data })
    }

    /// The same graph with another `ef_search`.
    pub fn with_ef_search(
        &self,
        metric: Metric,
        dim: usize,
        ef_search: usize,
    ) -> Result<Graph, String> {
        Graph::assemble(
            metric,
            dim,
            self.data.clone(),
            self.parts.clone(),
            ef_search,
        )
    }

    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// Up to `max(ef_search)` nearest rows of `query` (prepared), nearest first, as
    /// `(graph distance, row)`.
    pub fn search(&self, query: &Row, search: &mut Search, out: &mut Vec<(f32, u32)>) {
        out.clear();
        out.extend(
            self.map
                .search(query, search)
                .map(|item| (item.distance, *item.value)),
        );
    }
}

struct ContextGuard;

impl ContextGuard {
    fn set(ctx: RowContext) -> ContextGuard {
        ROW_CONTEXT.with(|c| c.set(Some(ctx)));
        ContextGuard
    }
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        ROW_CONTEXT.with(|c| c.set(None));
    }
}

/// `HnswMap<Row, u32>`'s serde shape (field names matter: CBOR maps are keyed by name).
#[derive(Serialize)]
struct MapMirror<'a> {
    hnsw: HnswMirror<'a>,
    values: &'a [u32],
}

#[derive(Serialize)]
struct HnswMirror<'a> {
    ef_search: usize,
    points: &'a [u32],
    zero: Chunks<'a>,
    layers: Vec<Chunks<'a>>,
}

/// A flat slice serialised as a sequence of fixed-size tuples.
struct Chunks<'a>(&'a [u32], usize);

impl Serialize for Chunks<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len() / self.1))?;
        for c in self.0.chunks(self.1) {
            seq.serialize_element(c)?;
        }
        seq.end()
    }
}

#[derive(Deserialize)]
struct MapOwned {
    hnsw: HnswOwned,
    values: Vec<u32>,
}

#[derive(Deserialize)]
struct HnswOwned {
    #[allow(dead_code)]
    ef_search: usize,
    points: Vec<serde::de::IgnoredAny>,
    zero: Vec<Vec<u32>>,
    layers: Vec<Vec<Vec<u32>>>,
}

/// Takes a freshly built map apart.
fn extract(map: &HnswMap<Row, u32>) -> Result<Parts, String> {
    let mut bytes = Vec::new();
    ciborium::into_writer(map, &mut bytes).map_err(|e| format!("graph encoding: {e}"))?;
    let owned: MapOwned =
        ciborium::from_reader(bytes.as_slice()).map_err(|e| format!("graph decoding: {e}"))?;
    if owned.values.len() != owned.hnsw.points.len() {
        return Err("graph values and points disagree".into());
    }
    let flatten = |nodes: Vec<Vec<u32>>, width: usize| -> Result<Vec<u32>, String> {
        let mut flat = Vec::with_capacity(nodes.len() * width);
        for node in nodes {
            if node.len() != width {
                return Err(format!(
                    "graph node with {} slots, expected {width}",
                    node.len()
                ));
            }
            flat.extend_from_slice(&node);
        }
        Ok(flat)
    };
    Ok(Parts {
        order: owned.values,
        zero: flatten(owned.hnsw.zero, ZERO_LINKS)?,
        layers: owned
            .hnsw
            .layers
            .into_iter()
            .map(|l| flatten(l, UPPER_LINKS))
            .collect::<Result<_, _>>()?,
    })
}
