//! 2-D float matrices in NumPy `.npy` files (through the `npyz` crate).
//!
//! Reading accepts format versions 1.0–3.0, `float32` or `float64` (converted to `f32`), either
//! byte order, C order, exactly two dimensions. The header's declared sizes are checked against
//! the file's size before anything is allocated, so a corrupted header cannot cause a huge
//! allocation; everything else is an error naming the file.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use npyz::{DType, NpyFile, NpyHeader, Order, TypeChar, WriterBuilder};

use crate::error::{Result, VectorError};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
const MAX_HEADER: u64 = 1 << 20;

fn err(path: &Path, msg: impl Into<String>) -> VectorError {
    VectorError::Npy {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Reads a 2-D `float32`/`float64` C-order matrix: `(values row-major, rows, cols)`.
pub fn read_f32_matrix(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let file = File::open(path).map_err(|e| VectorError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| VectorError::io(path, e))?.len();
    let mut r = BufReader::new(file);

    // The preamble, checked by hand so that sizes are validated before npyz reads anything.
    let mut pre = [0u8; 12];
    let got = read_up_to(&mut r, &mut pre).map_err(|e| VectorError::io(path, e))?;
    if got < 10 || &pre[..6] != MAGIC {
        return Err(err(path, "not a .npy file (bad magic bytes)"));
    }
    let (header_len, prefix) = match pre[6] {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as u64, 10u64),
        2 | 3 if got >= 12 => (
            u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as u64,
            12u64,
        ),
        v => {
            return Err(err(
                path,
                format!("unsupported .npy format version {v}.{}", pre[7]),
            ))
        }
    };
    if header_len > MAX_HEADER || prefix + header_len > file_len {
        return Err(err(
            path,
            format!("header of {header_len} bytes does not fit the file ({file_len} bytes)"),
        ));
    }
    let mut text = vec![0u8; header_len as usize];
    r.seek(SeekFrom::Start(prefix))
        .and_then(|_| r.read_exact(&mut text))
        .map_err(|e| VectorError::io(path, e))?;
    let shape = precheck_shape(&String::from_utf8_lossy(&text)).map_err(|m| err(path, m))?;
    let data_len = file_len - prefix - header_len;

    r.seek(SeekFrom::Start(0))
        .map_err(|e| VectorError::io(path, e))?;
    let header = NpyHeader::from_reader(&mut r)
        .map_err(|e| err(path, format!("invalid .npy header: {e}")))?;
    if header.shape() != shape.as_slice() {
        return Err(err(path, "invalid .npy header: shape"));
    }
    if shape.len() != 2 {
        return Err(err(
            path,
            format!("expected a 2-D matrix, found shape {:?}", header.shape()),
        ));
    }
    if header.order() != Order::C {
        return Err(err(
            path,
            "Fortran-order arrays are not supported (save with np.ascontiguousarray)",
        ));
    }
    let size = match header.dtype() {
        DType::Plain(ts)
            if ts.type_char() == TypeChar::Float && matches!(ts.size_field(), 4 | 8) =>
        {
            ts.size_field()
        }
        DType::Plain(ts) => {
            return Err(err(
                path,
                format!("dtype {ts} is not supported (expected float32 or float64)"),
            ))
        }
        _ => {
            return Err(err(
                path,
                "structured dtypes are not supported (expected float32 or float64)",
            ))
        }
    };
    let (rows, cols) = (shape[0], shape[1]);
    let n = rows * cols; // cannot overflow: precheck_shape checked the product
    if n.checked_mul(size).is_none_or(|b| b > data_len) {
        return Err(err(
            path,
            format!(
                "shape {rows}×{cols} of {size}-byte floats needs more than the {data_len} data bytes in the file"
            ),
        ));
    }
    let (rows, cols, n) = (rows as usize, cols as usize, n as usize);
    let npy = NpyFile::with_header(header, r);
    let mut out = Vec::with_capacity(n);
    let io_err = |e: std::io::Error| err(path, format!("reading data: {e}"));
    if size == 4 {
        let data = npy.data::<f32>().map_err(|e| err(path, e.to_string()))?;
        for x in data {
            out.push(x.map_err(io_err)?);
        }
    } else {
        let data = npy.data::<f64>().map_err(|e| err(path, e.to_string()))?;
        for x in data {
            out.push(x.map_err(io_err)? as f32);
        }
    }
    if out.len() != n {
        return Err(err(
            path,
            format!("expected {n} values, read {}", out.len()),
        ));
    }
    Ok((out, rows, cols))
}

/// Writes a `rows × cols` `float32` C-order matrix (atomically: temporary file, then rename).
pub fn write_f32_matrix(path: &Path, data: &[f32], rows: usize, cols: usize) -> Result<()> {
    if rows.checked_mul(cols) != Some(data.len()) {
        return Err(VectorError::Invalid(format!(
            "{}: {} values cannot be a {rows}×{cols} matrix",
            path.display(),
            data.len()
        )));
    }
    let mut buf = Vec::with_capacity(data.len() * 4 + 128);
    let mut write = || -> std::io::Result<()> {
        let mut w = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&[rows as u64, cols as u64])
            .writer(&mut buf)
            .begin_nd()?;
        w.extend(data.iter().copied())?;
        w.finish()
    };
    write().map_err(|e| VectorError::io(path, e))?;
    crate::format::write_atomic(path, &buf)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Finds the `'shape': (a, b, ...)` tuple in the header text and checks that its product fits
/// in a `u64` (npyz multiplies without checking).
fn precheck_shape(text: &str) -> std::result::Result<Vec<u64>, String> {
    let at = text
        .find("'shape'")
        .or_else(|| text.find("\"shape\""))
        .ok_or("invalid .npy header: no shape")?;
    let rest = &text[at..];
    let open = rest
        .find('(')
        .ok_or("invalid .npy header: shape is not a tuple")?;
    let close = rest[open..]
        .find(')')
        .ok_or("invalid .npy header: shape is not a tuple")?;
    let mut dims = Vec::new();
    for part in rest[open + 1..open + close].split(',') {
        let p = part.trim().trim_end_matches('L');
        if p.is_empty() {
            continue;
        }
        dims.push(
            p.parse::<u64>()
                .map_err(|_| format!("invalid .npy header: shape entry `{}`", part.trim()))?,
        );
    }
    dims.iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or("invalid .npy header: shape is too large")?;
    Ok(dims)
}
