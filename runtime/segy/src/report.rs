//! The `inspect` report: what a file is, as JSON and as text.

use crate::file::{FileKind, SegyFile};
use serde::Serialize;

/// Everything `mlp segy inspect` reports. Field names are a contract (other tools read them).
#[derive(Serialize, Debug)]
pub struct Inspect {
    /// "segy" or "su".
    pub kind: &'static str,
    pub file_size: u64,
    /// Major revision from the binary header (0, 1 or 2).
    pub revision: u8,
    pub revision_minor: u8,
    /// Sample format code (1, 2, 3, 5, ...).
    pub sample_format: i16,
    pub sample_format_name: &'static str,
    /// "big" or "little".
    pub endianness: &'static str,
    /// "ebcdic" or "ascii" (null for SU files).
    pub text_encoding: Option<&'static str>,
    /// Number of extended textual headers.
    pub ext_headers: usize,
    /// Samples per trace.
    pub samples: usize,
    pub sample_interval_us: f64,
    /// Time (or depth) of the first sample, ms.
    pub t0_ms: f64,
    pub traces: usize,
    /// Byte offset of the first trace and bytes per trace (headers included).
    pub first_trace_offset: usize,
    pub trace_length: usize,
    /// Inline, crossline and offset key bytes used.
    pub iline_byte: u16,
    pub xline_byte: u16,
    pub offset_byte: u16,
    /// "inline", "crossline" or "unstructured".
    pub sorting: &'static str,
    /// Line numbers (empty when unstructured).
    pub ilines: Vec<i32>,
    pub xlines: Vec<i32>,
    pub offsets: Vec<i32>,
    /// Whether traces are missing from the grid (padded with a mask on reading).
    pub irregular: bool,
    pub missing_traces: usize,
    /// The first missing cells, as [inline, crossline, offset].
    pub missing: Vec<[i32; 3]>,
    /// Why the file is unstructured, when it is.
    pub geometry_note: Option<String>,
    /// The first textual header, decoded (3200 characters, no line breaks).
    pub text: String,
    /// The extended textual headers, decoded.
    pub ext_text: Vec<String>,
    /// Binary header fields by name (empty for SU files).
    pub binary_header: serde_json::Map<String, serde_json::Value>,
}

/// How many missing cells the report lists.
pub const MISSING_LISTED: usize = 100;

impl Inspect {
    /// Builds the report of an open file.
    pub fn of(f: &SegyFile) -> Inspect {
        let g = &f.geometry;
        let (ilines, xlines, offsets, missing_traces, missing) = match &g.cube {
            Some(c) => (
                c.ilines.clone(),
                c.xlines.clone(),
                c.offsets.clone(),
                c.missing,
                c.missing_cells(MISSING_LISTED)
                    .into_iter()
                    .map(|(a, b, c)| [a, b, c])
                    .collect(),
            ),
            None => (Vec::new(), Vec::new(), Vec::new(), 0, Vec::new()),
        };
        Inspect {
            kind: match f.kind {
                FileKind::Segy => "segy",
                FileKind::Su => "su",
            },
            file_size: f.bytes().len() as u64,
            revision: f.revision.0,
            revision_minor: f.revision.1,
            sample_format: f.format.code(),
            sample_format_name: f.format.name(),
            endianness: f.endian.name(),
            text_encoding: f.text_encoding.map(|e| e.name()),
            ext_headers: f.text.len().saturating_sub(1),
            samples: f.samples,
            sample_interval_us: f.sample_interval_us,
            t0_ms: f.t0_ms,
            traces: f.traces,
            first_trace_offset: f.trace0,
            trace_length: f.trace_len,
            iline_byte: f.iline_key.byte,
            xline_byte: f.xline_key.byte,
            offset_byte: f.offset_key.byte,
            sorting: g.sorting.name(),
            ilines,
            xlines,
            offsets,
            irregular: missing_traces > 0,
            missing_traces,
            missing,
            geometry_note: g.reason.clone(),
            text: f.text.first().cloned().unwrap_or_default(),
            ext_text: f.text.iter().skip(1).cloned().collect(),
            binary_header: f
                .binary_fields()
                .into_iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::from(v)))
                .collect(),
        }
    }

    /// A human-readable summary.
    pub fn human(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let lines = |v: &[i32]| match v {
            [] => "-".to_string(),
            [one] => format!("{one}"),
            _ => format!("{} ({}..{})", v.len(), v[0], v[v.len() - 1]),
        };
        let _ = writeln!(
            s,
            "{} file, {} bytes, revision {}.{}",
            self.kind.to_uppercase().replace("SEGY", "SEG-Y"),
            self.file_size,
            self.revision,
            self.revision_minor
        );
        let _ = writeln!(
            s,
            "format      {} ({}), {}-endian",
            self.sample_format, self.sample_format_name, self.endianness
        );
        if let Some(enc) = self.text_encoding {
            let _ = writeln!(
                s,
                "text        {enc}, {} extended header(s)",
                self.ext_headers
            );
        }
        let _ = writeln!(
            s,
            "traces      {} x {} samples at {} us (first sample at {} ms)",
            self.traces, self.samples, self.sample_interval_us, self.t0_ms
        );
        let _ = writeln!(s, "sorting     {}", self.sorting);
        let _ = writeln!(
            s,
            "inlines     {}  (byte {})",
            lines(&self.ilines),
            self.iline_byte
        );
        let _ = writeln!(
            s,
            "crosslines  {}  (byte {})",
            lines(&self.xlines),
            self.xline_byte
        );
        let _ = writeln!(
            s,
            "offsets     {}  (byte {})",
            lines(&self.offsets),
            self.offset_byte
        );
        if self.irregular {
            let _ = writeln!(
                s,
                "irregular   {} missing trace(s), padded with a mask; first: {}",
                self.missing_traces,
                self.missing
                    .iter()
                    .take(5)
                    .map(|m| format!("il {} xl {} off {}", m[0], m[1], m[2]))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let Some(n) = &self.geometry_note {
            let _ = writeln!(s, "note        {n}");
        }
        if !self.text.is_empty() {
            let _ = writeln!(s, "textual header:");
            let chars: Vec<char> = self.text.chars().collect();
            for card in chars.chunks(80) {
                let line: String = card
                    .iter()
                    .map(|&c| if c.is_control() { ' ' } else { c })
                    .collect();
                let line = line.trim_end();
                if !line.is_empty() {
                    let _ = writeln!(s, "  {line}");
                }
            }
        }
        s
    }
}
