//! Trace headers of every trace as an Arrow table, and its Parquet export.

use crate::error::{Result, SegyError};
use crate::file::SegyFile;
use crate::format::Endian;
use crate::header::{
    self, apply_scalar, trace_field_by_name, TRACE_EXT1_FLOAT_FIELDS, TRACE_EXT1_INT_FIELDS,
    TRACE_FIELDS, TRACE_HEADER_SIZE,
};
use arrow_array::{
    ArrayRef, Float64Array, Int16Array, Int32Array, Int64Array, RecordBatch, UInt16Array,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use std::path::Path;
use std::sync::Arc;

/// Traces per record batch when exporting, so memory stays bounded for huge files.
pub const BATCH_TRACES: usize = 1 << 18;

/// Scaled coordinate columns: name, raw field, scalar field.
const SCALED: &[(&str, &str, &str)] = &[
    ("cdp_x", "CDP_X", "SourceGroupScalar"),
    ("cdp_y", "CDP_Y", "SourceGroupScalar"),
    ("source_x", "SourceX", "SourceGroupScalar"),
    ("source_y", "SourceY", "SourceGroupScalar"),
    ("group_x", "GroupX", "SourceGroupScalar"),
    ("group_y", "GroupY", "SourceGroupScalar"),
    (
        "receiver_group_elevation",
        "ReceiverGroupElevation",
        "ElevationScalar",
    ),
    (
        "source_surface_elevation",
        "SourceSurfaceElevation",
        "ElevationScalar",
    ),
    ("source_depth", "SourceDepth", "ElevationScalar"),
    (
        "receiver_datum_elevation",
        "ReceiverDatumElevation",
        "ElevationScalar",
    ),
    (
        "source_datum_elevation",
        "SourceDatumElevation",
        "ElevationScalar",
    ),
    ("source_water_depth", "SourceWaterDepth", "ElevationScalar"),
    ("group_water_depth", "GroupWaterDepth", "ElevationScalar"),
];

/// The table's schema: `trace` (file position), `iline`/`xline`/`offset_key` (the geometry
/// keys at their configured bytes), every standard field under segyio's name and type, the
/// rev 2 extension 1 fields when the file has them, and coordinates/elevations with their
/// scalars applied (float64).
pub fn schema(f: &SegyFile) -> Arc<Schema> {
    let mut fields = vec![
        Field::new("trace", DataType::UInt64, false),
        Field::new("iline", DataType::Int32, false),
        Field::new("xline", DataType::Int32, false),
        Field::new("offset_key", DataType::Int32, false),
    ];
    for tf in TRACE_FIELDS {
        let dt = match (tf.len, tf.signed) {
            (2, true) => DataType::Int16,
            (2, false) => DataType::UInt16,
            _ => DataType::Int32,
        };
        fields.push(Field::new(tf.name, dt, false));
    }
    if has_ext1(f) {
        for tf in TRACE_EXT1_INT_FIELDS {
            let dt = if tf.signed || tf.len < 8 {
                DataType::Int64
            } else {
                DataType::UInt64
            };
            fields.push(Field::new(tf.name, dt, false));
        }
        for (name, _) in TRACE_EXT1_FLOAT_FIELDS {
            fields.push(Field::new(*name, DataType::Float64, false));
        }
    }
    for (name, _, _) in SCALED {
        fields.push(Field::new(*name, DataType::Float64, false));
    }
    Arc::new(Schema::new(fields))
}

fn has_ext1(f: &SegyFile) -> bool {
    f.trace_header_len >= 2 * TRACE_HEADER_SIZE
}

/// The headers of traces `range` as one record batch.
pub fn batch(f: &SegyFile, range: std::ops::Range<usize>) -> Result<RecordBatch> {
    if range.end > f.traces {
        return Err(SegyError::TraceOutOfRange {
            index: range.end,
            count: f.traces,
        });
    }
    let e = f.endian;
    let headers: Vec<&[u8]> = range
        .clone()
        .map(|i| f.trace_headers_all(i).expect("trace in range"))
        .collect();
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(
            range.clone().map(|i| i as u64),
        )),
        Arc::new(Int32Array::from_iter_values(
            headers.iter().map(|h| f.iline_key.read(h, e)),
        )),
        Arc::new(Int32Array::from_iter_values(
            headers.iter().map(|h| f.xline_key.read(h, e)),
        )),
        Arc::new(Int32Array::from_iter_values(
            headers.iter().map(|h| f.offset_key.read(h, e)),
        )),
    ];
    for tf in TRACE_FIELDS {
        let vals = headers.iter().map(|h| header::get(h, tf, 1, e));
        let col: ArrayRef = match (tf.len, tf.signed) {
            (2, true) => Arc::new(Int16Array::from_iter_values(vals.map(|v| v as i16))),
            (2, false) => Arc::new(UInt16Array::from_iter_values(vals.map(|v| v as u16))),
            _ => Arc::new(Int32Array::from_iter_values(vals.map(|v| v as i32))),
        };
        cols.push(col);
    }
    if has_ext1(f) {
        fn ext<'a>(h: &&'a [u8]) -> &'a [u8] {
            &h[TRACE_HEADER_SIZE..2 * TRACE_HEADER_SIZE]
        }
        for tf in TRACE_EXT1_INT_FIELDS {
            let vals = headers.iter().map(|h| header::get(ext(h), tf, 1, e));
            let col: ArrayRef = if tf.signed || tf.len < 8 {
                Arc::new(Int64Array::from_iter_values(vals))
            } else {
                Arc::new(UInt64Array::from_iter_values(vals.map(|v| v as u64)))
            };
            cols.push(col);
        }
        for (_, byte) in TRACE_EXT1_FLOAT_FIELDS {
            let at = *byte as usize - 1;
            cols.push(Arc::new(Float64Array::from_iter_values(
                headers.iter().map(|h| {
                    let b: [u8; 8] = ext(h)[at..at + 8].try_into().expect("8 bytes");
                    match e {
                        Endian::Big => f64::from_be_bytes(b),
                        Endian::Little => f64::from_le_bytes(b),
                    }
                }),
            )));
        }
    }
    for (_, raw, scalar) in SCALED {
        let (rf, sf) = (
            trace_field_by_name(raw).expect("standard field"),
            trace_field_by_name(scalar).expect("standard field"),
        );
        cols.push(Arc::new(Float64Array::from_iter_values(
            headers
                .iter()
                .map(|h| apply_scalar(header::get(h, rf, 1, e), header::get(h, sf, 1, e))),
        )));
    }
    RecordBatch::try_new(schema(f), cols)
        .map_err(|err| SegyError::Write(format!("building the header table: {err}")))
}

/// The headers of every trace as one record batch.
pub fn headers_table(f: &SegyFile) -> Result<RecordBatch> {
    batch(f, 0..f.traces)
}

/// Writes the headers of every trace to a Parquet file (snappy-compressed), in batches of
/// [`BATCH_TRACES`] traces.
pub fn write_parquet(f: &SegyFile, path: &Path) -> Result<()> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;
    let file = std::fs::File::create(path).map_err(|e| SegyError::io(path, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let perr = |e: parquet::errors::ParquetError| {
        SegyError::io(path, std::io::Error::other(format!("writing Parquet: {e}")))
    };
    let mut w = ArrowWriter::try_new(file, schema(f), Some(props)).map_err(perr)?;
    let mut start = 0;
    while start < f.traces {
        let end = (start + BATCH_TRACES).min(f.traces);
        w.write(&batch(f, start..end)?).map_err(perr)?;
        start = end;
    }
    w.close().map_err(perr)?;
    Ok(())
}
