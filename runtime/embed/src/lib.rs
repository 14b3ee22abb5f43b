//! Embedders for retrieval pipelines (the embedders section of the RAG issue; the rules are in
//! `spec/embedders.md`):
//!
//! * [`HashingEmbedder`]: feature hashing of lowercased word n-grams, deterministic on every
//!   platform, no model files.
//! * [`SentenceTransformer`]: a sentence-transformers BERT folder (all-MiniLM-L6-v2 and other
//!   BERT variants) run on an `mlp-compute` backend (CPU or GPU), tokenized by the
//!   `tokenizers` crate with sentence-transformers' truncation rule.
//! * [`TraceEmbedder`]: the trace autoencoder's encoder, embedding seismic traces.
//!
//! [`load`] turns a specification (`hashing`, `hashing:DIM`, or a model folder) into a text
//! [`Embedder`].

pub mod bert;
pub mod error;
pub mod hashing;
pub mod sentence;
pub mod trace;

use std::path::Path;
use std::sync::Arc;

pub use bert::{BertConfig, Pooling};
pub use error::{EmbedError, Result};
pub use hashing::HashingEmbedder;
pub use sentence::SentenceTransformer;
pub use trace::TraceEmbedder;

/// One text's embedding.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    pub vector: Vec<f32>,
    /// Tokens the model actually read, special tokens included, after truncation.
    pub tokens: usize,
    /// Whether the text was longer than the model reads.
    pub truncated: bool,
}

/// A text embedder.
pub trait Embedder: Send + Sync {
    /// A stable id recorded in indexes: the same model files give the same id.
    fn id(&self) -> &str;
    /// The embedding dimension.
    fn dim(&self) -> usize;
    /// Text tokens a chunk may have before it is truncated (special tokens excluded); `None`
    /// is unlimited.
    fn max_tokens(&self) -> Option<usize>;
    /// Text tokens of `text` (special tokens excluded, no truncation).
    fn count_tokens(&self, text: &str) -> usize;
    /// One embedding per text, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Embedding>>;
    /// The tokenizer, for token-aware chunking.
    fn tokenizer(&self) -> Arc<dyn mlp_text::Tokenizer>;
}

/// Dimension of `hashing` without a size.
pub const DEFAULT_HASHING_DIM: usize = 384;

/// The embedder of a specification: `hashing` (384 dimensions, word 1- and 2-grams),
/// `hashing:DIM`, or else the path of a sentence-transformers model folder. `backend` is only
/// called for model folders.
pub fn load(
    spec: &str,
    backend: impl FnOnce() -> mlp_compute::Result<Arc<dyn mlp_compute::Backend>>,
) -> Result<Box<dyn Embedder>> {
    if spec == "hashing" {
        return Ok(Box::new(HashingEmbedder::new(DEFAULT_HASHING_DIM, (1, 2))?));
    }
    if let Some(dim) = spec.strip_prefix("hashing:") {
        let dim: usize = dim.parse().map_err(|_| {
            EmbedError::Config(format!(
                "embedder `{spec}`: `{dim}` is not a dimension (expected hashing:DIM with DIM a positive integer)"
            ))
        })?;
        return Ok(Box::new(HashingEmbedder::new(dim, (1, 2))?));
    }
    let path = Path::new(spec);
    if spec.is_empty() {
        return Err(EmbedError::Config(
            "empty embedder specification (expected hashing, hashing:DIM or a model folder)".into(),
        ));
    }
    if path.is_file() {
        return Err(error::file_err(
            path,
            "is a file; an embedder is `hashing`, `hashing:DIM` or a sentence-transformers model folder (trace autoencoder checkpoints load with TraceEmbedder::load)",
        ));
    }
    if !path.is_dir() {
        return Err(error::file_err(
            path,
            "no such model folder (an embedder is `hashing`, `hashing:DIM` or a sentence-transformers model folder)",
        ));
    }
    let backend = backend()?;
    Ok(Box::new(SentenceTransformer::load(path, backend)?))
}

/// Cosine similarity of two vectors (0 when either is zero), computed in `f64`.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa.sqrt() * bb.sqrt())
    }
}
