//! mlp-segy against Python's segyio, the reference reader.
//!
//! Every `*.sgy` and `*.su` file in `../shared/data/segy` and files written here in every
//! sample format, both byte orders and revisions 1 and 2 (plus crossline-sorted, decreasing,
//! pre-stack, custom-key, irregular and raw-bit-pattern files) are dumped by
//! `tests/reference/segyio_dump.py` and compared with what mlp-segy reads: open success,
//! format, trace count, sample times, line numbers and their order, sorting, extended
//! header count, revision, textual header, binary and trace header fields, and samples
//! (raw native bytes and f32 reads of traces, cube, lines and depth slices), bit-exact.
//!
//! Known, intended differences from segyio that are asserted as mlp's behaviour instead:
//! * ASCII textual headers: segyio always decodes EBCDIC (garbling ASCII text); mlp detects
//!   the encoding.
//! * Files whose traces do not form a full grid (shot gathers, missing traces): segyio fails
//!   strict geometry ("unable to find sorting"); mlp reads shot gathers as unstructured and
//!   pads a grid with missing traces, with a mask.
//! * Seismic Unix files with a zero sample interval in the first trace header: segyio gives
//!   every sample the same time; mlp falls back to 4000 us as for SEG-Y.
//! * segyio 1.9 does not know the 3-byte formats (7 and 15): it warns and reads them as IBM
//!   floats, which the dump script turns into an error. Such formats are recorded as
//!   refused and only mlp's round trip is checked.
//! * Revision bytes 3501-3502 of little-endian files: segyio reads them as one 16-bit
//!   little-endian word (major = byte 3502), mlp as the two single bytes SEG-Y defines.
//! * Trace header bytes 115-116 (sample count): segyio reads every trace header field
//!   signed, mlp reads this one unsigned as SEG-Y rev 2 does; the bits are compared.
//! * Bytes 219-222: segyio's 4-byte SourceEnergyDirectionMantissa is not compared (mlp
//!   reads two 2-byte fields there); see [`SKIPPED_HEADER_FIELDS`].
//!
//! Needs `python3` with `segyio` and `numpy`. Without them (or without the shared data)
//! the tests print why and pass, except under `CI=true`, where `.ci/run` must provide them.

use mlp_segy::format::{NativeType, SampleFormat, ALL_FORMATS};
use mlp_segy::geometry::Sorting;
use mlp_segy::header::{self, Field, TextEncoding, BINARY_FIELDS, TRACE_FIELDS};
use mlp_segy::npy::{read_npy, DType, NpyArray};
use mlp_segy::report::Inspect;
use mlp_segy::write::{card_text, Grid, SegyWriter, WriteOptions};
use mlp_segy::{Endian, FileKind, OpenOptions, SegyFile};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------
// Prerequisites
// ---------------------------------------------------------------------------------------

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips the test with a message, or fails it under `CI=true`.
fn skip(why: &str) {
    if in_ci() {
        panic!("{why}; CI=true, so this is a failure: .ci/run must install segyio and numpy");
    }
    eprintln!("skipping segyio reference test: {why}");
}

fn python() -> String {
    std::env::var("MLP_SEGYIO_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Whether `python3` can import segyio and numpy; the reason when it cannot.
fn segyio_ready() -> Result<(), String> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            let py = python();
            match Command::new(&py)
                .args(["-c", "import segyio, numpy"])
                .output()
            {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => Err(format!(
                    "`{py} -c \"import segyio, numpy\"` failed (pip install segyio): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                )),
                Err(e) => Err(format!("cannot run `{py}`: {e}")),
            }
        })
        .clone()
}

fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/segy")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/segyio_dump.py")
}

// ---------------------------------------------------------------------------------------
// Running segyio
// ---------------------------------------------------------------------------------------

/// One file for the dump script.
#[derive(Clone, Debug)]
struct Job {
    path: PathBuf,
    out: PathBuf,
    endian: Endian,
    su: bool,
    iline: u16,
    xline: u16,
}

impl Job {
    fn new(path: &Path, out: PathBuf, endian: Endian) -> Job {
        Job {
            path: path.to_path_buf(),
            out,
            endian,
            su: false,
            iline: 189,
            xline: 193,
        }
    }
}

