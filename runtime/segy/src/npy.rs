//! NumPy `.npy` files: streaming writing and whole-array reading.
//!
//! The writer ([`NpyWriter`]) emits the format-1.0 header up front (format 2.0
//! when the header would not fit a 16-bit length) and then lets the caller
//! append the elements in C order, chunk by chunk, so arrays far larger than
//! memory can be written. [`NpyWriter::finish`] checks that exactly as many
//! elements as the shape announces were written.
//!
//! The reader ([`read_npy`], [`read_npy_from`]) accepts format versions 1.0,
//! 2.0 and 3.0, little-endian, big-endian and byte-order-free descriptors, and
//! returns the data as little-endian raw bytes in an [`NpyArray`]. It never
//! panics on malformed input: every problem is an [`NpyError`].

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

/// The magic string that opens every `.npy` file.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Headers longer than this are refused by the reader (NumPy itself refuses
/// headers over 10 000 bytes unless told otherwise).
const MAX_HEADER_LEN: u64 = 1 << 20;

/// Nesting depth limit of the header's Python literal parser.
const MAX_LITERAL_DEPTH: usize = 32;

/// Element type of an `.npy` array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float (`<f4`).
    F32,
    /// 64-bit IEEE float (`<f8`).
    F64,
    /// Signed 8-bit integer (`|i1`).
    I8,
    /// Signed 16-bit integer (`<i2`).
    I16,
    /// Signed 32-bit integer (`<i4`).
    I32,
    /// Signed 64-bit integer (`<i8`).
    I64,
    /// Unsigned 8-bit integer (`|u1`).
    U8,
    /// Unsigned 16-bit integer (`<u2`).
    U16,
    /// Unsigned 32-bit integer (`<u4`).
    U32,
    /// Unsigned 64-bit integer (`<u8`).
    U64,
    /// Boolean stored as one byte, 0 or 1 (`|b1`).
    Bool,
}

impl DType {
    /// All supported element types.
    pub const ALL: [DType; 11] = [
        DType::F32,
        DType::F64,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::Bool,
    ];

    /// The little-endian NumPy type descriptor written in headers, e.g. `<f4`.
    pub fn descr(self) -> &'static str {
        match self {
            DType::F32 => "<f4",
            DType::F64 => "<f8",
            DType::I8 => "|i1",
            DType::I16 => "<i2",
            DType::I32 => "<i4",
            DType::I64 => "<i8",
            DType::U8 => "|u1",
            DType::U16 => "<u2",
            DType::U32 => "<u4",
            DType::U64 => "<u8",
            DType::Bool => "|b1",
        }
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
        }
    }

    /// NumPy's name of the type, e.g. `float32`.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::Bool => "bool",
        }
    }

    /// Parses a NumPy type descriptor such as `<f4`, `>i2`, `|u1`, `|b1` or
    /// `?`, returning the type and whether its data is big-endian.
    /// Returns `None` for descriptors this module does not support.
    pub fn from_descr(descr: &str) -> Option<(DType, bool)> {
        let (order, rest) = match descr.as_bytes().first()? {
            b'<' | b'>' | b'|' | b'=' => (descr.as_bytes()[0], &descr[1..]),
            _ => (b'=', descr),
        };
        let dtype = match rest {
            "f4" => DType::F32,
            "f8" => DType::F64,
            "i1" => DType::I8,
            "i2" => DType::I16,
            "i4" => DType::I32,
            "i8" => DType::I64,
            "u1" => DType::U8,
            "u2" => DType::U16,
            "u4" => DType::U32,
            "u8" => DType::U64,
            "b1" | "?" => DType::Bool,
            _ => return None,
        };
        let big = match order {
            b'>' => true,
            b'=' => cfg!(target_endian = "big"),
            _ => false,
        };
        // Byte order is meaningless for one-byte types.
        Some((dtype, big && dtype.size() > 1))
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust scalar type that maps to an `.npy` [`DType`].
pub trait Element: Copy {
    /// The `.npy` element type of `Self`.
    const DTYPE: DType;
    /// Appends the little-endian bytes of `self` to `out`.
    fn put_le(self, out: &mut Vec<u8>);
    /// Reads one element from exactly `DTYPE.size()` little-endian bytes.
    fn get_le(bytes: &[u8]) -> Self;
}

macro_rules! element_impl {
    ($t:ty, $d:expr, $n:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get_le(bytes: &[u8]) -> Self {
                let mut b = [0u8; $n];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
        }
    };
}

element_impl!(f32, DType::F32, 4);
element_impl!(f64, DType::F64, 8);
element_impl!(i8, DType::I8, 1);
element_impl!(i16, DType::I16, 2);
element_impl!(i32, DType::I32, 4);
element_impl!(i64, DType::I64, 8);
element_impl!(u8, DType::U8, 1);
element_impl!(u16, DType::U16, 2);
element_impl!(u32, DType::U32, 4);
element_impl!(u64, DType::U64, 8);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn put_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
    fn get_le(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
}

/// Number of elements of an array of `shape` (1 for a 0-d array), or `None`
/// on overflow.
fn element_count(shape: &[usize]) -> Option<u64> {
    shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::try_from(d).ok()?))
}

