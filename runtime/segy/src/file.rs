//! Opening SEG-Y and Seismic Unix files: header parsing, layout, geometry and reads.

use crate::error::{Result, SegyError};
use crate::format::{Endian, SampleFormat};
use crate::geometry::{self, Geometry, Sorting, MISSING};
use crate::header::{
    self, decode_text, detect_text_encoding, Field, KeyField, TextEncoding, BINARY_FIELDS,
    BINARY_SIZE, TEXT_SIZE, TRACE_HEADER_SIZE,
};
use rayon::prelude::*;
use std::ops::Deref;
use std::path::{Path, PathBuf};

/// Where the bytes of an open file live.
pub enum Source {
    /// A read-only memory map of the file.
    Mmap(memmap2::Mmap),
    /// Bytes in memory (small files, or [`SegyFile::from_bytes`]).
    Owned(Vec<u8>),
}

impl Deref for Source {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Source::Mmap(m) => m,
            Source::Owned(v) => v,
        }
    }
}

/// SEG-Y or Seismic Unix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Segy,
    /// Seismic Unix: traces only (240-byte headers, IEEE floats), no file headers.
    Su,
}

/// How to open a file.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// First byte (1-based) of the inline number in trace headers (default 189).
    pub iline: u16,
    /// First byte of the crossline number (default 193).
    pub xline: u16,
    /// First byte of the offset (default 37).
    pub offset: u16,
    /// Skip geometry inference and read the file as plain traces.
    pub unstructured: bool,
    /// Byte order; detected when `None`.
    pub endian: Option<Endian>,
    /// File kind; `None` means Seismic Unix for `.su` files and SEG-Y otherwise.
    pub kind: Option<FileKind>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            iline: 189,
            xline: 193,
            offset: 37,
            unstructured: false,
            endian: None,
            kind: None,
        }
    }
}

/// An open SEG-Y or SU file.
pub struct SegyFile {
    data: Source,
    path: Option<PathBuf>,
    pub kind: FileKind,
    pub endian: Endian,
    /// Encoding of the textual headers (`None` for SU files, which have none).
    pub text_encoding: Option<TextEncoding>,
    /// The textual header and the extended ones, decoded.
    pub text: Vec<String>,
    /// Major and minor revision from the binary header (0.0 for SU).
    pub revision: (u8, u8),
    pub format: SampleFormat,
    /// Samples per trace.
    pub samples: usize,
    /// Sample interval in microseconds.
    pub sample_interval_us: f64,
    /// Time (or depth) of the first sample, in milliseconds (delay recording time, scaled).
    pub t0_ms: f64,
    /// Byte offset of the first trace.
    pub trace0: usize,
    /// Bytes of headers per trace (240, or more with rev 2 additional trace headers).
    pub trace_header_len: usize,
    /// Bytes per trace, headers included.
    pub trace_len: usize,
    /// Number of traces.
    pub traces: usize,
    pub iline_key: KeyField,
    pub xline_key: KeyField,
    pub offset_key: KeyField,
    pub geometry: Geometry,
}

impl std::fmt::Debug for SegyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegyFile")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("endian", &self.endian)
            .field("revision", &self.revision)
            .field("format", &self.format)
            .field("samples", &self.samples)
            .field("traces", &self.traces)
            .field("sorting", &self.geometry.sorting)
            .finish_non_exhaustive()
    }
}

const BIN0: usize = TEXT_SIZE;

fn bin_field(name: &str) -> &'static Field {
    BINARY_FIELDS
        .iter()
        .find(|f| f.name == name)
        .expect("binary header field table has every field the reader uses")
}