/// Dumps every job with one Python process and loads the references.
fn run_segyio(jobs: &[Job], work: &Path) -> Vec<Reference> {
    let list: Vec<Value> = jobs
        .iter()
        .map(|j| {
            json!({
                "path": j.path.to_str().expect("utf-8 path"),
                "out": j.out.to_str().expect("utf-8 path"),
                "endian": j.endian.name(),
                "su": j.su,
                "iline": j.iline,
                "xline": j.xline,
                "offset": 37,
            })
        })
        .collect();
    let jobs_file = work.join(format!("jobs-{}.json", jobs.len()));
    std::fs::write(&jobs_file, serde_json::to_vec(&list).unwrap()).unwrap();
    let out = Command::new(python())
        .arg(script())
        .arg("--batch")
        .arg(&jobs_file)
        .output()
        .expect("run segyio_dump.py");
    assert!(
        out.status.success(),
        "segyio_dump.py failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    jobs.iter()
        .map(|j| {
            let meta_path = j.out.join("meta.json");
            let text = std::fs::read_to_string(&meta_path)
                .unwrap_or_else(|e| panic!("{}: {e}", meta_path.display()));
            Reference {
                dir: j.out.clone(),
                meta: serde_json::from_str(&text).expect("meta.json is JSON"),
            }
        })
        .collect()
}

/// What segyio read from one file.
struct Reference {
    dir: PathBuf,
    meta: Value,
}

impl Reference {
    fn ok(&self) -> bool {
        self.meta["ok"].as_bool().unwrap_or(false)
    }
    fn error(&self) -> String {
        self.meta["error"].as_str().unwrap_or("").to_string()
    }
    fn geometry_error(&self) -> Option<String> {
        self.meta["geometry_error"].as_str().map(str::to_string)
    }
    fn has_geometry(&self) -> bool {
        self.ok() && !self.meta["ilines"].is_null()
    }
    fn int(&self, key: &str) -> i64 {
        self.meta[key]
            .as_i64()
            .unwrap_or_else(|| panic!("meta.json {key} is not an integer: {}", self.meta[key]))
    }
    fn ints(&self, key: &str) -> Vec<i32> {
        self.meta[key]
            .as_array()
            .unwrap_or_else(|| panic!("meta.json {key} is not a list"))
            .iter()
            .map(|v| v.as_i64().unwrap() as i32)
            .collect()
    }
    fn npy(&self, name: &str) -> NpyArray {
        let p = self.dir.join(name);
        read_npy(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }
}

// ---------------------------------------------------------------------------------------
// Findings
// ---------------------------------------------------------------------------------------

/// Mismatches (failures) and notes, collected so one run reports all of them.
#[derive(Default)]
struct Findings {
    errors: Vec<String>,
    notes: BTreeSet<String>,
}

impl Findings {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.errors.push(what());
        }
    }
    fn note(&mut self, what: String) {
        self.notes.insert(what);
    }
    fn finish(self, test: &str) {
        for n in &self.notes {
            eprintln!("[{test}] note: {n}");
        }
        if !self.errors.is_empty() {
            panic!(
                "{test}: {} mismatch(es) with segyio:\n  - {}",
                self.errors.len(),
                self.errors.join("\n  - ")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn npy_dtype(t: NativeType) -> DType {
    match t {
        NativeType::F32 => DType::F32,
        NativeType::F64 => DType::F64,
        NativeType::I8 => DType::I8,
        NativeType::I16 => DType::I16,
        NativeType::I32 => DType::I32,
        NativeType::I64 => DType::I64,
        NativeType::U8 => DType::U8,
        NativeType::U16 => DType::U16,
        NativeType::U32 => DType::U32,
        NativeType::U64 => DType::U64,
    }
}

/// A segyio array's values as mlp's f32 reads give them: floats as they are, f64 and
/// integers converted with `as f32` (what mlp's f32 decoding does).
fn npy_as_f32(a: &NpyArray) -> Vec<f32> {
    let s = a.dtype.size();
    a.data
        .chunks_exact(s)
        .map(|b| match a.dtype {
            DType::F32 => f32::from_le_bytes(b.try_into().unwrap()),
            DType::F64 => f64::from_le_bytes(b.try_into().unwrap()) as f32,
            DType::I8 => b[0] as i8 as f32,
            DType::U8 | DType::Bool => b[0] as f32,
            DType::I16 => i16::from_le_bytes(b.try_into().unwrap()) as f32,
            DType::U16 => u16::from_le_bytes(b.try_into().unwrap()) as f32,
            DType::I32 => i32::from_le_bytes(b.try_into().unwrap()) as f32,
            DType::U32 => u32::from_le_bytes(b.try_into().unwrap()) as f32,
            DType::I64 => i64::from_le_bytes(b.try_into().unwrap()) as f32,
            DType::U64 => u64::from_le_bytes(b.try_into().unwrap()) as f32,
        })
        .collect()
}

/// Bit-exact comparison of f32 arrays, reporting the first differences.
fn cmp_f32(fd: &mut Findings, what: &str, ours: &[f32], theirs: &[f32]) {
    if ours.len() != theirs.len() {
        fd.errors.push(format!(
            "{what}: mlp has {} values, segyio {}",
            ours.len(),
            theirs.len()
        ));
        return;
    }
    let bad: Vec<usize> = (0..ours.len())
        .filter(|&i| ours[i].to_bits() != theirs[i].to_bits())
        .collect();
    if !bad.is_empty() {
        let first: Vec<String> = bad
            .iter()
            .take(4)
            .map(|&i| {
                format!(
                    "[{i}] mlp {:e} ({:#010x}) segyio {:e} ({:#010x})",
                    ours[i],
                    ours[i].to_bits(),
                    theirs[i],
                    theirs[i].to_bits()
                )
            })
            .collect();
        fd.errors.push(format!(
            "{what}: {} of {} values differ, first {}",
            bad.len(),
            ours.len(),
            first.join(", ")
        ));
    }
}

/// Bit-exact comparison of native little-endian sample bytes.
fn cmp_native(fd: &mut Findings, what: &str, elem: usize, ours: &[u8], theirs: &[u8]) {
    if ours.len() != theirs.len() {
        fd.errors.push(format!(
            "{what}: mlp has {} bytes, segyio {}",
            ours.len(),
            theirs.len()
        ));
        return;
    }
    let bad: Vec<usize> = ours
        .chunks_exact(elem)
        .zip(theirs.chunks_exact(elem))
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i)
        .collect();
    if !bad.is_empty() {
        let hex = |b: &[u8]| {
            b.iter()
                .rev()
                .map(|x| format!("{x:02x}"))
                .collect::<String>()
        };
        let first: Vec<String> = bad
            .iter()
            .take(4)
            .map(|&i| {
                let r = i * elem..(i + 1) * elem;
                format!(
                    "[{i}] mlp 0x{} segyio 0x{}",
                    hex(&ours[r.clone()]),
                    hex(&theirs[r])
                )
            })
            .collect();
        fd.errors.push(format!(
            "{what}: {} of {} samples differ, first {}",
            bad.len(),
            ours.len() / elem,
            first.join(", ")
        ));
    }
}

/// `[a, b, rest]` to `[b, a, rest]`.
fn swap01<T: Copy>(v: &[T], a: usize, b: usize, rest: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(v.len());
    for j in 0..b {
        for i in 0..a {
            let at = (i * b + j) * rest;
            out.extend_from_slice(&v[at..at + rest]);
        }
    }
    out
}

fn native_all(f: &SegyFile) -> Vec<u8> {
    let mut out = vec![0u8; f.traces * f.samples * f.format.native().size()];
    f.read_native_into(0..f.traces, &mut out).unwrap();
    out
}

/// segyio's trace header fields that mlp does not read with the same first byte and width,
/// so they are not compared: segyio reads bytes 219-222 as a 4-byte
/// SourceEnergyDirectionMantissa, where mlp reads two 2-byte fields as SEG-Y rev 2 defines
/// them (SourceEnergyDirectionVertical 219, SourceEnergyDirectionXline 221). segyio's
/// 2-byte SourceEnergyDirectionExponent (223) and mlp's SourceEnergyDirectionIline (223)
/// cover the same bytes and are compared.
const SKIPPED_HEADER_FIELDS: [&str; 1] = ["SourceEnergyDirectionMantissa"];

// ---------------------------------------------------------------------------------------
// The comparison of one file
// ---------------------------------------------------------------------------------------

/// Compares everything segyio read with what mlp reads from the open file `f`.
fn compare(fd: &mut Findings, name: &str, f: &SegyFile, r: &Reference) {
    let m = &r.meta;
    // Format and samples' element type.
    let code = r.int("format");
    fd.check(code == f.format.code() as i64, || {
        format!(
            "{name}: format code: mlp {}, segyio {code}",
            f.format.code()
        )
    });
    let nt = npy_dtype(f.format.native());
    let dtype = m["dtype"].as_str().unwrap_or("?");
    fd.check(dtype == nt.name(), || {
        format!("{name}: native type: mlp {}, segyio {dtype}", nt.name())
    });
    // Trace count and samples.
    let tracecount = r.int("tracecount") as usize;
    fd.check(tracecount == f.traces, || {
        format!("{name}: trace count: mlp {}, segyio {tracecount}", f.traces)
    });
    let samples: Vec<f64> = m["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    fd.check(samples.len() == f.samples, || {
        format!(
            "{name}: samples per trace: mlp {}, segyio {}",
            f.samples,
            samples.len()
        )
    });
    let times = f.sample_times();
    let su_without_dt = f.kind == FileKind::Su
        && f.traces > 0
        && f.field(0, header::trace_field_at(117).unwrap()).unwrap() == 0;
    if su_without_dt {
        // segyio multiplies by the header's dt of 0; mlp falls back to 4000 us.
        let t0 = samples.first().copied().unwrap_or(0.0);
        fd.check(samples.iter().all(|&s| s == t0), || {
            format!("{name}: segyio's SU sample times with dt 0 are not constant")
        });
        let ok = times
            .iter()
            .enumerate()
            .all(|(i, &t)| (t - (t0 + 4.0 * i as f64)).abs() <= 1e-9);
        fd.check(ok && f.sample_interval_us == 4000.0, || {
            format!(
                "{name}: SU file without dt: mlp should fall back to 4000 us from t0 {t0}, \
                 got interval {} and times {:?}",
                f.sample_interval_us,
                &times[..times.len().min(4)]
            )
        });
        fd.note(format!(
            "{name}: SU file with dt 0: segyio gives every sample time {t0} ms; mlp uses \
             4000 us (intended)"
        ));
    } else if samples.len() == times.len() {
        let bad = times
            .iter()
            .zip(&samples)
            .position(|(a, b)| (a - b).abs() > 1e-9 * b.abs().max(1.0));
        fd.check(bad.is_none(), || {
            let i = bad.unwrap();
            format!(
                "{name}: sample time {i}: mlp {} ms, segyio {} ms (interval mlp {} us, t0 mlp \
                 {} ms)",
                times[i], samples[i], f.sample_interval_us, f.t0_ms
            )
        });
    }

    // File headers.
    if f.kind == FileKind::Segy {
        let ext = r.int("ext_headers") as usize;
        fd.check(ext == f.text.len() - 1, || {
            format!(
                "{name}: extended textual headers: mlp {}, segyio {ext}",
                f.text.len() - 1
            )
        });
        let rev = r.int("revision");
        let bin = f.binary_header();
        let (b1, b2) = (bin[300], bin[301]);
        if f.endian == Endian::Little {
            // segyio reads bytes 3501-3502 of a little-endian file as one 16-bit word, so its
            // major revision is byte 3502 and its minor byte 3501. SEG-Y makes them single
            // bytes (unaffected by byte order), which mlp reads as such, except that it reads
            // 00 01 (a rev 1 0x0100 word written little-endian) as 1.0.
            let minor = r.meta["bin"]["SEGYRevisionMinor"]["value"].as_i64();
            fd.check(rev == b2 as i64 && minor == Some(b1 as i64), || {
                format!(
                    "{name}: segyio's little-endian revision {rev}.{minor:?} is not bytes \
                     3502.3501 ({b2}.{b1})"
                )
            });
            let want = if (b1, b2) == (0, 1) { (1, 0) } else { (b1, b2) };
            fd.check(f.revision == want, || {
                format!(
                    "{name}: little-endian revision bytes {b1:02x} {b2:02x}: mlp reads {:?}, \
                     expected {want:?}",
                    f.revision
                )
            });
            if b1 != b2 {
                fd.note(format!(
                    "little-endian files: segyio reads the revision bytes 3501-3502 as a \
                     16-bit little-endian word, mlp as two bytes (mlp-written rev {b1} reads as \
                     segyio revision {b2}.{b1})"
                ));
            }
        } else {
            fd.check(rev == f.revision.0 as i64, || {
                format!("{name}: revision: mlp {}, segyio {rev}", f.revision.0)
            });
        }
        compare_text(fd, name, f, r);
        compare_binary(fd, name, f, r);
    }
    compare_trace_headers(fd, name, f, r);

    // Samples: native bytes and f32.
    if f.traces == tracecount && samples.len() == f.samples {
        let traces = r.npy("traces.npy");
        fd.check(traces.dtype == nt, || {
            format!(
                "{name}: traces.npy is {}, mlp's native type {}",
                traces.dtype.name(),
                nt.name()
            )
        });
        if traces.dtype == nt {
            cmp_native(
                fd,
                &format!("{name}: traces (native)"),
                nt.size(),
                &native_all(f),
                &traces.data,
            );
        }
        cmp_f32(
            fd,
            &format!("{name}: traces (f32)"),
            &f.read_all(),
            &npy_as_f32(&traces),
        );
    }

    if r.has_geometry() {
        compare_geometry(fd, name, f, r);
    } else if r.ok() {
        fd.check(r.geometry_error().is_some(), || {
            format!("{name}: segyio has no geometry but no geometry error")
        });
    }
}

fn compare_text(fd: &mut Findings, name: &str, f: &SegyFile, r: &Reference) {
    let m = &r.meta;
    let insp = Inspect::of(f);
    let theirs = m["text"].as_str().unwrap_or("");
    if f.text_encoding == Some(TextEncoding::Ebcdic) {
        fd.check(insp.text == theirs, || {
            let at = insp
                .text
                .chars()
                .zip(theirs.chars())
                .position(|(a, b)| a != b)
                .unwrap_or(insp.text.len().min(theirs.len()));
            format!(
                "{name}: textual header differs from segyio's at character {at}: mlp {:?}, \
                 segyio {:?}",
                insp.text.chars().skip(at).take(20).collect::<String>(),
                theirs.chars().skip(at).take(20).collect::<String>()
            )
        });
    } else {
        // segyio decodes every textual header as EBCDIC; mlp reads ASCII ones as they are.
        let printable = insp
            .text
            .chars()
            .filter(|c| (' '..='~').contains(c))
            .count();
        fd.check(
            insp.text.starts_with('C') || printable * 10 >= insp.text.chars().count() * 9,
            || {
                format!(
                    "{name}: ASCII textual header does not read as text: {:?}",
                    insp.text.chars().take(80).collect::<String>()
                )
            },
        );
        fd.note(format!(
            "{name}: ASCII textual header, read as ASCII by mlp (segyio decodes it as EBCDIC)"
        ));
    }
    let ext: Vec<&str> = m["ext_text"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap_or("")).collect())
        .unwrap_or_default();
    for (i, theirs) in ext.iter().enumerate() {
        let Some(ours) = f.text.get(i + 1) else {
            continue;
        };
        let at = 3600 + 3200 * i;
        let raw = &f.bytes()[at..(at + 3200).min(f.bytes().len())];
        if header::detect_text_encoding(raw) == TextEncoding::Ebcdic {
            fd.check(ours == theirs, || {
                format!("{name}: extended textual header {} differs", i + 1)
            });
        }
    }
}

/// Binary header fields that both name alike and place at the same byte.
fn compare_binary(fd: &mut Findings, name: &str, f: &SegyFile, r: &Reference) {
    let Some(theirs) = r.meta["bin"].as_object() else {
        return;
    };
    let ours: HashMap<&str, i64> = f.binary_fields().into_iter().collect();
    for (field, v) in theirs {
        let byte = v["byte"].as_i64().unwrap();
        let value = v["value"].as_i64().unwrap();
        let Some(ff) = BINARY_FIELDS
            .iter()
            .find(|b| b.name == field && b.byte as i64 == byte)
        else {
            continue;
        };
        if f.endian == Endian::Little && (ff.byte == 3501 || ff.byte == 3502) {
            continue; // compared with the revision above
        }
        let mine = ours[ff.name];
        fd.check(mine == value, || {
            format!("{name}: binary header {field} (byte {byte}): mlp {mine}, segyio {value}")
        });
    }
}

fn compare_trace_headers(fd: &mut Findings, name: &str, f: &SegyFile, r: &Reference) {
    let Some(theirs) = r.meta["headers"].as_object() else {
        fd.errors
            .push(format!("{name}: segyio dumped no trace headers"));
        return;
    };
    let mut skipped = BTreeSet::new();
    let mut compared = 0;
    for (field, h) in theirs {
        let byte = h["byte"].as_i64().unwrap() as u16;
        let len = h["len"].as_i64().unwrap() as u8;
        let Some(ours) = TRACE_FIELDS
            .iter()
            .find(|t: &&Field| t.byte == byte && t.len == len)
        else {
            skipped.insert(field.clone());
            continue;
        };
        compared += 1;
        let values: Vec<i64> = h["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let col = f.header_column(ours);
        if col.len() != values.len() {
            continue; // the trace count mismatch is reported already
        }
        // segyio 1.9 reads every trace header field as signed; mlp reads the fields SEG-Y
        // rev 2 makes unsigned (the sample count at 115) as unsigned. The bits must agree.
        let values: Vec<i64> = if ours.signed {
            values
        } else {
            let bits = 8 * ours.len as u32;
            let mask = if bits >= 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            if values.iter().any(|&v| v < 0) {
                fd.note(format!(
                    "trace header {field} ({len} bytes at {byte}): segyio reads it signed, mlp \
                     unsigned (same bits compared)"
                ));
            }
            values.iter().map(|&v| (v as u64 & mask) as i64).collect()
        };
        let bad: Vec<usize> = (0..col.len()).filter(|&i| col[i] != values[i]).collect();
        fd.check(bad.is_empty(), || {
            let first: Vec<String> = bad
                .iter()
                .take(3)
                .map(|&i| format!("trace {i}: mlp {} segyio {}", col[i], values[i]))
                .collect();
            format!(
                "{name}: trace header {field} ({} bytes at {byte}; mlp's {}) differs in {} of \
                 {} traces: {}",
                len,
                ours.name,
                bad.len(),
                col.len(),
                first.join(", ")
            )
        });
    }
    let expected: BTreeSet<String> = SKIPPED_HEADER_FIELDS
        .iter()
        .map(|s| s.to_string())
        .collect();
    fd.check(skipped == expected, || {
        format!(
            "{name}: trace header fields without an mlp field of the same byte and width: \
             {skipped:?} (expected {expected:?})"
        )
    });
    fd.check(compared >= 80, || {
        format!("{name}: only {compared} trace header fields compared")
    });
}

fn compare_geometry(fd: &mut Findings, name: &str, f: &SegyFile, r: &Reference) {
    let Some(cube) = &f.geometry.cube else {
        fd.errors.push(format!(
            "{name}: segyio finds a geometry, mlp none ({:?})",
            f.geometry.reason
        ));
        return;
    };
    let (il, xl, off) = (r.ints("ilines"), r.ints("xlines"), r.ints("offsets"));
    fd.check(cube.ilines == il, || {
        format!("{name}: inlines: mlp {:?}, segyio {il:?}", cube.ilines)
    });
    fd.check(cube.xlines == xl, || {
        format!("{name}: crosslines: mlp {:?}, segyio {xl:?}", cube.xlines)
    });
    fd.check(cube.offsets == off, || {
        format!("{name}: offsets: mlp {:?}, segyio {off:?}", cube.offsets)
    });
    fd.check(cube.missing == 0, || {
        format!(
            "{name}: segyio reads a full grid, mlp says {} traces are missing",
            cube.missing
        )
    });
    let sorting = match r.int("sorting") {
        2 => Sorting::Inline,
        1 => Sorting::Crossline,
        _ => Sorting::Unstructured,
    };
    fd.check(f.sorting() == sorting, || {
        format!(
            "{name}: sorting: mlp {:?}, segyio {sorting:?} ({})",
            f.sorting(),
            r.int("sorting")
        )
    });
    if cube.ilines != il || cube.xlines != xl || cube.offsets != off {
        return;
    }
    let (ni, nx, no, ns) = (il.len(), xl.len(), off.len(), f.samples);
    let xl_first = r.meta["cube_order"].as_str() == Some("xl_il");

    let theirs = npy_as_f32(&r.npy("cube.npy"));
    let theirs = if xl_first {
        swap01(&theirs, nx, ni, no * ns)
    } else {
        theirs
    };
    cmp_f32(
        fd,
        &format!("{name}: cube"),
        &f.read_cube().unwrap(),
        &theirs,
    );

    let inline = r.meta["inline"].as_i64().unwrap() as i32;
    cmp_f32(
        fd,
        &format!("{name}: inline {inline}"),
        &f.read_inline(inline).unwrap(),
        &npy_as_f32(&r.npy("inline.npy")),
    );
    let crossline = r.meta["crossline"].as_i64().unwrap() as i32;
    cmp_f32(
        fd,
        &format!("{name}: crossline {crossline}"),
        &f.read_crossline(crossline).unwrap(),
        &npy_as_f32(&r.npy("crossline.npy")),
    );

    // segyio's depth slice holds the first offset of every cell.
    let k = r.meta["depth_index"].as_u64().unwrap() as usize;
    let ours: Vec<f32> = f
        .read_depth_slice(k)
        .unwrap()
        .chunks_exact(no)
        .map(|c| c[0])
        .collect();
    let theirs = npy_as_f32(&r.npy("depth.npy"));
    let theirs = if xl_first {
        swap01(&theirs, nx, ni, 1)
    } else {
        theirs
    };
    cmp_f32(fd, &format!("{name}: depth slice {k}"), &ours, &theirs);
}

// ---------------------------------------------------------------------------------------
// The shared files
// ---------------------------------------------------------------------------------------

#[test]
fn shared_files_agree_with_segyio() {
    if let Err(why) = segyio_ready() {
        return skip(&why);
    }
    let dir = shared_dir();
    if !dir.is_dir() {
        return skip(&format!("{} is absent", dir.display()));
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("sgy") || e.eq_ignore_ascii_case("su"))
        })
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no SEG-Y files in {}", dir.display());

    let work = tempfile::tempdir().unwrap();
    let mut opened = Vec::new();
    let mut jobs = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let f = SegyFile::open(p, &OpenOptions::default());
        let mut job = Job::new(p, work.path().join(format!("ref{i}")), Endian::Big);
        if let Ok(f) = &f {
            job.endian = f.endian;
            job.su = f.kind == FileKind::Su;
        } else {
            job.su = p.extension().is_some_and(|e| e.eq_ignore_ascii_case("su"));
        }
        jobs.push(job);
        opened.push(f);
    }
    let refs = run_segyio(&jobs, work.path());

    let mut fd = Findings::default();
    for ((p, f), r) in paths.iter().zip(&opened).zip(&refs) {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let ours = match f {
            Ok(f) => format!("{}-endian, {}", f.endian.name(), f.sorting().name()),
            Err(e) => format!("fails ({e})"),
        };
        let theirs = if !r.ok() {
            format!("fails ({})", r.error())
        } else if r.has_geometry() {
            format!("sorting {}", r.int("sorting"))
        } else {
            format!("no geometry ({})", r.geometry_error().unwrap_or_default())
        };
        eprintln!("{name}: mlp {ours}; segyio {theirs}");
        match name.as_str() {
            "text.sgy" | "broken.sgy" => {
                fd.check(f.is_err(), || format!("{name}: mlp opens it; it must fail"));
                fd.check(!r.ok(), || format!("{name}: segyio opens it; it must fail"));
            }
            "shot-gather.sgy" | "long.sgy" => {
                let g = r.geometry_error().unwrap_or_default();
                fd.check(r.ok() && g.contains("sorting"), || {
                    format!(
                        "{name}: segyio should read it without a geometry (\"unable to find \
                         sorting\"); ok {}, error {:?}, geometry error {g:?}",
                        r.ok(),
                        r.error()
                    )
                });
                match f {
                    Ok(f) => fd.check(
                        f.sorting() == Sorting::Unstructured && f.geometry.cube.is_none(),
                        || {
                            format!(
                                "{name}: mlp should read it unstructured, got {:?}",
                                f.sorting()
                            )
                        },
                    ),
                    Err(e) => fd.errors.push(format!("{name}: mlp fails to open it: {e}")),
                }
            }
            _ => {}
        }
        match f {
            Ok(f) => {
                if !r.ok() {
                    fd.errors.push(format!(
                        "{name}: mlp opens it ({}-endian), segyio fails: {}",
                        f.endian.name(),
                        r.error()
                    ));
                    continue;
                }
                compare(&mut fd, &name, f, r);
                if let (false, Some(cube)) = (r.has_geometry(), &f.geometry.cube) {
                    fd.note(format!(
                        "{name}: mlp finds a grid ({:?}, {} missing) where segyio has none ({})",
                        f.sorting(),
                        cube.missing,
                        r.geometry_error().unwrap_or_default()
                    ));
                }
            }
            Err(e) => fd.check(!r.ok(), || {
                format!("{name}: mlp fails ({e}), segyio opens it")
            }),
        }
    }
    fd.finish("shared files");
}

