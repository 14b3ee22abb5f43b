//! Vector store and retrieval metrics for the RAG pipeline (see `spec/vector-index.md`).
//!
//! * [`Index`]: an approximate nearest-neighbour index. The graph is built by
//!   [`instant_distance`] (HNSW, `M` = 32) over vectors kept in one contiguous buffer;
//!   distances use the AVX2+FMA kernels of [`simd`] when the CPU has them. Exact (brute-force)
//!   search runs blocked matrix products over rayon and is the reference for recall.
//! * Index files ([`Index::save`], [`Index::load`]): a versioned, checksummed, data-only
//!   binary layout, written atomically and validated before anything is allocated.
//! * [`npy`]: reading and writing 2-D `float32` `.npy` matrices.
//! * [`metrics`]: qrels, runs, recall/MRR/nDCG at k, with the conventions of ranx.
//!
//! Nothing here panics on bad input or bad files: every problem is a [`VectorError`].

mod buf;
mod error;
mod exact;
mod format;
mod graph;
mod index;
mod metric;
pub mod metrics;
pub mod npy;
pub mod simd;
pub mod synth;

pub use error::{Result, VectorError};
pub use index::{AddReport, BuildParams, Hit, Index, IndexMeta, HNSW_M};
pub use metric::Metric;

/// The index file format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
