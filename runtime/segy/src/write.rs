//! Writing SEG-Y files (rev 1 or 2, any supported format, either byte order), streamed trace
//! by trace so files of any size take bounded memory.

use crate::error::{Result, SegyError};
use crate::format::{Endian, SampleFormat};
use crate::header::{
    self, encode_text, trace_field_by_name, Field, TextEncoding, BINARY_FIELDS, BINARY_SIZE,
    TEXT_SIZE, TRACE_HEADER_SIZE,
};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// What to write.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// SEG-Y revision: 1 or 2.
    pub revision: u8,
    pub format: SampleFormat,
    pub endian: Endian,
    pub samples: usize,
    /// Sample interval in microseconds.
    pub sample_interval_us: u32,
    /// The textual header (first 3200 characters used; lines are 80 characters).
    pub text: String,
    pub text_encoding: TextEncoding,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            revision: 1,
            format: SampleFormat::Ibm,
            endian: Endian::Big,
            samples: 0,
            sample_interval_us: 4000,
            text: String::new(),
            text_encoding: TextEncoding::Ebcdic,
        }
    }
}

/// Builds a textual header of 40 80-column card images (`C 1 ...` to `C40 ...`) from lines.
pub fn card_text(lines: &[&str]) -> String {
    let mut s = String::with_capacity(TEXT_SIZE);
    for i in 0..40 {
        let body = lines.get(i).copied().unwrap_or("");
        let card = format!("C{:>2} {body}", i + 1);
        let card: String = card.chars().take(80).collect();
        s.push_str(&format!("{card:<80}"));
    }
    s
}

/// A 240-byte trace header being filled in, in the writer's byte order.
#[derive(Clone)]
pub struct TraceHeader {
    pub raw: [u8; TRACE_HEADER_SIZE],
    endian: Endian,
}

impl TraceHeader {
    /// An all-zero header.
    pub fn new(endian: Endian) -> TraceHeader {
        TraceHeader {
            raw: [0; TRACE_HEADER_SIZE],
            endian,
        }
    }

    /// A header copied from raw bytes in byte order `from`, converted to `to`.
    pub fn from_raw(raw: &[u8], from: Endian, to: Endian) -> TraceHeader {
        let mut h = TraceHeader::new(to);
        if from == to {
            h.raw.copy_from_slice(&raw[..TRACE_HEADER_SIZE]);
        } else {
            for f in header::TRACE_FIELDS {
                h.set(f, header::get(raw, f, 1, from));
            }
        }
        h
    }

    /// Sets a field (values are truncated to the field's width).
    pub fn set(&mut self, field: &Field, value: i64) -> &mut Self {
        header::set(&mut self.raw, field, 1, value, self.endian);
        self
    }

    /// Sets a field by name (see [`trace_field_by_name`]); unknown names are an error.
    pub fn set_named(&mut self, name: &str, value: i64) -> Result<&mut Self> {
        let f = trace_field_by_name(name)
            .ok_or_else(|| SegyError::Write(format!("unknown trace header field `{name}`")))?;
        Ok(self.set(f, value))
    }

    /// Reads a field back.
    pub fn get(&self, field: &Field) -> i64 {
        header::get(&self.raw, field, 1, self.endian)
    }
}

fn named(name: &str) -> &'static Field {
    trace_field_by_name(name).expect("standard trace field")
}

fn bin(name: &str) -> &'static Field {
    BINARY_FIELDS
        .iter()
        .find(|f| f.name == name)
        .expect("binary field")
}

/// Writes a SEG-Y file trace by trace.
pub struct SegyWriter {
    out: BufWriter<std::fs::File>,
    path: PathBuf,
    opts: WriteOptions,
    traces: u64,
    buf: Vec<u8>,
}