impl SegyFile {
    /// Opens a file: memory-maps it, parses its headers and infers its geometry.
    pub fn open(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<SegyFile> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| SegyError::io(path, e))?;
        let meta = file.metadata().map_err(|e| SegyError::io(path, e))?;
        if meta.is_dir() {
            return Err(SegyError::io(
                path,
                std::io::Error::other("is a directory, not a SEG-Y file"),
            ));
        }
        let data = if !meta.is_file() {
            // Pipes and devices (`/dev/stdin`): read the stream into memory.
            use std::io::Read;
            let mut bytes = Vec::new();
            (&file)
                .read_to_end(&mut bytes)
                .map_err(|e| SegyError::io(path, e))?;
            Source::Owned(bytes)
        } else if meta.len() == 0 {
            Source::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only; like every reader of memory-mapped files we rely
            // on the file not being truncated by another process while it is open.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| SegyError::io(path, e))?;
            Source::Mmap(map)
        };
        let kind = opts.kind.unwrap_or_else(|| {
            let su = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("su"));
            if su {
                FileKind::Su
            } else {
                FileKind::Segy
            }
        });
        let mut f = Self::parse(data, kind, opts)?;
        f.path = Some(path.to_path_buf());
        Ok(f)
    }

    /// Parses a file held in memory.
    pub fn from_bytes(bytes: Vec<u8>, opts: &OpenOptions) -> Result<SegyFile> {
        Self::parse(
            Source::Owned(bytes),
            opts.kind.unwrap_or(FileKind::Segy),
            opts,
        )
    }

    /// Tells the kernel that traces `range` will not be read again soon, so it can unmap their
    /// pages (they stay in the page cache). Streaming exports call this as they go so the
    /// process's resident memory stays small on huge files. Does nothing for in-memory bytes.
    pub fn release_traces(&self, range: std::ops::Range<usize>) {
        #[cfg(unix)]
        if let Source::Mmap(m) = &self.data {
            let start = self.trace0 + range.start * self.trace_len;
            let end = (self.trace0 + range.end * self.trace_len).min(m.len());
            // Only whole pages inside the range; madvise needs a page-aligned start.
            const PAGE: usize = 4096;
            let start = start.div_ceil(PAGE) * PAGE;
            let end = end / PAGE * PAGE;
            if end > start {
                // SAFETY: the map is a read-only, shared file mapping: dropping its pages
                // loses nothing, the next access reads them back from the file.
                unsafe {
                    let _ = m.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        start,
                        end - start,
                    );
                }
            }
        }
    }

    /// The path the file was opened from.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The whole file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    fn parse(data: Source, kind: FileKind, opts: &OpenOptions) -> Result<SegyFile> {
        let key = |what: &'static str, byte: u16| {
            KeyField::at(byte).ok_or(SegyError::BadKeyByte { what, byte })
        };
        let iline_key = key("inline", opts.iline)?;
        let xline_key = key("crossline", opts.xline)?;
        let offset_key = key("offset", opts.offset)?;
        let len = data.len() as u64;
        if len == 0 {
            return Err(SegyError::Empty);
        }
        let mut f = SegyFile {
            data,
            path: None,
            kind,
            endian: Endian::Big,
            text_encoding: None,
            text: Vec::new(),
            revision: (0, 0),
            format: SampleFormat::F32,
            samples: 0,
            sample_interval_us: 4000.0,
            t0_ms: 0.0,
            trace0: 0,
            trace_header_len: TRACE_HEADER_SIZE,
            trace_len: 0,
            traces: 0,
            iline_key,
            xline_key,
            offset_key,
            geometry: Geometry::unstructured("not inferred"),
        };
        match kind {
            FileKind::Segy => f.parse_segy(opts)?,
            FileKind::Su => f.parse_su(opts)?,
        }
        f.geometry = if opts.unstructured {
            Geometry::unstructured("read as unstructured traces, as asked")
        } else {
            geometry::infer(&f.keys())
        };
        Ok(f)
    }

    fn parse_segy(&mut self, opts: &OpenOptions) -> Result<()> {
        let len = self.data.len() as u64;
        if len < (TEXT_SIZE + BINARY_SIZE) as u64 {
            if len >= TEXT_SIZE as u64 {
                return Err(SegyError::Truncated {
                    what: "the binary header".into(),
                    offset: TEXT_SIZE as u64,
                    end: (TEXT_SIZE + BINARY_SIZE) as u64,
                    len,
                });
            }
            return Err(SegyError::TooShort { len });
        }
        let bin = &self.data[BIN0..BIN0 + BINARY_SIZE];
        let fmt_field = bin_field("Format");
        let fmt_off = (fmt_field.byte - 1) as u64;
        self.endian = match opts.endian {
            Some(e) => e,
            None => detect_endian(bin),
        };
        let e = self.endian;
        let getb = |name: &str| header::get(bin, bin_field(name), 3201, e);
        let code = getb("Format");
        if code == 4 {
            return Err(SegyError::ObsoleteFormat { offset: fmt_off });
        }
        self.format = SampleFormat::from_code(code as i32).ok_or_else(|| {
            let other = header::get(
                bin,
                fmt_field,
                3201,
                if e == Endian::Big {
                    Endian::Little
                } else {
                    Endian::Big
                },
            );
            let hint = if SampleFormat::is_known_code(other as i32) {
                format!(
                    " (read in the other byte order it is {other}: is the file {}-endian?)",
                    if e == Endian::Big { "little" } else { "big" }
                )
            } else if len as usize <= TEXT_SIZE + BINARY_SIZE + TRACE_HEADER_SIZE {
                "; the file may hold headers only".to_string()
            } else {
                String::new()
            };
            SegyError::UnknownFormat {
                code,
                offset: fmt_off,
                hint,
            }
        })?;
        let major = getb("SEGYRevision") as u8;
        let minor = getb("SEGYRevisionMinor") as u8;
        // Revisions are two bytes, major then minor. Writers that store them as one 16-bit
        // word in a little-endian file swap them: "0.1" and "0.2" do not exist, so read them
        // as 1.0 and 2.0.
        self.revision = if major == 0 && (minor == 1 || minor == 2) {
            (minor, 0)
        } else {
            (major, minor)
        };
        let rev2 = self.revision.0 >= 2;

        // Textual headers, extended ones included.
        let ext_field = bin_field("ExtendedHeaders");
        let ext = getb("ExtendedHeaders");
        let mut pos = TEXT_SIZE + BINARY_SIZE;
        let first_text = &self.data[..TEXT_SIZE];
        let enc = detect_text_encoding(first_text);
        self.text_encoding = Some(enc);
        self.text.push(decode_text(first_text, enc));
        let max_ext = (len as usize - pos) / TEXT_SIZE;
        if ext == -1 {
            // Rev 2: a variable number, ended by a ((SEG: EndText)) stanza.
            loop {
                if pos + TEXT_SIZE > len as usize {
                    return Err(SegyError::Truncated {
                        what: "the extended textual headers (their ((SEG: EndText)) stanza)".into(),
                        offset: pos as u64,
                        end: (pos + TEXT_SIZE) as u64,
                        len,
                    });
                }
                let block = &self.data[pos..pos + TEXT_SIZE];
                let t = decode_text(block, detect_text_encoding(block));
                pos += TEXT_SIZE;
                let end = t.contains("((SEG: EndText))") || t.contains("((SEG:EndText))");
                self.text.push(t);
                if end {
                    break;
                }
            }
        } else if ext < -1 || ext as usize > max_ext {
            return Err(SegyError::BadBinaryHeader {
                offset: (ext_field.byte - 1) as u64,
                message: format!(
                    "{ext} extended textual headers declared, but the file has room for at most \
                     {max_ext} after the binary header"
                ),
            });
        } else {
            for _ in 0..ext {
                let block = &self.data[pos..pos + TEXT_SIZE];
                self.text
                    .push(decode_text(block, detect_text_encoding(block)));
                pos += TEXT_SIZE;
            }
        }
        self.trace0 = pos;
        if rev2 {
            let first = getb("FirstTraceOffset");
            if first != 0 {
                if first < pos as i64 || first as u64 > len {
                    return Err(SegyError::BadBinaryHeader {
                        offset: 3520,
                        message: format!(
                            "the first trace is said to start at byte {first}, outside \
                             {pos}..{len}"
                        ),
                    });
                }
                self.trace0 = first as usize;
            }
            let extra = getb("MaxAdditionalTraceHeaders");
            if extra > 0 {
                if extra > 64 {
                    return Err(SegyError::BadBinaryHeader {
                        offset: 3506,
                        message: format!(
                            "{extra} additional 240-byte trace headers per trace is not \
                             plausible"
                        ),
                    });
                }
                self.trace_header_len = TRACE_HEADER_SIZE * (1 + extra as usize);
            }
        }

        // Samples per trace: rev 2 extended count, the 2-byte count, or trace 0's count.
        let samples_field = bin_field("Samples");
        let mut samples = getb("Samples");
        let ext_samples = getb("ExtSamples");
        if rev2 && ext_samples > 0 {
            samples = ext_samples;
        }
        if samples == 0 && self.data.len() >= self.trace0 + TRACE_HEADER_SIZE {
            let th = &self.data[self.trace0..self.trace0 + TRACE_HEADER_SIZE];
            samples = header::read_int(th, 114, 2, false, e);
        }
        if samples <= 0 {
            if len as usize <= self.trace0 {
                return Err(SegyError::NoTraces { offset: len });
            }
            return Err(SegyError::ZeroSamples {
                offset: (samples_field.byte - 1) as u64,
            });
        }
        self.samples = samples as usize;
        self.trace_len = self.trace_header_len + self.samples * self.format.size();

        // Trace count.
        let data_len = len - self.trace0 as u64;
        if data_len == 0 {
            return Err(SegyError::NoTraces { offset: len });
        }
        let tl = self.trace_len as u64;
        let declared = if rev2 {
            getb("NrTracesInFile") as u64
        } else {
            0
        };
        if declared > 0 {
            if declared.saturating_mul(tl) > data_len {
                return Err(SegyError::TraceCountMismatch {
                    declared,
                    available: data_len / tl,
                    len,
                    offset: 3512,
                });
            }
            self.traces = declared as usize;
        } else {
            if !data_len.is_multiple_of(tl) {
                let whole = data_len / tl;
                return Err(SegyError::TraceSizeMismatch {
                    trace0: self.trace0 as u64,
                    data_len,
                    trace_size: tl,
                    whole,
                    rest: data_len % tl,
                    rest_offset: self.trace0 as u64 + whole * tl,
                    samples: self.samples,
                });
            }
            self.traces = (data_len / tl) as usize;
        }

        // Sample interval as segyio chooses it, and the time of the first sample.
        let th0 = &self.data[self.trace0..self.trace0 + TRACE_HEADER_SIZE];
        let mut bin_dt = getb("Interval") as f64;
        if rev2 && bin_dt <= 0.0 {
            // Rev 2 extended sample interval: an IEEE double at bytes 3273-3280.
            let b: [u8; 8] = bin[72..80].try_into().expect("8 bytes");
            let ext = match e {
                Endian::Big => f64::from_be_bytes(b),
                Endian::Little => f64::from_le_bytes(b),
            };
            if ext.is_finite() && ext > 0.0 {
                bin_dt = ext;
            }
        }
        let tr_dt = header::read_int(th0, 116, 2, true, e) as f64;
        self.sample_interval_us = choose_interval(bin_dt, tr_dt);
        self.t0_ms = first_sample_time(th0, e);
        Ok(())
    }

    fn parse_su(&mut self, opts: &OpenOptions) -> Result<()> {
        let len = self.data.len();
        if len < TRACE_HEADER_SIZE {
            return Err(SegyError::BadSu(format!(
                "is {len} bytes, shorter than one 240-byte trace header"
            )));
        }
        self.format = SampleFormat::F32;
        let th0 = &self.data[..TRACE_HEADER_SIZE];
        // The byte order whose sample count makes the file a whole number of traces.
        let fits = |e: Endian| {
            let ns = header::read_int(th0, 114, 2, false, e) as usize;
            ns > 0 && len.is_multiple_of(TRACE_HEADER_SIZE + 4 * ns)
        };
        self.endian = match opts.endian {
            Some(e) => e,
            None if fits(Endian::Big) => Endian::Big,
            None if fits(Endian::Little) => Endian::Little,
            None => {
                let be = header::read_int(th0, 114, 2, false, Endian::Big);
                let le = header::read_int(th0, 114, 2, false, Endian::Little);
                return Err(SegyError::BadSu(format!(
                    "is {len} bytes, which is not a whole number of traces for the sample count \
                     at byte offset 114 of the first trace header ({be} read big-endian, {le} \
                     little-endian): the file is truncated or not an SU file"
                )));
            }
        };
        let e = self.endian;
        let ns = header::read_int(th0, 114, 2, false, e) as usize;
        if ns == 0 {
            return Err(SegyError::ZeroSamples { offset: 114 });
        }
        self.samples = ns;
        self.trace0 = 0;
        self.trace_len = TRACE_HEADER_SIZE + 4 * ns;
        if !len.is_multiple_of(self.trace_len) {
            return Err(SegyError::TraceSizeMismatch {
                trace0: 0,
                data_len: len as u64,
                trace_size: self.trace_len as u64,
                whole: (len / self.trace_len) as u64,
                rest: (len % self.trace_len) as u64,
                rest_offset: (len - len % self.trace_len) as u64,
                samples: ns,
            });
        }
        self.traces = len / self.trace_len;
        let tr_dt = header::read_int(th0, 116, 2, true, e) as f64;
        self.sample_interval_us = choose_interval(0.0, tr_dt);
        // SU has no delay scalar (bytes 215-216 are unassigned there): the delay is in ms.
        self.t0_ms = header::read_int(th0, 108, 2, true, e) as f64;
        Ok(())
    }

    /// The byte range of trace `i`'s headers.
    #[inline]
    fn header_range(&self, i: usize) -> std::ops::Range<usize> {
        let start = self.trace0 + i * self.trace_len;
        start..start + self.trace_header_len
    }

    /// The raw sample bytes of trace `i`.
    #[inline]
    pub fn trace_bytes(&self, i: usize) -> &[u8] {
        let start = self.trace0 + i * self.trace_len + self.trace_header_len;
        &self.data[start..start + self.samples * self.format.size()]
    }

    /// The 240-byte standard header of trace `i` (raw bytes, file byte order).
    pub fn trace_header(&self, i: usize) -> Result<&[u8]> {
        self.check_trace(i)?;
        let r = self.header_range(i);
        Ok(&self.data[r.start..r.start + TRACE_HEADER_SIZE])
    }

    /// All headers of trace `i`, the rev 2 additional ones included.
    pub fn trace_headers_all(&self, i: usize) -> Result<&[u8]> {
        self.check_trace(i)?;
        Ok(&self.data[self.header_range(i)])
    }

    /// The 400-byte binary header (empty for SU files).
    pub fn binary_header(&self) -> &[u8] {
        match self.kind {
            FileKind::Segy => &self.data[BIN0..BIN0 + BINARY_SIZE],
            FileKind::Su => &[],
        }
    }

    /// Binary header fields and their values (empty for SU files).
    pub fn binary_fields(&self) -> Vec<(&'static str, i64)> {
        let bin = self.binary_header();
        if bin.is_empty() {
            return Vec::new();
        }
        BINARY_FIELDS
            .iter()
            .map(|f| (f.name, header::get(bin, f, 3201, self.endian)))
            .collect()
    }

    /// A trace header field of trace `i`.
    pub fn field(&self, i: usize, field: &Field) -> Result<i64> {
        Ok(header::get(self.trace_header(i)?, field, 1, self.endian))
    }

    /// The values of one header field for every trace, in file order.
    pub fn header_column(&self, field: &Field) -> Vec<i64> {
        (0..self.traces)
            .into_par_iter()
            .with_min_len(4096)
            .map(|i| {
                let r = self.header_range(i);
                header::get(
                    &self.data[r.start..r.start + TRACE_HEADER_SIZE],
                    field,
                    1,
                    self.endian,
                )
            })
            .collect()
    }

    /// (inline, crossline, offset) of every trace.
    ///
    /// Files over 1 GiB are scanned in chunks whose pages are released behind the scan, so
    /// opening a huge file does not map all of it into the process.
    pub fn keys(&self) -> Vec<[i32; 3]> {
        const BIG: usize = 1 << 30;
        let e = self.endian;
        let big = self.data.len() > BIG;
        let chunk = if big { 1 << 16 } else { self.traces.max(1) };
        let mut out = Vec::with_capacity(self.traces);
        let mut start = 0;
        while start < self.traces {
            let end = (start + chunk).min(self.traces);
            out.par_extend((start..end).into_par_iter().with_min_len(4096).map(|i| {
                let h = &self.data[self.header_range(i)];
                [
                    self.iline_key.read(h, e),
                    self.xline_key.read(h, e),
                    self.offset_key.read(h, e),
                ]
            }));
            if big {
                self.release_traces(start..end);
            }
            start = end;
        }
        out
    }

    /// The sample times (or depths) in milliseconds: t0 + i * interval.
    pub fn sample_times(&self) -> Vec<f64> {
        (0..self.samples)
            .map(|i| self.t0_ms + i as f64 * self.sample_interval_us / 1000.0)
            .collect()
    }

    fn check_trace(&self, i: usize) -> Result<()> {
        if i >= self.traces {
            return Err(SegyError::TraceOutOfRange {
                index: i,
                count: self.traces,
            });
        }
        Ok(())
    }

    /// Trace `i` as `f32` into `out` (`samples` long).
    pub fn read_trace_into(&self, i: usize, out: &mut [f32]) -> Result<()> {
        self.check_trace(i)?;
        self.format
            .decode_f32(self.endian, self.trace_bytes(i), &mut out[..self.samples]);
        Ok(())
    }

    /// Trace `i` as `f32`.
    pub fn read_trace(&self, i: usize) -> Result<Vec<f32>> {
        let mut out = vec![0f32; self.samples];
        self.read_trace_into(i, &mut out)?;
        Ok(out)
    }

    /// Traces `range` as `f32`, row-major `[traces, samples]`, into `out`; multi-threaded.
    pub fn read_traces_into(&self, range: std::ops::Range<usize>, out: &mut [f32]) -> Result<()> {
        if range.end > self.traces || range.start > range.end {
            return Err(SegyError::TraceOutOfRange {
                index: range.end,
                count: self.traces,
            });
        }
        let ns = self.samples;
        let out = &mut out[..range.len() * ns];
        let (fmt, e) = (self.format, self.endian);
        out.par_chunks_mut(ns)
            .with_min_len(64)
            .enumerate()
            .for_each(|(k, row)| fmt.decode_f32(e, self.trace_bytes(range.start + k), row));
        Ok(())
    }

    /// Every trace as `f32`, row-major `[traces, samples]`, in file order.
    pub fn read_all(&self) -> Vec<f32> {
        let mut out = alloc_f32(self.traces * self.samples);
        self.read_traces_into(0..self.traces, &mut out)
            .expect("the whole range of traces exists");
        out
    }

    /// Traces `range` in their lossless native type, as little-endian bytes (a `.npy` payload).
    pub fn read_native_into(&self, range: std::ops::Range<usize>, out: &mut [u8]) -> Result<()> {
        if range.end > self.traces || range.start > range.end {
            return Err(SegyError::TraceOutOfRange {
                index: range.end,
                count: self.traces,
            });
        }
        let ns = self.samples;
        let row = ns * self.format.native().size();
        let (fmt, e) = (self.format, self.endian);
        out[..range.len() * row]
            .par_chunks_mut(row)
            .with_min_len(64)
            .enumerate()
            .for_each(|(k, o)| fmt.decode_native_le(e, self.trace_bytes(range.start + k), ns, o));
        Ok(())
    }

    fn cube(&self) -> Result<&geometry::Cube> {
        self.geometry.cube.as_ref().ok_or_else(|| {
            SegyError::NoGeometry(format!(
                "the file has no inline/crossline grid: {}",
                self.geometry
                    .reason
                    .as_deref()
                    .unwrap_or("its traces are unstructured")
            ))
        })
    }

    /// The shape of [`read_cube`](Self::read_cube): `[il, xl, samples]`, or
    /// `[il, xl, offsets, samples]` when there is more than one offset.
    pub fn cube_shape(&self) -> Result<Vec<usize>> {
        let c = self.cube()?;
        let mut s = vec![c.ilines.len(), c.xlines.len()];
        if c.offsets.len() > 1 {
            s.push(c.offsets.len());
        }
        s.push(self.samples);
        Ok(s)
    }

    /// The whole survey as a cube (see [`cube_shape`](Self::cube_shape)), lines in the
    /// order of [`Cube::ilines`](geometry::Cube) and `xlines`. Missing traces read as 0;
    /// [`mask`](Self::mask) tells which they are.
    pub fn read_cube(&self) -> Result<Vec<f32>> {
        let c = self.cube()?;
        let ns = self.samples;
        let mut out = alloc_f32(c.cells() * ns);
        let (fmt, e) = (self.format, self.endian);
        out.par_chunks_mut(ns)
            .with_min_len(64)
            .zip(c.index.par_iter())
            .for_each(|(row, &t)| {
                if t != MISSING {
                    fmt.decode_f32(e, self.trace_bytes(t as usize), row);
                }
            });
        Ok(out)
    }

    /// For each cell of the cube (`[il, xl, (offsets)]`), whether it holds a trace.
    pub fn mask(&self) -> Result<Vec<bool>> {
        Ok(self.cube()?.index.iter().map(|&t| t != MISSING).collect())
    }

    fn line_pos(&self, what: &'static str, lines: &[i32], value: i32) -> Result<usize> {
        lines
            .iter()
            .position(|&l| l == value)
            .ok_or_else(|| SegyError::LineNotFound {
                what,
                value: value as i64,
                available: describe_lines(lines),
            })
    }

    /// One inline: `[xl, (offsets,) samples]`.
    pub fn read_inline(&self, il: i32) -> Result<Vec<f32>> {
        let c = self.cube()?;
        let i = self.line_pos("inline", &c.ilines, il)?;
        let per = c.xlines.len() * c.offsets.len();
        Ok(self.gather(&c.index[i * per..(i + 1) * per]))
    }

    /// One crossline: `[il, (offsets,) samples]`.
    pub fn read_crossline(&self, xl: i32) -> Result<Vec<f32>> {
        let c = self.cube()?;
        let j = self.line_pos("crossline", &c.xlines, xl)?;
        let (nx, no) = (c.xlines.len(), c.offsets.len());
        let cells: Vec<u32> = (0..c.ilines.len())
            .flat_map(|i| (0..no).map(move |k| (i * nx + j) * no + k))
            .map(|cell| c.index[cell])
            .collect();
        Ok(self.gather(&cells))
    }

    fn gather(&self, traces: &[u32]) -> Vec<f32> {
        let ns = self.samples;
        let mut out = vec![0f32; traces.len() * ns];
        let (fmt, e) = (self.format, self.endian);
        out.par_chunks_mut(ns)
            .with_min_len(16)
            .zip(traces.par_iter())
            .for_each(|(row, &t)| {
                if t != MISSING {
                    fmt.decode_f32(e, self.trace_bytes(t as usize), row);
                }
            });
        out
    }

    /// One time (or depth) slice at sample index `s`: `[il, xl, (offsets)]`.
    pub fn read_depth_slice(&self, s: usize) -> Result<Vec<f32>> {
        let c = self.cube()?;
        if s >= self.samples {
            return Err(SegyError::LineNotFound {
                what: "sample index",
                value: s as i64,
                available: format!("samples 0..{}", self.samples),
            });
        }
        let sz = self.format.size();
        let (fmt, e) = (self.format, self.endian);
        let skip = self.trace_header_len + s * sz;
        let mut out = vec![0f32; c.cells()];
        out.par_chunks_mut(1024)
            .zip(c.index.par_chunks(1024))
            .for_each(|(o, idx)| {
                for (v, &t) in o.iter_mut().zip(idx) {
                    if t != MISSING {
                        let at = self.trace0 + t as usize * self.trace_len + skip;
                        fmt.decode_f32(e, &self.data[at..at + sz], std::slice::from_mut(v));
                    }
                }
            });
        Ok(out)
    }

    /// The geometry's sorting.
    pub fn sorting(&self) -> Sorting {
        self.geometry.sorting
    }
}