/// Formats a shape the way NumPy does: `()`, `(5,)`, `(2, 3)`.
fn format_shape(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// Builds the complete header (magic, version, length, padded dictionary)
/// for an array of `dtype` and `shape`. Its length is a multiple of 64.
pub fn header_bytes(dtype: DType, shape: &[usize]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        dtype.descr(),
        format_shape(shape)
    );
    // Format 1.0: 6 magic + 2 version + 2 length; format 2.0: 4-byte length.
    let build = |prefix: usize| {
        let unpadded = prefix + dict.len() + 1;
        let total = unpadded.div_ceil(64) * 64;
        (total, total - prefix)
    };
    let (total, hlen) = build(10);
    let mut out = Vec::with_capacity(total + 64);
    out.extend_from_slice(MAGIC);
    let hlen = if let Ok(h16) = u16::try_from(hlen) {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&h16.to_le_bytes());
        hlen
    } else {
        let (_, hlen) = build(12);
        out.extend_from_slice(&[2, 0]);
        // A dictionary over 4 GiB cannot be built from a slice of usizes in
        // practice; saturate rather than wrap.
        out.extend_from_slice(&u32::try_from(hlen).unwrap_or(u32::MAX).to_le_bytes());
        hlen
    };
    out.extend_from_slice(dict.as_bytes());
    let pad = hlen - dict.len() - 1;
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    out
}

/// Streaming writer of one `.npy` array.
///
/// The header is written by the constructor; the caller then appends the
/// elements in C (row-major) order with [`write_f32`](Self::write_f32),
/// [`write_u8`](Self::write_u8), [`write`](Self::write) or
/// [`write_bytes`](Self::write_bytes), and must call
/// [`finish`](Self::finish), which fails unless exactly the announced number
/// of elements was written. Only a small conversion buffer is held, never
/// the array.
pub struct NpyWriter<W: Write = BufWriter<File>> {
    inner: W,
    dtype: DType,
    shape: Vec<usize>,
    expected_bytes: u64,
    written_bytes: u64,
    scratch: Vec<u8>,
}

impl NpyWriter<BufWriter<File>> {
    /// Creates (or truncates) the file at `path` and writes the header of an
    /// array of `dtype` and `shape`.
    pub fn create(path: impl AsRef<Path>, dtype: DType, shape: &[usize]) -> io::Result<Self> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
        })?;
        Self::new(BufWriter::with_capacity(1 << 20, file), dtype, shape)
    }
}

impl<W: Write> NpyWriter<W> {
    /// Writes the header of an array of `dtype` and `shape` to `inner`.
    pub fn new(mut inner: W, dtype: DType, shape: &[usize]) -> io::Result<Self> {
        let expected_bytes = element_count(shape)
            .and_then(|n| n.checked_mul(dtype.size() as u64))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "npy shape {} of {} is too large",
                        format_shape(shape),
                        dtype
                    ),
                )
            })?;
        inner.write_all(&header_bytes(dtype, shape))?;
        Ok(NpyWriter {
            inner,
            dtype,
            shape: shape.to_vec(),
            expected_bytes,
            written_bytes: 0,
            scratch: Vec::new(),
        })
    }

    /// The element type announced in the header.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape announced in the header.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of whole elements written so far.
    pub fn elements_written(&self) -> u64 {
        self.written_bytes / self.dtype.size() as u64
    }

    /// Number of elements the shape announces.
    pub fn elements_expected(&self) -> u64 {
        self.expected_bytes / self.dtype.size() as u64
    }

    fn check_room(&self, bytes: u64) -> io::Result<()> {
        let after = self.written_bytes.saturating_add(bytes);
        if after > self.expected_bytes {
            let size = self.dtype.size() as u64;
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "npy array of shape {} expects {} elements of {}; writing would bring it to {}",
                    format_shape(&self.shape),
                    self.expected_bytes / size,
                    self.dtype,
                    after.div_ceil(size)
                ),
            ));
        }
        Ok(())
    }

    fn check_dtype(&self, given: DType) -> io::Result<()> {
        if given != self.dtype {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "npy array holds {} elements, cannot append {} elements",
                    self.dtype, given
                ),
            ));
        }
        Ok(())
    }

    /// Appends raw element bytes, already little-endian and in C order.
    /// A call may end in the middle of an element; the next call continues it.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.check_room(bytes.len() as u64)?;
        self.inner.write_all(bytes)?;
        self.written_bytes += bytes.len() as u64;
        Ok(())
    }

    /// Appends elements of any supported type; the type must match the
    /// header's.
    pub fn write<T: Element>(&mut self, values: &[T]) -> io::Result<()> {
        self.check_dtype(T::DTYPE)?;
        let size = T::DTYPE.size();
        self.check_room((values.len() as u64).saturating_mul(size as u64))?;
        const CHUNK_BYTES: usize = 64 * 1024;
        let per_chunk = (CHUNK_BYTES / size).max(1);
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut result = Ok(());
        for chunk in values.chunks(per_chunk) {
            scratch.clear();
            for &v in chunk {
                v.put_le(&mut scratch);
            }
            if let Err(e) = self.inner.write_all(&scratch) {
                result = Err(e);
                break;
            }
            self.written_bytes += scratch.len() as u64;
        }
        self.scratch = scratch;
        result
    }

    /// Appends `f32` elements (the header must announce [`DType::F32`]).
    pub fn write_f32(&mut self, values: &[f32]) -> io::Result<()> {
        self.write(values)
    }

    /// Appends `u8` elements (the header must announce [`DType::U8`] or
    /// [`DType::Bool`]; for booleans the values should be 0 or 1).
    pub fn write_u8(&mut self, values: &[u8]) -> io::Result<()> {
        if self.dtype == DType::Bool {
            return self.write_bytes(values);
        }
        self.check_dtype(DType::U8)?;
        self.write_bytes(values)
    }

    /// Checks that exactly the announced number of elements was written,
    /// flushes, and returns the underlying writer.
    pub fn finish_into_inner(mut self) -> io::Result<W> {
        if self.written_bytes != self.expected_bytes {
            let size = self.dtype.size() as u64;
            let whole = self.written_bytes / size;
            let stray = self.written_bytes % size;
            let partial = if stray > 0 {
                format!(" and {stray} stray bytes")
            } else {
                String::new()
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "npy array of shape {} expected {} elements of {} but {} were written{}",
                    format_shape(&self.shape),
                    self.expected_bytes / size,
                    self.dtype,
                    whole,
                    partial
                ),
            ));
        }
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// Checks that exactly the announced number of elements was written and
    /// flushes. The error names the expected and written element counts.
    pub fn finish(self) -> io::Result<()> {
        self.finish_into_inner().map(|_| ())
    }
}