impl SegyWriter {
    /// Creates the file and writes its textual and binary headers.
    pub fn create(path: impl AsRef<Path>, opts: &WriteOptions) -> Result<SegyWriter> {
        let path = path.as_ref().to_path_buf();
        if !(opts.revision == 1 || opts.revision == 2) {
            return Err(SegyError::Write(format!(
                "revision {} cannot be written; choose 1 or 2",
                opts.revision
            )));
        }
        if opts.samples == 0 {
            return Err(SegyError::Write("traces need at least one sample".into()));
        }
        let max_samples = if opts.revision >= 2 {
            i32::MAX as usize
        } else {
            65535
        };
        if opts.samples > max_samples {
            return Err(SegyError::Write(format!(
                "{} samples per trace do not fit a rev {} binary header (at most {max_samples}; \
                 rev 2 holds more)",
                opts.samples, opts.revision
            )));
        }
        if opts.sample_interval_us == 0 || opts.sample_interval_us > 32767 && opts.revision < 2 {
            return Err(SegyError::Write(format!(
                "sample interval {} us cannot be written to a rev {} file (1..=32767 us)",
                opts.sample_interval_us, opts.revision
            )));
        }
        let file = std::fs::File::create(&path).map_err(|e| SegyError::io(&path, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let e = opts.endian;
        let text = encode_text(&opts.text, opts.text_encoding);
        let mut b = [0u8; BINARY_SIZE];
        let mut set = |name: &str, v: i64| header::set(&mut b, bin(name), 3201, v, e);
        set("Traces", 1);
        set(
            "Interval",
            if opts.sample_interval_us <= 32767 {
                opts.sample_interval_us as i64
            } else {
                0
            },
        );
        set(
            "Samples",
            if opts.samples <= 65535 {
                opts.samples as i64
            } else {
                0
            },
        );
        set("Format", opts.format.code() as i64);
        set("EnsembleFold", 1);
        set("SortingCode", 4); // post-stack, sorted by CDP ensemble
        set("MeasurementSystem", 1);
        set("TraceFlag", 1);
        set("ExtendedHeaders", 0);
        if opts.revision >= 2 {
            set("SEGYRevision", 2);
            set("SEGYRevisionMinor", 0);
            set("ByteOrderConstant", 0x0102_0304);
            if opts.samples > 65535 {
                set("ExtSamples", opts.samples as i64);
            }
            // Extended sample interval (IEEE double, bytes 3273-3280).
            let dt = opts.sample_interval_us as f64;
            let bytes = match e {
                Endian::Big => dt.to_be_bytes(),
                Endian::Little => dt.to_le_bytes(),
            };
            b[72..80].copy_from_slice(&bytes);
        } else {
            set("SEGYRevision", 1);
            set("SEGYRevisionMinor", 0);
        }
        let w = |out: &mut BufWriter<std::fs::File>, bytes: &[u8]| {
            out.write_all(bytes)
                .map_err(|err| SegyError::io(&path, err))
        };
        w(&mut out, &text)?;
        w(&mut out, &b)?;
        Ok(SegyWriter {
            out,
            path: path.clone(),
            opts: opts.clone(),
            traces: 0,
            buf: Vec::new(),
        })
    }

    /// A header with the fields every trace of this file shares (sample count and interval)
    /// already set.
    pub fn header(&self) -> TraceHeader {
        let mut h = TraceHeader::new(self.opts.endian);
        let ns = self.opts.samples;
        h.set(
            named("TRACE_SAMPLE_COUNT"),
            if ns <= 65535 { ns as i64 } else { 0 },
        );
        let dt = self.opts.sample_interval_us;
        h.set(
            named("TRACE_SAMPLE_INTERVAL"),
            if dt <= 32767 { dt as i64 } else { 0 },
        );
        h
    }

    /// Appends a trace of `f32` samples (converted to the file's format).
    pub fn write_trace(&mut self, header: &TraceHeader, samples: &[f32]) -> Result<()> {
        self.check_len(samples.len())?;
        let fmt = self.opts.format;
        self.buf.resize(samples.len() * fmt.size(), 0);
        fmt.encode_f32(self.opts.endian, samples, &mut self.buf);
        self.put(header)
    }

    /// Appends a trace of native-type samples, given as little-endian bytes (see
    /// [`SampleFormat::native`]); exact for every format.
    pub fn write_trace_native(&mut self, header: &TraceHeader, native_le: &[u8]) -> Result<()> {
        let fmt = self.opts.format;
        let n = native_le.len() / fmt.native().size();
        if !native_le.len().is_multiple_of(fmt.native().size()) {
            return Err(SegyError::Write(
                "native sample bytes are not whole elements".into(),
            ));
        }
        self.check_len(n)?;
        self.buf.resize(n * fmt.size(), 0);
        fmt.encode_native_le(self.opts.endian, native_le, n, &mut self.buf);
        self.put(header)
    }

    fn check_len(&self, n: usize) -> Result<()> {
        if n != self.opts.samples {
            return Err(SegyError::Write(format!(
                "trace {} has {n} samples; the file's traces have {}",
                self.traces, self.opts.samples
            )));
        }
        Ok(())
    }

    fn put(&mut self, header: &TraceHeader) -> Result<()> {
        if header.endian != self.opts.endian {
            return Err(SegyError::Write(
                "the trace header was built for the other byte order".into(),
            ));
        }
        let path = &self.path;
        self.out
            .write_all(&header.raw)
            .map_err(|e| SegyError::io(path, e))?;
        self.out
            .write_all(&self.buf)
            .map_err(|e| SegyError::io(path, e))?;
        self.traces += 1;
        Ok(())
    }

    /// Number of traces written so far.
    pub fn traces(&self) -> u64 {
        self.traces
    }

    /// Flushes the file; rev 2 files get their trace count written into the binary header.
    pub fn finish(mut self) -> Result<()> {
        let path = self.path.clone();
        let io = |e| SegyError::io(&path, e);
        self.out.flush().map_err(io)?;
        if self.opts.revision >= 2 {
            let f = self.out.get_mut();
            let mut b = [0u8; 8];
            header::write_int(&mut b, 0, 8, self.traces as i64, self.opts.endian);
            f.seek(SeekFrom::Start(3512)).map_err(io)?;
            f.write_all(&b).map_err(io)?;
            f.seek(SeekFrom::End(0)).map_err(io)?;
        }
        self.out.flush().map_err(io)?;
        self.out.get_ref().sync_data().ok();
        Ok(())
    }
}

/// Geometry for [`write_cube`]: line numbers and coordinates of a regular grid.
#[derive(Clone, Debug)]
pub struct Grid {
    pub ilines: Vec<i32>,
    pub xlines: Vec<i32>,
    /// Offsets; one entry for post-stack data.
    pub offsets: Vec<i32>,
    /// CDP x/y of cell (0, 0), metres, and the steps along inlines and crosslines.
    pub origin: (f64, f64),
    pub il_step: (f64, f64),
    pub xl_step: (f64, f64),
}

impl Grid {
    /// Lines numbered from `il0` and `xl0` with unit steps, 25 m bins, no offsets.
    pub fn simple(ni: usize, nx: usize, il0: i32, xl0: i32) -> Grid {
        Grid {
            ilines: (0..ni as i32).map(|i| il0 + i).collect(),
            xlines: (0..nx as i32).map(|j| xl0 + j).collect(),
            offsets: vec![0],
            origin: (500_000.0, 6_000_000.0),
            il_step: (0.0, 25.0),
            xl_step: (25.0, 0.0),
        }
    }

    /// The standard header of cell (i, j, k), for a file written in `endian`; `seq` is the
    /// trace's position in the file.
    pub fn trace_header(
        &self,
        base: &TraceHeader,
        i: usize,
        j: usize,
        k: usize,
        seq: u64,
    ) -> TraceHeader {
        let mut h = base.clone();
        let (il, xl, off) = (self.ilines[i], self.xlines[j], self.offsets[k]);
        let x = self.origin.0 + i as f64 * self.il_step.0 + j as f64 * self.xl_step.0;
        let y = self.origin.1 + i as f64 * self.il_step.1 + j as f64 * self.xl_step.1;
        // Coordinates in centimetres with scalar -100.
        h.set(
            named("TRACE_SEQUENCE_LINE"),
            (j * self.offsets.len() + k + 1) as i64,
        )
        .set(named("TRACE_SEQUENCE_FILE"), seq as i64 + 1)
        .set(named("FieldRecord"), il as i64)
        .set(named("TraceNumber"), xl as i64)
        .set(named("CDP"), (i * self.xlines.len() + j + 1) as i64)
        .set(named("CDP_TRACE"), k as i64 + 1)
        .set(named("TraceIdentificationCode"), 1)
        .set(named("offset"), off as i64)
        .set(named("SourceGroupScalar"), -100)
        .set(named("ElevationScalar"), 1)
        .set(named("CoordinateUnits"), 1)
        .set(named("CDP_X"), (x * 100.0).round() as i64)
        .set(named("CDP_Y"), (y * 100.0).round() as i64)
        .set(named("SourceX"), (x * 100.0).round() as i64)
        .set(named("SourceY"), (y * 100.0).round() as i64)
        .set(named("GroupX"), (x * 100.0).round() as i64)
        .set(named("GroupY"), (y * 100.0).round() as i64)
        .set(named("INLINE_3D"), il as i64)
        .set(named("CROSSLINE_3D"), xl as i64);
        h
    }
}

/// Writes a cube (`[il, xl, (offsets,) samples]`, row-major) as an inline-sorted file.
pub fn write_cube(
    path: impl AsRef<Path>,
    opts: &WriteOptions,
    grid: &Grid,
    data: &[f32],
) -> Result<()> {
    let (ni, nx, no, ns) = (
        grid.ilines.len(),
        grid.xlines.len(),
        grid.offsets.len(),
        opts.samples,
    );
    if data.len() != ni * nx * no * ns {
        return Err(SegyError::Write(format!(
            "the cube has {} values, but {ni} inlines x {nx} crosslines x {no} offsets x {ns} \
             samples need {}",
            data.len(),
            ni * nx * no * ns
        )));
    }
    let mut w = SegyWriter::create(path, opts)?;
    let base = w.header();
    let mut seq = 0u64;
    for i in 0..ni {
        for j in 0..nx {
            for k in 0..no {
                let h = grid.trace_header(&base, i, j, k, seq);
                let at = ((i * nx + j) * no + k) * ns;
                w.write_trace(&h, &data[at..at + ns])?;
                seq += 1;
            }
        }
    }
    w.finish()
}