/// "1..5 (5 lines)" or a short list.
fn describe_lines(lines: &[i32]) -> String {
    match lines {
        [] => "no lines".into(),
        [one] => format!("only {one}"),
        _ => {
            let (lo, hi) = (lines.iter().min().unwrap(), lines.iter().max().unwrap());
            format!("{} lines from {lo} to {hi}", lines.len())
        }
    }
}

/// Detects the byte order from the rev 2 byte-order constant, else from which reading of
/// the format code is a valid code.
pub fn detect_endian(bin: &[u8]) -> Endian {
    let c = header::read_int(bin, 96, 4, false, Endian::Big);
    if c == 0x0102_0304 {
        return Endian::Big;
    }
    if c == 0x0403_0201 {
        return Endian::Little;
    }
    let be = header::read_int(bin, 24, 2, true, Endian::Big) as i32;
    let le = header::read_int(bin, 24, 2, true, Endian::Little) as i32;
    if !SampleFormat::is_known_code(be) && SampleFormat::is_known_code(le) {
        Endian::Little
    } else {
        Endian::Big
    }
}

/// segyio's choice between the binary and trace header intervals, 4000 us when neither says.
fn choose_interval(bin_dt: f64, tr_dt: f64) -> f64 {
    let mut dt = 4000.0;
    if bin_dt <= 0.0 && tr_dt > 0.0 {
        dt = tr_dt;
    }
    if tr_dt <= 0.0 && bin_dt > 0.0 {
        dt = bin_dt;
    }
    if tr_dt == bin_dt && tr_dt > 0.0 {
        dt = tr_dt;
    }
    dt
}

/// Delay recording time of a trace header (bytes 109-110), scaled by bytes 215-216.
fn first_sample_time(th: &[u8], e: Endian) -> f64 {
    let delay = header::read_int(th, 108, 2, true, e);
    let scalar = header::read_int(th, 214, 2, true, e);
    header::apply_scalar(delay, scalar)
}

/// A zeroed `f32` buffer for large reads. Fresh zeroed allocations of this size come straight
/// from the kernel, untouched; on Linux we ask for transparent huge pages, so filling the
/// buffer takes one page fault per 2 MiB instead of one per 4 KiB.
pub fn alloc_f32(n: usize) -> Vec<f32> {
    let v = vec![0f32; n];
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let len = n * std::mem::size_of::<f32>();
        if len >= 4 * HUGE {
            let p = v.as_ptr() as usize;
            let start = (p + HUGE - 1) & !(HUGE - 1);
            let end = (p + len) & !(HUGE - 1);
            if end > start {
                // SAFETY: the range lies inside the allocation we own; MADV_HUGEPAGE only
                // changes how the kernel backs it, never its contents.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
                }
            }
        }
    }
    v
}