/// Writes a whole in-memory array to `path` (a convenience over
/// [`NpyWriter`]).
pub fn write_npy<T: Element>(
    path: impl AsRef<Path>,
    shape: &[usize],
    data: &[T],
) -> io::Result<()> {
    let mut w = NpyWriter::create(path, T::DTYPE, shape)?;
    w.write(data)?;
    w.finish()
}

/// Errors of [`read_npy`] and [`read_npy_from`].
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file could not be opened or read.
    #[error("npy: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with `\x93NUMPY`.
    #[error("not an .npy file: missing the \\x93NUMPY magic string")]
    BadMagic,
    /// The format version is not 1.0, 2.0 or 3.0.
    #[error("unsupported .npy format version {0}.{1} (supported: 1.0, 2.0, 3.0)")]
    UnsupportedVersion(u8, u8),
    /// The header is longer than this reader accepts.
    #[error("npy header of {0} bytes is too large (at most {MAX_HEADER_LEN})")]
    HeaderTooLarge(u64),
    /// The header dictionary is malformed.
    #[error("malformed .npy header: {0}")]
    BadHeader(String),
    /// The element type is not supported.
    #[error("unsupported .npy dtype {0:?} (supported: f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1)")]
    UnsupportedDtype(String),
    /// The array is stored in Fortran (column-major) order.
    #[error("npy array is stored in Fortran order (fortran_order: True); only C order is supported, save it with numpy.ascontiguousarray")]
    FortranOrder,
    /// The shape's byte size overflows.
    #[error("npy shape {0:?} is too large")]
    SizeOverflow(Vec<usize>),
    /// The data is shorter than the header announces.
    #[error("truncated .npy data: shape {shape:?} of {dtype} needs {expected} bytes but only {actual} are present")]
    Truncated {
        /// Shape from the header.
        shape: Vec<usize>,
        /// Element type from the header.
        dtype: DType,
        /// Byte count the header announces.
        expected: u64,
        /// Byte count actually present.
        actual: u64,
    },
}

/// An array read from an `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Element type.
    pub dtype: DType,
    /// Shape (empty for a 0-d array).
    pub shape: Vec<usize>,
    /// Elements in C order, little-endian raw bytes.
    pub data: Vec<u8>,
}

impl NpyArray {
    /// Number of elements (1 for a 0-d array).
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements as `T`, or `None` if the array's type is not `T`'s.
    pub fn to_vec<T: Element>(&self) -> Option<Vec<T>> {
        if self.dtype != T::DTYPE {
            return None;
        }
        Some(
            self.data
                .chunks_exact(T::DTYPE.size())
                .map(T::get_le)
                .collect(),
        )
    }

