//! Errors of the embedders: every one names the file, field, tensor or argument at fault.

use std::path::{Path, PathBuf};

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A model or checkpoint file is missing, unreadable or malformed.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// The files are well formed but describe a model this crate does not run.
    #[error("{}: unsupported model: {message}", path.display())]
    Unsupported { path: PathBuf, message: String },
    /// An embedder specification or a parameter is invalid (`hashing:0`, `ngrams (3, 1)`).
    #[error("{0}")]
    Config(String),
    /// Bad input to an embedder (a trace of the wrong length, text given to a trace
    /// embedder, a text the tokenizer refuses).
    #[error("{0}")]
    Input(String),
    /// The compute backend failed.
    #[error("compute: {0}")]
    Compute(#[from] mlp_compute::ComputeError),
}

/// Shorthand result type.
pub type Result<T, E = EmbedError> = std::result::Result<T, E>;

/// A [`EmbedError::File`] for `path`.
pub(crate) fn file_err(path: &Path, message: impl Into<String>) -> EmbedError {
    EmbedError::File {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// A [`EmbedError::Unsupported`] for `path`.
pub(crate) fn unsupported(path: &Path, message: impl Into<String>) -> EmbedError {
    EmbedError::Unsupported {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads a whole file; a missing file says so.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io_err(path, e))
}

/// Reads and parses a JSON file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| file_err(path, format!("malformed JSON: {e}")))
}

pub(crate) fn io_err(path: &Path, e: std::io::Error) -> EmbedError {
    if e.kind() == std::io::ErrorKind::NotFound {
        file_err(path, "missing (no such file)")
    } else {
        file_err(path, format!("cannot read: {e}"))
    }
}
