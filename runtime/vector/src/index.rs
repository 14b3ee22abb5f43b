//! The vector index: ids, metadata, vectors, an HNSW graph over most of them and an exactly
//! searched tail of recent additions.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use instant_distance::Search;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::buf::VecBuf;
use crate::error::{Result, VectorError};
use crate::exact::{self, Cand, Segment, TopK};
use crate::graph::{Graph, Parts, Row};
use crate::metric::Metric;
use crate::simd;

/// `M` of the HNSW graph (fixed by `instant-distance`: 32 links per point on the upper layers,
/// 64 on layer 0).
pub const HNSW_M: usize = 32;

/// The exactly searched tail is folded into the graph (a rebuild) once it holds more than
/// `max(TAIL_MIN, graph rows / TAIL_FRACTION)` rows.
const TAIL_MIN: usize = 1024;
const TAIL_FRACTION: usize = 32;

/// Parameters of the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildParams {
    /// Candidate list size while building (`efConstruction`).
    pub ef_construction: usize,
    /// Candidate list size while searching (`ef`); a search for `k > ef_search` neighbours
    /// is answered exactly instead.
    pub ef_search: usize,
    /// Seed of the layer assignment. The graph is built by several threads, so two builds
    /// with the same seed may still differ slightly; a saved index is what is reproducible.
    pub seed: u64,
    /// No graph: every search is exact (brute force).
    pub exact: bool,
}

impl Default for BuildParams {
    fn default() -> Self {
        BuildParams {
            ef_construction: 100,
            ef_search: 64,
            seed: 0,
            exact: false,
        }
    }
}

/// What an index knows about itself (the header of its file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexMeta {
    /// The index file format version ([`crate::FORMAT_VERSION`]).
    pub format_version: u32,
    /// The embedder that produced the vectors (an opaque id, compared by
    /// [`Index::check_embedder`]).
    pub embedder: String,
    /// Vector dimension.
    pub dim: usize,
    /// Number of vectors (= ids).
    pub count: usize,
    pub metric: Metric,
    pub params: BuildParams,
    /// How many of the vectors are in the HNSW graph; the others (the most recent additions)
    /// are searched exactly. Always 0 for an exact index.
    pub indexed: usize,
    /// `M` of the graph ([`HNSW_M`]).
    pub hnsw_m: usize,
}

/// One search result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hit {
    pub id: String,
    /// Smaller is closer: `1 - cos` (cosine), `-(q·x)` (dot), `‖q - x‖₂` (L2, not squared).
    pub distance: f32,
    /// Larger is better: `cos`, `q·x`, `-‖q - x‖₂`.
    pub score: f32,
    pub metadata: serde_json::Value,
}

/// What [`Index::add`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AddReport {
    /// Vectors added.
    pub added: usize,
    /// Vectors whose id was already in the index (left unchanged, not duplicated).
    pub skipped_existing: usize,
}

/// A vector index. See the crate documentation and `spec/vector-index.md`.
pub struct Index {
    meta: IndexMeta,
    ids: Vec<String>,
    rows_by_id: HashMap<String, u32>,
    metadata: Vec<serde_json::Value>,
    // Field order matters: `graph` holds handles into `graph_data` (it also keeps its own
    // reference, so this is belt and braces).
    graph: Option<Graph>,
    /// Rows `0..indexed` (prepared: unit length for cosine), the ones in the graph.
    graph_data: Arc<VecBuf>,
    graph_norms: Arc<[f32]>,
    /// Rows `indexed..count`, searched exactly.
    tail: Vec<f32>,
    tail_norms: Vec<f32>,
}