    /// The elements as `f32`, if the array is `float32`.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        self.to_vec()
    }

    /// The elements as `f64`, if the array is `float64`.
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        self.to_vec()
    }

    /// The elements as `i8`, if the array is `int8`.
    pub fn to_i8(&self) -> Option<Vec<i8>> {
        self.to_vec()
    }

    /// The elements as `i16`, if the array is `int16`.
    pub fn to_i16(&self) -> Option<Vec<i16>> {
        self.to_vec()
    }

    /// The elements as `i32`, if the array is `int32`.
    pub fn to_i32(&self) -> Option<Vec<i32>> {
        self.to_vec()
    }

    /// The elements as `i64`, if the array is `int64`.
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        self.to_vec()
    }

    /// The elements as `u8`, if the array is `uint8` or `bool`.
    pub fn to_u8(&self) -> Option<Vec<u8>> {
        match self.dtype {
            DType::U8 | DType::Bool => Some(self.data.clone()),
            _ => None,
        }
    }

    /// The elements as `u16`, if the array is `uint16`.
    pub fn to_u16(&self) -> Option<Vec<u16>> {
        self.to_vec()
    }

    /// The elements as `u32`, if the array is `uint32`.
    pub fn to_u32(&self) -> Option<Vec<u32>> {
        self.to_vec()
    }

    /// The elements as `u64`, if the array is `uint64`.
    pub fn to_u64(&self) -> Option<Vec<u64>> {
        self.to_vec()
    }

    /// The elements as `bool` (non-zero is true), if the array is `bool`.
    pub fn to_bool(&self) -> Option<Vec<bool>> {
        self.to_vec()
    }

    /// The elements of any type converted to `f64` (64-bit integers beyond
    /// 2^53 lose precision; booleans become 0 or 1).
    pub fn cast_f64(&self) -> Vec<f64> {
        let size = self.dtype.size();
        self.data
            .chunks_exact(size)
            .map(|b| match self.dtype {
                DType::F32 => f64::from(f32::get_le(b)),
                DType::F64 => f64::get_le(b),
                DType::I8 => f64::from(i8::get_le(b)),
                DType::I16 => f64::from(i16::get_le(b)),
                DType::I32 => f64::from(i32::get_le(b)),
                DType::I64 => i64::get_le(b) as f64,
                DType::U8 => f64::from(b[0]),
                DType::U16 => f64::from(u16::get_le(b)),
                DType::U32 => f64::from(u32::get_le(b)),
                DType::U64 => u64::get_le(b) as f64,
                DType::Bool => f64::from(u8::from(b[0] != 0)),
            })
            .collect()
    }
}

/// Reads a whole `.npy` file.
///
/// The announced data size is checked against the file's length before any
/// large allocation, so a corrupt header cannot exhaust memory.
pub fn read_npy(path: impl AsRef<Path>) -> Result<NpyArray, NpyError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| {
        NpyError::Io(io::Error::new(
            e.kind(),
            format!("cannot open {}: {e}", path.display()),
        ))
    })?;
    let file_len = file.metadata().ok().map(|m| m.len());
    let mut reader = io::BufReader::new(file);
    let header = read_header(&mut reader)?;
    if let Some(len) = file_len {
        let available = len.saturating_sub(header.header_total);
        if available < header.data_bytes {
            return Err(header.truncated(available));
        }
    }
    read_data(&mut reader, header)
}

/// Reads one `.npy` array from any reader (trailing bytes are left unread).
pub fn read_npy_from<R: Read>(mut reader: R) -> Result<NpyArray, NpyError> {
    let header = read_header(&mut reader)?;
    read_data(&mut reader, header)
}

/// A parsed header.
struct Header {
    dtype: DType,
    big_endian: bool,
    shape: Vec<usize>,
    data_bytes: u64,
    /// Bytes from the start of the file to the first data byte.
    header_total: u64,
}

impl Header {
    fn truncated(&self, actual: u64) -> NpyError {
        NpyError::Truncated {
            shape: self.shape.clone(),
            dtype: self.dtype,
            expected: self.data_bytes,
            actual,
        }
    }
}

/// Reads up to `buf.len()` bytes, returning how many were read (fewer only
/// at end of input).
fn read_fully<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn read_header<R: Read>(r: &mut R) -> Result<Header, NpyError> {
    let mut pre = [0u8; 8];
    let n = read_fully(r, &mut pre)?;
    if n < 6 || &pre[..6] != MAGIC {
        return Err(NpyError::BadMagic);
    }
    if n < 8 {
        return Err(NpyError::BadHeader(
            "file ends inside the version bytes".into(),
        ));
    }
    let (major, minor) = (pre[6], pre[7]);
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => return Err(NpyError::UnsupportedVersion(major, minor)),
    };
    let mut lb = [0u8; 4];
    if read_fully(r, &mut lb[..len_bytes])? < len_bytes {
        return Err(NpyError::BadHeader(
            "file ends inside the header length".into(),
        ));
    }
    let hlen = u64::from(u32::from_le_bytes(lb));
    if hlen > MAX_HEADER_LEN {
        return Err(NpyError::HeaderTooLarge(hlen));
    }
    let mut text = Vec::new();
    r.take(hlen).read_to_end(&mut text)?;
    if (text.len() as u64) < hlen {
        return Err(NpyError::BadHeader(format!(
            "header announces {hlen} bytes but the file ends after {}",
            text.len()
        )));
    }
    let text: String = if major == 3 {
        String::from_utf8(text)
            .map_err(|_| NpyError::BadHeader("header is not valid UTF-8".into()))?
    } else {
        // Formats 1.0 and 2.0 are latin-1.
        text.iter().map(|&b| char::from(b)).collect()
    };
    let dict = parse_header_dict(&text)?;
    let header_total = 8 + len_bytes as u64 + hlen;
    let (dtype, big_endian) = dict.dtype;
    let data_bytes = element_count(&dict.shape)
        .and_then(|n| n.checked_mul(dtype.size() as u64))
        .ok_or_else(|| NpyError::SizeOverflow(dict.shape.clone()))?;
    Ok(Header {
        dtype,
        big_endian,
        shape: dict.shape,
        data_bytes,
        header_total,
    })
}

