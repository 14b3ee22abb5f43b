//! Document loading and chunking for retrieval (RAG) pipelines.
//!
//! * [`load`]: loaders for plain text, Markdown, HTML, JSON Lines and PDF, with
//!   strict encoding handling (UTF-8, UTF-8 with BOM, UTF-16 with BOM; all
//!   else is a clear error naming the file and byte offset) and globbing.
//! * [`chunk`]: fixed, recursive, sentence-aware and Markdown-aware chunkers
//!   whose sizes are measured in characters or tokens ([`chunk::Unit`]), with
//!   one precise overlap rule (see the [`chunk`] module docs and `spec/chunking.md`).
//! * [`stream`]: the fixed and recursive chunkers over a text file of any
//!   size (a 1 GB single line included) in bounded memory, with the same
//!   chunks and ids as loading the file and chunking it in memory.
//!
//! ```
//! use mlp_text::{chunk, ChunkConfig, Format};
//! use std::path::Path;
//!
//! let docs = mlp_text::load::parse_bytes(
//!     Path::new("notes.md"),
//!     "# Notes\n\nFirst point. Second point.\n".as_bytes(),
//!     &Format::Markdown,
//! )
//! .unwrap();
//! assert_eq!(docs[0].metadata["title"], "Notes");
//! let chunks = chunk::markdown(&docs[0].id, &docs[0].text, &ChunkConfig::chars(20, 5)).unwrap();
//! for c in &chunks {
//!     assert_eq!(c.text, &docs[0].text[c.start..c.end]);
//!     assert!(c.text.chars().count() <= 20);
//! }
//! ```

pub mod chunk;
pub mod error;
pub mod load;
mod pdf;
pub mod stream;

pub use chunk::{Chunk, ChunkConfig, Tokenizer, TruncationWarning, Unit, WhitespaceTokenizer};
pub use error::{Result, TextError};
pub use load::{Document, Format, LoadOptions};
pub use stream::{chunk_file_streaming, StreamReport, StreamStrategy};

/// First 16 hex digits of the BLAKE3 hash of `parts` joined by NUL bytes.
pub(crate) fn short_hash(parts: &[&[u8]]) -> String {
    let mut hasher = blake3::Hasher::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(&[0]);
        }
        hasher.update(part);
    }
    hasher.finalize().to_hex()[..16].to_string()
}