thread_local! {
    static SEARCH: RefCell<(Search, Vec<(f32, u32)>)> = RefCell::new((Search::default(), Vec::new()));
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl Index {
    /// Builds an index over `vectors` (row-major, `ids.len() × dim`). `metadata` has one value
    /// per id, or is empty (every item then has `null` metadata).
    ///
    /// Errors: `dim` 0, lengths that disagree, duplicate or empty ids, NaN or infinite values,
    /// a zero vector under the cosine metric, more than 2³² - 2 vectors.
    pub fn build(
        embedder: &str,
        dim: usize,
        metric: Metric,
        params: BuildParams,
        vectors: &[f32],
        ids: Vec<String>,
        metadata: Vec<serde_json::Value>,
    ) -> Result<Index> {
        if dim == 0 {
            return Err(VectorError::Invalid("dimension must be at least 1".into()));
        }
        let mut index = Index {
            meta: IndexMeta {
                format_version: crate::FORMAT_VERSION,
                embedder: embedder.to_string(),
                dim,
                count: 0,
                metric,
                params,
                indexed: 0,
                hnsw_m: HNSW_M,
            },
            ids: Vec::new(),
            rows_by_id: HashMap::new(),
            metadata: Vec::new(),
            graph: None,
            graph_data: Arc::new(VecBuf::from_slice(&[])),
            graph_norms: Arc::from(Vec::new()),
            tail: Vec::new(),
            tail_norms: Vec::new(),
        };
        let batch = index.check_batch(vectors, &ids, &metadata)?;
        if let Some(dup) = batch.duplicate_of_existing {
            return Err(VectorError::DuplicateId(dup));
        }
        index.append(batch.prepared, batch.norms, ids, metadata, &batch.keep);
        index.rebuild()?;
        Ok(index)
    }

    /// Adds vectors. Ids already in the index are skipped (their vectors and metadata are left
    /// as they are); the same id twice within `ids` is an error, as in [`Index::build`].
    ///
    /// New vectors go to a tail that every search scans exactly (and merges with the graph's
    /// results), so they are found at once. When the tail outgrows
    /// `max(1024, graph rows / 32)` rows, the graph is rebuilt over everything
    /// ([`Index::compact`] forces it).
    pub fn add(
        &mut self,
        vectors: &[f32],
        ids: Vec<String>,
        metadata: Vec<serde_json::Value>,
    ) -> Result<AddReport> {
        let batch = self.check_batch(vectors, &ids, &metadata)?;
        let added = batch.keep.iter().filter(|&&k| k).count();
        let report = AddReport {
            added,
            skipped_existing: ids.len() - added,
        };
        self.append(batch.prepared, batch.norms, ids, metadata, &batch.keep);
        let tail_rows = self.tail_norms.len();
        if !self.meta.params.exact
            && tail_rows > 0
            && (self.graph.is_none() || tail_rows > TAIL_MIN.max(self.meta.indexed / TAIL_FRACTION))
        {
            self.rebuild()?;
        }
        Ok(report)
    }

    /// Folds the exactly searched tail into the graph (a full rebuild). Does nothing for an
    /// exact index or an empty tail.
    pub fn compact(&mut self) -> Result<()> {
        if !self.meta.params.exact && !self.tail_norms.is_empty() {
            self.rebuild()?;
        }
        Ok(())
    }

    /// Changes `ef_search` (the graph is kept; its search structure is reassembled).
    pub fn set_ef_search(&mut self, ef_search: usize) -> Result<()> {
        let ef_search = ef_search.max(1);
        self.meta.params.ef_search = ef_search;
        if let Some(g) = &self.graph {
            self.graph = Some(
                g.with_ef_search(self.meta.metric, self.meta.dim, ef_search)
                    .map_err(VectorError::Invalid)?,
            );
        }
        Ok(())
    }

    /// The `k` nearest items to `query`: through the graph (plus the exact tail), or exactly
    /// when the index is exact or `k > ef_search`. Nearest first; ties by insertion order.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        let q = self.prepare_query(query, "query")?;
        self.search_prepared(&q, k, None)
    }

    /// The `k` nearest items by brute force, whatever the index's mode.
    pub fn search_exact(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        let q = self.prepare_query(query, "query")?;
        let cands = exact::topk_batch(
            self.meta.metric,
            self.meta.dim,
            &self.segments(),
            &q,
            refine(k),
        );
        Ok(self.finish(&q, cands.into_iter().next().unwrap_or_default(), k))
    }

    /// [`Index::search`] for many queries (`queries` row-major, `m × dim`), in parallel.
    pub fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let q = self.prepare_queries(queries)?;
        if self.uses_exact(k) {
            return self.exact_batch_prepared(&q, k);
        }
        q.par_chunks(self.meta.dim)
            .map_init(
                || (Search::default(), Vec::new()),
                |(s, buf), q| self.search_prepared(q, k, Some((s, buf))),
            )
            .collect()
    }

    /// [`Index::search_exact`] for many queries, as blocked matrix products over all cores.
    pub fn search_exact_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let q = self.prepare_queries(queries)?;
        self.exact_batch_prepared(&q, k)
    }

    pub fn meta(&self) -> &IndexMeta {
        &self.meta
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids, in insertion order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Whether `id` is in the index.
    pub fn contains(&self, id: &str) -> bool {
        self.rows_by_id.contains_key(id)
    }

    /// The stored vector (unit length for cosine) and metadata of `id`.
    pub fn get(&self, id: &str) -> Option<(&[f32], &serde_json::Value)> {
        let r = *self.rows_by_id.get(id)? as usize;
        Some((self.row(r), &self.metadata[r]))
    }

    /// Writes the index to `path` atomically (a temporary file in the same directory, then a
    /// rename). See `spec/vector-index.md` for the layout.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::format::save(self, path)
    }

    /// Reads an index written by [`Index::save`]. Only data is read (no code, no pickles);
    /// bad magic, an unknown version, truncation, a checksum mismatch or an inconsistent
    /// header is an error naming the file.
    pub fn load(path: &Path) -> Result<Index> {
        crate::format::load(path)
    }

    /// Errors unless the index was built with `embedder` at dimension `dim`.
    pub fn check_embedder(&self, embedder: &str, dim: usize) -> Result<()> {
        if embedder != self.meta.embedder || dim != self.meta.dim {
            return Err(VectorError::EmbedderMismatch {
                index_embedder: self.meta.embedder.clone(),
                index_dim: self.meta.dim,
                embedder: embedder.to_string(),
                dim,
            });
        }
        Ok(())
    }

    // ---- crate-internal: used by `format` --------------------------------------------------

    pub(crate) fn metadata_values(&self) -> &[serde_json::Value] {
        &self.metadata
    }

    /// All rows, graph rows first.
    pub(crate) fn vector_parts(&self) -> (&[f32], &[f32]) {
        (&self.graph_data, &self.tail)
    }

    pub(crate) fn graph_parts(&self) -> Option<&Parts> {
        self.graph.as_ref().map(Graph::parts)
    }

    /// Puts a loaded index together. `vectors` are prepared rows (`count × dim`); the first
    /// `meta.indexed` are in `parts`.
    pub(crate) fn from_parts(
        meta: IndexMeta,
        ids: Vec<String>,
        metadata: Vec<serde_json::Value>,
        mut vectors: Vec<f32>,
        parts: Option<Parts>,
    ) -> std::result::Result<Index, String> {
        let dim = meta.dim;
        let mut rows_by_id = HashMap::with_capacity(ids.len());
        for (r, id) in ids.iter().enumerate() {
            if rows_by_id.insert(id.clone(), r as u32).is_some() {
                return Err(format!("duplicate id `{id}`"));
            }
        }
        let tail = vectors.split_off(meta.indexed * dim);
        let graph_data = Arc::new(VecBuf::from_slice(&vectors));
        drop(vectors);
        let graph_norms: Arc<[f32]> = graph_data.chunks_exact(dim).map(simd::norm2).collect();
        let tail_norms = tail.chunks_exact(dim).map(simd::norm2).collect();
        let graph = match parts {
            Some(p) => Some(Graph::assemble(
                meta.metric,
                dim,
                graph_data.clone(),
                p,
                meta.params.ef_search,
            )?),
            None => None,
        };
        Ok(Index {
            meta,
            ids,
            rows_by_id,
            metadata,
            graph,
            graph_data,
            graph_norms,
            tail,
            tail_norms,
        })
    }

    // ---- internals -------------------------------------------------------------------------

    fn row(&self, r: usize) -> &[f32] {
        let dim = self.meta.dim;
        let g = self.meta.indexed;
        if r < g {
            &self.graph_data[r * dim..(r + 1) * dim]
        } else {
            &self.tail[(r - g) * dim..(r - g + 1) * dim]
        }
    }

    fn segments(&self) -> Vec<Segment<'_>> {
        vec![
            Segment {
                data: &self.graph_data,
                norms: &self.graph_norms,
                first_row: 0,
            },
            Segment {
                data: &self.tail,
                norms: &self.tail_norms,
                first_row: self.meta.indexed as u32,
            },
        ]
    }

    fn uses_exact(&self, k: usize) -> bool {
        self.graph.is_none() || k > self.meta.params.ef_search
    }

    /// Validates a batch of new items; returns the prepared vectors (all rows), their norms,
    /// and which rows are new.
    fn check_batch(
        &self,
        vectors: &[f32],
        ids: &[String],
        metadata: &[serde_json::Value],
    ) -> Result<Batch> {
        let dim = self.meta.dim;
        let n = ids.len();
        if vectors.len() != n * dim {
            return Err(VectorError::Invalid(format!(
                "{} ids need {} values ({n} × dimension {dim}), got {}",
                n,
                n * dim,
                vectors.len()
            )));
        }
        if !metadata.is_empty() && metadata.len() != n {
            return Err(VectorError::Invalid(format!(
                "{n} ids but {} metadata values (give one per id, or none)",
                metadata.len()
            )));
        }
        if self.ids.len() + n >= u32::MAX as usize - 1 {
            return Err(VectorError::Invalid(
                "an index holds at most 2^32 - 2 vectors".into(),
            ));
        }
        let mut seen = std::collections::HashSet::with_capacity(n);
        let mut keep = Vec::with_capacity(n);
        let mut duplicate_of_existing = None;
        for id in ids {
            if id.is_empty() {
                return Err(VectorError::Invalid("ids must not be empty".into()));
            }
            if id.len() > u32::MAX as usize {
                return Err(VectorError::Invalid("an id is longer than 4 GiB".into()));
            }
            if !seen.insert(id.as_str()) {
                return Err(VectorError::DuplicateId(id.clone()));
            }
            let exists = self.rows_by_id.contains_key(id);
            if exists && duplicate_of_existing.is_none() {
                duplicate_of_existing = Some(id.clone());
            }
            keep.push(!exists);
        }
        let mut prepared = Vec::with_capacity(vectors.len());
        let mut norms = Vec::with_capacity(n);
        for (i, v) in vectors.chunks_exact(dim).enumerate() {
            if let Some(j) = v.iter().position(|x| !x.is_finite()) {
                return Err(VectorError::Invalid(format!(
                    "vector {i} (id `{}`) has a non-finite value ({}) at position {j}",
                    ids[i], v[j]
                )));
            }
            let (p, norm) = self
                .prepare(v)
                .map_err(|e| VectorError::Invalid(format!("vector {i} (id `{}`): {e}", ids[i])))?;
            prepared.extend_from_slice(&p);
            norms.push(norm);
        }
        Ok(Batch {
            prepared,
            norms,
            keep,
            duplicate_of_existing,
        })
    }

    /// Unit length for cosine (an error for a zero vector); returns the prepared vector and its
    /// squared norm (after preparation).
    fn prepare(&self, v: &[f32]) -> std::result::Result<(Vec<f32>, f32), String> {
        let n2 = simd::norm2(v);
        if !n2.is_finite() {
            return Err("its squared norm overflows f32".into());
        }
        match self.meta.metric {
            Metric::Cosine => {
                // Normalise in f64 for accuracy.
                let n = v
                    .iter()
                    .map(|&x| (x as f64) * (x as f64))
                    .sum::<f64>()
                    .sqrt();
                if n == 0.0 {
                    return Err("zero vector: cosine similarity is undefined".into());
                }
                let p: Vec<f32> = v.iter().map(|&x| (x as f64 / n) as f32).collect();
                let n2 = simd::norm2(&p);
                Ok((p, n2))
            }
            Metric::Dot | Metric::L2 => Ok((v.to_vec(), n2)),
        }
    }

    fn prepare_query(&self, query: &[f32], what: &'static str) -> Result<Vec<f32>> {
        if query.len() != self.meta.dim {
            return Err(VectorError::DimMismatch {
                what,
                expected: self.meta.dim,
                got: query.len(),
            });
        }
        if let Some(j) = query.iter().position(|x| !x.is_finite()) {
            return Err(VectorError::Invalid(format!(
                "{what} has a non-finite value ({}) at position {j}",
                query[j]
            )));
        }
        self.prepare(query)
            .map(|(p, _)| p)
            .map_err(|e| VectorError::Invalid(format!("{what}: {e}")))
    }

    fn prepare_queries(&self, queries: &[f32]) -> Result<Vec<f32>> {
        let dim = self.meta.dim;
        if queries.len() % dim != 0 {
            return Err(VectorError::Invalid(format!(
                "queries: {} values is not a multiple of the index dimension {dim}",
                queries.len()
            )));
        }
        let mut out = Vec::with_capacity(queries.len());
        for (i, q) in queries.chunks_exact(dim).enumerate() {
            out.extend(self.prepare_query(q, "query").map_err(|e| match e {
                VectorError::Invalid(m) => VectorError::Invalid(format!("query {i}: {m}")),
                other => other,
            })?);
        }
        Ok(out)
    }

    fn exact_batch_prepared(&self, q: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let cands = exact::topk_batch(
            self.meta.metric,
            self.meta.dim,
            &self.segments(),
            q,
            refine(k),
        );
        Ok(q.chunks_exact(self.meta.dim)
            .zip(cands)
            .map(|(q, c)| self.finish(q, c, k))
            .collect())
    }

    fn search_prepared(
        &self,
        q: &[f32],
        k: usize,
        scratch: Option<(&mut Search, &mut Vec<(f32, u32)>)>,
    ) -> Result<Vec<Hit>> {
        if k == 0 || self.is_empty() {
            return Ok(Vec::new());
        }
        if self.uses_exact(k) {
            let cands = exact::topk_batch(
                self.meta.metric,
                self.meta.dim,
                &self.segments(),
                q,
                refine(k),
            );
            return Ok(self.finish(q, cands.into_iter().next().unwrap_or_default(), k));
        }
        let graph = self.graph.as_ref().expect("uses_exact checked the graph");
        let row = Row::query(self.meta.metric, q);
        let mut cands: Vec<Cand> = Vec::with_capacity(k * 2);
        let mut collect = |s: &mut Search, buf: &mut Vec<(f32, u32)>| {
            graph.search(&row, s, buf);
            cands.extend(buf.iter().take(k).map(|&(key, row)| Cand { key, row }));
        };
        match scratch {
            Some((s, buf)) => collect(s, buf),
            None => SEARCH.with(|cell| {
                let mut guard = cell.borrow_mut();
                let (s, buf) = &mut *guard;
                collect(s, buf)
            }),
        }
        if !self.tail_norms.is_empty() {
            let seg = [Segment {
                data: &self.tail,
                norms: &self.tail_norms,
                first_row: self.meta.indexed as u32,
            }];
            let t = exact::topk_batch(self.meta.metric, self.meta.dim, &seg, q, refine(k));
            cands.extend(t.into_iter().next().unwrap_or_default());
        }
        Ok(self.finish(q, cands, k))
    }

    /// Recomputes the true distance of every candidate, sorts (distance, then row) and keeps k.
    fn finish(&self, q: &[f32], cands: Vec<Cand>, k: usize) -> Vec<Hit> {
        let mut top = TopK::new(k);
        for c in cands {
            top.push(Cand {
                key: self.distance(q, self.row(c.row as usize)),
                row: c.row,
            });
        }
        top.into_sorted()
            .into_iter()
            .map(|c| {
                let r = c.row as usize;
                let score = match self.meta.metric {
                    Metric::Cosine => 1.0 - c.key,
                    Metric::Dot | Metric::L2 => -c.key,
                };
                Hit {
                    id: self.ids[r].clone(),
                    distance: c.key,
                    score,
                    metadata: self.metadata[r].clone(),
                }
            })
            .collect()
    }

    /// The reported distance (smaller is closer).
    fn distance(&self, q: &[f32], x: &[f32]) -> f32 {
        match self.meta.metric {
            Metric::Cosine => 1.0 - simd::dot(q, x),
            Metric::Dot => -simd::dot(q, x),
            Metric::L2 => simd::l2sq(q, x).sqrt(),
        }
    }

    fn append(
        &mut self,
        prepared: Vec<f32>,
        norms: Vec<f32>,
        ids: Vec<String>,
        metadata: Vec<serde_json::Value>,
        keep: &[bool],
    ) {
        let dim = self.meta.dim;
        let mut metadata = metadata.into_iter();
        for (i, id) in ids.into_iter().enumerate() {
            let md = metadata.next().unwrap_or(serde_json::Value::Null);
            if !keep[i] {
                continue;
            }
            let r = self.ids.len() as u32;
            self.rows_by_id.insert(id.clone(), r);
            self.ids.push(id);
            self.metadata.push(md);
            self.tail
                .extend_from_slice(&prepared[i * dim..(i + 1) * dim]);
            self.tail_norms.push(norms[i]);
        }
        self.meta.count = self.ids.len();
    }

    /// Rebuilds the graph over every row (or, for an exact index, keeps every row in the tail).
    fn rebuild(&mut self) -> Result<()> {
        if self.meta.params.exact {
            if self.meta.indexed > 0 {
                let mut all = self.graph_data.to_vec();
                all.extend_from_slice(&self.tail);
                let mut norms = self.graph_norms.to_vec();
                norms.extend_from_slice(&self.tail_norms);
                self.tail = all;
                self.tail_norms = norms;
                self.graph_data = Arc::new(VecBuf::from_slice(&[]));
                self.graph_norms = Arc::from(Vec::new());
                self.meta.indexed = 0;
            }
            self.graph = None;
            return Ok(());
        }
        let mut all = Vec::with_capacity(self.graph_data.len() + self.tail.len());
        all.extend_from_slice(&self.graph_data);
        all.extend_from_slice(&self.tail);
        let mut norms = Vec::with_capacity(self.ids.len());
        norms.extend_from_slice(&self.graph_norms);
        norms.extend_from_slice(&self.tail_norms);
        self.graph = None;
        let data = Arc::new(VecBuf::from_slice(&all));
        drop(all);
        let norms: Arc<[f32]> = Arc::from(norms);
        self.graph_data = data.clone();
        self.graph_norms = norms;
        self.tail = Vec::new();
        self.tail_norms = Vec::new();
        self.meta.indexed = self.ids.len();
        if self.ids.is_empty() {
            return Ok(());
        }
        let p = self.meta.params;
        let g = Graph::build(
            self.meta.metric,
            self.meta.dim,
            data,
            p.ef_construction,
            p.ef_search,
            p.seed,
        )
        .map_err(VectorError::Invalid)?;
        self.graph = Some(g);
        Ok(())
    }
}

/// How many candidates a brute-force scan keeps for `k` results. The scan ranks by a key from
/// blocked matrix products (for L2, `‖x‖² - 2 q·x`, which loses precision to cancellation when
/// norms are large); the candidates are then re-ranked by the distance recomputed directly
/// (`finish`), so a margin of extra candidates makes the final top k exact up to near-ties
/// smaller than the key's rounding.
fn refine(k: usize) -> usize {
    k.saturating_add(k.max(16))
}

struct Batch {
    prepared: Vec<f32>,
    norms: Vec<f32>,
    keep: Vec<bool>,
    duplicate_of_existing: Option<String>,
}