fn read_data<R: Read>(r: &mut R, header: Header) -> Result<NpyArray, NpyError> {
    // `usize` may be narrower than the announced size on 32-bit targets.
    usize::try_from(header.data_bytes).map_err(|_| NpyError::SizeOverflow(header.shape.clone()))?;
    let mut data = Vec::new();
    r.take(header.data_bytes).read_to_end(&mut data)?;
    if (data.len() as u64) < header.data_bytes {
        return Err(header.truncated(data.len() as u64));
    }
    if header.big_endian {
        for elem in data.chunks_exact_mut(header.dtype.size()) {
            elem.reverse();
        }
    }
    if header.dtype == DType::Bool {
        // NumPy booleans are 0 or 1; normalise anything else.
        for b in &mut data {
            *b = u8::from(*b != 0);
        }
    }
    Ok(NpyArray {
        dtype: header.dtype,
        shape: header.shape,
        data,
    })
}

/// The fields of a header dictionary.
struct HeaderDict {
    dtype: (DType, bool),
    shape: Vec<usize>,
}

/// A Python literal as found in `.npy` headers.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Literal>),
    List(Vec<Literal>),
    Dict(Vec<(Literal, Literal)>),
}

struct LiteralParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl LiteralParser<'_> {
    fn err(&self, what: &str) -> NpyError {
        NpyError::BadHeader(format!("{what} at byte {}", self.pos))
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), NpyError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", char::from(c))))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Literal, NpyError> {
        if depth > MAX_LITERAL_DEPTH {
            return Err(self.err("literal nested too deeply"));
        }
        match self.peek() {
            None => Err(self.err("unexpected end of header")),
            Some(b'\'') | Some(b'"') => self.string(),
            Some(b'(') => {
                self.pos += 1;
                let (items, _) = self.sequence(b')', depth)?;
                Ok(Literal::Tuple(items))
            }
            Some(b'[') => {
                self.pos += 1;
                let (items, _) = self.sequence(b']', depth)?;
                Ok(Literal::List(items))
            }
            Some(b'{') => {
                self.pos += 1;
                self.dict(depth)
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => self.int(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_alphanumeric() {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(Literal::Bool(true)),
                    b"False" => Ok(Literal::Bool(false)),
                    b"None" => Ok(Literal::None),
                    _ => {
                        self.pos = start;
                        Err(self.err("unknown name"))
                    }
                }
            }
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn string(&mut self) -> Result<Literal, NpyError> {
        let quote = self.s[self.pos];
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return Err(self.err("unterminated string"));
            };
            self.pos += 1;
            if c == quote {
                break;
            }
            if c == b'\\' {
                let Some(&e) = self.s.get(self.pos) else {
                    return Err(self.err("unterminated string"));
                };
                self.pos += 1;
                out.push(match e {
                    b'n' => b'\n',
                    b't' => b'\t',
                    other => other,
                });
            } else {
                out.push(c);
            }
        }
        Ok(Literal::Str(String::from_utf8_lossy(&out).into_owned()))
    }

    fn int(&mut self) -> Result<Literal, NpyError> {
        let start = self.pos;
        if matches!(self.s[self.pos], b'-' | b'+') {
            self.pos += 1;
        }
        let digits = self.pos;
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        if self.pos == digits {
            return Err(self.err("expected digits"));
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        let v: i128 = text
            .parse()
            .map_err(|_| NpyError::BadHeader(format!("integer {text} out of range")))?;
        // Python 2 wrote long integers with an `L` suffix.
        if self.pos < self.s.len() && matches!(self.s[self.pos], b'L' | b'l') {
            self.pos += 1;
        }
        Ok(Literal::Int(v))
    }

    /// Parses items up to `close`; returns them and whether a trailing comma
    /// was present.
    fn sequence(&mut self, close: u8, depth: usize) -> Result<(Vec<Literal>, bool), NpyError> {
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok((items, trailing_comma));
            }
            items.push(self.value(depth + 1)?);
            trailing_comma = false;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    trailing_comma = true;
                }
                Some(c) if c == close => {}
                _ => return Err(self.err(&format!("expected ',' or '{}'", char::from(close)))),
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Literal, NpyError> {
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(Literal::Dict(items));
            }
            let key = self.value(depth + 1)?;
            self.expect(b':')?;
            let value = self.value(depth + 1)?;
            items.push((key, value));
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }
}