// ---------------------------------------------------------------------------------------
// Generated files
// ---------------------------------------------------------------------------------------

/// splitmix64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The integer range of a format: (bits, signed).
fn int_range(fmt: SampleFormat) -> Option<(u32, bool)> {
    Some(match fmt {
        SampleFormat::I8 => (8, true),
        SampleFormat::U8 => (8, false),
        SampleFormat::I16 => (16, true),
        SampleFormat::U16 => (16, false),
        SampleFormat::I24 => (24, true),
        SampleFormat::U24 => (24, false),
        SampleFormat::I32 => (32, true),
        SampleFormat::U32 => (32, false),
        SampleFormat::I64 => (64, true),
        SampleFormat::U64 => (64, false),
        _ => return None,
    })
}

/// `n` sample values for `fmt` as native little-endian bytes, and for each whether writing
/// and reading it back must give the same bytes (everything but some IBM inputs). `start`
/// is the index in the file of the first: the file's first samples are special values
/// (extremes, zeros, infinities, NaN), the others random.
fn sample_values(fmt: SampleFormat, start: usize, n: usize, rng: &mut Rng) -> (Vec<u8>, Vec<bool>) {
    let size = fmt.native().size();
    let mut bytes = Vec::with_capacity(n * size);
    let mut exact = Vec::with_capacity(n);
    if let Some((bits, signed)) = int_range(fmt) {
        // Values as i128 in the format's range, the extremes first.
        let (lo, hi): (i128, i128) = if signed {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        } else {
            (0, (1i128 << bits) - 1)
        };
        let special = [
            lo,
            hi,
            0,
            1,
            lo + 1,
            hi - 1,
            if signed { -1 } else { hi / 2 },
        ];
        for i in 0..n {
            let v = if start + i < special.len() {
                special[start + i]
            } else {
                let raw = rng.next() as u128 & ((1u128 << bits) - 1);
                if signed && raw >> (bits - 1) == 1 {
                    raw as i128 - (1i128 << bits)
                } else {
                    raw as i128
                }
            };
            bytes.extend_from_slice(&v.to_le_bytes()[..size]);
            exact.push(true);
        }
        return (bytes, exact);
    }
    match fmt {
        SampleFormat::F32 => {
            let special = [
                0.0f32,
                -0.0,
                1.0,
                -1.0,
                f32::MIN_POSITIVE,
                1e-45,
                -3e-39,
                f32::MAX,
                -f32::MAX,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
                f32::from_bits(0x7fc1_2345),
                f32::from_bits(0xff80_0001),
            ];
            for i in 0..n {
                let v = special
                    .get(start + i)
                    .copied()
                    .unwrap_or_else(|| f32::from_bits(rng.next() as u32));
                bytes.extend_from_slice(&v.to_le_bytes());
                exact.push(true);
            }
        }
        SampleFormat::F64 => {
            let special = [
                0.0f64,
                -0.0,
                1.0,
                -1.0,
                f64::MIN_POSITIVE,
                5e-324,
                f64::MAX,
                -f64::MAX,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
                f64::from_bits(0x7ff0_0000_0000_0001),
                1e300,
                -1e-300,
            ];
            for i in 0..n {
                let v = special
                    .get(start + i)
                    .copied()
                    .unwrap_or_else(|| f64::from_bits(rng.next()));
                bytes.extend_from_slice(&v.to_le_bytes());
                exact.push(true);
            }
        }
        SampleFormat::Ibm => {
            // Normal floats with at most 21 significant bits survive IEEE -> IBM -> IEEE;
            // -0, subnormals, the largest float, infinities and NaN do not (segyio's
            // conversion maps them to something else), but both readers must agree on them.
            let special = [
                0.0f32,
                1.0,
                -118.625,
                f32::MIN_POSITIVE,
                -f32::MIN_POSITIVE,
                f32::from_bits(0x7f7f_fff8),
                f32::from_bits(0xff7f_fff8),
                1e-30,
                -1e30,
                0.1,
                -0.0,
                1e-40,
                f32::MAX,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
                3.333_333_3,
            ];
            for i in 0..n {
                let v = special.get(start + i).copied().unwrap_or_else(|| {
                    let r = rng.next();
                    // A random finite, normal float of either sign and any magnitude; every
                    // other one with its low 3 mantissa bits cleared (exact in IBM).
                    let mut b = r as u32;
                    let exp = ((r >> 32) % 254 + 1) as u32;
                    b = (b & 0x807f_ffff) | exp << 23;
                    if r >> 63 == 0 {
                        b &= !7;
                    }
                    f32::from_bits(b)
                });
                bytes.extend_from_slice(&v.to_le_bytes());
                let b = v.to_bits();
                exact.push(b == 0 || (v.is_normal() && b & 7 == 0));
            }
        }
        _ => unreachable!("integer formats are handled above"),
    }
    (bytes, exact)
}

