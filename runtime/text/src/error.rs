//! Errors of loaders and chunkers. Every variant names the file (and line or
//! byte offset) it is about, so a failed ingest can be fixed without guessing.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = TextError> = std::result::Result<T, E>;

/// What went wrong while loading or chunking text.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file holds a NUL byte in its first 8 KiB and has no UTF-16 BOM.
    #[error("{path}: binary file (NUL byte at byte offset {offset})")]
    Binary { path: PathBuf, offset: usize },
    /// The bytes are not valid in the detected encoding.
    #[error(
        "{path}: invalid {encoding} at byte offset {offset} \
         (accepted: UTF-8, UTF-8 with BOM, UTF-16 with BOM)"
    )]
    Encoding {
        path: PathBuf,
        encoding: &'static str,
        offset: usize,
    },
    /// The document has no text other than whitespace.
    #[error("{path}: empty document")]
    Empty { path: PathBuf },
    /// A JSON Lines record is unusable.
    #[error("{path}:{line}: {message}")]
    JsonLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A glob pattern is malformed or matched nothing.
    #[error("glob {pattern:?}: {message}")]
    Glob { pattern: String, message: String },
    /// The file is larger than the in-memory loaders accept
    /// ([`crate::load::LoadOptions::max_file_bytes`]).
    #[error(
        "{path}: {size} bytes is over the in-memory loader limit of {limit} bytes; \
         chunk large text files with mlp_text::stream::chunk_file_streaming \
         (bounded memory), or raise LoadOptions::max_file_bytes"
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    /// A PDF whose text cannot be extracted: encrypted, corrupt, or without
    /// a text layer (image-only).
    #[error("{path}: PDF: {message}")]
    Pdf { path: PathBuf, message: String },
    /// A file the streaming chunker cannot process as it is (e.g. UTF-16),
    /// or one that changed while it was being streamed.
    #[error("{path}: {message}")]
    Stream { path: PathBuf, message: String },
    /// A chunker was given an impossible configuration.
    #[error("invalid chunk configuration: {0}")]
    Config(String),
    /// A piece of text that cannot be split further is larger than the chunk
    /// size (only possible with token units whose tokenizer gives a single
    /// character more tokens than `size`).
    #[error("text at byte {start}..{end} cannot be split to fit {size} units")]
    Unsplittable {
        start: usize,
        end: usize,
        size: usize,
    },
}