fn parse_header_dict(text: &str) -> Result<HeaderDict, NpyError> {
    let mut p = LiteralParser {
        s: text.as_bytes(),
        pos: 0,
    };
    let lit = p.value(0)?;
    if p.peek().is_some() {
        return Err(p.err("unexpected text after the header dictionary"));
    }
    let Literal::Dict(items) = lit else {
        return Err(NpyError::BadHeader(
            "header is not a dictionary".to_string(),
        ));
    };
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (k, v) in items {
        let Literal::Str(k) = k else {
            return Err(NpyError::BadHeader(
                "header dictionary key is not a string".to_string(),
            ));
        };
        match k.as_str() {
            "descr" => descr = Some(v),
            "fortran_order" => fortran = Some(v),
            "shape" => shape = Some(v),
            // NumPy refuses extra keys; being lenient costs nothing here.
            _ => {}
        }
    }
    let descr = match descr {
        Some(Literal::Str(s)) => s,
        Some(other) => {
            return Err(NpyError::UnsupportedDtype(format!("{other:?}")));
        }
        None => return Err(NpyError::BadHeader("missing key 'descr'".to_string())),
    };
    let dtype = DType::from_descr(&descr).ok_or(NpyError::UnsupportedDtype(descr))?;
    match fortran {
        Some(Literal::Bool(false)) => {}
        Some(Literal::Bool(true)) => return Err(NpyError::FortranOrder),
        Some(_) => {
            return Err(NpyError::BadHeader(
                "'fortran_order' is not True or False".to_string(),
            ))
        }
        None => {
            return Err(NpyError::BadHeader(
                "missing key 'fortran_order'".to_string(),
            ))
        }
    }
    let shape = match shape {
        Some(Literal::Tuple(items)) => items
            .into_iter()
            .map(|d| match d {
                Literal::Int(n) => usize::try_from(n)
                    .map_err(|_| NpyError::BadHeader(format!("invalid dimension {n} in 'shape'"))),
                _ => Err(NpyError::BadHeader(
                    "'shape' holds a non-integer".to_string(),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(NpyError::BadHeader("'shape' is not a tuple".to_string()));
        }
        None => return Err(NpyError::BadHeader("missing key 'shape'".to_string())),
    };
    Ok(HeaderDict { dtype, shape })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn roundtrip<T: Element + PartialEq + fmt::Debug>(shape: &[usize], data: &[T]) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        write_npy(&path, shape, data).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let header_len = bytes.len() - std::mem::size_of_val(data);
        assert_eq!(header_len % 64, 0, "header length {header_len}");
        let arr = read_npy(&path).unwrap();
        assert_eq!(arr.dtype, T::DTYPE);
        assert_eq!(arr.shape, shape);
        assert_eq!(arr.len(), data.len());
        assert_eq!(arr.to_vec::<T>().unwrap(), data);
        // The in-memory reader agrees.
        assert_eq!(read_npy_from(Cursor::new(&bytes)).unwrap(), arr);
    }

    #[test]
    fn roundtrip_dtypes_and_shapes() {
        let f: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        roundtrip(&[2, 3, 4], &f);
        roundtrip(&[24], &f);
        roundtrip(&[4, 6], &f);
        roundtrip::<f32>(&[], &[7.25]);
        roundtrip::<f32>(&[0], &[]);
        roundtrip::<f32>(&[3, 0, 2], &[]);
        roundtrip(&[2, 2], &[1.5f64, -2.0, f64::MAX, f64::MIN_POSITIVE]);
        roundtrip(&[3], &[-128i8, 0, 127]);
        roundtrip(&[3], &[i16::MIN, 1, i16::MAX]);
        roundtrip(&[3], &[i32::MIN, 1, i32::MAX]);
        roundtrip(&[1, 3], &[i64::MIN, 1, i64::MAX]);
        roundtrip(&[5], &[0u8, 1, 2, 254, 255]);
        roundtrip(&[2], &[0u16, u16::MAX]);
        roundtrip(&[2], &[0u32, u32::MAX]);
        roundtrip(&[2], &[0u64, u64::MAX]);
        roundtrip(&[2, 2], &[true, false, false, true]);
    }

    #[test]
    fn header_text_and_alignment() {
        for shape in [&[][..], &[5], &[2, 3], &[400, 400, 300], &[1; 20]] {
            for dtype in DType::ALL {
                let h = header_bytes(dtype, shape);
                assert_eq!(h.len() % 64, 0);
                assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
                let hlen = u16::from_le_bytes([h[8], h[9]]) as usize;
                assert_eq!(hlen + 10, h.len());
                assert_eq!(*h.last().unwrap(), b'\n');
            }
        }
        let h = header_bytes(DType::F32, &[2, 3, 4]);
        let text = std::str::from_utf8(&h[10..]).unwrap();
        assert!(text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }"));
        let h = header_bytes(DType::U8, &[7]);
        assert!(std::str::from_utf8(&h[10..])
            .unwrap()
            .contains("'shape': (7,)"));
        let h = header_bytes(DType::U8, &[]);
        assert!(std::str::from_utf8(&h[10..])
            .unwrap()
            .contains("'shape': ()"));
    }

    #[test]
    fn huge_header_uses_version_2() {
        // 13000 dimensions of 1 make a dictionary of about 39 kB... too small;
        // 25000 dimensions exceed 65535 bytes.
        let shape = vec![1usize; 25_000];
        let h = header_bytes(DType::I16, &shape);
        assert_eq!(&h[6..8], &[2, 0]);
        assert_eq!(h.len() % 64, 0);
        let hlen = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        assert_eq!(hlen + 12, h.len());
        let mut w = NpyWriter::new(Vec::new(), DType::I16, &shape).unwrap();
        w.write(&[-5i16]).unwrap();
        let bytes = w.finish_into_inner().unwrap();
        let arr = read_npy_from(Cursor::new(bytes)).unwrap();
        assert_eq!(arr.shape, shape);
        assert_eq!(arr.to_i16().unwrap(), vec![-5]);
    }

    #[test]
    fn streaming_in_chunks_and_partial_elements() {
        let mut w = NpyWriter::new(Vec::new(), DType::F32, &[3, 5]).unwrap();
        let vals: Vec<f32> = (0..15).map(|i| i as f32).collect();
        w.write_f32(&vals[..4]).unwrap();
        // One element split over two raw writes.
        let b = vals[4].to_le_bytes();
        w.write_bytes(&b[..1]).unwrap();
        w.write_bytes(&b[1..]).unwrap();
        w.write_f32(&vals[5..]).unwrap();
        assert_eq!(w.elements_written(), 15);
        let bytes = w.finish_into_inner().unwrap();
        let arr = read_npy_from(Cursor::new(bytes)).unwrap();
        assert_eq!(arr.to_f32().unwrap(), vals);
    }

    #[test]
    fn finish_rejects_wrong_counts() {
        let mut w = NpyWriter::new(Vec::new(), DType::F32, &[2, 3]).unwrap();
        w.write_f32(&[1.0; 5]).unwrap();
        let e = w.finish().unwrap_err().to_string();
        assert!(
            e.contains("expected 6") && e.contains("5 were written"),
            "{e}"
        );

        let mut w = NpyWriter::new(Vec::new(), DType::F32, &[2]).unwrap();
        let e = w.write_f32(&[1.0; 3]).unwrap_err().to_string();
        assert!(e.contains("expects 2") && e.contains("3"), "{e}");
        // Nothing was written by the failed call.
        assert_eq!(w.elements_written(), 0);

        let mut w = NpyWriter::new(Vec::new(), DType::U16, &[2]).unwrap();
        w.write_bytes(&[1, 2, 3]).unwrap();
        let e = w.finish().unwrap_err().to_string();
        assert!(e.contains("stray"), "{e}");

        let mut w = NpyWriter::new(Vec::new(), DType::F32, &[2]).unwrap();
        assert!(w.write_u8(&[1, 2]).is_err());
        assert!(w.write(&[1.0f64, 2.0]).is_err());
        let mut w = NpyWriter::new(Vec::new(), DType::Bool, &[2]).unwrap();
        w.write_u8(&[1, 0]).unwrap();
        w.finish().unwrap();

        assert!(NpyWriter::new(Vec::new(), DType::F64, &[usize::MAX, 2]).is_err());
    }

    fn with_header(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        let mut text = dict.to_string();
        let pad = (64 - (10 + text.len() + 1) % 64) % 64;
        text.push_str(&" ".repeat(pad));
        text.push('\n');
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn reads_big_endian_and_variants() {
        let data: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let f = with_header(
            "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
            &data,
        );
        let arr = read_npy_from(Cursor::new(f)).unwrap();
        assert_eq!(arr.to_f32().unwrap(), vec![1.5, -2.0]);

        let data: Vec<u8> = [258u16, 3].iter().flat_map(|v| v.to_be_bytes()).collect();
        let f = with_header(
            "{\"shape\": (1L, 2L), \"fortran_order\": False, \"descr\": \">u2\"}",
            &data,
        );
        let arr = read_npy_from(Cursor::new(f)).unwrap();
        assert_eq!(arr.shape, vec![1, 2]);
        assert_eq!(arr.to_u16().unwrap(), vec![258, 3]);

        let f = with_header(
            "{'descr': '|b1', 'fortran_order': False, 'shape': (3,)}",
            &[0, 1, 7],
        );
        let arr = read_npy_from(Cursor::new(f)).unwrap();
        assert_eq!(arr.to_bool().unwrap(), vec![false, true, true]);
        assert_eq!(arr.cast_f64(), vec![0.0, 1.0, 1.0]);

        // Version 3.0 (UTF-8 header, 4-byte length).
        let mut f = MAGIC.to_vec();
        f.extend_from_slice(&[3, 0]);
        let text = "{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }\n";
        f.extend_from_slice(&(text.len() as u32).to_le_bytes());
        f.extend_from_slice(text.as_bytes());
        f.extend_from_slice(&(-9i32).to_le_bytes());
        let arr = read_npy_from(Cursor::new(f)).unwrap();
        assert_eq!(arr.to_i32().unwrap(), vec![-9]);
        assert_eq!(arr.to_f32(), None);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "magic"),
            (b"\x93NUM".to_vec(), "magic"),
            (b"PK\x03\x04 not numpy at all".to_vec(), "magic"),
            (b"\x93NUMPY".to_vec(), "version"),
            (b"\x93NUMPY\x04\x00\x10\x00".to_vec(), "version 4.0"),
            (b"\x93NUMPY\x01\x00".to_vec(), "length"),
            (b"\x93NUMPY\x01\x00\xff\x00{'descr'".to_vec(), "announces 255"),
            (
                b"\x93NUMPY\x02\x00\xff\xff\xff\x7f".to_vec(),
                "too large",
            ),
            (with_header("[1, 2]", &[]), "not a dictionary"),
            (with_header("{'descr': '<f4'", &[]), "expected"),
            (with_header("{'descr': '<f4', 'shape': (1,)}", &[0; 4]), "fortran_order"),
            (
                with_header("{'descr': '<f2', 'fortran_order': False, 'shape': (1,)}", &[0; 2]),
                "dtype",
            ),
            (
                with_header(
                    "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}",
                    &[0; 4],
                ),
                "dtype",
            ),
            (
                with_header("{'descr': '<f4', 'fortran_order': True, 'shape': (2,)}", &[0; 8]),
                "Fortran",
            ),
            (
                with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", &[]),
                "dimension",
            ),
            (
                with_header("{'descr': '<f4', 'fortran_order': False, 'shape': 3}", &[]),
                "tuple",
            ),
            (
                with_header(
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}",
                    &[],
                ),
                "too large",
            ),
            (with_header(ok_dict, &[0; 23]), "needs 24 bytes but only 23"),
            (with_header(ok_dict, &[]), "needs 24 bytes but only 0"),
            (with_header(&"(".repeat(500), &[]), "deeply"),
            (with_header("{'descr': 'abc", &[]), "unterminated"),
            (with_header("{'descr': '<f4', 'fortran_order': Maybe}", &[]), "unknown name"),
            (with_header("{'descr': '<f4'} trailing", &[]), "after"),
        ];
        for (bytes, needle) in cases {
            let e = read_npy_from(Cursor::new(&bytes))
                .expect_err(needle)
                .to_string();
            assert!(e.contains(needle), "expected {needle:?} in {e:?}");
        }
    }

    #[test]
    fn truncated_file_on_disk_names_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.npy");
        write_npy(&path, &[10, 10], &[1.0f32; 100]).unwrap();
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() - 7]).unwrap();
        let e = read_npy(&path).unwrap_err();
        match &e {
            NpyError::Truncated {
                expected, actual, ..
            } => {
                assert_eq!(*expected, 400);
                assert_eq!(*actual, 393);
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(e.to_string().contains("400") && e.to_string().contains("393"));
        // A header announcing an enormous array must fail cleanly, not try
        // to allocate it.
        let huge = with_header(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000, 1000)}",
            &[0; 16],
        );
        std::fs::write(&path, huge).unwrap();
        assert!(matches!(
            read_npy(&path),
            Err(NpyError::Truncated { actual: 16, .. })
        ));
        assert!(matches!(
            read_npy(dir.path().join("missing.npy")),
            Err(NpyError::Io(_))
        ));
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic pseudo-random byte soup, with and without a valid
        // prefix, must only ever produce errors or arrays.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let good = with_header(
            "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 2), }",
            &[1, 0, 2, 0, 3, 0, 4, 0],
        );
        for round in 0..2000 {
            let mut bytes = if round % 2 == 0 {
                good.clone()
            } else {
                (0..(next() % 200)).map(|_| next() as u8).collect()
            };
            if round % 2 == 0 && !bytes.is_empty() {
                for _ in 0..(1 + next() % 4) {
                    let i = (next() as usize) % bytes.len();
                    bytes[i] = next() as u8;
                }
                let cut = (next() as usize) % (bytes.len() + 1);
                bytes.truncate(cut.max(bytes.len() / 2));
            }
            let _ = read_npy_from(Cursor::new(&bytes));
        }
    }

    /// Whether NumPy can be imported; fails instead of skipping under CI.
    fn numpy_available() -> bool {
        let ok = std::process::Command::new("python3")
            .args(["-c", "import numpy"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("python3 with numpy is required when CI=true");
            }
            eprintln!("skipping: python3 with numpy is not available");
        }
        ok
    }

    #[test]
    fn numpy_reads_our_files_and_we_read_numpys() {
        if !numpy_available() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours.npy");
        let vals: Vec<f32> = (0..24).map(|i| (i as f32) * 0.25 - 1.0).collect();
        write_npy(&ours, &[2, 3, 4], &vals).unwrap();
        let labels = dir.path().join("labels.npy");
        write_npy(&labels, &[3], &[0u8, 1, 0]).unwrap();
        let scalar = dir.path().join("scalar.npy");
        write_npy(&scalar, &[], &[42i64]).unwrap();
        let theirs = dir.path().join("theirs.npy");
        let script = format!(
            r#"
import numpy as np
a = np.load({ours:?})
assert a.dtype == np.float32, a.dtype
assert a.shape == (2, 3, 4), a.shape
assert (a.ravel() == np.arange(24, dtype=np.float32) * 0.25 - 1.0).all(), a
l = np.load({labels:?})
assert l.dtype == np.uint8 and l.shape == (3,) and list(l) == [0, 1, 0]
s = np.load({scalar:?})
assert s.dtype == np.int64 and s.shape == () and int(s) == 42
b = np.arange(6, dtype='>i4').reshape(3, 2) - 2
np.save({theirs:?}, b)
print("numpy-ok")
"#,
            ours = ours.to_str().unwrap(),
            labels = labels.to_str().unwrap(),
            scalar = scalar.to_str().unwrap(),
            theirs = theirs.to_str().unwrap(),
        );
        let out = std::process::Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("numpy-ok"),
            "numpy check failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let arr = read_npy(&theirs).unwrap();
        assert_eq!(arr.shape, vec![3, 2]);
        assert_eq!(arr.to_i32().unwrap(), vec![-2, -1, 0, 1, 2, 3]);
    }
}