/// Where the inline and crossline numbers go.
#[derive(Clone, Copy, PartialEq)]
enum Keys {
    /// Bytes 189 and 193, as `Grid::trace_header` writes them.
    Standard,
    /// Inline at byte 9, crossline at 21.
    Custom,
}

/// A generated file and what was written into it.
struct Generated {
    name: String,
    path: PathBuf,
    fmt: SampleFormat,
    endian: Endian,
    keys: Keys,
    /// A Seismic Unix file.
    su: bool,
    samples: usize,
    /// The cell (il, xl, offset positions) of each trace, in file order.
    cells: Vec<(usize, usize, usize)>,
    /// Native little-endian samples written, trace after trace.
    native: Vec<u8>,
    /// Per sample: must read back exactly as written.
    exact: Vec<bool>,
}

impl Generated {
    fn open_options(&self) -> OpenOptions {
        match self.keys {
            Keys::Standard => OpenOptions::default(),
            Keys::Custom => OpenOptions {
                iline: 9,
                xline: 21,
                ..OpenOptions::default()
            },
        }
    }

    fn job(&self, out: PathBuf) -> Job {
        let mut j = Job::new(&self.path, out, self.endian);
        j.su = self.su;
        if self.keys == Keys::Custom {
            j.iline = 9;
            j.xline = 21;
        }
        j
    }
}

