//! Errors of the compute layer.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// Operand shapes do not fit the op; both shapes are named.
    #[error("{op}: {message}")]
    Shape { op: &'static str, message: String },
    /// A buffer of the wrong length, or an unknown buffer.
    #[error("buffer error: {0}")]
    Buffer(String),
    /// No GPU adapter (when the GPU was asked for), a lost device, a failed dispatch.
    #[error("GPU: {0}")]
    Gpu(String),
    /// The GPU ran out of memory.
    #[error("GPU out of memory: {0}")]
    OutOfMemory(String),
    /// A host allocation (CPU backend buffers, staging data) larger than the memory
    /// available, refused before it is tried.
    #[error("out of host memory: {0}")]
    HostOutOfMemory(String),
    /// An op the backend does not implement.
    #[error("{backend} backend does not implement {op}")]
    Unsupported {
        backend: &'static str,
        op: &'static str,
    },
    /// Training diverged.
    #[error("{0}")]
    NonFinite(String),
    #[error("{0}")]
    Other(String),
}

/// Shorthand result type.
pub type Result<T, E = ComputeError> = std::result::Result<T, E>;

/// A shape error naming the op and the shapes.
pub fn shape_err(op: &'static str, message: impl Into<String>) -> ComputeError {
    ComputeError::Shape {
        op,
        message: message.into(),
    }
}
