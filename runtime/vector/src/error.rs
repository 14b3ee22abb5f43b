//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in this crate. Messages are meant for people: they name the
/// file, the row, the id or the two dimensions involved.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// Bad arguments (lengths that disagree, non-finite values, an unknown metric name, ...).
    #[error("{0}")]
    Invalid(String),
    /// A vector or query whose dimension is not the index's.
    #[error(
        "dimension mismatch: the index has dimension {expected}, the {what} has dimension {got}"
    )]
    DimMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// The index was built with another embedder than the one used for the queries.
    #[error(
        "embedder mismatch: the index was built with `{index_embedder}` (dimension {index_dim}), \
         the queries come from `{embedder}` (dimension {dim})"
    )]
    EmbedderMismatch {
        index_embedder: String,
        index_dim: usize,
        embedder: String,
        dim: usize,
    },
    /// The same id twice in one build or one `add` call.
    #[error("duplicate id `{0}`")]
    DuplicateId(String),
    /// The file does not start with the index magic bytes.
    #[error("{}: not an mlp vector index (bad magic bytes)", path.display())]
    BadMagic { path: PathBuf },
    /// The file is a newer (or older) format than this build reads.
    #[error(
        "{}: unsupported index format version {found} (this build reads version {supported})",
        path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// The file is shorter than its header says (or than any index file can be).
    #[error(
        "{}: truncated index file: expected {expected} bytes, found {actual}",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    /// The blake3 checksum at the end of the file does not match its contents.
    #[error("{}: checksum mismatch: the index file is corrupted", path.display())]
    Checksum { path: PathBuf },
    /// The checksum matched but the contents are inconsistent.
    #[error("{}: corrupt index file: {msg}", path.display())]
    Corrupt { path: PathBuf, msg: String },
    /// An I/O error, with the file it happened on.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A `.npy` file that cannot be read as a 2-D float matrix.
    #[error("{}: {msg}", path.display())]
    Npy { path: PathBuf, msg: String },
    /// A qrels line that cannot be parsed.
    #[error("qrels line {line}: {msg}")]
    Qrels { line: usize, msg: String },
}

/// `Result` with [`VectorError`].
pub type Result<T, E = VectorError> = std::result::Result<T, E>;

impl VectorError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        VectorError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        VectorError::Corrupt {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