/// How traces are ordered: inline-sorted (crosslines fastest) or crossline-sorted.
#[derive(Clone, Copy, PartialEq)]
enum Order {
    Inline,
    Crossline,
}

#[allow(clippy::too_many_arguments)]
fn write_survey(
    dir: &Path,
    name: &str,
    fmt: SampleFormat,
    endian: Endian,
    revision: u8,
    grid: &Grid,
    order: Order,
    drop: &[(usize, usize, usize)],
    samples: usize,
    keys: Keys,
    encoding: TextEncoding,
    rng: &mut Rng,
) -> Generated {
    let path = dir.join(format!("{name}.sgy"));
    let opts = WriteOptions {
        revision,
        format: fmt,
        endian,
        samples,
        sample_interval_us: 2000,
        text: card_text(&[
            "mlp-segy reference file for segyio",
            name,
            fmt.name(),
            "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "+-*/=()<>[]{}.,;:!?'\"_&%$#@|~^`\\",
        ]),
        text_encoding: encoding,
    };
    let (ni, nx, no) = (grid.ilines.len(), grid.xlines.len(), grid.offsets.len());
    let mut cells = Vec::new();
    match order {
        Order::Inline => {
            for i in 0..ni {
                for j in 0..nx {
                    for k in 0..no {
                        cells.push((i, j, k));
                    }
                }
            }
        }
        Order::Crossline => {
            for j in 0..nx {
                for i in 0..ni {
                    for k in 0..no {
                        cells.push((i, j, k));
                    }
                }
            }
        }
    }
    cells.retain(|c| !drop.contains(c));

    // Fields that steer reading keep their values; the others get random bits, so every
    // header field's decoding (width, sign) is compared. The first trace's delay and its
    // scalar (which segyio and mlp turn into the first sample's time) are chosen.
    let mut protected: Vec<u16> = vec![37, 189, 193];
    if keys == Keys::Custom {
        protected.extend([9, 21]);
    }
    let scalars = [0i64, 1, -10, 100, -1000, 10];
    let scalar = scalars[(rng.next() % scalars.len() as u64) as usize];
    let delay = (rng.next() % 2001) as i64 - 1000;

    let mut w = SegyWriter::create(&path, &opts).unwrap();
    let base = w.header();
    let mut native = Vec::new();
    let mut exact = Vec::new();
    for (seq, &(i, j, k)) in cells.iter().enumerate() {
        let mut h = grid.trace_header(&base, i, j, k, seq as u64);
        for fld in TRACE_FIELDS {
            let steering = seq == 0 && [109, 115, 117, 215].contains(&fld.byte);
            if protected.contains(&fld.byte) || steering {
                continue;
            }
            let r = rng.next();
            let v = match fld.len {
                2 => r as i16 as i64,
                4 => r as i32 as i64,
                _ => r as i64,
            };
            h.set(fld, v);
        }
        if seq == 0 {
            h.set(header::trace_field_at(109).unwrap(), delay);
            h.set(header::trace_field_at(215).unwrap(), scalar);
        }
        if keys == Keys::Custom {
            h.set(header::trace_field_at(9).unwrap(), grid.ilines[i] as i64);
            h.set(header::trace_field_at(21).unwrap(), grid.xlines[j] as i64);
        }
        let (vals, ex) = sample_values(fmt, seq * samples, samples, rng);
        w.write_trace_native(&h, &vals).unwrap();
        native.extend_from_slice(&vals);
        exact.extend(ex);
    }
    w.finish().unwrap();
    Generated {
        name: name.to_string(),
        path,
        fmt,
        endian,
        keys,
        su: false,
        samples,
        cells,
        native,
        exact,
    }
}

