//! Errors of reading and writing. Each names the problem and, where there is one, the byte
//! offset in the file where it was found.

use std::path::PathBuf;

/// What went wrong reading or writing a SEG-Y or SU file.
#[derive(Debug, thiserror::Error)]
pub enum SegyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the file is empty (0 bytes)")]
    Empty,
    #[error(
        "the file is {len} bytes: too short for a SEG-Y file, which needs a 3200-byte textual \
         header and a 400-byte binary header (3600 bytes) before the first trace"
    )]
    TooShort { len: u64 },
    #[error(
        "the file holds only its headers (it ends at byte {offset}): there are no traces to read"
    )]
    NoTraces { offset: u64 },
    #[error(
        "unknown sample format code {code} in the binary header (byte offset {offset}); \
         SEG-Y rev 2 defines 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 15 and 16{hint}"
    )]
    UnknownFormat {
        code: i64,
        offset: u64,
        hint: String,
    },
    #[error(
        "sample format 4 (fixed point with gain, byte offset {offset}) is obsolete since SEG-Y \
         rev 1 and is not supported; convert the file with the tool that wrote it"
    )]
    ObsoleteFormat { offset: u64 },
    #[error("the file declares zero samples per trace (binary header byte offset {offset})")]
    ZeroSamples { offset: u64 },
    #[error(
        "trace data from byte offset {trace0} is {data_len} bytes, not a whole number of \
         {trace_size}-byte traces ({whole} whole traces and {rest} bytes left over, starting at \
         byte offset {rest_offset}): the file is truncated or the sample count ({samples}) or \
         format in its binary header is wrong"
    )]
    TraceSizeMismatch {
        trace0: u64,
        data_len: u64,
        trace_size: u64,
        whole: u64,
        rest: u64,
        rest_offset: u64,
        samples: usize,
    },
    #[error(
        "the binary header (byte offset {offset}) says the file holds {declared} traces, but \
         only {available} whole traces fit in its {len} bytes: the file is truncated"
    )]
    TraceCountMismatch {
        declared: u64,
        available: u64,
        len: u64,
        offset: u64,
    },
    #[error(
        "the file is truncated: {what} needs bytes {offset}..{end} but the file is {len} bytes"
    )]
    Truncated {
        what: String,
        offset: u64,
        end: u64,
        len: u64,
    },
    #[error("invalid binary header at byte offset {offset}: {message}")]
    BadBinaryHeader { offset: u64, message: String },
    #[error("invalid {what} byte position {byte}: a 1..240 trace header byte is needed, with room for the field")]
    BadKeyByte { what: &'static str, byte: u16 },
    #[error("{0}")]
    NoGeometry(String),
    #[error("trace {index} does not exist: the file has {count} traces")]
    TraceOutOfRange { index: usize, count: usize },
    #[error("{what} {value} is not in the survey; it has {available}")]
    LineNotFound {
        what: &'static str,
        value: i64,
        available: String,
    },
    #[error("invalid input for writing: {0}")]
    Write(String),
    #[error("the Seismic Unix file {0}")]
    BadSu(String),
}

impl SegyError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> SegyError {
        SegyError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand result type.
pub type Result<T, E = SegyError> = std::result::Result<T, E>;