/// mlp reads back what it wrote (exactly, where the format can hold the value).
fn check_round_trip(fd: &mut Findings, g: &Generated, f: &SegyFile) {
    let name = &g.name;
    fd.check(
        f.format == g.fmt && f.endian == g.endian && f.traces == g.cells.len(),
        || {
            format!(
                "{name}: mlp reads {:?} {:?} with {} traces; wrote {:?} {:?} with {}",
                f.format,
                f.endian,
                f.traces,
                g.fmt,
                g.endian,
                g.cells.len()
            )
        },
    );
    if f.traces != g.cells.len() || f.samples != g.samples {
        return;
    }
    let ours = native_all(f);
    let size = g.fmt.native().size();
    let bad: Vec<usize> = (0..g.exact.len())
        .filter(|&i| {
            g.exact[i] && ours[i * size..(i + 1) * size] != g.native[i * size..(i + 1) * size]
        })
        .collect();
    fd.check(bad.is_empty(), || {
        let i = bad[0];
        format!(
            "{name}: {} samples do not read back as written, first [{i}]: wrote {:02x?}, read \
             {:02x?}",
            bad.len(),
            &g.native[i * size..(i + 1) * size],
            &ours[i * size..(i + 1) * size]
        )
    });
}

#[test]
fn generated_formats_agree_with_segyio() {
    if let Err(why) = segyio_ready() {
        return skip(&why);
    }
    let work = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5e9_710);
    let grid = Grid::simple(3, 4, 101, 201);
    let mut files = Vec::new();
    for fmt in ALL_FORMATS {
        for endian in [Endian::Big, Endian::Little] {
            for revision in [1u8, 2] {
                let name = format!("fmt{}-{}-rev{revision}", fmt.code(), endian.name());
                files.push(write_survey(
                    work.path(),
                    &name,
                    fmt,
                    endian,
                    revision,
                    &grid,
                    Order::Inline,
                    &[],
                    7,
                    Keys::Standard,
                    TextEncoding::Ebcdic,
                    &mut rng,
                ));
            }
        }
    }
    let jobs: Vec<Job> = files
        .iter()
        .map(|g| g.job(work.path().join(format!("ref-{}", g.name))))
        .collect();
    let refs = run_segyio(&jobs, work.path());

    let mut fd = Findings::default();
    let mut refused = BTreeSet::new();
    for (g, r) in files.iter().zip(&refs) {
        let f = match SegyFile::open(&g.path, &g.open_options()) {
            Ok(f) => f,
            Err(e) => {
                fd.errors
                    .push(format!("{}: mlp cannot read its own file: {e}", g.name));
                continue;
            }
        };
        check_round_trip(&mut fd, g, &f);
        fd.check(
            f.sorting() == Sorting::Inline && f.geometry.is_regular(),
            || format!("{}: mlp's geometry {:?}", g.name, f.sorting()),
        );
        if !r.ok() {
            let err = r.error();
            fd.check(err.to_lowercase().contains("format"), || {
                format!(
                    "{}: segyio fails with an error that does not name the format: {err}",
                    g.name
                )
            });
            refused.insert((g.fmt.code(), err));
            continue;
        }
        compare(&mut fd, &g.name, &f, r);
    }
    let codes: BTreeSet<i16> = refused.iter().map(|(c, _)| *c).collect();
    for (code, err) in &refused {
        eprintln!("segyio refuses format {code}: {err}");
    }
    eprintln!("formats segyio refused: {codes:?} (mlp round-trips them)");
    // The formats of SEG-Y rev 1 (and the 8-byte IEEE float) segyio has always read.
    for core in [1, 2, 3, 5, 6, 8] {
        fd.check(!codes.contains(&core), || {
            format!("segyio refused core format {core}")
        });
    }
    fd.finish("generated formats");
}

#[test]
fn generated_geometries_agree_with_segyio() {
    if let Err(why) = segyio_ready() {
        return skip(&why);
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let mut rng = Rng(0x9e0);
    let simple = Grid::simple(3, 4, 1, 10);
    let mut files = Vec::new();

    files.push(write_survey(
        dir,
        "crossline-sorted",
        SampleFormat::Ibm,
        Endian::Big,
        1,
        &simple,
        Order::Crossline,
        &[],
        9,
        Keys::Standard,
        TextEncoding::Ebcdic,
        &mut rng,
    ));
    let mut decreasing = simple.clone();
    decreasing.ilines = vec![30, 20, 10];
    decreasing.xlines = vec![7, 5, 3, 1];
    files.push(write_survey(
        dir,
        "decreasing",
        SampleFormat::F32,
        Endian::Little,
        1,
        &decreasing,
        Order::Inline,
        &[],
        9,
        Keys::Standard,
        TextEncoding::Ebcdic,
        &mut rng,
    ));
    files.push(write_survey(
        dir,
        "decreasing-crossline-sorted",
        SampleFormat::I16,
        Endian::Big,
        2,
        &decreasing,
        Order::Crossline,
        &[],
        9,
        Keys::Standard,
        TextEncoding::Ebcdic,
        &mut rng,
    ));
    let mut prestack = simple.clone();
    prestack.offsets = vec![100, 200, 300];
    files.push(write_survey(
        dir,
        "prestack",
        SampleFormat::Ibm,
        Endian::Big,
        1,
        &prestack,
        Order::Inline,
        &[],
        8,
        Keys::Standard,
        TextEncoding::Ebcdic,
        &mut rng,
    ));
    files.push(write_survey(
        dir,
        "prestack-crossline-sorted",
        SampleFormat::I32,
        Endian::Little,
        2,
        &prestack,
        Order::Crossline,
        &[],
        8,
        Keys::Standard,
        TextEncoding::Ebcdic,
        &mut rng,
    ));
    files.push(write_survey(
        dir,
        "custom-key-bytes",
        SampleFormat::F32,
        Endian::Big,
        1,
        &simple,
        Order::Inline,
        &[],
        9,
        Keys::Custom,
        TextEncoding::Ascii,
        &mut rng,
    ));
    // Seismic Unix files: IEEE-float SEG-Y files without their 3600 bytes of file headers,
    // in both byte orders. The first trace's bytes 215-216 (SEG-Y's delay scalar, unused in
    // SU) hold -10.
    for endian in [Endian::Big, Endian::Little] {
        let g = write_survey(
            dir,
            &format!("su-{}", endian.name()),
            SampleFormat::F32,
            endian,
            1,
            &simple,
            Order::Inline,
            &[],
            9,
            Keys::Standard,
            TextEncoding::Ebcdic,
            &mut rng,
        );
        let mut bytes = std::fs::read(&g.path).unwrap().split_off(3600);
        let scalar = match endian {
            Endian::Big => (-10i16).to_be_bytes(),
            Endian::Little => (-10i16).to_le_bytes(),
        };
        bytes[214..216].copy_from_slice(&scalar);
        let path = g.path.with_extension("su");
        std::fs::write(&path, bytes).unwrap();
        files.push(Generated {
            path,
            su: true,
            ..g
        });
    }

    // Irregular files (traces removed from a grid). With (il 2, xl 11) and (il 3, xl 12)
    // missing from 3 x 4, segyio finds the sorting but the line counts do not multiply to
    // the trace count; with (il 1, xl 11) and (il 2, xl 10) missing from 3 x 2, the first two
    // traces differ in both keys and segyio cannot find the sorting at all.
    let narrow = Grid::simple(3, 2, 1, 10);
    let irregular = [
        (
            write_survey(
                dir,
                "irregular",
                SampleFormat::Ibm,
                Endian::Big,
                1,
                &simple,
                Order::Inline,
                &[(1, 1, 0), (2, 2, 0)],
                9,
                Keys::Standard,
                TextEncoding::Ebcdic,
                &mut rng,
            ),
            simple.clone(),
            vec![(1, 1, 0), (2, 2, 0)],
            "should match the number of traces",
        ),
        (
            write_survey(
                dir,
                "irregular-unsortable",
                SampleFormat::I32,
                Endian::Little,
                2,
                &narrow,
                Order::Inline,
                &[(0, 1, 0), (1, 0, 0)],
                9,
                Keys::Standard,
                TextEncoding::Ebcdic,
                &mut rng,
            ),
            narrow.clone(),
            vec![(0, 1, 0), (1, 0, 0)],
            "unable to find sorting",
        ),
    ];

    // Raw bit patterns: IBM words (both byte orders) and IEEE words, 100 000 per file.
    let words = |endian: Endian, fmt: SampleFormat, name: &str, rng: &mut Rng| {
        let grid = Grid::simple(2, 5, 1, 1);
        let ns = 10_000;
        let g = write_survey(
            dir,
            name,
            fmt,
            endian,
            1,
            &grid,
            Order::Inline,
            &[],
            ns,
            Keys::Standard,
            TextEncoding::Ebcdic,
            rng,
        );
        let mut bytes = std::fs::read(&g.path).unwrap();
        let edges: [u32; 16] = [
            0x0000_0000,
            0x8000_0000,
            0x7fff_ffff,
            0xffff_ffff,
            0x0010_0000,
            0x211f_ffff,
            0x2120_0000,
            0x2120_0001,
            0xa120_0000,
            0x611f_ffff,
            0x6120_0000,
            0xe11f_ffff,
            0x4110_0000,
            0xc276_a000,
            0x4100_0001,
            0x0000_0001,
        ];
        let trace_len = 240 + ns * 4;
        let mut n = 0;
        for t in 0..g.cells.len() {
            let at = 3600 + t * trace_len + 240;
            for s in 0..ns {
                let w = edges.get(n).copied().unwrap_or_else(|| rng.next() as u32);
                n += 1;
                let b = match endian {
                    Endian::Big => w.to_be_bytes(),
                    Endian::Little => w.to_le_bytes(),
                };
                bytes[at + 4 * s..at + 4 * s + 4].copy_from_slice(&b);
            }
        }
        std::fs::write(&g.path, bytes).unwrap();
        Generated {
            native: Vec::new(),
            exact: Vec::new(),
            ..g
        }
    };
    files.push(words(
        Endian::Big,
        SampleFormat::Ibm,
        "ibm-words-big",
        &mut rng,
    ));
    files.push(words(
        Endian::Little,
        SampleFormat::Ibm,
        "ibm-words-little",
        &mut rng,
    ));
    files.push(words(
        Endian::Big,
        SampleFormat::F32,
        "ieee-words-big",
        &mut rng,
    ));

    let mut jobs: Vec<Job> = files
        .iter()
        .map(|g| g.job(dir.join(format!("ref-{}", g.name))))
        .collect();
    for (g, ..) in &irregular {
        jobs.push(g.job(dir.join(format!("ref-{}", g.name))));
    }
    let refs = run_segyio(&jobs, dir);

    let mut fd = Findings::default();
    for (g, r) in files.iter().zip(&refs) {
        let f = match SegyFile::open(&g.path, &g.open_options()) {
            Ok(f) => f,
            Err(e) => {
                fd.errors
                    .push(format!("{}: mlp cannot read its own file: {e}", g.name));
                continue;
            }
        };
        check_round_trip(&mut fd, g, &f);
        if !r.ok() {
            fd.errors
                .push(format!("{}: segyio fails: {}", g.name, r.error()));
            continue;
        }
        fd.check(r.has_geometry(), || {
            format!(
                "{}: segyio finds no geometry: {:?}",
                g.name,
                r.geometry_error()
            )
        });
        compare(&mut fd, &g.name, &f, r);
    }

    // The irregular files: segyio has no geometry; mlp pads a grid and masks the holes.
    for ((g, grid, dropped, message), r) in irregular.iter().zip(&refs[files.len()..]) {
        check_irregular(&mut fd, g, r, grid, dropped, message);
    }
    fd.finish("generated geometries");
}

/// A file with `dropped` cells missing from `grid`: segyio reads its traces but fails strict
/// geometry with `message`; mlp gives a padded cube whose mask marks the missing cells and
/// whose other cells hold segyio's traces.
fn check_irregular(
    fd: &mut Findings,
    g: &Generated,
    r: &Reference,
    grid: &Grid,
    dropped: &[(usize, usize, usize)],
    message: &str,
) {
    let name = &g.name;
    let gerr = r.geometry_error().unwrap_or_default();
    fd.check(r.ok() && gerr.contains(message), || {
        format!(
            "{name}: segyio should fail strict geometry with {message:?} and read \
             the traces; ok {}, error {:?}, geometry error {gerr:?}",
            r.ok(),
            r.error()
        )
    });
    match SegyFile::open(&g.path, &OpenOptions::default()) {
        Err(e) => fd.errors.push(format!("{name}: mlp fails: {e}")),
        Ok(f) => {
            check_round_trip(fd, g, &f);
            if r.ok() {
                compare(fd, name, &f, r);
            }
            let insp = Inspect::of(&f);
            fd.check(insp.irregular && insp.missing_traces == 2, || {
                format!(
                    "{name}: mlp should report 2 missing traces, got irregular {} missing {}",
                    insp.irregular, insp.missing_traces
                )
            });
            let want_missing: Vec<[i32; 3]> = dropped
                .iter()
                .map(|&(i, j, _)| [grid.ilines[i], grid.xlines[j], 0])
                .collect();
            fd.check(insp.missing == want_missing, || {
                format!(
                    "{name}: missing cells {:?}, expected {want_missing:?}",
                    insp.missing
                )
            });
            fd.check(f.sorting() == Sorting::Inline, || {
                format!("{name}: sorting {:?}, expected inline", f.sorting())
            });
            fd.check(
                insp.ilines == grid.ilines && insp.xlines == grid.xlines,
                || {
                    format!(
                        "{name}: lines {:?} x {:?}, expected {:?} x {:?}",
                        insp.ilines, insp.xlines, grid.ilines, grid.xlines
                    )
                },
            );
            let (ni, nx) = (grid.ilines.len(), grid.xlines.len());
            let mask = f.mask().unwrap();
            let want_mask: Vec<bool> = (0..ni * nx)
                .map(|c| !dropped.contains(&(c / nx, c % nx, 0)))
                .collect();
            fd.check(mask == want_mask, || {
                format!("{name}: mask {mask:?}, expected {want_mask:?}")
            });
            if r.ok() && mask == want_mask {
                let ns = f.samples;
                let cube = f.read_cube().unwrap();
                let traces = npy_as_f32(&r.npy("traces.npy"));
                let mut ours = Vec::new();
                let mut theirs = Vec::new();
                for (t, &(i, j, _)) in g.cells.iter().enumerate() {
                    let c = i * nx + j;
                    ours.extend_from_slice(&cube[c * ns..(c + 1) * ns]);
                    theirs.extend_from_slice(&traces[t * ns..(t + 1) * ns]);
                }
                cmp_f32(fd, &format!("{name}: cube traces"), &ours, &theirs);
                for &(i, j, _) in dropped {
                    let c = i * nx + j;
                    fd.check(cube[c * ns..(c + 1) * ns].iter().all(|&v| v == 0.0), || {
                        format!("{name}: missing cell ({i}, {j}) does not read as zeros")
                    });
                }
            }
        }
    }
}
